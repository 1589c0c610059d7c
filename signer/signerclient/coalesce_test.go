package signerclient

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/signetdev/signet/internal/reqid"
	"github.com/signetdev/signet/signer"
	"github.com/signetdev/signet/signer/api"
	"github.com/signetdev/signet/signer/keystore"
)

// gate holds the first SignBatch the signer gets until released, so that
// the test can queue calls behind it.
type gate struct {
	signer.Service
	once    sync.Once
	held    chan struct{}
	release chan struct{}
}

func (g *gate) SignBatch(ctx context.Context, reqs []signer.SignRequest) ([][]byte, error) {
	first := false
	g.once.Do(func() { first = true })
	if first {
		close(g.held)
		<-g.release
	}
	return g.Service.SignBatch(ctx, reqs)
}

// wire records the requests the signer got: path and number of batches.
type wire struct {
	mu   sync.Mutex
	got  []string
	next http.Handler
	old  bool // answer PathSignBatches with 404, as an older signer would
}

func (w *wire) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	entry := r.URL.Path
	if r.URL.Path == api.PathSignBatches {
		var in api.SignBatchesRequest
		_ = json.Unmarshal(body, &in)
		entry += " " + strings.Repeat("b", len(in.Batches))
	}
	w.mu.Lock()
	w.got = append(w.got, entry)
	w.mu.Unlock()
	if w.old && r.URL.Path == api.PathSignBatches {
		http.NotFound(rw, r)
		return
	}
	r.Body = io.NopCloser(strings.NewReader(string(body)))
	w.next.ServeHTTP(rw, r)
}

// TestCoalescing: while the one request slot is taken, concurrent batches
// queue and go together in one request; each is signed or refused on its
// own (a refused batch does not refuse the others), each caller gets its
// own signatures, a caller that gives up while queued is not sent, and an
// older signer without PathSignBatches gets the batches one by one.
func TestCoalescing(t *testing.T) {
	t.Parallel()
	for _, old := range []bool{false, true} {
		ctx := context.Background()
		mem := keystore.NewMemory()
		const gun = "example.com/app"
		ts, err := mem.EnsureKey(ctx, gun, metadata.TIMESTAMP, signer.Ed25519)
		if err != nil {
			t.Fatal(err)
		}
		snap, err := mem.EnsureKey(ctx, gun, metadata.SNAPSHOT, signer.Ed25519)
		if err != nil {
			t.Fatal(err)
		}
		g := &gate{Service: mem, held: make(chan struct{}), release: make(chan struct{})}
		var audit strings.Builder
		var amu sync.Mutex
		h := api.New(g, slog.New(slog.DiscardHandler), slog.New(slog.NewJSONHandler(lockedWriter{&amu, &audit}, nil)), prometheus.NewRegistry())
		rec := &wire{next: h.Routes(), old: old}
		srv := httptest.NewServer(rec)
		c := New(srv.URL, srv.Client(), WithMaxInFlight(1))

		payload := func(role string, v int) []byte {
			return []byte(`{"_type":"` + role + `","version":` + string(rune('0'+v)) + `}`)
		}
		good := func(v int) []signer.SignRequest {
			return []signer.SignRequest{
				{GUN: gun, Role: metadata.SNAPSHOT, KeyID: snap.ID, Payload: payload(metadata.SNAPSHOT, v)},
				{GUN: gun, Role: metadata.TIMESTAMP, KeyID: ts.ID, Payload: payload(metadata.TIMESTAMP, v)},
			}
		}
		bad := good(5)
		bad[1].Payload = payload(metadata.SNAPSHOT, 5) // a snapshot for the timestamp key

		type result struct {
			sigs [][]byte
			err  error
		}
		calls := [][]signer.SignRequest{good(1), good(2), bad, good(3)}
		results := make([]result, len(calls))
		var wg sync.WaitGroup
		wg.Go(func() { results[0].sigs, results[0].err = c.SignBatch(ctx, calls[0]) })
		<-g.held
		for i := 1; i < len(calls); i++ {
			wg.Go(func() {
				rctx := ctx // the last one has no request ID
				if i < len(calls)-1 {
					rctx = reqid.With(ctx, "call-"+string(rune('0'+i)))
				}
				results[i].sigs, results[i].err = c.SignBatch(rctx, calls[i])
			})
		}
		gone, cancel := context.WithCancel(ctx)
		goneErr := make(chan error, 1)
		go func() { _, err := c.SignBatch(gone, good(4)); goneErr <- err }()
		waitQueued(t, c, len(calls))
		cancel()
		if err := <-goneErr; !errors.Is(err, context.Canceled) {
			t.Errorf("old=%v: a caller that gave up: %v", old, err)
		}
		close(g.release)
		wg.Wait()
		srv.Close()

		for i, r := range results {
			if i == 2 {
				var be *signer.BatchError
				if r.sigs != nil || !errors.Is(r.err, signer.ErrRoleMismatch) || !errors.As(r.err, &be) || be.Index != 1 {
					t.Errorf("old=%v: refused batch: %v, %d signatures", old, r.err, len(r.sigs))
				}
				continue
			}
			if r.err != nil || len(r.sigs) != 2 {
				t.Fatalf("old=%v: call %d: %v, %d signatures", old, i, r.err, len(r.sigs))
			}
			for j, q := range calls[i] {
				key := ts
				if q.Role == metadata.SNAPSHOT {
					key = snap
				}
				pub, err := key.Public.ToPublicKey()
				if err != nil {
					t.Fatal(err)
				}
				if !ed25519.Verify(pub.(ed25519.PublicKey), q.Payload, r.sigs[j]) {
					t.Errorf("old=%v: call %d: signature %d is not over its own payload", old, i, j)
				}
			}
		}
		want := []string{api.PathSignBatch, api.PathSignBatches + " bbb"}
		if old {
			want = []string{api.PathSignBatch, api.PathSignBatches + " bbb", api.PathSignBatch, api.PathSignBatch, api.PathSignBatch}
		}
		rec.mu.Lock()
		got := rec.got
		rec.mu.Unlock()
		if strings.Join(got, ",") != strings.Join(want, ",") {
			t.Errorf("old=%v: requests %q, want %q", old, got, want)
		}
		amu.Lock()
		lines := audit.String()
		amu.Unlock()
		if n := strings.Count(lines, `"msg":"signed"`); n != 6 {
			t.Errorf("old=%v: %d signed lines, want 6:\n%s", old, n, lines)
		}
		if n := strings.Count(lines, `"msg":"signature refused"`); n != 2 {
			t.Errorf("old=%v: %d refused lines, want 2:\n%s", old, n, lines)
		}
		if strings.Count(lines, `"request_id":"call-2"`) != 2 || strings.Count(lines, `"request_id"`) != 4 {
			t.Errorf("old=%v: each batch's lines must carry its own request ID, and only its own:\n%s", old, lines)
		}
	}
}

// waitQueued waits until n calls are queued (the one in flight, already
// taken, does not count: n-1 of them plus the one that gives up).
func waitQueued(t *testing.T, c *Client, n int) {
	t.Helper()
	for range 5000 {
		c.co.mu.Lock()
		q := len(c.co.queue)
		c.co.mu.Unlock()
		if q == n {
			return
		}
		time.Sleep(time.Millisecond)
	}
	t.Fatalf("calls did not queue")
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
