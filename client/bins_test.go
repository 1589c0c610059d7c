// The race detector slows this scale test (100,000 tags through JSON and
// signatures) about fivefold without adding anything: it runs without
// -race, as its own step of `make test`.

//go:build !race

package client_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/signetdev/signet/client"
)

// traffic counts the bytes the server sends, per request path.
type traffic struct {
	mu    sync.Mutex
	paths map[string]int64
}

func (tr *traffic) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cw := &countingWriter{ResponseWriter: w}
		h.ServeHTTP(cw, r)
		tr.mu.Lock()
		tr.paths[r.URL.Path] += cw.n
		tr.mu.Unlock()
	})
}

func (tr *traffic) reset() map[string]int64 {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	old := tr.paths
	tr.paths = map[string]int64{}
	return old
}

type countingWriter struct {
	http.ResponseWriter
	n int64
}

func (w *countingWriter) Write(b []byte) (int, error) {
	n, err := w.ResponseWriter.Write(b)
	w.n += int64(n)
	return n, err
}

// TestHashedBins100kTags: 100,000 tags in 256 bins; a resolve downloads
// the one bin that holds the tag, and a publish of one tag re-signs only
// its bin.
func TestHashedBins100kTags(t *testing.T) {
	t.Parallel()
	const tags = 100_000
	ctx := context.Background()
	tr := &traffic{paths: map[string]int64{}}
	url := newServer(t, tr.wrap)
	owner := newClient(t, url, t.TempDir(), func(o *client.Options) { o.Timeout = 5 * time.Minute })
	root, err := owner.Init(ctx, gun)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := owner.Shard(ctx, gun, 256); err != nil {
		t.Fatal(err)
	}
	changes := make([]client.Change, tags)
	for i := range changes {
		tag := fmt.Sprintf("build-%06d", i)
		changes[i] = client.Change{Tag: tag, Digest: digest.FromString(tag), Size: int64(i + 1)}
	}
	out, err := owner.Publish(ctx, gun, changes)
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Roles) != 256 || !strings.HasPrefix(out.Roles[0], client.BinsPrefix+"-") {
		t.Fatalf("100k tags went to %d roles (%v…), want the 256 bins", len(out.Roles), out.Roles[:min(3, len(out.Roles))])
	}

	engine := newDelegate(t, url, root).c
	tr.reset()
	resolvesTo(t, engine, "build-012345", "")
	fetched := tr.reset()
	var total int64
	var bins []string
	for path, n := range fetched {
		total += n
		if strings.Contains(path, "."+client.BinsPrefix+"-") {
			bins = append(bins, path)
		}
	}
	if len(bins) != 1 {
		t.Fatalf("resolve fetched bins %v, want exactly one", bins)
	}
	// All tags' metadata is over 10 MB; one resolve must stay far below.
	if total > 256<<10 {
		t.Fatalf("resolve of one tag among %d fetched %d bytes: %v", tags, total, fetched)
	}
	t.Logf("resolve fetched %d bytes (%s)", total, bins[0])

	// Publishing one tag re-signs only its bin.
	out, err = owner.Publish(ctx, gun, []client.Change{{Tag: "build-new", Digest: digest.FromString("build-new"), Size: 1}})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Roles) != 1 || !strings.HasPrefix(out.Roles[0], client.BinsPrefix+"-") {
		t.Fatalf("one tag re-signed %v, want one bin", out.Roles)
	}
	resolvesTo(t, engine, "build-new", "")
}
