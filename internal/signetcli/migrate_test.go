package signetcli

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/pem"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/signetdev/signet/notary"
	"github.com/signetdev/signet/notary/notarytest"
)

// The fixtures were written by a real Notary v0.7.0 (see its README).
const fixtures = "../../notary/testdata"

// at is inside every fixture's validity; their timestamps expire on
// 2026-12-06.
const at = "--verify-at=2026-12-01T20:00:00Z"

var notaryEnv = map[string]string{
	"NOTARY_TARGETS_PASSPHRASE": "fixture-targets-passphrase",
	"NOTARY_ROOT_PASSPHRASE":    "fixture-root-passphrase",
}

// runEnv runs signet in-process like cli.run, with extra environment.
func (c *cli) runEnv(extra map[string]string, args ...string) (code int, stdout, stderr string) {
	c.t.Helper()
	var out, errb bytes.Buffer
	env := map[string]string{
		"SIGNET_SERVER": c.server, "SIGNET_TRUST_DIR": c.trustDir,
		"SIGNET_ROOT_PASSPHRASE": "root pw", "SIGNET_TARGETS_PASSPHRASE": "targets pw", "SIGNET_DELEGATION_PASSPHRASE": "delegation pw",
	}
	for k, v := range extra {
		env[k] = v
	}
	a := &app{stdin: strings.NewReader(""), stdout: &out, stderr: &errb, getenv: func(k string) string { return env[k] }, scryptCost: 1 << 10}
	root := a.command()
	root.SetArgs(args)
	root.SetOut(&out)
	root.SetErr(&errb)
	code = exitOK
	if err := root.ExecuteContext(context.Background()); err != nil {
		code = exitCode(err)
		errb.WriteString(err.Error())
	}
	return code, out.String(), errb.String()
}

// pinnedEngine returns an engine that pinned dev's new root of gun.
func pinnedEngine(t *testing.T, dev *cli, gun string) *cli {
	t.Helper()
	code, root, e := dev.run("trust", "show", gun)
	if code != 0 {
		t.Fatal(e)
	}
	f := filepath.Join(t.TempDir(), "root.json")
	if err := os.WriteFile(f, []byte(root), 0o600); err != nil {
		t.Fatal(err)
	}
	engine := &cli{t: t, server: dev.server, trustDir: t.TempDir()}
	if code, _, e := engine.run("trust", "pin", gun, "--root", f); code != 0 {
		t.Fatal(e)
	}
	return engine
}

func resolves(t *testing.T, engine *cli, ref, digest string) {
	t.Helper()
	code, out, e := engine.run("resolve", ref)
	gun, _, _ := strings.Cut(ref, ":")
	if code != 0 || strings.TrimSpace(out) != gun+"@"+digest {
		t.Fatalf("resolve %s: %d %q %s", ref, code, out, e)
	}
}

// TestMigrateNotaryTrustDir: `signet migrate notary --from-dir
// ~/.docker/trust --all --init` moves registry.example.com/acme/old, with
// its targets key, and a re-run changes nothing.
func TestMigrateNotaryTrustDir(t *testing.T) {
	t.Parallel()
	dev := &cli{t: t, server: newServer(t), trustDir: t.TempDir()}
	td := fixtures + "/docker-trust-dir"
	gun := "registry.example.com/acme/old"
	code, out, e := dev.runEnv(notaryEnv, "migrate", "notary", "--from-dir", td, "--all", "--init", at)
	if code != 0 || !strings.Contains(out, "v1") || strings.Count(out, "migrated") != 2 || !strings.Contains(out, "signet trust pin") || !strings.Contains(out, "key imported") {
		t.Fatalf("exit %d\n%s\n%s", code, out, e)
	}
	engine := pinnedEngine(t, dev, gun)
	resolves(t, engine, gun+":v1", "sha256:b2c1755dfff615b906d80a3120cf6316e3beaf721bc4a75d27d87daf7cf3561e")
	resolves(t, engine, gun+":v2", "sha256:1143b9b4e11155615d3b442e65cef2e71e87cb13d0f59afc06bd5ddc3c0f340c")
	code, out, e = dev.runEnv(notaryEnv, "-o", "json", "migrate", "notary", gun, "--from-dir", td, at)
	var reps []struct {
		Publishes int
		Rows      []struct{ Outcome string }
	}
	if code != 0 || json.Unmarshal([]byte(out), &reps) != nil || len(reps) != 1 || reps[0].Publishes != 0 || reps[0].Rows[0].Outcome != "already there" {
		t.Fatalf("re-run: exit %d\n%s\n%s", code, out, e)
	}
}

