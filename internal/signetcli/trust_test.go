package signetcli

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestRepinReplacesTheCache: an engine pinned a repository's root and
// resolved from it (so its cache holds the old chain). The repository is
// deleted and made again with new keys; pinning the new root must take
// effect at once, not be shadowed by the cached old root.
func TestRepinReplacesTheCache(t *testing.T) {
	t.Parallel()
	srv := newServer(t)
	gun := "registry.example.com/team/repin"
	owner := &cli{t: t, server: srv, trustDir: t.TempDir()}
	engine := &cli{t: t, server: srv, trustDir: t.TempDir()}
	work := t.TempDir()
	must := func(c *cli, args ...string) string {
		t.Helper()
		code, out, e := c.run(args...)
		if code != exitOK {
			t.Fatalf("%v: exit %d: %s", args, code, e)
		}
		return out
	}
	pinFrom := func(c *cli, name string) string {
		t.Helper()
		f := filepath.Join(work, name)
		if err := os.WriteFile(f, []byte(must(c, "trust", "show", gun)), 0o600); err != nil {
			t.Fatal(err)
		}
		return f
	}
	must(owner, "init", gun)
	must(owner, "sign", gun+":1.0", "--digest", digest1, "--size", "1")
	if out := must(engine, "trust", "pin", gun, "--root", pinFrom(owner, "old.json")); !strings.Contains(out, "pinned the root (v1)") {
		t.Fatalf("first pin: %q", out)
	}
	must(engine, "resolve", gun+":1.0")

	req, _ := http.NewRequest(http.MethodDelete, srv+"/v2/"+gun+"/_trust/tuf/", nil)
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode/100 != 2 {
		t.Fatalf("delete: %v %v", resp, err)
	}
	newOwner := &cli{t: t, server: srv, trustDir: t.TempDir()}
	must(newOwner, "init", gun)
	other := "sha256:" + strings.Repeat("ab", 32)
	must(newOwner, "sign", gun+":1.0", "--digest", other, "--size", "2")

	// Still pinned to the old root: the new repository does not verify.
	if code, _, _ := engine.run("resolve", gun+":1.0"); code != exitTrust {
		t.Fatalf("resolve against the old pin: exit %d", code)
	}
	if out := must(engine, "trust", "pin", gun, "--root", pinFrom(newOwner, "new.json")); !strings.Contains(out, "replaced the pinned root") {
		t.Fatalf("re-pin does not say it replaced the pin: %q", out)
	}
	if out := must(engine, "resolve", gun+":1.0"); strings.TrimSpace(out) != gun+"@"+other {
		t.Fatalf("after re-pinning: %q", out)
	}

	if out := must(engine, "trust", "list"); !strings.Contains(out, gun) || !strings.Contains(out, "v1") {
		t.Fatalf("trust list: %q", out)
	}
	if out := must(engine, "-o", "json", "trust", "list"); !strings.Contains(out, `"gun": "`+gun+`"`) {
		t.Fatalf("trust list json: %q", out)
	}
	must(engine, "trust", "remove", gun)
	if code, _, e := engine.run("resolve", gun+":1.0"); code != exitTrust || !strings.Contains(e, "signet trust pin") {
		t.Fatalf("resolve after trust remove: exit %d: %s", code, e)
	}
	if out := must(engine, "trust", "list"); strings.Contains(out, gun) {
		t.Fatalf("trust list after remove: %q", out)
	}
	if code, _, _ := engine.run("trust", "remove", gun); code == exitOK {
		t.Fatal("removing a pin twice succeeded")
	}
}
