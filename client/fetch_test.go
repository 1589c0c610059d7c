package client_test

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/signetdev/signet/client"
	"github.com/signetdev/signet/server"
	"github.com/signetdev/signet/server/store/memstore"
	"github.com/signetdev/signet/signer/keystore"
)

// TestWarmUpdateFetchesTimestampOnce: a warm engine asks whether
// timestamp.json changed with a conditional GET; when it did, the update
// uses the timestamp that answer carried instead of fetching it again.
func TestWarmUpdateFetchesTimestampOnce(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	h := newBadRepo(t, true)
	tag(h.roles["targets"], "1.0", "one")
	h.publish()
	c := h.engine()
	if _, err := c.Resolve(ctx, gun+":1.0"); err != nil {
		t.Fatal(err)
	}
	tag(h.roles["targets"], "1.1", "two")
	h.publish()
	h.mu.Lock()
	before := len(h.requests)
	h.mu.Unlock()
	if _, err := c.Resolve(ctx, gun+":1.1"); err != nil {
		t.Fatal(err)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, r := range h.requests[before:] {
		if r == "timestamp.json" {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("timestamp.json fetched %d times after a publish (requests %q), want once", n, h.requests[before:])
	}
}

// TestPublishReusesOneConnection: a sign on a fresh client (as each
// `signet sign` process is) probes the server's challenge once, not once
// for the pull and again for the push, and runs over one connection: the
// 404 that ends the root probe is drained, not left to close it.
func TestPublishReusesOneConnection(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srv := server.New(memstore.New(), keystore.NewMemory(), server.WithSweepInterval(0))
	var probes atomic.Int64
	hs := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v2/" {
			probes.Add(1)
		}
		srv.Handler().ServeHTTP(w, r)
	}))
	var conns atomic.Int64
	hs.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	hs.Start()
	t.Cleanup(hs.Close)
	withKeychain := func(o *client.Options) {
		o.Keychain = staticKeychain{"dev", "secret"}
		tr := &http.Transport{}
		t.Cleanup(tr.CloseIdleConnections)
		o.HTTPClient = &http.Client{Transport: tr} // a process of its own
	}
	dir := t.TempDir()
	if _, err := newClient(t, hs.URL, dir, withKeychain).Init(ctx, gun); err != nil {
		t.Fatal(err)
	}
	conns.Store(0)
	probes.Store(0)
	c := newClient(t, hs.URL, dir, withKeychain)
	if _, err := c.Publish(ctx, gun, []client.Change{{Tag: "1.0", Digest: d10, Size: 1234}}); err != nil {
		t.Fatal(err)
	}
	if n := probes.Load(); n != 1 {
		t.Errorf("GET /v2/ probed %d times for one publish, want 1", n)
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("one publish opened %d connections, want 1", n)
	}
}
