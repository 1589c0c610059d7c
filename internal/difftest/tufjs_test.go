package difftest

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// jsDir holds the tuf-js script and its pinned package-lock.json.
const jsDir = "js"

// needTufJS makes sure node and tuf-js are there, installing tuf-js from
// js/package-lock.json with `npm ci` when js/node_modules lacks it. It
// fails the test, never skips it: scripts/test-deps.sh installs Node.js.
// Call it once, before the flows run in parallel.
func needTufJS(t *testing.T) {
	t.Helper()
	for _, bin := range []string{"node", "npm"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Fatalf("%s is not installed: the tuf-js differential test needs Node.js >= 20.17 and npm (run scripts/test-deps.sh, or install the nodejs and npm packages)", bin)
		}
	}
	if _, err := os.Stat(filepath.Join(jsDir, "node_modules", "tuf-js", "package.json")); err == nil {
		return
	}
	cmd := exec.Command("npm", "ci", "--no-audit", "--no-fund", "--loglevel=error")
	cmd.Dir = jsDir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("npm ci in internal/difftest/js (installs tuf-js) failed: %v\n%s", err, out)
	}
}

// tufJS resolves tags with tuf-js (a fresh Updater per tag, pinned to
// root) and returns its answers by tag.
func tufJS(t *testing.T, metadataURL string, root []byte, tags []string) map[string]answer {
	t.Helper()
	rootFile := filepath.Join(t.TempDir(), "root.json")
	if err := os.WriteFile(rootFile, root, 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("node", append([]string{"resolve.mjs", metadataURL, rootFile}, tags...)...)
	cmd.Dir = jsDir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("tuf-js: node resolve.mjs: %v\n%s", err, stderr.String())
	}
	var res []struct {
		Tag, Kind, SHA256, Error string
		Length                   int64
	}
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("tuf-js: output %q: %v", out, err)
	}
	answers := map[string]answer{}
	for _, a := range res {
		answers[a.Tag] = answer{kind: kind(a.Kind), sha256: a.SHA256, length: a.Length, detail: "tuf-js: " + a.Error}
	}
	if len(answers) != len(tags) {
		t.Fatalf("tuf-js answered %d of %d tags: %s", len(answers), len(tags), out)
	}
	return answers
}
