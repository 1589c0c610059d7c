package localsigner_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/secure-systems-lab/go-securesystemslib/cjson"
	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/signetdev/signet/signer"
	"github.com/signetdev/signet/signer/keywrap"
	"github.com/signetdev/signet/signer/localsigner"
)

const gun = "registry.example.com/app"

func keyring(t *testing.T, pass string) *keywrap.Keyring {
	t.Helper()
	kr, err := keywrap.NewKeyring("default", map[string][]byte{"default": []byte(pass)}, keywrap.Params{Time: 1, MemoryKiB: 64, Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	return kr
}

// signTimestamp signs a fresh timestamp with key and checks it with go-tuf
// against a root that names the key.
func signTimestamp(t *testing.T, s signer.Service, g string, k *signer.KeyInfo) error {
	t.Helper()
	ts := metadata.Timestamp(time.Now().Add(time.Hour))
	payload, err := cjson.EncodeCanonical(ts.Signed)
	if err != nil {
		t.Fatal(err)
	}
	sig, err := s.Sign(context.Background(), g, metadata.TIMESTAMP, k.ID, payload)
	if err != nil {
		return err
	}
	ts.Signatures = []metadata.Signature{{KeyID: k.ID, Signature: sig}}
	root := metadata.Root(time.Now().Add(time.Hour))
	if err := root.Signed.AddKey(k.Public, metadata.TIMESTAMP); err != nil {
		t.Fatal(err)
	}
	return root.VerifyDelegate(metadata.TIMESTAMP, ts)
}

func TestSignaturesVerifyWithGoTUF(t *testing.T) {
	t.Parallel()
	for _, alg := range []signer.Algorithm{signer.Ed25519, signer.ECDSAP256} {
		s := localsigner.NewMemory()
		k, err := s.EnsureKey(context.Background(), gun, metadata.TIMESTAMP, alg)
		if err != nil {
			t.Fatal(err)
		}
		if err := signTimestamp(t, s, gun, k); err != nil {
			t.Errorf("%s: %v", alg, err)
		}
	}
}

func TestRoleBinding(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := localsigner.NewMemory()
	ts, err := s.EnsureKey(ctx, gun, metadata.TIMESTAMP, signer.Ed25519)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.EnsureKey(ctx, "other.example.com/app", metadata.TIMESTAMP, signer.Ed25519); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, gun, role, payload string
		want                     error
	}{
		{"targets payload", gun, metadata.TIMESTAMP, `{"_type":"targets","version":9}`, signer.ErrRoleMismatch},
		{"root payload", gun, metadata.TIMESTAMP, `{"_type":"root"}`, signer.ErrRoleMismatch},
		{"snapshot payload", gun, metadata.TIMESTAMP, `{"_type":"snapshot"}`, signer.ErrRoleMismatch},
		{"asked as snapshot key", gun, metadata.SNAPSHOT, `{"_type":"snapshot"}`, signer.ErrKeyNotFound},
		{"asked as targets key", gun, metadata.TARGETS, `{"_type":"targets"}`, signer.ErrUnsupportedRole},
		{"another GUN", "other.example.com/app", metadata.TIMESTAMP, `{"_type":"timestamp"}`, signer.ErrKeyNotFound},
	} {
		if _, err := s.Sign(ctx, tc.gun, tc.role, ts.ID, []byte(tc.payload)); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
}

func TestFileAtRest(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "keys.json")
	s, err := localsigner.Open(ctx, path, keyring(t, "right"))
	if err != nil {
		t.Fatal(err)
	}
	k, err := s.EnsureKey(ctx, gun, metadata.TIMESTAMP, signer.Ed25519)
	if err != nil {
		t.Fatal(err)
	}
	rotated, err := s.RotateKey(ctx, gun, metadata.TIMESTAMP, signer.ECDSAP256)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode: %v %v", fi.Mode(), err)
	}
	data, _ := os.ReadFile(path)

	// Restart with the right passphrase: the same keys sign.
	s2, err := localsigner.Open(ctx, path, keyring(t, "right"))
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []*signer.KeyInfo{k, rotated} {
		if err := signTimestamp(t, s2, gun, key); err != nil {
			t.Fatalf("after restart: %v", err)
		}
	}
	if cur, _ := s2.PublicKey(ctx, gun, metadata.TIMESTAMP); cur.ID != rotated.ID {
		t.Fatal("newest key changed across restart")
	}
	// No private key bytes in the clear, raw or base64 (as JSON encodes
	// []byte).
	for _, key := range []*signer.KeyInfo{k, rotated} {
		der := localsigner.PrivateDER(s, key.ID)
		if len(der) == 0 {
			t.Fatal("no key material")
		}
		if bytes.Contains(data, der) || bytes.Contains(data, []byte(base64.StdEncoding.EncodeToString(der))) || bytes.Contains(data, []byte("PRIVATE KEY")) {
			t.Fatal("private key in the clear in the key file")
		}
	}

	// A wrong passphrase stops Open and leaves the file untouched.
	if _, err := localsigner.Open(ctx, path, keyring(t, "wrong")); !errors.Is(err, keywrap.ErrDecrypt) {
		t.Fatalf("wrong passphrase: %v", err)
	}
	after, _ := os.ReadFile(path)
	if !bytes.Equal(data, after) {
		t.Fatal("file changed by a failed open")
	}

	// Rewrap under a new passphrase; then only the new one opens it.
	both, err := keywrap.NewKeyring("new", map[string][]byte{"default": []byte("right"), "new": []byte("newer")}, keywrap.Params{Time: 1, MemoryKiB: 64, Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	s3, err := localsigner.Open(ctx, path, both)
	if err != nil {
		t.Fatal(err)
	}
	if err := s3.Rewrap(both); err != nil {
		t.Fatal(err)
	}
	onlyNew, _ := keywrap.NewKeyring("new", map[string][]byte{"new": []byte("newer")}, keywrap.Params{Time: 1, MemoryKiB: 64, Threads: 1})
	s4, err := localsigner.Open(ctx, path, onlyNew)
	if err != nil {
		t.Fatalf("after rewrap: %v", err)
	}
	if err := signTimestamp(t, s4, gun, k); err != nil {
		t.Fatal(err)
	}
}

func TestEnsureKeyOnceUnderConcurrency(t *testing.T) {
	t.Parallel()
	s := localsigner.NewMemory()
	var wg sync.WaitGroup
	ids := make([]string, 16)
	for i := range ids {
		wg.Go(func() {
			k, err := s.EnsureKey(context.Background(), gun, metadata.SNAPSHOT, signer.Ed25519)
			if err != nil {
				t.Error(err)
				return
			}
			ids[i] = k.ID
		})
	}
	wg.Wait()
	keys, _ := s.ListKeys(context.Background(), gun)
	if len(keys) != 1 {
		t.Fatalf("%d keys created", len(keys))
	}
	for _, id := range ids {
		if id != keys[0].ID {
			t.Fatal("callers saw different keys")
		}
	}
}
