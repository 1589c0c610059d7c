package signetcli

import (
	"bytes"
	"context"
	"fmt"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/signetdev/signet/server"
	"github.com/signetdev/signet/server/store/memstore"
	"github.com/signetdev/signet/signer/keystore"
)

type cli struct {
	t        *testing.T
	server   string
	trustDir string
	now      func() time.Time // nil: the real clock
	env      map[string]string
}

func (c *cli) run(args ...string) (code int, stdout, stderr string) {
	c.t.Helper()
	var out, errb bytes.Buffer
	env := map[string]string{
		"SIGNET_SERVER": c.server, "SIGNET_TRUST_DIR": c.trustDir,
		"SIGNET_ROOT_PASSPHRASE": "root pw", "SIGNET_TARGETS_PASSPHRASE": "targets pw", "SIGNET_DELEGATION_PASSPHRASE": "delegation pw",
	}
	for k, v := range c.env {
		env[k] = v
	}
	a := &app{stdin: strings.NewReader(""), stdout: &out, stderr: &errb, getenv: func(k string) string { return env[k] }, scryptCost: 1 << 10, now: c.now}
	code = a.execute(context.Background(), args)
	return code, out.String(), errb.String()
}

func newServer(t *testing.T) string {
	srv := server.New(memstore.New(), keystore.NewMemory(), server.WithSweepInterval(0))
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(hs.Close)
	return hs.URL
}

const digest1 = "sha256:5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03"

func TestEndToEnd(t *testing.T) {
	t.Parallel()
	srv := newServer(t)
	dev := &cli{t: t, server: srv, trustDir: t.TempDir()}
	engine := &cli{t: t, server: srv, trustDir: t.TempDir()}
	gun := "registry.example.com/team/app"
	mustOK := func(c *cli, args ...string) string {
		t.Helper()
		code, out, errOut := c.run(args...)
		if code != exitOK {
			t.Fatalf("%v: exit %d: %s", args, code, errOut)
		}
		return out
	}
	mustOK(dev, "init", gun)
	mustOK(dev, "sign", gun+":1.0", "--digest", digest1, "--size", "1234")

	// Before pinning, the engine refuses and says how to pin.
	if code, _, errOut := engine.run("resolve", gun+":1.0"); code != exitTrust || !strings.Contains(errOut, "signet trust pin") {
		t.Fatalf("unpinned resolve: %d %s", code, errOut)
	}
	rootFile := filepath.Join(t.TempDir(), "root.json")
	if err := os.WriteFile(rootFile, []byte(mustOK(dev, "trust", "show", gun)), 0o600); err != nil {
		t.Fatal(err)
	}
	mustOK(engine, "trust", "pin", gun, "--root", rootFile)
	if out := mustOK(engine, "resolve", gun+":1.0"); strings.TrimSpace(out) != gun+"@"+digest1 {
		t.Fatalf("resolve printed %q", out)
	}
	mustOK(engine, "verify", gun+":1.0", "--digest", digest1)
	if code, _, _ := engine.run("verify", gun+":1.0", "--digest", "sha256:"+strings.Repeat("0", 64)); code != exitNotSigned {
		t.Fatalf("verify of another digest: exit %d", code)
	}
	if out := mustOK(engine, "list", gun); !strings.Contains(out, "1.0") || !strings.Contains(out, digest1) {
		t.Fatalf("list: %s", out)
	}
	if out := mustOK(engine, "-o", "json", "resolve", gun+":1.0"); !strings.Contains(out, `"digest": "`+digest1) {
		t.Fatalf("json: %s", out)
	}
	mustOK(dev, "unsign", gun+":1.0")
	if code, _, errOut := engine.run("resolve", gun+":1.0"); code != exitNotSigned || !strings.Contains(errOut, "is not signed") {
		t.Fatalf("after unsign: %d %s", code, errOut)
	}
	if code, _, _ := engine.run("resolve"); code != exitUsage {
		t.Fatalf("no argument: exit %d", code)
	}
	if out := mustOK(dev, "key", "list"); strings.Count(out, "\n") != 2 {
		t.Fatalf("keys: %q", out)
	}
}

