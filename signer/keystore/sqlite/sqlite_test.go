package sqlite_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/signetdev/signet/signer"
	"github.com/signetdev/signet/signer/keystore"
	"github.com/signetdev/signet/signer/keystore/keystoretest"
	"github.com/signetdev/signet/signer/keystore/sqlite"
)

func open(t *testing.T, path string) *sqlite.Store {
	t.Helper()
	s, err := sqlite.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	keystoretest.Run(t, func(t *testing.T) keystoretest.Opener {
		path := filepath.Join(t.TempDir(), "keys.db")
		return func(t *testing.T) keystore.Store { return open(t, path) }
	})
}

// TestEmbeddedFilesArePrivate: the key database and SQLite's -wal and -shm
// beside it are 0600 whatever the umask, also after keys were written.
func TestEmbeddedFilesArePrivate(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "signer.db")
	sg, err := keystore.New(ctx, open(t, path), keystore.NewWrapped(keystoretest.Keyring(t, "a", map[string]string{"a": "pass"})))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sg.EnsureKey(ctx, "registry.example.com/app", metadata.TIMESTAMP, signer.Ed25519); err != nil {
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

// TestMigrationStatus: Open migrates, so the schema is what this binary
// wants.
func TestMigrationStatus(t *testing.T) {
	t.Parallel()
	s := open(t, filepath.Join(t.TempDir(), "keys.db"))
	cur, want, err := s.MigrationStatus(context.Background())
	if err != nil || cur != want || want == 0 {
		t.Fatalf("schema %d, want %d: %v", cur, want, err)
	}
}