// TestMigrateNotaryServer reads a notary-server's read API behind a
// registry token challenge (credentials from SIGNET_REGISTRY_AUTH): feat's root
// chain v1 → v4 from a given root.json, flattened; and app trusted on
// first use, with a warning.
func TestMigrateNotaryServer(t *testing.T) {
	t.Parallel()
	ns := &notarytest.Server{Dir: notary.ServerDir{Dir: fixtures}, User: "ci", Password: "s3cret"}
	// https, with its CA and its host as the registry's token service.
	hs := httptest.NewTLSServer(ns)
	t.Cleanup(hs.Close)
	ns.URL = hs.URL
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: hs.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	dev := &cli{t: t, server: newServer(t), trustDir: t.TempDir()}
	auth := map[string]string{"SIGNET_REGISTRY_AUTH": "ci:s3cret", "SIGNET_TLS_CA": ca, "SIGNET_REGISTRY_AUTH_HOSTS": hs.Listener.Addr().String()}
	feat := "example.com/demo/feat"
	root1 := fixtures + "/example.com/demo/feat/root.1.json"
	code, out, e := dev.runEnv(auth, "migrate", "notary", feat, "--from", hs.URL, "--root", root1, "--flatten", "--init", at)
	if code != 0 || !strings.Contains(out, "targets/releases") || !strings.Contains(out, "migrated") {
		t.Fatalf("exit %d\n%s\n%s", code, out, e)
	}
	resolves(t, pinnedEngine(t, dev, feat), feat+":v2", "sha256:64ab6e53abd7583364b6c36a1b2c77cc3f29956d89fd9c626f10008d90539c40")
	app := "example.com/demo/app"
	code, out, e = dev.runEnv(auth, "migrate", "notary", app, "--from", hs.URL, "--trust-on-first-use", "--init", at)
	if code != 0 || !strings.Contains(e, "WARNING: TRUST ON FIRST USE") || strings.Count(out, "migrated") != 23 {
		t.Fatalf("exit %d\n%s\n%s", code, out, e)
	}
	// --notary-dir: the roots and keys of a trust directory, the metadata
	// from the server.
	old := "registry.example.com/acme/old"
	code, out, e = dev.runEnv(map[string]string{"SIGNET_REGISTRY_AUTH": "ci:s3cret", "SIGNET_TLS_CA": ca, "SIGNET_REGISTRY_AUTH_HOSTS": hs.Listener.Addr().String(), "NOTARY_TARGETS_PASSPHRASE": "fixture-targets-passphrase"},
		"migrate", "notary", old, "--from", hs.URL, "--notary-dir", fixtures+"/docker-trust-dir", "--init", at)
	if code != 0 || strings.Count(out, "migrated") != 2 || !strings.Contains(out, "key imported") {
		t.Fatalf("--notary-dir: exit %d\n%s\n%s", code, out, e)
	}
	// Without credentials, the server's refusal is the reason.
	code, out, _ = dev.runEnv(map[string]string{"SIGNET_TLS_CA": ca}, "migrate", "notary", app, "--from", hs.URL, "--trust-on-first-use", "--dry-run", at)
	if code != exitError || !strings.Contains(out, "log in to "+hs.URL) || !strings.Contains(out, "bad credentials") {
		t.Fatalf("without credentials: exit %d\n%s", code, out)
	}
}

