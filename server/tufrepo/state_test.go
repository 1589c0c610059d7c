package tufrepo_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/signetdev/signet/internal/tuftest"
	"github.com/signetdev/signet/server/store"
	"github.com/signetdev/signet/server/store/memstore"
	"github.com/signetdev/signet/server/tufrepo"
	"github.com/signetdev/signet/signer/keystore"
)

// countingStore counts the reads a publish makes, and can make the next
// GetVersion miss (as if pruning or a deletion had removed the version
// after the publish read the heads).
type countingStore struct {
	store.MetaStore
	heads, fetches, writes atomic.Int64
	missNext               atomic.Bool
}

func (c *countingStore) CurrentVersions(ctx context.Context, gun string) (map[string]store.RoleVersion, error) {
	c.heads.Add(1)
	return c.MetaStore.CurrentVersions(ctx, gun)
}

func (c *countingStore) GetVersion(ctx context.Context, gun, role string, version int64) (*store.Meta, error) {
	c.fetches.Add(1)
	if c.missNext.CompareAndSwap(true, false) {
		return nil, fmt.Errorf("test: %w", store.ErrNotFound)
	}
	return c.MetaStore.GetVersion(ctx, gun, role, version)
}

func (c *countingStore) GetCurrent(ctx context.Context, gun, role string) (*store.Meta, error) {
	c.fetches.Add(1)
	return c.MetaStore.GetCurrent(ctx, gun, role)
}

func (c *countingStore) UpdateMany(ctx context.Context, gun string, updates []store.Update) error {
	c.writes.Add(1)
	return c.MetaStore.UpdateMany(ctx, gun, updates)
}

func newCountingStoreFixture(t *testing.T) (*fixture, *countingStore, *keystore.Signer) {
	t.Helper()
	f := newFixture(t, true)
	cs := &countingStore{MetaStore: f.store}
	f.store = cs
	sg := keystore.NewMemory(keystore.WithClock(f.clock.Now))
	f.repo = tufrepo.New(cs, sg, tufrepo.WithClock(f.clock.Now))
	ts, err := f.repo.ServerKey(f.ctx, gun, metadata.TIMESTAMP, true)
	if err != nil {
		t.Fatal(err)
	}
	snap, err := f.repo.ServerKey(f.ctx, gun, metadata.SNAPSHOT, true)
	if err != nil {
		t.Fatal(err)
	}
	f.dev = tuftest.NewRepo(t, f.clock.Now, ts.Public, snap.Public)
	return f, cs, sg
}

// TestSteadyPublishReadsOnce: once a repository's root and snapshot are
// known to this Repo (the snapshot because it made it), a publish reads
// the store once (every role's version and sha256) and fetches no data.
func TestSteadyPublishReadsOnce(t *testing.T) {
	t.Parallel()
	f, cs, _ := newCountingStoreFixture(t)
	f.initial()
	for i := range 3 {
		cs.heads.Store(0)
		cs.fetches.Store(0)
		f.dev.Bump()
		f.dev.AddTag("latest", fmt.Sprint(i))
		f.mustPublish(map[string][]byte{metadata.TARGETS: f.dev.TargetsBytes()})
		if h, d := cs.heads.Load(), cs.fetches.Load(); h != 1 || d != 0 {
			t.Fatalf("publish %d: %d reads of the heads and %d fetches, want 1 and 0", i, h, d)
		}
	}
	f.verify()
}

