package signetcli

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestKeyVerbs: key list shows which repository each key serves; key IDs
// are accepted as unique prefixes of 8+ hex digits (the short IDs
// delegation list prints too); key passwd, key remove and repo delete.
func TestKeyVerbs(t *testing.T) {
	t.Parallel()
	srv := newServer(t)
	gun := "registry.example.com/team/keys"
	dev := &cli{t: t, server: srv, trustDir: t.TempDir()}
	dev.ok("init", gun)
	out := dev.ok("key", "list")
	if strings.Count(out, gun) != 2 || !strings.Contains(out, gun+" (root)") || !strings.Contains(out, gun+" (targets)") {
		t.Fatalf("key list:\n%s", out)
	}
	var targetsKey string
	for _, l := range strings.Split(out, "\n") {
		if f := strings.Fields(l); len(f) > 1 && f[1] == "targets" {
			targetsKey = f[0]
		}
	}
	if out := dev.ok("key", "public", targetsKey[:8]); !strings.Contains(out, "keytype") {
		t.Fatalf("key public by prefix: %q", out)
	}
	for _, bad := range []string{targetsKey[:7], "ffffffffff"} {
		if code, _, e := dev.run("key", "public", bad); code != exitUsage || !strings.Contains(e, "not one key ID") {
			t.Fatalf("key public %s: exit %d: %s", bad, code, e)
		}
	}

	// A new passphrase: the old one no longer opens the key.
	dev.env = map[string]string{"SIGNET_NEW_PASSPHRASE": "new targets pw"}
	dev.ok("key", "passwd", targetsKey[:10])
	dev.env = nil
	if code, _, e := dev.run("sign", gun+":1.0", "--digest", digest1, "--size", "1"); code == exitOK || !strings.Contains(e, "wrong passphrase") {
		t.Fatalf("sign with the old passphrase: exit %d: %s", code, e)
	}
	dev.env = map[string]string{"SIGNET_TARGETS_PASSPHRASE": "new targets pw"}
	dev.ok("sign", gun+":1.0", "--digest", digest1, "--size", "1")

	// Delegation key IDs by the prefix delegation list prints.
	a, _, pubA := newSigner(t, srv, gun, pinned(t, dev, gun))
	_, idB, pubB := newSigner(t, srv, gun, pinned(t, dev, gun))
	a.ok("approve", gun, stagedID(t, dev.staged("delegation", "add", gun, "targets/ci", "--key", pubA, "--key", pubB)), "--yes")
	if out := dev.ok("delegation", "list", gun); !strings.Contains(out, idB[:12]) {
		t.Fatalf("delegation list: %s", out)
	}
	dev.ok("delegation", "edit", gun, "targets/ci", "--remove-key", idB[:12])
	if out := dev.ok("delegation", "list", gun); strings.Contains(out, idB[:12]) {
		t.Fatalf("the key is still there: %s", out)
	}

	// key remove asks before dropping a key a repository still uses.
	if code, _, e := dev.run("key", "remove", targetsKey[:8]); code != exitUsage || !strings.Contains(e, "is still named by") || !strings.Contains(e, gun) {
		t.Fatalf("key remove of a used key: exit %d: %s", code, e)
	}
	dev.ok("key", "remove", targetsKey[:8], "--yes")
	if out := dev.ok("key", "list"); strings.Contains(out, targetsKey) {
		t.Fatalf("removed key still listed:\n%s", out)
	}

	// repo delete: confirmed, the server forgets the repository and this
	// trust directory its pin.
	if code, _, _ := dev.run("repo", "delete", gun); code != exitUsage {
		t.Fatalf("unconfirmed repo delete: exit %d", code)
	}
	dev.ok("resolve", gun+":1.0")
	if out := dev.ok("repo", "delete", gun, "--yes"); !strings.Contains(out, "deleted the trust data") || !strings.Contains(out, "removed its pinned root") {
		t.Fatalf("repo delete: %s", out)
	}
	if out := dev.ok("trust", "list"); strings.Contains(out, gun) {
		t.Fatalf("still pinned: %s", out)
	}
	dev.ok("init", gun) // the name is free again
}

// pinned writes gun's pinned root in c to a file and returns its path.
func pinned(t *testing.T, c *cli, gun string) string {
	t.Helper()
	f := filepath.Join(t.TempDir(), "root.json")
	if err := os.WriteFile(f, []byte(c.ok("trust", "show", gun)), 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

// TestKeyRotate rotates the targets key and the server's timestamp key:
// each writes the next root, which the root key signs and publishes; an
// engine pinned to v1 follows the chain and still resolves, and tags
// signed afterwards are signed by the new targets key.
func TestKeyRotate(t *testing.T) {
	t.Parallel()
	srv := newServer(t)
	gun := "registry.example.com/team/rotate"
	dev := &cli{t: t, server: srv, trustDir: t.TempDir()}
	dev.ok("init", gun)
	dev.ok("sign", gun+":1.0", "--digest", digest1, "--size", "1")
	v1 := pinned(t, dev, gun)
	engine := &cli{t: t, server: srv, trustDir: t.TempDir()}
	engine.ok("trust", "pin", gun, "--root", v1)
	var rootKey string
	for _, line := range strings.Split(dev.ok("key", "list"), "\n") {
		if f := strings.Fields(line); len(f) > 1 && f[1] == "root" {
			rootKey = filepath.Join(dev.trustDir, "private", f[0]+".key")
		}
	}
	if code, _, e := dev.run("key", "rotate", gun, "root", "--root", v1); code != exitUsage || !strings.Contains(e, "signet root rotate") {
		t.Fatalf("key rotate root: exit %d: %s", code, e)
	}
	work := t.TempDir()
	prev := v1
	for i, role := range []string{"targets", "timestamp"} {
		next := filepath.Join(work, role+".json")
		out := dev.ok("key", "rotate", gun, role, "--root", prev, "--out", next)
		if !strings.Contains(out, "new "+role+" key") {
			t.Fatalf("key rotate %s: %s", role, out)
		}
		dev.ok("root", "sign", next, "--key", rootKey)
		dev.ok("root", "verify", next, "--previous", prev)
		dev.ok("root", "publish", gun, next)
		if out := engine.ok("resolve", gun+":1.0"); !strings.Contains(out, digest1) {
			t.Fatalf("after rotating %s: %s", role, out)
		}
		if out := engine.ok("-o", "json", "status", gun); !strings.Contains(out, fmt.Sprintf(`"role": "root",
      "version": %d`, i+2)) {
			t.Fatalf("the engine does not trust root v%d:\n%s", i+2, out)
		}
		prev = next
	}
	dev.ok("sign", gun+":2.0", "--digest", digest2, "--size", "2")
	if out := engine.ok("resolve", gun+":2.0"); !strings.Contains(out, digest2) {
		t.Fatalf("a tag signed after the rotations: %s", out)
	}
}
