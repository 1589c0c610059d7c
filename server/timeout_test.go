package server_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/signetdev/signet/api"
	"github.com/signetdev/signet/server"
	"github.com/signetdev/signet/server/store"
	"github.com/signetdev/signet/server/store/memstore"
)

// hangingStore never answers ListStaged: it waits for the caller to give up.
type hangingStore struct{ *memstore.Store }

func (hangingStore) ListStaged(ctx context.Context, _ string) ([]*store.Staged, error) {
	<-ctx.Done()
	return nil, ctx.Err()
}

// TestRequestTimeout: a route that waits on the store is stopped at the
// request timeout with 503 and the timeout code, while metadata reads
// (served from the cache, without a timeout of their own) still answer.
func TestRequestTimeout(t *testing.T) {
	t.Parallel()
	e := newEnvOn(t, hangingStore{memstore.New()}, server.WithRequestTimeout(100*time.Millisecond))
	e.mustPublish(map[string][]byte{metadata.ROOT: e.dev.RootBytes(), metadata.TARGETS: e.dev.TargetsBytes()})
	start := time.Now()
	resp, body := e.do(http.MethodGet, e.url+"/v2/"+gun+"/_trust/staged/", nil, "")
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(body), string(api.CodeTimeout)) {
		t.Fatalf("a store that never answers: %d %s, want 503 %s", resp.StatusCode, body, api.CodeTimeout)
	}
	if d := time.Since(start); d > 30*time.Second {
		t.Fatalf("answered after %v", d)
	}
	if resp, body := e.do(http.MethodGet, e.tufURL(gun)+"timestamp.json", nil, ""); resp.StatusCode != http.StatusOK {
		t.Fatalf("timestamp.json: %d %s", resp.StatusCode, body)
	}
}