// TestReplicasShareNoStaleState: two Repos over one store (two replicas)
// publish in turn. Each one's cached snapshot is the one it made, which
// the other's publish has replaced: a cache that did not check the
// stored sha256 would build on it and lose the other's roles (or conflict
// forever). Then one replica deletes the repository and a new one is made
// under the same name; the other publishes into it.
func TestReplicasShareNoStaleState(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	clock := tuftest.NewClock()
	st := memstore.New()
	sg := keystore.NewMemory(keystore.WithClock(clock.Now))
	a := tufrepo.New(st, sg, tufrepo.WithClock(clock.Now))
	b := tufrepo.New(st, sg, tufrepo.WithClock(clock.Now))
	newDev := func() *tuftest.Repo {
		ts, err := a.ServerKey(ctx, gun, metadata.TIMESTAMP, true)
		if err != nil {
			t.Fatal(err)
		}
		snap, err := a.ServerKey(ctx, gun, metadata.SNAPSHOT, true)
		if err != nil {
			t.Fatal(err)
		}
		return tuftest.NewRepo(t, clock.Now, ts.Public, snap.Public)
	}
	dev := newDev()
	releases := tuftest.NewKey(t)
	delegate(t, &dev.Targets.Signed.Delegations, "targets/releases", []string{"v*"}, releases)
	rel := metadata.Targets(clock.Now().Add(24 * 3600e9))
	publish := func(r *tufrepo.Repo, files map[string][]byte) {
		t.Helper()
		if _, err := r.Publish(ctx, gun, files); err != nil {
			t.Fatal(err)
		}
	}
	publish(a, map[string][]byte{metadata.ROOT: dev.RootBytes(), metadata.TARGETS: dev.TargetsBytes(), "targets/releases": tuftest.Sign(t, rel, releases)})
	for i := range 4 {
		r := []*tufrepo.Repo{b, a}[i%2]
		if i%2 == 0 {
			dev.Bump()
			dev.AddTag("latest", fmt.Sprint(i))
			publish(r, map[string][]byte{metadata.TARGETS: dev.TargetsBytes()})
		} else {
			rel.Signed.Version++
			rel.Signed.Targets[fmt.Sprint("v", i)] = tuftest.Target(fmt.Sprint(i))
			publish(r, map[string][]byte{"targets/releases": tuftest.Sign(t, rel, releases)})
		}
	}
	snap, err := st.GetCurrent(ctx, gun, metadata.SNAPSHOT)
	if err != nil {
		t.Fatal(err)
	}
	sm, err := metadata.Snapshot().FromBytes(snap.Data)
	if err != nil {
		t.Fatal(err)
	}
	if sm.Signed.Version != 5 || sm.Signed.Meta["targets.json"].Version != dev.Targets.Signed.Version || sm.Signed.Meta["targets/releases.json"].Version != rel.Signed.Version {
		t.Fatalf("snapshot v%d lists %v", sm.Signed.Version, sm.Signed.Meta)
	}

	if err := a.Delete(ctx, gun); err != nil {
		t.Fatal(err)
	}
	dev = newDev()
	publish(a, map[string][]byte{metadata.ROOT: dev.RootBytes(), metadata.TARGETS: dev.TargetsBytes()})
	dev.Bump()
	dev.AddTag("after", "recreation")
	publish(b, map[string][]byte{metadata.TARGETS: dev.TargetsBytes()})
	f := &fixture{t: t, ctx: ctx, clock: clock, store: st, repo: b, dev: dev}
	tm := f.verify()
	if tm.Snapshot.Signed.Version != 2 || len(tm.Snapshot.Signed.Meta) != 1 || tm.Targets[metadata.TARGETS].Signed.Targets["after"] == nil {
		t.Fatalf("after re-creation: snapshot v%d lists %v", tm.Snapshot.Signed.Version, tm.Snapshot.Signed.Meta)
	}
}

// TestPublishRetriesWhenAVersionVanishes: a role the heads name is gone
// when fetched (pruned or deleted in between); the publish reads the
// heads again and succeeds.
func TestPublishRetriesWhenAVersionVanishes(t *testing.T) {
	t.Parallel()
	f, cs, sg := newCountingStoreFixture(t)
	f.initial()
	// A fresh Repo has no cache, so it must fetch the root.
	f.repo = tufrepo.New(cs, sg, tufrepo.WithClock(f.clock.Now))
	cs.heads.Store(0)
	cs.missNext.Store(true)
	f.dev.Bump()
	f.mustPublish(map[string][]byte{metadata.TARGETS: f.dev.TargetsBytes()})
	if h := cs.heads.Load(); h != 2 {
		t.Fatalf("%d reads of the heads, want 2 (one retry)", h)
	}
	f.verify()
}
