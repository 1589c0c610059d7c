package postgres_test

import (
	"context"
	"errors"
	"testing"

	"github.com/signetdev/signet/internal/pgtest"
	"github.com/signetdev/signet/signer"
	"github.com/signetdev/signet/signer/keystore"
	"github.com/signetdev/signet/signer/keystore/keystoretest"
	"github.com/signetdev/signet/signer/keystore/postgres"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func migrate(ctx context.Context, url string) error {
	s, err := postgres.Open(ctx, url)
	if err != nil {
		return err
	}
	defer s.Close()
	return s.Migrate(ctx)
}

func open(t *testing.T, url string) *postgres.Store {
	t.Helper()
	s, err := postgres.Open(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	keystoretest.Run(t, func(t *testing.T) keystoretest.Opener {
		url := pgtest.NewDatabase(t, "signer", migrate)
		return func(t *testing.T) keystore.Store { return open(t, url) }
	})
}

// TestMigrationStatus: a migrated database is at the schema this binary
// wants.
func TestMigrationStatus(t *testing.T) {
	t.Parallel()
	s := open(t, pgtest.NewDatabase(t, "signer", migrate))
	if cur, want, err := s.MigrationStatus(context.Background()); err != nil || cur != want || want == 0 {
		t.Fatalf("schema %d, want %d: %v", cur, want, err)
	}
}

// TestUnreachable: a database that cannot be reached is
// signer.ErrUnavailable, so that readiness and the API say so.
func TestUnreachable(t *testing.T) {
	t.Parallel()
	_, err := postgres.Open(context.Background(), "postgres://signet@127.0.0.1:1/none?connect_timeout=2")
	if !errors.Is(err, signer.ErrUnavailable) {
		t.Fatalf("open of an unreachable database: %v, want ErrUnavailable", err)
	}
}
