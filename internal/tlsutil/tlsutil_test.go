package tlsutil_test

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/signetdev/signet/internal/tlsutil"
)

func serial(t *testing.T, dir string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, "signer.pem"))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := pem.Decode(data)
	c, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c.SerialNumber.String()
}

// TestReloaderFollowsRotation rewrites the certificate files and expects the
// reloader to serve the new pair.
func TestReloaderFollowsRotation(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if err := tlsutil.WriteDevCerts(tlsutil.DevCerts{Dir: dir}); err != nil {
		t.Fatal(err)
	}
	rl, err := tlsutil.NewReloader(filepath.Join(dir, "signer.pem"), filepath.Join(dir, "signer-key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	first, _ := rl.GetCertificate(nil)
	// Rotate: new files with a later modification time.
	if err := tlsutil.WriteDevCerts(tlsutil.DevCerts{Dir: dir}); err != nil {
		t.Fatal(err)
	}
	later := time.Now().Add(time.Minute)
	for _, f := range []string{"signer.pem", "signer-key.pem"} {
		os.Chtimes(filepath.Join(dir, f), later, later)
	}
	want := serial(t, dir)
	deadline := time.Now().Add(3 * time.Second)
	for {
		c, err := rl.GetCertificate(nil)
		if err != nil {
			t.Fatal(err)
		}
		leaf, _ := x509.ParseCertificate(c.Certificate[0])
		if leaf.SerialNumber.String() == want && !bytes.Equal(c.Certificate[0], first.Certificate[0]) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("reloader still serves the old certificate")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestMutualTLSConfigsNeedFiles(t *testing.T) {
	t.Parallel()
	if _, err := tlsutil.ServerConfig("", "", "", nil); err == nil {
		t.Fatal("server config without files")
	}
	if _, err := tlsutil.ClientConfig("", "", ""); err == nil {
		t.Fatal("client config without files")
	}
}
