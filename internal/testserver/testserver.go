// Package testserver runs a real signet-server in-process for tests of the
// parts that verify on pull (the policy package, the containerd verifier,
// the admission webhook): memory store, in-process signer, an httptest
// listener, and a developer with their own trust directory who creates
// repositories and signs tags through the client library, as `signet init`
// and `signet sign` do. It is imported only by tests. A Server is safe for
// concurrent use; a Repo is used from one goroutine.
package testserver

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/signetdev/signet/client"
	"github.com/signetdev/signet/server"
	"github.com/signetdev/signet/server/store/memstore"
	"github.com/signetdev/signet/server/tufrepo"
	"github.com/signetdev/signet/signer/keystore"
	"github.com/signetdev/signet/tufedit"
)

// Server is a running signet-server.
type Server struct {
	URL string
	hs  *httptest.Server
	// skew is added to the server's clock (nanoseconds).
	skew atomic.Int64
	// down makes every request fail with 503 while set.
	down atomic.Bool
	// stall makes every request hang until its client gives up.
	stall atomic.Bool
	done  chan struct{}
}

// Start runs a server until the test ends.
func Start(t testing.TB) *Server {
	t.Helper()
	s := &Server{done: make(chan struct{})}
	now := func() time.Time { return time.Now().Add(time.Duration(s.skew.Load())) }
	srv := server.New(memstore.New(), keystore.NewMemory(), server.WithSweepInterval(0), server.WithRepoOptions(tufrepo.WithClock(now)))
	h := srv.Handler()
	s.hs = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.stall.Load() {
			select {
			case <-r.Context().Done():
			case <-s.done:
			}
			return
		}
		if s.down.Load() {
			http.Error(w, "down for the test", http.StatusServiceUnavailable)
			return
		}
		h.ServeHTTP(w, r)
	}))
	s.URL = s.hs.URL
	t.Cleanup(s.hs.Close)
	t.Cleanup(func() { close(s.done) }) // runs first: releases stalled requests
	return s
}

// SetClockSkew shifts the clock the server signs timestamps and snapshots
// with: a skew of -48h makes every timestamp it signs from now on already
// expired (the default timestamp lifetime is one day).
func (s *Server) SetClockSkew(d time.Duration) { s.skew.Store(int64(d)) }

// SetDown makes the server answer 503 to everything (true) or serve again.
func (s *Server) SetDown(down bool) { s.down.Store(down) }

// SetStalled makes the server accept requests and never answer them (a
// hung trust server) while set.
func (s *Server) SetStalled(stall bool) { s.stall.Store(stall) }

// Close stops the listener: the server becomes unreachable (connection
// refused).
func (s *Server) Close() { s.hs.Close() }

// Repo is a repository created on the server by a developer.
type Repo struct {
	GUN  string
	Root []byte // the root.json an engine pins
	Dev  *client.Client
	t    testing.TB
}

// Pass is the passphrase of every test key.
func Pass(string, string) ([]byte, error) { return []byte("test passphrase"), nil }

// NewClient returns a client of the server with its own trust directory
// and a fast (insecure, test-only) key derivation.
func (s *Server) NewClient(t testing.TB, mod ...func(*client.Options)) *client.Client {
	t.Helper()
	dir := t.TempDir()
	o := client.Options{Server: s.URL, TrustDir: dir, Keys: client.NewFileKeyStore(dir+"/private", Pass, 1<<10)}
	for _, m := range mod {
		m(&o)
	}
	c, err := client.New(o)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// Init creates gun's trust data (as `signet init` does) with a developer
// client of its own.
func (s *Server) Init(t testing.TB, gun string) *Repo {
	t.Helper()
	dev := s.NewClient(t)
	root, err := dev.Init(context.Background(), gun)
	if err != nil {
		t.Fatalf("init %s: %v", gun, err)
	}
	return &Repo{GUN: gun, Root: root, Dev: dev, t: t}
}

// Digest is the made-up manifest digest tests sign for a tag.
func Digest(tag string) digest.Digest { return digest.FromString("manifest of " + tag) }

// Sign signs tags in the top-level targets role, each with Digest(tag) and
// size 1234, in one publish.
func (r *Repo) Sign(tags ...string) { r.SignAs("", tags...) }

// SignAs signs tags into role ("" lets the client choose, as `signet sign`
// does).
func (r *Repo) SignAs(role string, tags ...string) {
	r.t.Helper()
	var ch []client.Change
	for _, tag := range tags {
		ch = append(ch, client.Change{Tag: tag, Digest: Digest(tag), Size: 1234})
	}
	if _, err := r.Dev.PublishAs(context.Background(), r.GUN, role, ch); err != nil {
		r.t.Fatalf("sign %v in %s as %q: %v", tags, r.GUN, role, err)
	}
}

// SignDigest signs tag as d (e.g. a digest read from a real registry).
func (r *Repo) SignDigest(tag string, d digest.Digest, size int64) {
	r.t.Helper()
	if _, err := r.Dev.Publish(context.Background(), r.GUN, []client.Change{{Tag: tag, Digest: d, Size: size}}); err != nil {
		r.t.Fatalf("sign %s:%s: %v", r.GUN, tag, err)
	}
}

// Unsign removes tags.
func (r *Repo) Unsign(tags ...string) {
	r.t.Helper()
	var ch []client.Change
	for _, tag := range tags {
		ch = append(ch, client.Change{Tag: tag, Remove: true})
	}
	if _, err := r.Dev.Publish(context.Background(), r.GUN, ch); err != nil {
		r.t.Fatalf("unsign %v in %s: %v", tags, r.GUN, err)
	}
}

// Delegate adds a delegated role (e.g. targets/releases) whose key the
// developer holds, for tags matching paths (nil: every tag).
func (r *Repo) Delegate(role string, paths ...string) {
	r.t.Helper()
	ctx := context.Background()
	k, err := r.Dev.Keys().Generate(ctx, role)
	if err != nil {
		r.t.Fatal(err)
	}
	if len(paths) == 0 {
		paths = []string{"*"}
	}
	if _, err := r.Dev.EditDelegations(ctx, r.GUN, metadata.TARGETS, func(tt *metadata.TargetsType) error {
		return tufedit.AddDelegation(tt, tufedit.DelegationSpec{Name: role, Keys: []*metadata.Key{k.Public}, Threshold: 1, Paths: paths})
	}); err != nil {
		r.t.Fatalf("delegate %s in %s: %v", role, r.GUN, err)
	}
}

// RootKeyIDs are the key IDs of the repository's root role.
func (r *Repo) RootKeyIDs() []string {
	r.t.Helper()
	m, err := (&metadata.Metadata[metadata.RootType]{}).FromBytes(r.Root)
	if err != nil {
		r.t.Fatal(err)
	}
	return m.Signed.Roles[metadata.ROOT].KeyIDs
}
