// The differential test resolves every tag with four clients after every
// step; the race detector slows that about fivefold without adding anything
// (the clients' concurrency is tested in client/): it runs without -race, as
// its own step of `make test`.

//go:build !race

package difftest

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
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

// tufJS is one Node.js process running js/resolve.mjs for the whole
// test; flows running in parallel take turns. Starting Node.js costs more
// than resolving a repository's tags, so it is started once.
type tufJS struct {
	mu     sync.Mutex
	cmd    *exec.Cmd
	in     io.WriteCloser
	out    *bufio.Reader
	stderr bytes.Buffer
}

// startTufJS installs tuf-js if needed and starts the resolver; it stops
// when t's test ends.
func startTufJS(t *testing.T) *tufJS {
	t.Helper()
	needTufJS(t)
	js := &tufJS{cmd: exec.Command("node", "resolve.mjs")}
	js.cmd.Dir = jsDir
	js.cmd.Stderr = &js.stderr
	var err error
	if js.in, err = js.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	stdout, err := js.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	js.out = bufio.NewReader(stdout)
	if err := js.cmd.Start(); err != nil {
		t.Fatalf("tuf-js: start node resolve.mjs: %v", err)
	}
	t.Cleanup(func() {
		js.in.Close()
		if err := js.cmd.Wait(); err != nil {
			t.Errorf("tuf-js: node resolve.mjs: %v\n%s", err, js.stderr.String())
		}
	})
	return js
}

// resolve resolves tags with tuf-js (a fresh Updater per tag, pinned to
// root) and returns its answers by tag.
func (js *tufJS) resolve(t *testing.T, metadataURL string, root []byte, tags []string) map[string]answer {
	t.Helper()
	rootFile := filepath.Join(t.TempDir(), "root.json")
	if err := os.WriteFile(rootFile, root, 0o600); err != nil {
		t.Fatal(err)
	}
	req, err := json.Marshal(map[string]any{"url": metadataURL, "root": rootFile, "tags": tags})
	if err != nil {
		t.Fatal(err)
	}
	js.mu.Lock()
	defer js.mu.Unlock()
	if _, err := js.in.Write(append(req, '\n')); err != nil {
		t.Fatalf("tuf-js: write to node resolve.mjs: %v\n%s", err, js.stderr.String())
	}
	line, err := js.out.ReadBytes('\n')
	if err != nil {
		t.Fatalf("tuf-js: read from node resolve.mjs: %v\n%s", err, js.stderr.String())
	}
	var res []struct {
		Tag, Kind, SHA256, Error string
		Length                   int64
	}
	if err := json.Unmarshal(line, &res); err != nil {
		t.Fatalf("tuf-js: answer %q: %v", line, err)
	}
	answers := map[string]answer{}
	for _, a := range res {
		answers[a.Tag] = answer{kind: kind(a.Kind), sha256: a.SHA256, length: a.Length, detail: "tuf-js: " + a.Error}
	}
	if len(answers) != len(tags) {
		t.Fatalf("tuf-js answered %d of %d tags: %s", len(answers), len(tags), line)
	}
	return answers
}
