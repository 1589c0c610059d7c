package server_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"
	"github.com/theupdateframework/go-tuf/v2/metadata/trustedmetadata"

	"github.com/signetdev/signet/internal/pgtest"
	"github.com/signetdev/signet/internal/tuftest"
	"github.com/signetdev/signet/server"
	"github.com/signetdev/signet/server/store/postgres"
	"github.com/signetdev/signet/server/tufrepo"
	"github.com/signetdev/signet/signer/keystore"
)

func migrate(ctx context.Context, url string) error {
	s, err := postgres.Open(ctx, url)
	if err != nil {
		return err
	}
	defer s.Close()
	return s.Migrate(ctx)
}

// TestTwoReplicasOnePostgres runs two servers on one database (sharing the
// signer, as replicas share signet-signer) and has them race publishes to
// one GUN: exactly one success per version, 409 for the others, never a
// 500, and the stored chain verifies. Then a write through one replica is
// served by the other within a second.
func TestTwoReplicasOnePostgres(t *testing.T) {
	t.Parallel()
	url := pgtest.NewDatabase(t, "server", migrate)
	clock := tuftest.NewClock()
	sg := keystore.NewMemory(keystore.WithClock(clock.Now))
	ctx, cancel := context.WithCancel(context.Background())
	var urls []string
	var wg sync.WaitGroup
	for range 2 {
		st, err := postgres.Open(ctx, url)
		if err != nil {
			t.Fatal(err)
		}
		srv := server.New(st, sg, server.WithSweepInterval(0), server.WithRepoOptions(tufrepo.WithClock(clock.Now)))
		wg.Go(func() { _ = srv.Run(ctx) })
		hs := httptest.NewServer(srv.Handler())
		urls = append(urls, hs.URL)
		t.Cleanup(func() { hs.Close(); st.Close() })
	}
	t.Cleanup(func() { cancel(); wg.Wait() })

	e := &env{t: t, url: urls[0], clock: clock}
	dev := tuftest.NewRepo(t, clock.Now, e.key(gun, metadata.TIMESTAMP), e.key(gun, metadata.SNAPSHOT))
	e.dev = dev
	e.mustPublish(map[string][]byte{metadata.ROOT: dev.RootBytes(), metadata.TARGETS: dev.TargetsBytes()})

	for version := int64(2); version <= 4; version++ {
		uploads := make([]map[string][]byte, 8)
		for i := range uploads {
			m := tuftest.Clone(t, dev.Targets)
			m.Signed.Version = version
			m.Signed.Targets["race"] = tuftest.Target(string(rune('a' + i)))
			uploads[i] = map[string][]byte{metadata.TARGETS: tuftest.Sign(t, m, dev.TargetsKeys...)}
		}
		var (
			mu    sync.Mutex
			codes = map[int]int{}
			pub   sync.WaitGroup
		)
		for i := range uploads {
			pub.Go(func() {
				r := &env{t: t, url: urls[i%2]}
				code, _ := r.publish(gun, uploads[i])
				mu.Lock()
				codes[code]++
				mu.Unlock()
			})
		}
		pub.Wait()
		if codes[http.StatusOK] != 1 || codes[http.StatusConflict] != len(uploads)-1 {
			t.Fatalf("version %d: statuses %v", version, codes)
		}
	}

	// The stored chain verifies as a client sees it, through either replica.
	for _, u := range urls {
		r := &env{t: t, url: u}
		get := func(file string) []byte {
			resp, body := r.do(http.MethodGet, r.tufURL(gun)+file, nil, "")
			if resp.StatusCode != 200 {
				t.Fatalf("%s: %d", file, resp.StatusCode)
			}
			return body
		}
		tm, err := trustedmetadata.New(get("1.root.json"))
		if err != nil {
			t.Fatal(err)
		}
		tm.RefTime = clock.Now()
		if _, err := tm.UpdateTimestamp(get("timestamp.json")); err != nil {
			t.Fatal(err)
		}
		snap, err := tm.UpdateSnapshot(get("snapshot.json"), false)
		if err != nil {
			t.Fatal(err)
		}
		targets, err := tm.UpdateTargets(get("targets.json"))
		if err != nil {
			t.Fatal(err)
		}
		if targets.Signed.Version != 4 || snap.Signed.Version != 4 {
			t.Fatalf("targets v%d snapshot v%d, want 4 and 4", targets.Signed.Version, snap.Signed.Version)
		}
	}

	// Freshness across replicas: read through replica 1 (cached), publish
	// through replica 0, and replica 1 serves the new timestamp within 1s.
	r1 := &env{t: t, url: urls[1]}
	tsVersion := func() int64 {
		_, body := r1.do(http.MethodGet, r1.tufURL(gun)+"timestamp.json", nil, "")
		ts, err := metadata.Timestamp().FromBytes(body)
		if err != nil {
			t.Fatal(err)
		}
		return ts.Signed.Version
	}
	before := tsVersion()
	dev.Targets.Signed.Version = 5
	e.mustPublish(map[string][]byte{metadata.TARGETS: dev.TargetsBytes()})
	deadline := time.Now().Add(time.Second)
	for tsVersion() != before+1 {
		if time.Now().After(deadline) {
			t.Fatal("replica 1 still serves the old timestamp after 1s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestReadyNeedsMigrations: /readyz fails while the schema is behind the
// binary and passes once migrated.
func TestReadyNeedsMigrations(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := pgtest.NewDatabase(t, "empty", func(context.Context, string) error { return nil })
	st, err := postgres.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	hs := httptest.NewServer(server.New(st, keystore.NewMemory(), server.WithSweepInterval(0)).Handler())
	defer hs.Close()
	ready := func() int {
		resp, err := http.Get(hs.URL + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := ready(); code != http.StatusServiceUnavailable {
		t.Fatalf("unmigrated: %d", code)
	}
	if err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	if code := ready(); code != http.StatusOK {
		t.Fatalf("migrated: %d", code)
	}
	resp, err := http.Get(hs.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if !strings.Contains(string(body), "signet_db_pool_max_connections") {
		t.Error("no database pool metrics")
	}
}

// TestReadyFollowsPostgres stops and restarts a cluster of its own under a
// running server: /readyz answers 503 while the database is down, stored
// reads fail with 503 (not 500), and both recover by themselves.
func TestReadyFollowsPostgres(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c, err := pgtest.Start(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Stop()
	if err := migrate(ctx, c.URL); err != nil {
		t.Fatal(err)
	}
	st, err := postgres.Open(ctx, c.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	hs := httptest.NewServer(server.New(st, keystore.NewMemory(), server.WithSweepInterval(0)).Handler())
	defer hs.Close()
	get := func(path string) int {
		resp, err := http.Get(hs.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := get("/readyz"); code != 200 {
		t.Fatalf("ready: %d", code)
	}
	if err := c.Pause(ctx); err != nil {
		t.Fatal(err)
	}
	if code := get("/readyz"); code != http.StatusServiceUnavailable {
		t.Fatalf("ready with Postgres down: %d", code)
	}
	if code := get("/v2/registry.example.com/app/_trust/tuf/root.json"); code != http.StatusServiceUnavailable {
		t.Fatalf("read with Postgres down: %d", code)
	}
	if err := c.Resume(ctx); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for get("/readyz") != 200 {
		if time.Now().After(deadline) {
			resp, _ := http.Get(hs.URL + "/readyz")
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			t.Fatalf("not ready after Postgres returned: %s", b)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if code := get("/v2/registry.example.com/app/_trust/tuf/root.json"); code != http.StatusNotFound {
		t.Fatalf("read after Postgres returned: %d", code)
	}
}