// TestMigrateNotaryRefused: a tampered digest is refused with the reason,
// nothing is published; expired data needs --allow-expired; --dry-run
// publishes nothing; usage errors exit 2.
func TestMigrateNotaryRefused(t *testing.T) {
	t.Parallel()
	srv := newServer(t)
	dev := &cli{t: t, server: srv, trustDir: t.TempDir()}
	gun := "registry.example.com/acme/old"
	dir := t.TempDir()
	for _, f := range []string{"root.1.json", "snapshot.2.json", "targets.2.json", "timestamp.1.json"} {
		b, err := os.ReadFile(filepath.Join(fixtures, gun, f))
		if err != nil {
			t.Fatal(err)
		}
		if f == "targets.2.json" {
			b = bytes.Replace(b, []byte("ssF1Xf/2FbkG2AoxIM9jFuO+r3IbxKddJ9h9r3zzVh4="), []byte("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="), 1)
		}
		if err := os.MkdirAll(filepath.Join(dir, gun), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, gun, f), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	root := filepath.Join(fixtures, gun, "root.1.json")
	code, out, _ := dev.run("migrate", "notary", gun, "--from-dir", dir, "--root", root, "--init", at)
	if code != exitError || !strings.Contains(out, "REFUSED") || !strings.Contains(out, "targets: metadata does not match the hashes that vouch for it") {
		t.Fatalf("tampered: exit %d\n%s", code, out)
	}
	if code, _, _ := dev.run("trust", "show", gun); code == 0 {
		t.Fatal("a refused migration created the Signet repository")
	}
	good := filepath.Join(fixtures)
	code, out, _ = dev.run("migrate", "notary", gun, "--from-dir", good, "--root", root, "--init", "--verify-at=2026-12-16T00:00:00Z")
	if code != exitError || !strings.Contains(out, "timestamp v1 expired on 2026-12-15T18:51:47Z") || !strings.Contains(out, "--allow-expired") {
		t.Fatalf("expired: exit %d\n%s", code, out)
	}
	code, out, e := dev.run("migrate", "notary", gun, "--from-dir", good, "--root", root, "--init", "--dry-run", at)
	if code != 0 || strings.Count(out, "would migrate") != 2 || !strings.Contains(out, "dry run") {
		t.Fatalf("dry run: exit %d\n%s\n%s", code, out, e)
	}
	if code, _, _ := dev.run("trust", "show", gun); code == 0 {
		t.Fatal("a dry run created the Signet repository")
	}
	code, _, e = dev.run("migrate", "notary", gun, "--from-dir", good, "--root", root, "--init", "--allow-expired", "--verify-at=2026-12-16T00:00:00Z")
	if code != 0 {
		t.Fatalf("--allow-expired: %s", e)
	}
	for _, args := range [][]string{{"migrate", "notary", gun}, {"migrate", "notary", "--from-dir", good}, {"migrate", "notary", "Not A GUN", "--from-dir", good}} {
		if code, _, _ := dev.run(args...); code != exitUsage {
			t.Errorf("%v: exit %d", args, code)
		}
	}
	if code, out, _ := dev.run("migrate", "notary", "example.com/demo/app", "--from-dir", good); code != exitError || !strings.Contains(out, "no trust anchor for example.com/demo/app") || !strings.Contains(out, "--trust-on-first-use") {
		t.Errorf("no anchor: %d %s", code, out)
	}
}

// TestMigrateNotaryBinary runs the real signet binary (this test binary as
// the CLI) on the trust directory, in a dry run: exit status and report.
func TestMigrateNotaryBinary(t *testing.T) {
	t.Parallel()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(self, "migrate", "notary", "--all", "--from-dir", fixtures+"/docker-trust-dir", "--init", "--dry-run", at)
	cmd.Env = append(os.Environ(), "SIGNET_TEST_AS_CLI=1", "SIGNET_SERVER="+newServer(t), "SIGNET_TRUST_DIR="+t.TempDir(), "NOTARY_TARGETS_PASSPHRASE=fixture-targets-passphrase")
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "registry.example.com/acme/old (dry run: nothing changed)") || !strings.Contains(string(out), "key would import") {
		t.Fatalf("%v\n%s", err, out)
	}
}

