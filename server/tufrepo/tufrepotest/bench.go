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
	"testing"

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
// snapshot and timestamp signed by an in-process signer. Each operation is
// Repo.Publish of the new targets; signing the upload is not timed.
func BenchmarkPublish(b *testing.B, newStore func(testing.TB) store.MetaStore) {
	for _, n := range FlatSizes {
		b.Run(fmt.Sprintf("tags=%d", n), func(b *testing.B) {
			benchmarkFlat(b, newStore(b), n)
		})
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
