//go:build cgo && pkcs11

package pkcs11_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/secure-systems-lab/go-securesystemslib/cjson"
	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/signetdev/signet/signer"
	"github.com/signetdev/signet/signer/keystore"
	"github.com/signetdev/signet/signer/pkcs11"
)

const (
	pin   = "1234"
	label = "signet-test"
)

var module string

// TestMain initialises a SoftHSM2 token in a temp dir. It fails (never
// skips) when SoftHSM2 is not installed: make test installs it.
func TestMain(m *testing.M) {
	os.Exit(func() int {
		for _, p := range []string{"/usr/lib/softhsm/libsofthsm2.so", "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so", "/usr/local/lib/softhsm/libsofthsm2.so"} {
			if _, err := os.Stat(p); err == nil {
				module = p
				break
			}
		}
		util, err := exec.LookPath("softhsm2-util")
		if module == "" || err != nil {
			fmt.Fprintln(os.Stderr, "pkcs11 tests need SoftHSM2 (Debian: apt-get install softhsm2); `make test` installs it")
			return 1
		}
		dir, err := os.MkdirTemp("", "softhsm-")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(dir)
		conf := filepath.Join(dir, "softhsm2.conf")
		if err := os.MkdirAll(filepath.Join(dir, "tokens"), 0o700); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		if err := os.WriteFile(conf, []byte("directories.tokendir = "+filepath.Join(dir, "tokens")+"\nobjectstore.backend = file\n"), 0o600); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		os.Setenv("SOFTHSM2_CONF", conf)
		if out, err := exec.Command(util, "--init-token", "--free", "--label", label, "--pin", pin, "--so-pin", "5678").CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "softhsm2-util: %v\n%s", err, out)
			return 1
		}
		return m.Run()
	}())
}

func open(t *testing.T) *pkcs11.Backend {
	t.Helper()
	b, err := pkcs11.Open(pkcs11.Config{Module: module, TokenLabel: label, PIN: pin})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

func TestKeysOnTheToken(t *testing.T) {
	// A wrong PIN does not open the token (checked before any session is
	// logged in: PKCS#11 logins are per process).
	if _, err := pkcs11.Open(pkcs11.Config{Module: module, TokenLabel: label, PIN: "0000"}); err == nil {
		t.Fatal("wrong PIN accepted")
	}
	ctx := context.Background()
	st := keystore.NewMemoryStore()
	s, err := keystore.New(ctx, st, open(t))
	if err != nil {
		t.Fatal(err)
	}
	k, err := s.EnsureKey(ctx, "example.com/app", metadata.TIMESTAMP, signer.Ed25519)
	if err != nil {
		t.Fatal(err)
	}
	recs, _ := st.All(ctx)
	if len(recs) != 1 || recs[0].Private != nil || recs[0].HSMID == "" || recs[0].Algorithm != signer.ECDSAP256 {
		t.Fatalf("record %+v: the private key must stay on the token", recs[0])
	}
	verify := func(s *keystore.Signer) error {
		ts := metadata.Timestamp(time.Now().Add(time.Hour))
		payload, _ := cjson.EncodeCanonical(ts.Signed)
		sig, err := s.Sign(ctx, "example.com/app", metadata.TIMESTAMP, k.ID, payload)
		if err != nil {
			return err
		}
		ts.Signatures = []metadata.Signature{{KeyID: k.ID, Signature: sig}}
		root := metadata.Root(time.Now().Add(time.Hour))
		if err := root.Signed.AddKey(k.Public, metadata.TIMESTAMP); err != nil {
			return err
		}
		return root.VerifyDelegate(metadata.TIMESTAMP, ts)
	}
	if err := verify(s); err != nil {
		t.Fatalf("signature from the token: %v", err)
	}
	// Role binding holds for token keys too.
	if _, err := s.Sign(ctx, "example.com/app", metadata.TIMESTAMP, k.ID, []byte(`{"_type":"targets"}`)); !errors.Is(err, signer.ErrRoleMismatch) {
		t.Fatalf("targets payload: %v", err)
	}
	// A new session (a restart) finds the same key on the token.
	s2, err := keystore.New(ctx, st, open(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := verify(s2); err != nil {
		t.Fatalf("after restart: %v", err)
	}
}
