package signetcli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const digest2 = "sha256:1111111111111111111111111111111111111111111111111111111111111111"

// stagedID returns the staged change a command's output names.
func stagedID(t *testing.T, out string) string {
	t.Helper()
	_, rest, ok := strings.Cut(out, "staged as change ")
	if !ok {
		t.Fatalf("no staged change in:\n%s", out)
	}
	return strings.TrimRight(strings.Fields(rest)[0], ",:")
}

func (c *cli) ok(args ...string) string {
	c.t.Helper()
	code, out, errOut := c.run(args...)
	if code != exitOK {
		c.t.Fatalf("signet %v: exit %d: %s", args, code, errOut)
	}
	return out
}

// staged runs a command that must end staged: exit 5, and a stderr that
// says it is not in effect.
func (c *cli) staged(args ...string) string {
	c.t.Helper()
	code, out, errOut := c.run(args...)
	if code != exitStaged || !strings.Contains(errOut, "NOT in effect until approved") {
		c.t.Fatalf("signet %v: exit %d, want %d (staged): %s", args, code, exitStaged, errOut)
	}
	return out
}

// addSigner adds a signer: the owner stages it (the signer's role is born
// published, signed by the signer's key), the signer approves.
func addSigner(t *testing.T, owner, signer *cli, gun, name, pub string) {
	t.Helper()
	signer.ok("approve", gun, stagedID(t, owner.staged("signer", "add", gun, name, "--key", pub)), "--yes")
}

// newSigner makes a developer's trust directory with a pinned root and a
// delegation key, and writes the key's public part to a file.
func newSigner(t *testing.T, srv, gun, rootFile string) (*cli, string, string) {
	t.Helper()
	c := &cli{t: t, server: srv, trustDir: t.TempDir()}
	c.ok("trust", "pin", gun, "--root", rootFile)
	id := strings.Fields(c.ok("key", "generate", "--role", "targets/delegate"))[0]
	pub := filepath.Join(t.TempDir(), "key.pub")
	if err := os.WriteFile(pub, []byte(c.ok("key", "public", id)), 0o600); err != nil {
		t.Fatal(err)
	}
	return c, id, pub
}

