package signetcli

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// countingCLI is cli that counts how often each passphrase is read: once
// per key per command is the most a command may unlock (scrypt costs about
// 60 ms a key, and a prompt is a person typing).
type countingCLI struct {
	*cli
	mu    sync.Mutex
	asked map[string]int
}

func (c *countingCLI) count(args ...string) (map[string]int, string) {
	c.t.Helper()
	c.mu.Lock()
	c.asked = map[string]int{}
	c.mu.Unlock()
	env := map[string]string{
		"SIGNET_SERVER": c.server, "SIGNET_TRUST_DIR": c.trustDir,
		"SIGNET_ROOT_PASSPHRASE": "root pw", "SIGNET_TARGETS_PASSPHRASE": "targets pw", "SIGNET_DELEGATION_PASSPHRASE": "delegation pw",
	}
	getenv := func(k string) string {
		if strings.HasSuffix(k, "_PASSPHRASE") {
			c.mu.Lock()
			c.asked[k]++
			c.mu.Unlock()
		}
		return env[k]
	}
	var out, errb bytes.Buffer
	a := &app{stdin: strings.NewReader(""), stdout: &out, stderr: &errb, getenv: getenv, scryptCost: 1 << 10}
	root := a.command()
	root.SetArgs(args)
	root.SetOut(&out)
	root.SetErr(&errb)
	// A staged change ends with exit 5 (stagedError): fine here.
	if err := root.ExecuteContext(context.Background()); err != nil && !errors.As(err, new(stagedError)) {
		c.t.Fatalf("signet %v: %v: %s", args, err, errb.String())
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.asked, out.String()
}

// TestOneUnlockPerCommand: sign, unsign of several tags, delegation and
// signer edits, and approve each read a key's passphrase once.
func TestOneUnlockPerCommand(t *testing.T) {
	t.Parallel()
	srv := newServer(t)
	gun := "registry.example.com/team/app"
	owner := &countingCLI{cli: &cli{t: t, server: srv, trustDir: t.TempDir()}}
	owner.ok("init", gun)
	// once runs a command, checks that it read pass once and no other
	// passphrase, and returns its output.
	once := func(who *countingCLI, pass string, args ...string) string {
		t.Helper()
		got, out := who.count(args...)
		if got[pass] != 1 || len(got) != 1 {
			t.Errorf("signet %v read passphrases %v, want %s once", args, got, pass)
		}
		return out
	}
	list := filepath.Join(t.TempDir(), "tags")
	if err := os.WriteFile(list, []byte(gun+":a "+digest1+" 10\n"+gun+":b "+digest2+" 20\n"+gun+":c "+digest2+" 20\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	once(owner, "SIGNET_TARGETS_PASSPHRASE", "sign", "--from", list)
	once(owner, "SIGNET_TARGETS_PASSPHRASE", "unsign", gun+":a", gun+":b")

	rootFile := filepath.Join(t.TempDir(), "root.json")
	if err := os.WriteFile(rootFile, []byte(owner.ok("trust", "show", gun)), 0o600); err != nil {
		t.Fatal(err)
	}
	alice, _, alicePub := newSigner(t, srv, gun, rootFile)
	bob, _, bobPub := newSigner(t, srv, gun, rootFile)
	aliceC, bobC := &countingCLI{cli: alice}, &countingCLI{cli: bob}
	// A delegation is born staged until its keys' holders approve it.
	id := stagedID(t, once(owner, "SIGNET_TARGETS_PASSPHRASE", "delegation", "add", gun, "targets/prod", "--key", alicePub, "--key", bobPub, "--threshold", "2", "--paths", "prod-*"))
	once(aliceC, "SIGNET_DELEGATION_PASSPHRASE", "approve", gun, id, "--yes")
	once(bobC, "SIGNET_DELEGATION_PASSPHRASE", "approve", gun, id, "--yes")
	carol, _, carolPub := newSigner(t, srv, gun, rootFile)
	id = stagedID(t, once(owner, "SIGNET_TARGETS_PASSPHRASE", "signer", "add", gun, "carol", "--key", carolPub))
	once(&countingCLI{cli: carol}, "SIGNET_DELEGATION_PASSPHRASE", "approve", gun, id, "--yes")

	id = stagedID(t, once(aliceC, "SIGNET_DELEGATION_PASSPHRASE", "sign", gun+":prod-1", "--digest", digest1, "--size", "10"))
	if out := once(bobC, "SIGNET_DELEGATION_PASSPHRASE", "approve", gun, id, "--yes"); !strings.Contains(out, "published") {
		t.Fatalf("second signature:\n%s", out)
	}
}