// TestSignFromRegistry reads the digest and size of a pushed image from an
// in-process registry.
func TestSignFromRegistry(t *testing.T) {
	t.Parallel()
	reg := httptest.NewServer(registry.New())
	defer reg.Close()
	u, _ := url.Parse(reg.URL)
	ref, err := name.ParseReference(u.Host + "/team/app:2.0")
	if err != nil {
		t.Fatal(err)
	}
	img, err := random.Image(512, 1)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img); err != nil {
		t.Fatal(err)
	}
	want, _ := img.Digest()
	srv := newServer(t)
	dev := &cli{t: t, server: srv, trustDir: t.TempDir()}
	gun := u.Host + "/team/app"
	if code, _, errOut := dev.run("init", gun); code != 0 {
		t.Fatal(errOut)
	}
	if code, _, errOut := dev.run("sign", ref.String()); code != 0 {
		t.Fatal(errOut)
	}
	if code, out, errOut := dev.run("resolve", ref.String()); code != 0 || strings.TrimSpace(out) != gun+"@"+want.String() {
		t.Fatalf("resolve: %d %q %s", code, out, errOut)
	}
}

// TestMain lets the test binary stand in for `signet` in a subprocess.
func TestMain(m *testing.M) {
	if os.Getenv("SIGNET_TEST_AS_CLI") == "1" {
		os.Exit(Run(context.Background(), os.Args[1:], os.Stdin, os.Stdout, os.Stderr, os.Getenv))
	}
	os.Exit(m.Run())
}

