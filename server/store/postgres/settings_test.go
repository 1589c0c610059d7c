package postgres_test

import (
	"context"
	"errors"
	"net/url"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/signetdev/signet/internal/pgtest"
	"github.com/signetdev/signet/server/store"
	"github.com/signetdev/signet/server/store/postgres"
	"github.com/signetdev/signet/server/store/storetest"
)

// withParams returns u with query parameters added (pgx passes unknown
// ones to the server as run-time settings).
func withParams(t *testing.T, u string, kv ...string) string {
	t.Helper()
	p, err := url.Parse(u)
	if err != nil {
		t.Fatal(err)
	}
	q := p.Query()
	for i := 0; i < len(kv); i += 2 {
		q.Set(kv[i], kv[i+1])
	}
	p.RawQuery = q.Encode()
	return p.String()
}

// backends lists the application names of the database's sessions that
// run query (exactly).
func backends(t *testing.T, admin *pgx.Conn, db, query string) []string {
	t.Helper()
	rows, err := admin.Query(context.Background(),
		`SELECT application_name FROM pg_stat_activity WHERE datname = $1 AND query = $2 AND pid <> pg_backend_pid()`, db, query)
	if err != nil {
		t.Fatal(err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	return names
}

func dbName(t *testing.T, u string) string {
	t.Helper()
	p, err := url.Parse(u)
	if err != nil {
		t.Fatal(err)
	}
	return p.Path[1:]
}

// watch runs st.Watch until the test ends and returns what it hears.
func watch(t *testing.T, st *postgres.Store) <-chan string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	heard := make(chan string, 64)
	done := make(chan error, 1)
	go func() { done <- st.Watch(ctx, func(gun string) { heard <- gun }) }()
	t.Cleanup(func() { cancel(); <-done })
	return heard
}

func hear(t *testing.T, heard <-chan string, want string) {
	t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		select {
		case g := <-heard:
			if g == want {
				return
			}
			if g == "" {
				t.Fatalf("the listener reconnected (heard \"\") while waiting for %q", want)
			}
		case <-deadline:
			t.Fatalf("did not hear of %q", want)
		}
	}
}

// TestListenURL: with WithListenURL the store LISTENs on a connection of
// its own to that URL (as it must behind PgBouncer in transaction mode,
// where the pool's URL names the pooler), never on a pool connection, and
// the pool stays within WithMaxConns beside it.
func TestListenURL(t *testing.T) {
	t.Parallel()
	base := pgtest.NewDatabase(t, "server", migrate)
	poolURL := withParams(t, base, "application_name", "signet_pool")
	listenURL := withParams(t, base, "application_name", "signet_listen")
	st, err := postgres.Open(context.Background(), poolURL, postgres.WithMaxConns(3), postgres.WithListenURL(listenURL))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	heard := watch(t, st)
	hear(t, heard, "") // connected

	admin, err := pgx.Connect(context.Background(), base)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { admin.Close(context.Background()) })
	if got := backends(t, admin, dbName(t, base), "LISTEN signet_meta"); len(got) != 1 || got[0] != "signet_listen" {
		t.Fatalf("sessions listening: %q, want one, from the listen URL", got)
	}
	if _, _, total, max := st.PoolStats(); max != 3 || total > 3 {
		t.Fatalf("pool: %d connections of at most %d, want at most 3", total, max)
	}

	writer := open(t, base)
	if err := writer.UpdateMany(context.Background(), "example.com/l", []store.Update{storetest.Upd("root", 1, time.Now())}); err != nil {
		t.Fatal(err)
	}
	hear(t, heard, "example.com/l")

	if _, err := postgres.Open(context.Background(), base, postgres.WithListenURL("postgres://%zz")); err == nil {
		t.Fatal("a listen URL that does not parse was accepted")
	}
	if _, err := postgres.Open(context.Background(), base, postgres.WithListenURL("postgres://postgres@127.0.0.1:1/none?sslmode=disable&connect_timeout=1")); !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("a listen URL nothing answers: %v, want ErrUnavailable at Open", err)
	}
}

// TestRecommendedSettings runs the settings docs/capacity.md recommends
// for production: a statement_timeout (and lock_timeout) bounds a publish
// stuck behind a lock, the store answers it as ErrUnavailable (503, retry)
// rather than an internal error, and the settings do not disturb the
// listener, whose session idles in WaitForNotification for longer than
// the timeouts without being cut (no reconnect, which would make every
// replica forget its whole cache).
func TestRecommendedSettings(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	base := pgtest.NewDatabase(t, "server", migrate)
	tuned := withParams(t, base, "statement_timeout", "300", "lock_timeout", "300", "idle_in_transaction_session_timeout", "1000")
	st, err := postgres.Open(ctx, tuned, postgres.WithMaxConns(4))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	heard := watch(t, st)
	hear(t, heard, "")

	// Another session holds the repository's publish lock.
	holder, err := pgx.Connect(ctx, base)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { holder.Close(ctx) })
	tx, err := holder.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	const gun = "example.com/stuck"
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended($1, 0))`, gun); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	err = st.UpdateMany(ctx, gun, []store.Update{storetest.Upd("root", 1, time.Now())})
	if took := time.Since(start); !errors.Is(err, store.ErrUnavailable) || took > 5*time.Second {
		t.Fatalf("publish behind a held lock: %v after %v, want ErrUnavailable from the timeout", err, took)
	}
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}

	time.Sleep(1500 * time.Millisecond) // idle past every timeout set above
	if err := st.UpdateMany(ctx, gun, []store.Update{storetest.Upd("root", 1, time.Now())}); err != nil {
		t.Fatalf("publish once the lock is free: %v", err)
	}
	hear(t, heard, gun)
}
