package keystore_test

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

	"github.com/signetdev/signet/internal/pgtest"
	"github.com/signetdev/signet/signer"
	"github.com/signetdev/signet/signer/keystore"
	"github.com/signetdev/signet/signer/keywrap"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

const gun = "registry.example.com/app"

var cheap = keywrap.Params{Time: 1, MemoryKiB: 64, Threads: 1}

func wrapped(t *testing.T, primary string, pp map[string]string) keystore.Backend {
	return keystore.NewWrapped(keyring(t, primary, pp))
}

func keyring(t *testing.T, primary string, pp map[string]string) *keywrap.Keyring {
	t.Helper()
	m := map[string][]byte{}
	for a, p := range pp {
		m[a] = []byte(p)
	}
	kr, err := keywrap.NewKeyring(primary, m, cheap)
	if err != nil {
		t.Fatal(err)
	}
	return kr
}

// backends opens a fresh key database of each kind; open returns a new
// handle on the same database (a restart, or another replica).
func backends(t *testing.T) map[string]func(t *testing.T) *keystore.SQL {
	t.Helper()
	sqlitePath := filepath.Join(t.TempDir(), "keys.db")
	pgURL := pgtest.NewDatabase(t, "signer", func(ctx context.Context, url string) error {
		s, err := keystore.Open(ctx, url)
		if err != nil {
			return err
		}
		defer s.Close()
		return s.Migrate(ctx)
	})
	open := func(dsn string) func(t *testing.T) *keystore.SQL {
		return func(t *testing.T) *keystore.SQL {
			s, err := keystore.Open(context.Background(), dsn)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			return s
		}
	}
	return map[string]func(t *testing.T) *keystore.SQL{"sqlite": open(sqlitePath), "postgres": open(pgURL)}
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
		s := keystore.NewMemory()
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
	s := keystore.NewMemory()
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
		{"another GUN's timestamp", "other.example.com/app", metadata.TIMESTAMP, `{"_type":"timestamp"}`, signer.ErrKeyNotFound},
	} {
		if _, err := s.Sign(ctx, tc.gun, tc.role, ts.ID, []byte(tc.payload)); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
	if _, err := s.EnsureKey(ctx, gun, metadata.TARGETS, signer.Ed25519); !errors.Is(err, signer.ErrUnsupportedRole) {
		t.Errorf("targets key created: %v", err)
	}
}

func TestAtRest(t *testing.T) {
	t.Parallel()
	for name, open := range backends(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			s, err := keystore.New(ctx, open(t), wrapped(t, "default", map[string]string{"default": "right"}))
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
			// The stored rows hold no private key bytes in the clear.
			recs, err := open(t).All(ctx)
			if err != nil || len(recs) != 2 {
				t.Fatalf("%d records: %v", len(recs), err)
			}
			for _, r := range recs {
				der := keystore.PrivateDER(s, r.ID)
				if len(der) == 0 {
					t.Fatal("no key material")
				}
				if bytes.Contains(r.Private.Ciphertext, der) || bytes.Contains([]byte(base64.StdEncoding.EncodeToString(r.Private.Ciphertext)), []byte(base64.StdEncoding.EncodeToString(der))) {
					t.Fatal("private key stored in the clear")
				}
			}

			// A restart with the right passphrase signs with the same keys.
			s2, err := keystore.New(ctx, open(t), wrapped(t, "default", map[string]string{"default": "right"}))
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
			// A wrong or unknown passphrase fails start-up clearly.
			if _, err := keystore.New(ctx, open(t), wrapped(t, "default", map[string]string{"default": "wrong"})); !errors.Is(err, keywrap.ErrDecrypt) {
				t.Fatalf("wrong passphrase: %v", err)
			}
			if _, err := keystore.New(ctx, open(t), wrapped(t, "other", map[string]string{"other": "x"})); !errors.Is(err, keywrap.ErrUnknownAlias) {
				t.Fatalf("unknown alias: %v", err)
			}
			// Rewrap under a new passphrase; afterwards only it opens the keys.
			both := keyring(t, "new", map[string]string{"default": "right", "new": "newer"})
			if n, err := keystore.Rewrap(ctx, open(t), both, both); err != nil || n != 2 {
				t.Fatalf("rewrap %d: %v", n, err)
			}
			s4, err := keystore.New(ctx, open(t), wrapped(t, "new", map[string]string{"new": "newer"}))
			if err != nil {
				t.Fatalf("after rewrap: %v", err)
			}
			if err := signTimestamp(t, s4, gun, k); err != nil {
				t.Fatal(err)
			}
			if err := s4.DeleteKeys(ctx, gun); err != nil {
				t.Fatal(err)
			}
			if keys, _ := s4.ListKeys(ctx, gun); len(keys) != 0 {
				t.Fatalf("%d keys after delete", len(keys))
			}
		})
	}
}

// TestEnsureKeyOnce has many callers, through two handles on one database
// (two replicas), ask for a GUN's first key at once: one key is created.
func TestEnsureKeyOnce(t *testing.T) {
	t.Parallel()
	for name, open := range backends(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			kr := keyring(t, "default", map[string]string{"default": "pw"})
			var signers []*keystore.Signer
			for range 2 {
				s, err := keystore.New(context.Background(), open(t), keystore.NewWrapped(kr))
				if err != nil {
					t.Fatal(err)
				}
				signers = append(signers, s)
			}
			var wg sync.WaitGroup
			ids := make([]string, 12)
			for i := range ids {
				wg.Go(func() {
					k, err := signers[i%2].EnsureKey(context.Background(), gun, metadata.SNAPSHOT, signer.Ed25519)
					if err != nil {
						t.Error(err)
						return
					}
					ids[i] = k.ID
				})
			}
			wg.Wait()
			keys, err := signers[0].ListKeys(context.Background(), gun)
			if err != nil || len(keys) != 1 {
				t.Fatalf("%d keys: %v", len(keys), err)
			}
			for _, id := range ids {
				if id != keys[0].ID {
					t.Fatal("callers saw different keys")
				}
			}
		})
	}
}

// TestEmbeddedFilesArePrivate: the key database and SQLite's -wal and -shm
// beside it are 0600 whatever the umask, also after keys were written.
func TestEmbeddedFilesArePrivate(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "signer.db")
	st, err := keystore.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	sg, err := keystore.New(ctx, st, wrapped(t, "a", map[string]string{"a": "pass"}))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sg.EnsureKey(ctx, gun, metadata.TIMESTAMP, signer.Ed25519); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v, want 0600", filepath.Base(p), fi.Mode().Perm())
		}
	}
}
