package client_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/signetdev/signet/client"
	"github.com/signetdev/signet/server"
	"github.com/signetdev/signet/server/store/memstore"
	"github.com/signetdev/signet/signer/keystore"
)

// BenchmarkColdResolveFlat: a cold resolve (empty cache) of one tag of a
// flat repository of 100,000 tags, in process (make bench measures the
// signet binary's latency and peak RSS). With go-tuf's
// trustedmetadata.UpdateDelegatedTargets it took about 1.4 s and 850 MB
// allocated per resolve here: go-tuf decodes the 10 MB role five times
// over and re-encodes it as canonical JSON for every key that may sign it.
// With updateDelegated (tufjson: go-tuf's results in one pass) 160 ms and
// 160 MB; 76 MB once tufjson stopped copying canonical text, Ed25519
// payloads and growing its lists (most of the rest is the decoded role:
// a TargetFiles with two maps per tag).
func BenchmarkColdResolveFlat(b *testing.B) {
	benchmarkColdResolveFlat(b, (*client.Client).Resolve)
}

// BenchmarkColdResolveOnceFlat is BenchmarkColdResolveFlat with
// ResolveOnce (what signet resolve calls), which keeps only the entry of
// the tag it resolves: about 18 MB, most of it the downloaded role.
func BenchmarkColdResolveOnceFlat(b *testing.B) {
	benchmarkColdResolveFlat(b, (*client.Client).ResolveOnce)
}

func benchmarkColdResolveFlat(b *testing.B, resolve func(*client.Client, context.Context, string) (*client.Target, error)) {
	ctx := context.Background()
	srv := server.New(memstore.New(), keystore.NewMemory(), server.WithSweepInterval(0),
		server.WithLimits(server.Limits{MaxBody: 128 << 20, TargetsMax: 64 << 20}))
	hs := httptest.NewServer(srv.Handler())
	b.Cleanup(hs.Close)
	url := hs.URL
	dev := newClient(b, url, b.TempDir())
	root, err := dev.Init(ctx, gun)
	if err != nil {
		b.Fatal(err)
	}
	changes := make([]client.Change, 100_000)
	for i := range changes {
		tag := fmt.Sprintf("tag-%06d", i)
		changes[i] = client.Change{Tag: tag, Digest: digest.FromString(tag), Size: 1234}
	}
	if _, err := dev.Publish(ctx, gun, changes); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		c := newClient(b, url, b.TempDir())
		if err := c.PinRoot(gun, root); err != nil {
			b.Fatal(err)
		}
		if _, err := resolve(c, ctx, gun+":tag-050000"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkWarmResolveFlat: a resolve of a client kept open (its warm view
// checked with one conditional GET of timestamp.json) in a flat repository
// of 10,000 tags, a different tag each time.
func BenchmarkWarmResolveFlat(b *testing.B) {
	ctx := context.Background()
	srv := server.New(memstore.New(), keystore.NewMemory(), server.WithSweepInterval(0),
		server.WithLimits(server.Limits{MaxBody: 128 << 20, TargetsMax: 64 << 20}))
	hs := httptest.NewServer(srv.Handler())
	b.Cleanup(hs.Close)
	dev := newClient(b, hs.URL, b.TempDir())
	root, err := dev.Init(ctx, gun)
	if err != nil {
		b.Fatal(err)
	}
	changes := make([]client.Change, 10_000)
	refs := make([]string, len(changes))
	for i := range changes {
		tag := fmt.Sprintf("tag-%05d", i)
		changes[i] = client.Change{Tag: tag, Digest: digest.FromString(tag), Size: 1234}
		refs[i] = gun + ":" + tag
	}
	if _, err := dev.Publish(ctx, gun, changes); err != nil {
		b.Fatal(err)
	}
	c := newClient(b, hs.URL, b.TempDir())
	if err := c.PinRoot(gun, root); err != nil {
		b.Fatal(err)
	}
	if _, err := c.Resolve(ctx, refs[0]); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, err := c.Resolve(ctx, refs[i%len(refs)]); err != nil {
			b.Fatal(err)
		}
		i++
	}
}
