package signetcli

import (
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/signetdev/signet/tufrules"
)

// TestOfflineRootCommands: the ceremony's offline commands (root init,
// sign, verify, resign, rotate) and version run with settings that no
// client could be built from (here an unreadable --tls-ca): they need no
// server, TLS or token. A command that needs the client says why it
// cannot run.
func TestOfflineRootCommands(t *testing.T) {
	t.Parallel()
	work := t.TempDir()
	f := func(name string) string { return filepath.Join(work, name) }
	write := func(name string, data []byte) {
		t.Helper()
		if err := os.WriteFile(f(name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range []string{"timestamp.key.json", "snapshot.key.json"} {
		_, pub, _, err := tufrules.GenerateKey(tufrules.Ed25519)
		if err != nil {
			t.Fatal(err)
		}
		b, err := json.Marshal(pub)
		if err != nil {
			t.Fatal(err)
		}
		write(name, b)
	}
	priv, _, _, err := tufrules.GenerateKey(tufrules.ECDSAP256)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(priv.Public())
	if err != nil {
		t.Fatal(err)
	}
	write("new-root.pem", pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
	write("private.json", []byte(`{"keytype":"ed25519","scheme":"ed25519","keyval":{"public":"00","private":"11"}}`))

	c := &cli{t: t, server: "http://127.0.0.1:1", trustDir: t.TempDir(), env: map[string]string{"SIGNET_TLS_CA": f("no-such-ca.pem")}}
	must := func(args ...string) string {
		t.Helper()
		code, out, e := c.run(args...)
		if code != 0 {
			t.Fatalf("%v: exit %d: %s", args, code, e)
		}
		return out
	}
	gun := "registry.example.com/team/offline"
	must("version")
	must("root", "init", gun, "--keys", "1", "--threshold", "1", "--timestamp-key", f("timestamp.key.json"), "--snapshot-key", f("snapshot.key.json"), "--out", f("root.json"))
	keys, err := filepath.Glob(filepath.Join(c.trustDir, "private", "*.key"))
	if err != nil || len(keys) != 2 {
		t.Fatalf("key files %v: %v", keys, err)
	}
	for _, k := range keys {
		data, err := os.ReadFile(k)
		if err != nil {
			t.Fatal(err)
		}
		if b, _ := pem.Decode(data); b != nil && b.Headers["role"] == "root" {
			must("root", "sign", f("root.json"), "--key", k)
		}
	}
	must("root", "verify", f("root.json"))
	must("root", "resign", f("root.json"), "--out", f("root.v2.json"))
	must("root", "rotate", f("root.json"), "--add-key", f("new-root.pem"), "--out", f("root.rotated.json"))
	// Unsigned yet: verify reports its two root keys, and exit 4.
	if code, out, _ := c.run("root", "verify", f("root.rotated.json"), "-o", "json"); code != exitTrust || !strings.Contains(out, `"version": 2`) || strings.Count(out, `"id"`) != 2 {
		t.Fatalf("rotated root: exit %d: %s", code, out)
	}

	// Public key files are read strictly: a private key is refused.
	if code, _, e := c.run("root", "init", gun, "--keys", "1", "--threshold", "1", "--timestamp-key", f("private.json"), "--snapshot-key", f("snapshot.key.json"), "--out", f("bad.json")); code == 0 || !strings.Contains(e, "private key") {
		t.Fatalf("root init with a private key as the timestamp key: exit %d: %s", code, e)
	}
	// The settings really are unusable for the client.
	if code, _, e := c.run("trust", "list"); code == 0 || !strings.Contains(e, "--tls-ca") {
		t.Fatalf("trust list with an unreadable --tls-ca: exit %d: %s", code, e)
	}
}
