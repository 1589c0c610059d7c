// Package tufrepotest holds benchmarks of tufrepo's publish path that every
// store backend runs against itself (as storetest holds the conformance
// suite): the server-side cost of one publish into flat repositories of
// growing size, with the upload signed outside the timer.
//
// It is imported only by tests and must not be imported by server code.
package tufrepotest

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/signetdev/signet/internal/tuftest"
	"github.com/signetdev/signet/server/store"
	"github.com/signetdev/signet/server/tufrepo"
	"github.com/signetdev/signet/signer/keystore"
)

// FlatSizes are the sizes of the flat repositories BenchmarkPublish
// publishes into (issue 19's publish figures).
var FlatSizes = []int{10, 1_000, 10_000}

// BenchmarkPublish runs, for each of FlatSizes, a sub-benchmark that
// publishes one changed tag into a flat repository (one targets role) of
// that many tags on a fresh store from newStore, with a server-made
// snapshot and timestamp signed by an in-process signer; and one that
// publishes one changed bin of a repository in 256 hashed bins. Each
// operation is one Repo.Publish; signing the upload is not timed.
func BenchmarkPublish(b *testing.B, newStore func(testing.TB) store.MetaStore) {
	for _, n := range FlatSizes {
		b.Run(fmt.Sprintf("tags=%d", n), func(b *testing.B) {
			benchmarkFlat(b, newStore(b), n)
		})
	}
	b.Run("bins=256", func(b *testing.B) { benchmarkBins(b, newStore(b)) })
	b.Run("publishers=16", func(b *testing.B) { benchmarkParallel(b, newStore(b)) })
}

// benchmarkParallel: 16 publishers, each into its own 10-tag repository,
// as the bench's throughput figure runs them. Each operation signs its
// upload (in the timer: there is no pausing 16 goroutines) and publishes
// it; read a profile focused on Repo.Publish for the server's share.
func benchmarkParallel(b *testing.B, st store.MetaStore) {
	ctx := context.Background()
	clock := tuftest.NewClock()
	repo := tufrepo.New(st, keystore.NewMemory(keystore.WithClock(clock.Now)), tufrepo.WithClock(clock.Now))
	const publishers = 16
	type dev struct {
		gun string
		mu  sync.Mutex
		r   *tuftest.Repo
	}
	devs := make([]*dev, publishers)
	for i := range devs {
		gun := fmt.Sprintf("bench.example.com/publish-%d", i)
		ts, err := repo.ServerKey(ctx, gun, metadata.TIMESTAMP, true)
		if err != nil {
			b.Fatal(err)
		}
		snap, err := repo.ServerKey(ctx, gun, metadata.SNAPSHOT, true)
		if err != nil {
			b.Fatal(err)
		}
		d := &dev{gun: gun, r: tuftest.NewRepo(b, clock.Now, ts.Public, snap.Public)}
		for j := range 10 {
			d.r.AddTag(fmt.Sprintf("tag-%d", j), fmt.Sprint(j))
		}
		if _, err := repo.Publish(ctx, gun, map[string][]byte{metadata.ROOT: d.r.RootBytes(), metadata.TARGETS: d.r.TargetsBytes()}); err != nil {
			b.Fatal(err)
		}
		devs[i] = d
	}
	var next atomic.Int64
	b.ReportAllocs()
	b.SetParallelism(publishers / 2) // 16 goroutines on 2 cores
	b.RunParallel(func(pb *testing.PB) {
		d := devs[int(next.Add(1)-1)%publishers]
		for i := 0; pb.Next(); i++ {
			d.mu.Lock() // two goroutines may share a repository when GOMAXPROCS is not 2
			d.r.Bump()
			d.r.AddTag("latest", fmt.Sprint(i))
			files := map[string][]byte{metadata.TARGETS: d.r.TargetsBytes()}
			_, err := repo.Publish(ctx, d.gun, files)
			d.mu.Unlock()
			if err != nil {
				b.Error(err)
				return
			}
		}
	})
}

func benchmarkBins(b *testing.B, st store.MetaStore) {
	ctx := context.Background()
	clock := tuftest.NewClock()
	const gun = "bench.example.com/bins"
	repo := tufrepo.New(st, keystore.NewMemory(keystore.WithClock(clock.Now)), tufrepo.WithClock(clock.Now))
	ts, err := repo.ServerKey(ctx, gun, metadata.TIMESTAMP, true)
	if err != nil {
		b.Fatal(err)
	}
	snap, err := repo.ServerKey(ctx, gun, metadata.SNAPSHOT, true)
	if err != nil {
		b.Fatal(err)
	}
	dev := tuftest.NewRepo(b, clock.Now, ts.Public, snap.Public)
	binKey := tuftest.NewKey(b)
	dev.Targets.Signed.Delegations = &metadata.Delegations{
		Keys:          map[string]*metadata.Key{binKey.ID: binKey.Public},
		SuccinctRoles: &metadata.SuccinctRoles{KeyIDs: []string{binKey.ID}, Threshold: 1, BitLength: 8, NamePrefix: "bin"},
	}
	files := map[string][]byte{metadata.ROOT: dev.RootBytes(), metadata.TARGETS: dev.TargetsBytes()}
	bins := map[string]*metadata.Metadata[metadata.TargetsType]{}
	for _, name := range dev.Targets.Signed.Delegations.SuccinctRoles.GetRoles() {
		bins[name] = metadata.Targets(clock.Now().Add(90 * 24 * time.Hour))
		files[name] = tuftest.Sign(b, bins[name], binKey)
	}
	if _, err := repo.Publish(ctx, gun, files); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		b.StopTimer()
		tag := fmt.Sprint("tag-", i)
		name := dev.Targets.Signed.Delegations.SuccinctRoles.GetRolesForTarget(tag)[0].Name
		bin := bins[name]
		bin.Signed.Version++
		bin.Signed.Targets[tag] = tuftest.Target(tag)
		files := map[string][]byte{name: tuftest.Sign(b, bin, binKey)}
		b.StartTimer()
		if _, err := repo.Publish(ctx, gun, files); err != nil {
			b.Fatal(err)
		}
	}
}

func benchmarkFlat(b *testing.B, st store.MetaStore, tags int) {
	ctx := context.Background()
	clock := tuftest.NewClock()
	const gun = "bench.example.com/flat"
	repo := tufrepo.New(st, keystore.NewMemory(keystore.WithClock(clock.Now)), tufrepo.WithClock(clock.Now))
	ts, err := repo.ServerKey(ctx, gun, metadata.TIMESTAMP, true)
	if err != nil {
		b.Fatal(err)
	}
	snap, err := repo.ServerKey(ctx, gun, metadata.SNAPSHOT, true)
	if err != nil {
		b.Fatal(err)
	}
	dev := tuftest.NewRepo(b, clock.Now, ts.Public, snap.Public)
	for i := range tags {
		dev.AddTag(fmt.Sprintf("tag-%05d", i), fmt.Sprint(i))
	}
	if _, err := repo.Publish(ctx, gun, map[string][]byte{metadata.ROOT: dev.RootBytes(), metadata.TARGETS: dev.TargetsBytes()}); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		b.StopTimer()
		dev.Bump()
		dev.AddTag("latest", fmt.Sprint("x", i))
		files := map[string][]byte{metadata.TARGETS: dev.TargetsBytes()}
		b.StartTimer()
		if _, err := repo.Publish(ctx, gun, files); err != nil {
			b.Fatal(err)
		}
	}
}