// TestImportNotaryRootKey: a Notary root key file imports with `signet key
// import` (SIGNET_ROOT_PASSPHRASE set to its Notary passphrase) and signs:
// the README's way to make it one of the new Signet root's keys.
func TestImportNotaryRootKey(t *testing.T) {
	t.Parallel()
	dev := &cli{t: t, server: newServer(t), trustDir: t.TempDir()}
	key := fixtures + "/docker-trust-dir/private/0b6ae1607ae4a4a700c0e6126df493012eb8d8bc1361238d98d4b3b2b8136554.key"
	code, out, e := dev.runEnv(map[string]string{"SIGNET_ROOT_PASSPHRASE": "fixture-root-passphrase"}, "key", "import", key, "--role", "root")
	if code != 0 {
		t.Fatalf("%d %s %s", code, out, e)
	}
	code, out, e = dev.run("key", "list")
	fields := strings.Fields(out)
	if code != 0 || len(fields) != 3 || fields[1] != "root" { // KEYID ROLE GUNS
		t.Fatalf("%q %s", out, e)
	}
	code, pub, e := dev.run("key", "public", fields[0])
	if code != 0 || !strings.Contains(pub, `"ecdsa-sha2-nistp256"`) {
		t.Fatalf("%q %s", pub, e)
	}
}

// TestMigrateNotaryIntoCeremonyRoot follows the README: the Notary targets
// key is imported and named by a ceremony's root, which is published and
// pinned; the migration (no --init) then signs with that same key.
func TestMigrateNotaryIntoCeremonyRoot(t *testing.T) {
	t.Parallel()
	dev := &cli{t: t, server: newServer(t), trustDir: t.TempDir()}
	gun := "registry.example.com/acme/old"
	td := fixtures + "/docker-trust-dir"
	env := map[string]string{"SIGNET_TARGETS_PASSPHRASE": "fixture-targets-passphrase", "NOTARY_TARGETS_PASSPHRASE": "fixture-targets-passphrase"}
	must := func(args ...string) string {
		t.Helper()
		code, out, e := dev.runEnv(env, args...)
		if code != 0 {
			t.Fatalf("%v: exit %d: %s", args, code, e)
		}
		return out
	}
	work := t.TempDir()
	f := func(n string) string { return filepath.Join(work, n) }
	must("key", "import", td+"/private/8151ac5c8bcda4fa684e77e17b5ea9372d19ecf8618734e90ee6593abe37a38c.key", "--role", "targets")
	targetsID := strings.Fields(must("key", "list"))[0]
	if err := os.WriteFile(f("notary-targets.pub"), []byte(must("key", "public", targetsID)), 0o600); err != nil {
		t.Fatal(err)
	}
	must("key", "fetch", gun, "timestamp", "--out", f("ts.json"))
	must("key", "fetch", gun, "snapshot", "--out", f("snap.json"))
	must("root", "init", gun, "--keys", "1", "--threshold", "1", "--timestamp-key", f("ts.json"), "--snapshot-key", f("snap.json"), "--targets-key", f("notary-targets.pub"), "--out", f("root.json"))
	var rootKey string
	for _, line := range strings.Split(must("key", "list"), "\n") { // KEYID ROLE GUNS
		if keys := strings.Fields(line); len(keys) > 1 && keys[1] == "root" {
			rootKey = filepath.Join(dev.trustDir, "private", keys[0]+".key")
		}
	}
	must("root", "sign", f("root.json"), "--key", rootKey)
	must("root", "publish", gun, f("root.json"))
	out := must("migrate", "notary", gun, "--from-dir", td, at)
	if strings.Count(out, "migrated") != 2 || strings.Contains(out, "key imported") || strings.Contains(out, "created the Signet repository") {
		t.Fatalf("%s", out)
	}
	engine := &cli{t: t, server: dev.server, trustDir: t.TempDir()}
	if code, _, e := engine.run("trust", "pin", gun, "--root", f("root.json")); code != 0 {
		t.Fatal(e)
	}
	resolves(t, engine, gun+":v2", "sha256:1143b9b4e11155615d3b442e65cef2e71e87cb13d0f59afc06bd5ddc3c0f340c")
}