// TestTwoProcessesShareACache runs `signet resolve` in two processes at
// once, again and again, on one trust directory while the repository
// changes: the lock file keeps the cache consistent.
func TestTwoProcessesShareACache(t *testing.T) {
	t.Parallel()
	srv := newServer(t)
	dev := &cli{t: t, server: srv, trustDir: t.TempDir()}
	gun := "registry.example.com/team/shared"
	if code, _, e := dev.run("init", gun); code != 0 {
		t.Fatal(e)
	}
	if code, _, e := dev.run("sign", gun+":1.0", "--digest", digest1, "--size", "1"); code != 0 {
		t.Fatal(e)
	}
	_, root, _ := dev.run("trust", "show", gun)
	shared := t.TempDir()
	rootFile := filepath.Join(t.TempDir(), "root.json")
	if err := os.WriteFile(rootFile, []byte(root), 0o600); err != nil {
		t.Fatal(err)
	}
	engine := &cli{t: t, server: srv, trustDir: shared}
	if code, _, e := engine.run("trust", "pin", gun, "--root", rootFile); code != 0 {
		t.Fatal(e)
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	errs := make(chan error, 2)
	for range 2 {
		go func() {
			for range 6 {
				cmd := exec.Command(self, "resolve", gun+":1.0")
				cmd.Env = append(os.Environ(), "SIGNET_TEST_AS_CLI=1", "SIGNET_SERVER="+srv, "SIGNET_TRUST_DIR="+shared)
				out, err := cmd.CombinedOutput()
				if err != nil || strings.TrimSpace(string(out)) != gun+"@"+digest1 {
					errs <- fmt.Errorf("resolve: %v: %s", err, out)
					return
				}
			}
			errs <- nil
		}()
	}
	for i := range 5 {
		if code, _, e := dev.run("sign", fmt.Sprintf("%s:v%d", gun, i), "--digest", digest1, "--size", "1"); code != 0 {
			t.Error(e)
		}
	}
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}

// TestCeremonyWalkthrough follows the README's ceremony (N=3, K=2) through
// the CLI: fetch the server keys online, make and sign the root offline,
// carry the targets key over, publish, sign, and resolve from a pinned root.
func TestCeremonyWalkthrough(t *testing.T) {
	t.Parallel()
	srv := newServer(t)
	gun := "registry.example.com/team/ceremony"
	online := &cli{t: t, server: srv, trustDir: t.TempDir()}
	offline := &cli{t: t, server: "http://127.0.0.1:1", trustDir: t.TempDir()} // no network
	work := t.TempDir()
	f := func(name string) string { return filepath.Join(work, name) }
	must := func(c *cli, args ...string) string {
		t.Helper()
		code, out, e := c.run(args...)
		if code != 0 {
			t.Fatalf("%v: exit %d: %s", args, code, e)
		}
		return out
	}
	must(online, "key", "fetch", gun, "timestamp", "--out", f("timestamp.key.json"))
	must(online, "key", "fetch", gun, "snapshot", "--out", f("snapshot.key.json"))
	// Without the server's snapshot key the root could never be published.
	if code, _, e := offline.run("root", "init", gun, "--keys", "3", "--threshold", "2", "--timestamp-key", f("timestamp.key.json"), "--out", f("root.json")); code != exitUsage || !strings.Contains(e, "--snapshot-key") {
		t.Fatalf("root init without --snapshot-key: exit %d: %s", code, e)
	}
	if _, err := os.Stat(f("root.json")); err == nil {
		t.Fatal("a refused root init wrote root.json")
	}
	must(offline, "root", "init", gun, "--keys", "3", "--threshold", "2", "--timestamp-key", f("timestamp.key.json"), "--snapshot-key", f("snapshot.key.json"), "--out", f("root.json"))
	var rootKeys []string
	var targetsKey string
	for _, line := range strings.Split(must(offline, "key", "list"), "\n") {
		keys := strings.Fields(line)
		if len(keys) < 2 {
			continue
		}
		switch keys[1] {
		case "root":
			rootKeys = append(rootKeys, filepath.Join(offline.trustDir, "private", keys[0]+".key"))
		case "targets":
			targetsKey = keys[0]
		}
	}
	if len(rootKeys) != 3 || targetsKey == "" {
		t.Fatalf("keys: %v %q", rootKeys, targetsKey)
	}
	// A key that root.json does not list (here the targets key) adds a
	// useless signature: refused, and root.json is left as it was.
	before, _ := os.ReadFile(f("root.json"))
	targetsFile := filepath.Join(offline.trustDir, "private", targetsKey+".key")
	if code, _, e := offline.run("root", "sign", f("root.json"), "--key", targetsFile); code != exitUsage || !strings.Contains(e, "is not a root key of this root.json") {
		t.Fatalf("root sign with the targets key: exit %d: %s", code, e)
	}
	if after, _ := os.ReadFile(f("root.json")); !bytes.Equal(before, after) {
		t.Fatal("a refused root sign changed root.json")
	}
	if out := must(offline, "root", "sign", f("root.json"), "--key", rootKeys[0]); !strings.Contains(out, "1 of 2 required root signatures") {
		t.Fatalf("root sign says: %q", out)
	}
	if code, _, _ := offline.run("root", "verify", f("root.json")); code != exitTrust {
		t.Fatalf("1 of 3 verified (exit %d)", code)
	}
	must(offline, "root", "sign", f("root.json"), "--key", rootKeys[1])
	must(offline, "root", "verify", f("root.json"))
	// Carry the targets key (still encrypted) to the online machine.
	if err := os.WriteFile(f("targets.pem"), []byte(must(offline, "key", "export", targetsKey)), 0o600); err != nil {
		t.Fatal(err)
	}
	must(online, "key", "import", f("targets.pem"), "--role", "targets")
	must(online, "root", "publish", gun, f("root.json"))
	must(online, "sign", gun+":1.0", "--digest", digest1, "--size", "1")
	engine := &cli{t: t, server: srv, trustDir: t.TempDir()}
	must(engine, "trust", "pin", gun, "--root", f("root.json"))
	if out := must(engine, "resolve", gun+":1.0"); strings.TrimSpace(out) != gun+"@"+digest1 {
		t.Fatalf("resolve: %q", out)
	}
	if out := must(online, "status", gun); !strings.Contains(out, "targets") {
		t.Fatalf("status: %s", out)
	}
}
