package signetcli

import (
	"encoding/pem"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/signetdev/signet/server"
	"github.com/signetdev/signet/server/store/memstore"
	"github.com/signetdev/signet/signer/keystore"
)

// TestTLSCAAndConfigFile: a server with a private CA is trusted through
// --tls-ca / SIGNET_TLS_CA / the config file (and not without it); the
// config file's settings lose to the environment and to flags; an unknown
// key in it is a usage error.
func TestTLSCAAndConfigFile(t *testing.T) {
	t.Parallel()
	hs := httptest.NewTLSServer(server.New(memstore.New(), keystore.NewMemory(), server.WithSweepInterval(0)).Handler())
	t.Cleanup(hs.Close)
	dir := t.TempDir()
	ca := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: hs.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	gun := "registry.example.com/team/tls"
	dev := &cli{t: t, server: hs.URL, trustDir: t.TempDir()}
	if code, _, e := dev.run("init", gun); code != exitError || !strings.Contains(e, "certificate") {
		t.Fatalf("init without the CA: exit %d: %s", code, e)
	}
	dev.ok("init", gun, "--tls-ca", ca)
	dev.env = map[string]string{"SIGNET_TLS_CA": ca}
	dev.ok("sign", gun+":1.0", "--digest", digest1, "--size", "1")

	conf := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(conf, []byte("tls-ca: "+ca+"\noutput: json\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	dev.env = map[string]string{"SIGNET_CONFIG": conf}
	if out := dev.ok("resolve", gun+":1.0"); !strings.Contains(out, `"digest": "`+digest1+`"`) {
		t.Fatalf("the config file's tls-ca and output: %q", out)
	}
	if out := dev.ok("resolve", gun+":1.0", "-o", "text"); strings.TrimSpace(out) != gun+"@"+digest1 {
		t.Fatalf("a flag loses to the config file: %q", out)
	}
	dev.env = map[string]string{"SIGNET_CONFIG": conf, "SIGNET_OUTPUT": "text"}
	if out := dev.ok("resolve", gun+":1.0"); strings.TrimSpace(out) != gun+"@"+digest1 {
		t.Fatalf("the environment loses to the config file: %q", out)
	}
	if err := os.WriteFile(conf, []byte("sever: https://typo\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, _, e := dev.run("trust", "list"); code != exitUsage || !strings.Contains(e, `unknown key "sever"`) {
		t.Fatalf("unknown config key: exit %d: %s", code, e)
	}
	dev.env = map[string]string{"SIGNET_CONFIG": filepath.Join(dir, "missing.yaml")}
	if code, _, _ := dev.run("trust", "list"); code != exitUsage {
		t.Fatalf("a missing config file named explicitly: exit %d", code)
	}
	// --help lists every environment variable the CLI reads.
	_, help, _ := dev.run("--help")
	for _, v := range []string{"SIGNET_SERVER", "SIGNET_TRUST_DIR", "SIGNET_TLS_CA", "SIGNET_TOKEN", "SIGNET_REGISTRY_AUTH", "SIGNET_DELEGATION_PASSPHRASE", "SIGNET_CONFIG", "SIGNET_NEW_PASSPHRASE"} {
		if !strings.Contains(help, v) {
			t.Errorf("--help does not list %s", v)
		}
	}
}
