package metacache_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/signetdev/signet/internal/tuftest"
	"github.com/signetdev/signet/server/metacache"
	"github.com/signetdev/signet/server/store"
	"github.com/signetdev/signet/server/store/memstore"
)

// countingStore counts reads that reach the store.
type countingStore struct {
	store.MetaStore
	reads atomic.Int64
}

func (c *countingStore) GetCurrent(ctx context.Context, gun, role string) (*store.Meta, error) {
	c.reads.Add(1)
	return c.MetaStore.GetCurrent(ctx, gun, role)
}

func (c *countingStore) GetVersion(ctx context.Context, gun, role string, v int64) (*store.Meta, error) {
	c.reads.Add(1)
	return c.MetaStore.GetVersion(ctx, gun, role, v)
}

func put(t *testing.T, st store.MetaStore, gun string, version int64, data string) {
	t.Helper()
	if err := st.UpdateMany(context.Background(), gun, []store.Update{{Role: "timestamp", Version: version, Data: []byte(data), SHA256: "x", Expires: time.Now().Add(time.Hour)}}); err != nil {
		t.Fatal(err)
	}
}

func TestCacheServesFromMemoryUntilWritten(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	inner := &countingStore{MetaStore: memstore.New()}
	c := metacache.New(inner)
	put(t, c, "a", 1, "v1")
	for range 5 {
		m, err := c.GetCurrent(ctx, "a", "timestamp")
		if err != nil || string(m.Data) != "v1" {
			t.Fatalf("%v %v", m, err)
		}
	}
	if n := inner.reads.Load(); n != 1 {
		t.Fatalf("%d store reads for 5 cached gets", n)
	}
	// Negative answers are cached too, and a write forgets them.
	for range 3 {
		if _, err := c.GetVersion(ctx, "a", "timestamp", 2); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("v2: %v", err)
		}
	}
	if n := inner.reads.Load(); n != 2 {
		t.Fatalf("%d store reads, want 2", n)
	}
	put(t, c, "a", 2, "v2")
	if m, err := c.GetCurrent(ctx, "a", "timestamp"); err != nil || string(m.Data) != "v2" {
		t.Fatalf("after write: %v %v", m, err)
	}
	if m, err := c.GetVersion(ctx, "a", "timestamp", 2); err != nil || string(m.Data) != "v2" {
		t.Fatalf("v2 after write: %v %v", m, err)
	}
}

func TestCacheTTLAndInvalidate(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	clock := tuftest.NewClock()
	inner := memstore.New()
	c := metacache.New(inner, metacache.WithTTL(500*time.Millisecond), metacache.WithClock(clock.Now))
	put(t, inner, "a", 1, "v1")
	if m, _ := c.GetCurrent(ctx, "a", "timestamp"); string(m.Data) != "v1" {
		t.Fatal("v1")
	}
	put(t, inner, "a", 2, "v2") // another replica writes
	if m, _ := c.GetCurrent(ctx, "a", "timestamp"); string(m.Data) != "v1" {
		t.Fatal("served from memory within the TTL")
	}
	clock.Advance(time.Second)
	if m, _ := c.GetCurrent(ctx, "a", "timestamp"); string(m.Data) != "v2" {
		t.Fatal("stale after TTL")
	}
	put(t, inner, "a", 3, "v3")
	c.Invalidate("a") // a notification
	if m, _ := c.GetCurrent(ctx, "a", "timestamp"); string(m.Data) != "v3" {
		t.Fatal("stale after invalidation")
	}
}

func TestCacheBoundedAndConcurrent(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	inner := memstore.New()
	c := metacache.New(inner, metacache.WithMaxBytes(4096))
	for i := range 64 {
		put(t, inner, string(rune('a'+i%26))+string(rune('a'+i/26)), 1, string(make([]byte, 512)))
	}
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := range 64 {
				gun := string(rune('a'+(i+w)%64%26)) + string(rune('a'+(i+w)%64/26))
				if _, err := c.GetCurrent(ctx, gun, "timestamp"); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if size := c.Size(); size > 4096 {
		t.Fatalf("cache holds %d bytes, bound 4096", size)
	}
	hits, misses := c.Stats()
	if hits+misses != 8*64 {
		t.Fatalf("hits %d + misses %d", hits, misses)
	}
}
