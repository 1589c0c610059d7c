package admission_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admission/v1"

	"github.com/signetdev/signet/admission"
	"github.com/signetdev/signet/internal/testserver"
)

// BenchmarkReview measures one mutating review of a pod with one signed
// image against an in-process signet-server, through the webhook's
// handler (JSON in and out, no TLS):
//   - hit: the verified decision is cached;
//   - uncached: no cache; the policy's client holds the verified state in
//     memory and asks the server whether timestamp.json changed (one
//     conditional GET);
//   - cold: a fresh webhook and trust directory each time (root pinned,
//     a full TUF update).
func BenchmarkReview(b *testing.B) {
	srv := testserver.Start(b)
	repo := srv.Init(b, app)
	repo.Sign("1.0")
	body, err := json.Marshal(review(b, admissionv1.Create, "default", pod(ctr("app", app+":1.0")), nil))
	if err != nil {
		b.Fatal(err)
	}
	run := func(b *testing.B, h http.Handler) {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(http.MethodPost, admission.MutatePath+"?timeout=5s", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK || !bytes.Contains(rec.Body.Bytes(), []byte(`"allowed":true`)) {
			b.Fatalf("%d %s", rec.Code, rec.Body)
		}
	}
	for _, tc := range []struct {
		name string
		ttl  time.Duration
	}{{"hit", admission.DefaultCacheTTL}, {"uncached", -1}} {
		b.Run(tc.name, func(b *testing.B) {
			fx := newHook(b, srv, repo, func(o *admission.Options) { o.CacheTTL = tc.ttl })
			h := fx.hook.Config.Handler
			run(b, h)
			for b.Loop() {
				run(b, h)
			}
		})
	}
	b.Run("cold", func(b *testing.B) {
		for b.Loop() {
			b.StopTimer()
			fx := newHook(b, srv, repo)
			b.StartTimer()
			run(b, fx.hook.Config.Handler)
		}
	})
}