// TestSignerAddEndToEnd: the owner adds a signer by public key; the signer
// signs from their own trust directory through the running server; an
// engine resolves it; removing the signer revokes them.
func TestSignerAddEndToEnd(t *testing.T) {
	t.Parallel()
	srv := newServer(t)
	gun := "registry.example.com/team/app"
	owner := &cli{t: t, server: srv, trustDir: t.TempDir()}
	owner.ok("init", gun)
	rootFile := filepath.Join(t.TempDir(), "root.json")
	if err := os.WriteFile(rootFile, []byte(owner.ok("trust", "show", gun)), 0o600); err != nil {
		t.Fatal(err)
	}
	alice, aliceID, alicePub := newSigner(t, srv, gun, rootFile)
	// Born published: the new roles need alice's signature, so the change
	// waits for her approval.
	out := owner.staged("signer", "add", gun, "alice", "--key", alicePub)
	if !strings.Contains(out, "waiting for approval: 1 more signature(s) by a key holder of targets/alice, 1 more signature(s) by a key holder of targets/releases") {
		t.Fatalf("signer add:\n%s", out)
	}
	alice.ok("approve", gun, stagedID(t, out), "--yes")
	if out := owner.ok("signer", "list", gun); !strings.Contains(out, "targets/releases") || !strings.Contains(out, "targets/alice") || !strings.Contains(out, aliceID[:12]) {
		t.Fatalf("signer list:\n%s", out)
	}

	out = alice.ok("sign", gun+":1.0", "--digest", digest1, "--size", "10")
	if !strings.Contains(out, "published as targets/releases") {
		t.Fatalf("alice's sign:\n%s", out)
	}
	engine := &cli{t: t, server: srv, trustDir: t.TempDir()}
	engine.ok("trust", "pin", gun, "--root", rootFile)
	if out := engine.ok("resolve", gun+":1.0"); !strings.Contains(out, digest1) {
		t.Fatalf("resolve: %s", out)
	}

	// Several tags in one publish from a file.
	list := filepath.Join(t.TempDir(), "tags")
	if err := os.WriteFile(list, []byte("# CI build 42\n"+gun+":a "+digest1+" 10\n\n"+gun+":b "+digest2+" 20\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	alice.ok("sign", "--from", list)
	if out := engine.ok("resolve", gun+":b"); !strings.Contains(out, digest2) {
		t.Fatalf("resolve b: %s", out)
	}
	if code, _, errOut := alice.run("sign", "--from", list, gun+":c", "--digest", "nonsense", "--size", "1"); code != exitUsage {
		t.Fatalf("bad digest: exit %d %s", code, errOut)
	}

	// Removing the only signer drops her tags: listed, and refused
	// without confirmation; nothing changes.
	code, _, errOut := owner.run("signer", "remove", gun, "alice")
	if code != exitUsage || !strings.Contains(errOut, "3 tag(s) stop resolving") || !strings.Contains(errOut, gun+":1.0") || !strings.Contains(errOut, "--yes") {
		t.Fatalf("unconfirmed signer remove: exit %d: %s", code, errOut)
	}
	if out := engine.ok("resolve", gun+":1.0"); !strings.Contains(out, digest1) {
		t.Fatalf("an unconfirmed remove changed something: %s", out)
	}
	if out := owner.ok("signer", "remove", gun, "alice", "--yes"); !strings.Contains(out, "no longer resolve: 1.0 a b") {
		t.Fatalf("signer remove --yes:\n%s", out)
	}
	if code, _, errOut := alice.run("sign", gun+":2.0", "--digest", digest1, "--size", "10"); code == exitOK || !strings.Contains(errOut, "no signing key") {
		t.Fatalf("revoked signer signs: exit %d %s", code, errOut)
	}
	if code, _, _ := engine.run("resolve", gun+":1.0"); code != exitNotSigned {
		t.Fatalf("a revoked signer's tag resolves: exit %d", code)
	}
}

// TestDelegationThresholdTwoApprove: a 2-of-2 delegation: the first signer
// stages, the second reviews and approves from another trust directory.
func TestDelegationThresholdTwoApprove(t *testing.T) {
	t.Parallel()
	srv := newServer(t)
	gun := "registry.example.com/team/app"
	owner := &cli{t: t, server: srv, trustDir: t.TempDir()}
	owner.ok("init", gun)
	rootFile := filepath.Join(t.TempDir(), "root.json")
	if err := os.WriteFile(rootFile, []byte(owner.ok("trust", "show", gun)), 0o600); err != nil {
		t.Fatal(err)
	}
	alice, _, alicePub := newSigner(t, srv, gun, rootFile)
	bob, _, bobPub := newSigner(t, srv, gun, rootFile)
	if code, _, errOut := owner.run("delegation", "add", gun, "targets/prod", "--key", alicePub, "--key", bobPub, "--threshold", "3"); code == exitOK || !strings.Contains(errOut, "threshold") {
		t.Fatalf("threshold above the keys: exit %d %s", code, errOut)
	}
	id := stagedID(t, owner.staged("delegation", "add", gun, "targets/prod", "--key", alicePub, "--key", bobPub, "--threshold", "2", "--paths", "prod-*"))
	alice.staged("approve", gun, id, "--yes")
	bob.ok("approve", gun, id, "--yes")
	if out := owner.ok("delegation", "list", gun); !strings.Contains(out, "targets/prod") || !strings.Contains(out, "prod-*") {
		t.Fatalf("delegation list:\n%s", out)
	}
	out := alice.staged("sign", gun+":prod-1", "--digest", digest1, "--size", "10")
	if !strings.Contains(out, "staged as change") || !strings.Contains(out, "waiting for approval: 1 more signature(s) by a key holder of targets/prod") {
		t.Fatalf("first of two signatures:\n%s", out)
	}
	id = strings.Fields(strings.SplitAfter(out, "staged as change ")[1])[0]
	id = strings.TrimSuffix(id, ":")
	if out := bob.ok("staged", "list", gun); !strings.Contains(out, id) || !strings.Contains(out, "1/2") {
		t.Fatalf("staged list:\n%s", out)
	}
	engine := &cli{t: t, server: srv, trustDir: t.TempDir()}
	engine.ok("trust", "pin", gun, "--root", rootFile)
	if code, _, _ := engine.run("resolve", gun+":prod-1"); code != exitNotSigned {
		t.Fatalf("a staged tag resolves: exit %d", code)
	}
	if out := engine.ok("status", gun); !strings.Contains(out, "1 staged change(s) wait") {
		t.Fatalf("status:\n%s", out)
	}
	if code, _, e := bob.run("approve", gun, id); code != exitUsage || !strings.Contains(e, "--yes") {
		t.Fatalf("unconfirmed approve: exit %d: %s", code, e)
	}
	// alice signed it already: approving again changes nothing, and says so.
	if out := alice.staged("approve", gun, id, "--yes"); !strings.Contains(out, "already signed by this trust directory") {
		t.Fatalf("approve by the first signer:\n%s", out)
	}
	out = bob.ok("approve", gun, id, "--yes")
	if !strings.Contains(out, "published snapshot v3, targets/prod v2, timestamp v3") {
		t.Fatalf("approve does not print the versions readably:\n%s", out)
	}
	if !strings.Contains(out, "+ targets/prod prod-1 → "+digest1) || !strings.Contains(out, "published") {
		t.Fatalf("approve:\n%s", out)
	}
	if out := engine.ok("resolve", gun+":prod-1"); !strings.Contains(out, digest1) {
		t.Fatalf("resolve: %s", out)
	}
	if out := engine.ok("status", gun); !strings.Contains(out, "targets/prod") || strings.Contains(out, "staged change") {
		t.Fatalf("status after approval:\n%s", out)
	}

	// Two changes staged on the same version; once one is published the
	// other is stale, and staged list says so.
	stagedID := func(out string) string {
		return strings.TrimSuffix(strings.Fields(strings.SplitAfter(out, "staged as change ")[1])[0], ":")
	}
	id2 := stagedID(alice.staged("sign", gun+":prod-2", "--digest", digest1, "--size", "10"))
	id3 := stagedID(alice.staged("sign", gun+":prod-3", "--digest", digest1, "--size", "10"))
	if out := bob.ok("staged", "list", gun); strings.Contains(out, "STALE") {
		t.Fatalf("fresh changes marked stale:\n%s", out)
	}
	bob.ok("approve", gun, id3, "--yes")
	out = bob.ok("staged", "list", gun)
	if !strings.Contains(out, id2) || !strings.Contains(out, "STALE") || strings.Contains(out, id3) {
		t.Fatalf("staged list after one of two was published:\n%s", out)
	}
	if out := bob.ok("-o", "json", "staged", "list", gun); !strings.Contains(out, `"stale": true`) {
		t.Fatalf("staged list json:\n%s", out)
	}
}
