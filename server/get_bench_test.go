package server_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/signetdev/signet/client"
	"github.com/signetdev/signet/server"
	"github.com/signetdev/signet/server/store/memstore"
	"github.com/signetdev/signet/signer/keystore"
)

// BenchmarkGetTimestamp: one GET of timestamp.json through the whole
// handler chain (router, middleware, cache, headers), in process: the
// server's part of make bench's GET figure.
func BenchmarkGetTimestamp(b *testing.B) {
	srv := server.New(memstore.New(), keystore.NewMemory(), server.WithSweepInterval(0))
	h := srv.Handler()
	hs := httptest.NewServer(h)
	defer hs.Close()
	const gun = "bench.example.com/app"
	c, err := client.New(client.Options{Server: hs.URL, TrustDir: b.TempDir(), Keys: client.NewFileKeyStore(b.TempDir(), func(string, string) ([]byte, error) { return []byte("x"), nil }, 1<<10)})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := c.Init(context.Background(), gun); err != nil {
		b.Fatal(err)
	}
	req := httptest.NewRequest(http.MethodGet, "/v2/"+gun+"/_trust/tuf/timestamp.json", nil)
	req.RemoteAddr = "127.0.0.1:1234"
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code != http.StatusOK {
			b.Fatal(w.Code)
		}
	}
}
