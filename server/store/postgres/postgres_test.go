package postgres_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/signetdev/signet/internal/pgtest"
	"github.com/signetdev/signet/server/store"
	"github.com/signetdev/signet/server/store/postgres"
	"github.com/signetdev/signet/server/store/storetest"
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
	storetest.Run(t, func(t *testing.T) store.MetaStore {
		return open(t, pgtest.NewDatabase(t, "server", migrate))
	})
}

func TestWatcher(t *testing.T) {
	t.Parallel()
	storetest.RunWatcher(t, func(t *testing.T) (store.MetaStore, store.MetaStore) {
		url := pgtest.NewDatabase(t, "server", migrate)
		return open(t, url), open(t, url)
	})
}

// TestTwoReplicasRace has two pools ("replicas") race on one GUN.
func TestTwoReplicasRace(t *testing.T) {
	t.Parallel()
	url := pgtest.NewDatabase(t, "server", migrate)
	replicas := []store.MetaStore{open(t, url), open(t, url)}
	exp := time.Now().Add(time.Hour)
	for v := int64(1); v <= 5; v++ {
		var (
			wg          sync.WaitGroup
			mu          sync.Mutex
			wins, loses int
		)
		for i := range 10 {
			wg.Go(func() {
				err := replicas[i%2].UpdateMany(context.Background(), "example.com/race",
					[]store.Update{storetest.Upd("targets", v, exp), storetest.Upd("timestamp", v, exp)})
				mu.Lock()
				defer mu.Unlock()
				var vc *store.VersionConflictError
				switch {
				case err == nil:
					wins++
				case errors.As(err, &vc) && vc.Role != "":
					loses++
				default:
					t.Errorf("version %d: %v", v, err)
				}
			})
		}
		wg.Wait()
		if wins != 1 || loses != 9 {
			t.Fatalf("version %d: %d wins, %d conflicts", v, wins, loses)
		}
	}
}

func TestMigrationStatus(t *testing.T) {
	t.Parallel()
	s := open(t, pgtest.NewDatabase(t, "server", migrate))
	cur, want, err := s.MigrationStatus(context.Background())
	if err != nil || cur != want || want < 1 {
		t.Fatalf("status %d/%d: %v", cur, want, err)
	}
}

// TestDataCompressedWithLZ4: the test server is built with lz4 (Debian's
// and the official images are), so the migration must have switched the
// metadata column to it.
func TestDataCompressedWithLZ4(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, pgtest.NewDatabase(t, "server", migrate))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var method string
	if err := conn.QueryRow(ctx, `SELECT attcompression::text FROM pg_attribute WHERE attrelid = 'tuf_files'::regclass AND attname = 'data'`).Scan(&method); err != nil {
		t.Fatal(err)
	}
	if method != "l" {
		t.Fatalf("tuf_files.data compression %q, want lz4 (l): is this PostgreSQL built without lz4?", method)
	}
}

func TestUnavailable(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := open(t, pgtest.NewDatabase(t, "server", migrate))
	s.Close()
	if _, err := s.GetCurrent(ctx, "example.com/a", "root"); !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("closed pool: %v", err)
	}
	if err := s.UpdateMany(ctx, "example.com/a", []store.Update{storetest.Upd("root", 1, time.Now())}); !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("closed pool update: %v", err)
	}
	if _, err := postgres.Open(ctx, "postgres://postgres@127.0.0.1:1/none?sslmode=disable&connect_timeout=1"); !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("closed port: %v", err)
	}
}
