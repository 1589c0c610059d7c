package metacache_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"testing"

	"github.com/signetdev/signet/server/metacache"
	"github.com/signetdev/signet/server/store"
	"github.com/signetdev/signet/server/store/memstore"
)

func heap() int64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapAlloc)
}

// TestCacheCountsRealSizes: what the cache counts is close to what it
// costs on the heap, so that its byte bound bounds memory. Not parallel:
// it measures the heap.
func TestCacheCountsRealSizes(t *testing.T) {
	ctx := context.Background()
	inner := memstore.New()
	const n = 4000
	for i := range n {
		put(t, inner, fmt.Sprintf("registry.example.com/team/app%d", i), 1, string(make([]byte, 200)))
	}
	c := metacache.New(inner)
	before := heap()
	for i := range n {
		gun := fmt.Sprintf("registry.example.com/team/app%d", i)
		if _, err := c.GetCurrent(ctx, gun, "timestamp"); err != nil {
			t.Fatal(err)
		}
		// A few unknown versions and roles of a known repository.
		for v := range 3 {
			if _, err := c.GetVersion(ctx, gun, "root", int64(v+2)); !errors.Is(err, store.ErrNotFound) {
				t.Fatal(err)
			}
		}
	}
	grew := heap() - before
	counted := c.Size()
	t.Logf("heap grew %d bytes (%d per repository); the cache counts %d (%d per repository)", grew, grew/n, counted, counted/n)
	if counted < grew*8/10 || counted > grew*3 {
		t.Fatalf("the cache counts %d bytes for %d on the heap", counted, grew)
	}
	runtime.KeepAlive(c)
}

// TestAnonymousMissesAreBounded: 60,000 reads of made-up repositories and
// versions (the red-team's attack) leave the cache's memory small and the
// real repositories in it.
func TestAnonymousMissesAreBounded(t *testing.T) {
	ctx := context.Background()
	inner := memstore.New()
	put(t, inner, "registry.example.com/team/app", 1, "v1")
	c := metacache.New(inner)
	if _, err := c.GetCurrent(ctx, "registry.example.com/team/app", "timestamp"); err != nil {
		t.Fatal(err)
	}
	before := heap()
	for i := range 60_000 {
		if _, err := c.GetCurrent(ctx, fmt.Sprintf("registry.example.com/nobody/repo%d", i), "timestamp"); !errors.Is(err, store.ErrNotFound) {
			t.Fatal(err)
		}
		if _, err := c.GetVersion(ctx, "registry.example.com/team/app", "root", int64(i+2)); !errors.Is(err, store.ErrNotFound) {
			t.Fatal(err)
		}
	}
	grew := heap() - before
	known, absent := c.Len()
	t.Logf("after 120,000 misses: heap grew %d bytes, %d known and %d absent repositories, %d bytes counted", grew, known, absent, c.Size())
	if known != 1 || absent != metacache.DefaultMaxAbsent {
		t.Fatalf("%d known, %d absent repositories", known, absent)
	}
	if grew > 2<<20 {
		t.Fatalf("heap grew %d bytes", grew)
	}
	if c.Size() > 32<<10 {
		t.Fatalf("one repository counts %d bytes", c.Size())
	}
	// The real repository is still served from memory.
	_, missesBefore := c.Stats()
	if _, err := c.GetCurrent(ctx, "registry.example.com/team/app", "timestamp"); err != nil {
		t.Fatal(err)
	}
	if _, misses := c.Stats(); misses != missesBefore {
		t.Fatal("the real repository was evicted")
	}
	runtime.KeepAlive(c)
}
