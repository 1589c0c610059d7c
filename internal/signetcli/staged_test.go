package signetcli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestStagedRevocationIsNotDone: revoking a signer whose role another key
// holder must re-sign is staged, not done: exit 5, "waiting for approval",
// the signer stays trusted, signer list shows the pending change; the
// approval makes it take effect. And a delegate's signature shadowed by an
// earlier role is published with a warning that it does not take effect.
func TestStagedRevocationIsNotDone(t *testing.T) {
	t.Parallel()
	srv := newServer(t)
	gun := "registry.example.com/team/revoke"
	owner := &cli{t: t, server: srv, trustDir: t.TempDir()}
	owner.ok("init", gun)
	rootFile := filepath.Join(t.TempDir(), "root.json")
	if err := os.WriteFile(rootFile, []byte(owner.ok("trust", "show", gun)), 0o600); err != nil {
		t.Fatal(err)
	}
	alice, _, alicePub := newSigner(t, srv, gun, rootFile)
	bob, _, bobPub := newSigner(t, srv, gun, rootFile)
	addSigner(t, owner, alice, gun, "alice", alicePub)
	addSigner(t, owner, bob, gun, "bob", bobPub)
	alice.ok("sign", gun+":1.0", "--digest", digest1, "--size", "1")

	// Shadowed: targets lists x, so alice's x (in targets/releases) does
	// not count.
	owner.ok("sign", gun+":x", "--digest", digest1, "--size", "1", "--role", "targets")
	code, out, errOut := alice.run("sign", gun+":x", "--digest", digest2, "--size", "2")
	if code != exitOK || !strings.Contains(out, "published as targets/releases") || !strings.Contains(errOut, "does not take effect") || !strings.Contains(errOut, "targets, earlier in resolution order, lists it as "+digest1) {
		t.Fatalf("shadowed sign: exit %d\n%s\n%s", code, out, errOut)
	}
	if code, out, errOut := alice.run("sign", gun+":y", "--digest", digest2, "--size", "2"); code != exitOK || strings.Contains(errOut, "warning") {
		t.Fatalf("plain sign warns: %d %s %s", code, out, errOut)
	}

	// targets/releases is signed by alice alone; without her key it must be
	// re-signed by bob, whom the owner is not: staged.
	out = owner.staged("signer", "remove", gun, "alice")
	if !strings.Contains(out, ": removed signer alice") || !strings.Contains(out, "waiting for approval") || !strings.Contains(out, "a revoked key stays trusted") {
		t.Fatalf("staged revocation says:\n%s", out)
	}
	id := stagedID(t, out)
	if out := owner.ok("signer", "list", gun); !strings.Contains(out, "PENDING (staged change "+id) || !strings.Contains(out, "targets/alice") {
		t.Fatalf("signer list does not show the pending change:\n%s", out)
	}
	if out := owner.ok("-o", "json", "delegation", "list", gun); !strings.Contains(out, `"pending": [`) || !strings.Contains(out, `"id": "`+id+`"`) || strings.Contains(out, "PathHashPrefixes") {
		t.Fatalf("delegation list json:\n%s", out)
	}
	engine := &cli{t: t, server: srv, trustDir: t.TempDir()}
	engine.ok("trust", "pin", gun, "--root", rootFile)
	if out := engine.ok("resolve", gun+":1.0"); !strings.Contains(out, digest1) {
		t.Fatalf("before approval alice's tag should still resolve: %s", out)
	}
	bob.ok("approve", gun, id, "--yes")
	if code, _, errOut := alice.run("sign", gun+":2.0", "--digest", digest1, "--size", "1"); code == exitOK {
		t.Fatalf("alice signs after her revocation took effect: %s", errOut)
	}
	if out := owner.ok("signer", "list", gun); strings.Contains(out, "PENDING") || strings.Contains(out, "targets/alice") {
		t.Fatalf("signer list after approval:\n%s", out)
	}
}
