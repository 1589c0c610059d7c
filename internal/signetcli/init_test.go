package signetcli

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestInitChecksBeforeSideEffects: a bad GUN, a bad --bins or a repository
// already initialised here is a usage error (2) that leaves no key file,
// no pinned root and nothing on the server.
func TestInitChecksBeforeSideEffects(t *testing.T) {
	t.Parallel()
	srv := newServer(t)
	dev := &cli{t: t, server: srv, trustDir: t.TempDir()}
	noTraces := func(gun string) {
		t.Helper()
		if entries, _ := os.ReadDir(filepath.Join(dev.trustDir, "private")); len(entries) > 0 {
			t.Fatalf("%q: %d key file(s) left behind", gun, len(entries))
		}
		if entries, _ := os.ReadDir(filepath.Join(dev.trustDir, "trust")); len(entries) > 0 {
			t.Fatalf("%q: a root was pinned", gun)
		}
		resp, err := http.Get(srv + "/v2/" + gun + "/_trust/tuf/1.root.json")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				t.Fatalf("%q: root v1 was published", gun)
			}
		}
	}
	for _, gun := range []string{"Registry.example.com/team/app", "registry.example.com/team/App", "registry.example.com/../x",
		"registry.example.com/team/app:1.0", "registry.example.com//app", strings.Repeat("a", 256), "a b"} {
		if code, _, e := dev.run("init", gun); code != exitUsage || !strings.Contains(e, "repository name") {
			t.Fatalf("init %q: exit %d: %s", gun, code, e)
		}
		noTraces(gun)
	}
	gun := "registry.example.com/team/bins"
	for _, bins := range []string{"3", "0", "-4", "1", "8192"} {
		if code, _, e := dev.run("init", gun, "--bins", bins); code != exitUsage || !strings.Contains(e, "power of two") {
			t.Fatalf("init --bins %s: exit %d: %s", bins, code, e)
		}
		noTraces(gun)
	}
	if code, _, e := dev.run("init", gun, "--bins", "4"); code != exitOK {
		t.Fatalf("init --bins 4: exit %d: %s", code, e)
	}
	keys, _ := os.ReadDir(filepath.Join(dev.trustDir, "private"))
	if code, _, e := dev.run("init", gun); code != exitUsage || !strings.Contains(e, "already initialised") {
		t.Fatalf("second init: exit %d: %s", code, e)
	}
	if again, _ := os.ReadDir(filepath.Join(dev.trustDir, "private")); len(again) != len(keys) {
		t.Fatalf("a refused init made keys: %d → %d", len(keys), len(again))
	}
}