// TestMigrateNotaryAllSkipsTheBadOne: with --all, a repository that does
// not verify is reported and skipped, the others are migrated, and the
// exit status says not everything was.
func TestMigrateNotaryAllSkipsTheBadOne(t *testing.T) {
	t.Parallel()
	td := t.TempDir()
	copyTree(t, fixtures+"/docker-trust-dir", td)
	bad := "registry.example.com/acme/bad"
	r := notarytest.NewRepo(t, bad, time.Date(2026, 12, 6, 0, 0, 0, 0, time.UTC))
	r.Tags["v1"] = notarytest.Tag("bad v1")
	r.Build(t, nil)
	r.WriteTrustDir(t, td, nil)
	// The cached targets no longer match the snapshot that vouches for it.
	p := filepath.Join(td, "tuf", bad, "metadata", "targets.json")
	b, _ := os.ReadFile(p)
	if err := os.WriteFile(p, bytes.Replace(b, []byte(`"length":6`), []byte(`"length":7`), 1), 0o600); err != nil {
		t.Fatal(err)
	}
	dev := &cli{t: t, server: newServer(t), trustDir: t.TempDir()}
	code, out, e := dev.runEnv(notaryEnv, "migrate", "notary", "--all", "--from-dir", td, "--init", at)
	if code != exitError || !strings.Contains(e, "1 of 2 repositories were not migrated") || !strings.Contains(out, "REFUSED: notary: "+bad+": targets: metadata does not match") || strings.Count(out, " migrated") != 2 {
		t.Fatalf("exit %d\n%s\n%s", code, out, e)
	}
	if code, _, _ := dev.run("trust", "show", bad); code == 0 {
		t.Fatal("the refused repository was created on Signet")
	}
	resolves(t, pinnedEngine(t, dev, "registry.example.com/acme/old"), "registry.example.com/acme/old:v1", "sha256:b2c1755dfff615b906d80a3120cf6316e3beaf721bc4a75d27d87daf7cf3561e")
}

func copyTree(t *testing.T, from, to string) {
	t.Helper()
	err := filepath.Walk(from, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(from, p)
		if fi.IsDir() {
			return os.MkdirAll(filepath.Join(to, rel), 0o700)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(to, rel), b, 0o600)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestMigrateNotaryRootCertificate: --root may be the root certificate
// engines trusted (as Notary's trust pinning did); a certificate of another
// repository's root is refused.
func TestMigrateNotaryRootCertificate(t *testing.T) {
	t.Parallel()
	certOf := func(gun string) string {
		b, err := os.ReadFile(filepath.Join(fixtures, gun, "root.1.json"))
		if err != nil {
			t.Fatal(err)
		}
		r, _, err := notary.ParseRoot(b)
		if err != nil {
			t.Fatal(err)
		}
		f := filepath.Join(t.TempDir(), "root.crt")
		if err := os.WriteFile(f, r.Keys[r.Roles["root"].KeyIDs[0]].Value.Public, 0o600); err != nil {
			t.Fatal(err)
		}
		return f
	}
	dev := &cli{t: t, server: newServer(t), trustDir: t.TempDir()}
	feat := "example.com/demo/feat"
	code, out, e := dev.run("migrate", "notary", feat, "--from-dir", fixtures, "--root", certOf(feat), "--flatten", "--init", at)
	if code != 0 || !strings.Contains(out, "migrated") {
		t.Fatalf("exit %d\n%s\n%s", code, out, e)
	}
	code, out, _ = dev.run("migrate", "notary", "example.com/demo/app", "--from-dir", fixtures, "--root", certOf(feat), "--init", at)
	if code != exitError || !strings.Contains(out, "names none of the given root certificates") {
		t.Fatalf("another repository's certificate: exit %d\n%s", code, out)
	}
}
