package server_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/signetdev/signet/internal/tuftest"
	"github.com/signetdev/signet/server"
	"github.com/signetdev/signet/server/store/memstore"
	"github.com/signetdev/signet/server/tufrepo"
	"github.com/signetdev/signet/signer/api"
	"github.com/signetdev/signet/signer/keystore"
	"github.com/signetdev/signet/signer/signerclient"
)

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// lines returns the JSON log lines with msg.
func (l *lockedBuffer) lines(t *testing.T, msg string) []map[string]any {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []map[string]any
	for line := range bytes.SplitSeq(l.b.Bytes(), []byte("\n")) {
		var m map[string]any
		if json.Unmarshal(line, &m) == nil && m["msg"] == msg {
			out = append(out, m)
		}
	}
	return out
}

// TestRequestIDsReachTufrepoAndSigner: the X-Request-ID of a publish is on
// the server's access line, on tufrepo's "published" line and, sent as
// X-Request-ID over the signer API, on the signer's audit lines.
func TestRequestIDsReachTufrepoAndSigner(t *testing.T) {
	t.Parallel()
	clock := tuftest.NewClock()
	var serverLog, signerLog lockedBuffer
	sl := slog.New(slog.NewJSONHandler(&signerLog, &slog.HandlerOptions{Level: slog.LevelDebug}))
	signerHS := httptest.NewServer(api.New(keystore.NewMemory(keystore.WithClock(clock.Now)), sl, sl, prometheus.NewRegistry()).Routes())
	defer signerHS.Close()
	sg := signerclient.New(signerHS.URL, signerHS.Client())
	srv := server.New(memstore.New(), sg, server.WithSweepInterval(0), server.WithRepoOptions(tufrepo.WithClock(clock.Now)),
		server.WithLogger(slog.New(slog.NewJSONHandler(&serverLog, &slog.HandlerOptions{Level: slog.LevelDebug}))))
	hs := httptest.NewServer(srv.Handler())
	defer hs.Close()
	e := &env{t: t, url: hs.URL, clock: clock}
	e.dev = tuftest.NewRepo(t, clock.Now, e.key(gun, metadata.TIMESTAMP), e.key(gun, metadata.SNAPSHOT))
	body, ct := multipartBody(t, map[string][]byte{metadata.ROOT: e.dev.RootBytes(), metadata.TARGETS: e.dev.TargetsBytes()})
	resp, b := e.do(http.MethodPost, e.tufURL(gun), body, ct, "X-Request-ID", "publish-7f3a")
	if resp.StatusCode != 200 || resp.Header.Get("X-Request-ID") != "publish-7f3a" {
		t.Fatalf("publish: %d %s", resp.StatusCode, b)
	}
	published := serverLog.lines(t, "published")
	if len(published) != 1 || published[0]["request_id"] != "publish-7f3a" || published[0]["component"] != "tufrepo" {
		t.Fatalf("tufrepo's line: %v", published)
	}
	var ids []string
	for _, l := range signerLog.lines(t, "signed") {
		ids = append(ids, l["request_id"].(string))
	}
	if len(ids) != 2 || ids[0] != "publish-7f3a" || ids[1] != "publish-7f3a" { // snapshot and timestamp
		t.Fatalf("signer audit lines' request IDs: %v", ids)
	}
	access := serverLog.lines(t, "request")
	if len(access) == 0 || access[len(access)-1]["request_id"] != "publish-7f3a" {
		t.Fatalf("access line: %v", access)
	}
}

// TestExpiryGauge: /metrics says how long until the earliest timestamp and
// snapshot expire, and the value falls as time passes without re-signing.
func TestExpiryGauge(t *testing.T) {
	t.Parallel()
	clock := tuftest.NewClock()
	srv := server.New(memstore.New(), keystore.NewMemory(keystore.WithClock(clock.Now)), server.WithSweepInterval(0),
		server.WithClock(clock.Now), server.WithRepoOptions(tufrepo.WithClock(clock.Now), tufrepo.WithLifetimes(2*time.Hour, 48*time.Hour)))
	hs := httptest.NewServer(srv.Handler())
	defer hs.Close()
	e := &env{t: t, url: hs.URL, clock: clock}
	gauge := func(role string) (float64, bool) {
		_, body := e.do(http.MethodGet, e.url+"/metrics", nil, "")
		m := regexp.MustCompile(`(?m)^signet_metadata_expiry_seconds\{role="` + role + `"\} (\S+)$`).FindSubmatch(body)
		if m == nil {
			return 0, false
		}
		v, err := strconv.ParseFloat(string(m[1]), 64)
		if err != nil {
			t.Fatal(err)
		}
		return v, true
	}
	if _, ok := gauge("timestamp"); ok {
		t.Fatal("a gauge with no repository")
	}
	e.dev = tuftest.NewRepo(t, clock.Now, e.key(gun, metadata.TIMESTAMP), e.key(gun, metadata.SNAPSHOT))
	e.mustPublish(map[string][]byte{metadata.ROOT: e.dev.RootBytes(), metadata.TARGETS: e.dev.TargetsBytes()})
	clock.Advance(time.Minute) // past the gauge's refresh interval
	if v, ok := gauge("timestamp"); !ok || v != (2*time.Hour-time.Minute).Seconds() {
		t.Fatalf("timestamp: %v %v", v, ok)
	}
	if v, ok := gauge("snapshot"); !ok || v != (48*time.Hour-time.Minute).Seconds() {
		t.Fatalf("snapshot: %v %v", v, ok)
	}
	clock.Advance(3 * time.Hour) // nobody re-signed: expired
	if v, _ := gauge("timestamp"); v != -(time.Hour + time.Minute).Seconds() {
		t.Fatalf("after expiry: %v", v)
	}
}

// TestAnonymousReadsDoNotFillTheCache over HTTP: thousands of anonymous
// reads of made-up repositories leave the cache's counted bytes small and
// its table of unknown names at its bound; the real repository stays.
func TestAnonymousReadsDoNotFillTheCache(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.mustPublish(map[string][]byte{metadata.ROOT: e.dev.RootBytes(), metadata.TARGETS: e.dev.TargetsBytes()})
	if resp, _ := e.do(http.MethodGet, e.tufURL(gun)+"timestamp.json", nil, ""); resp.StatusCode != 200 {
		t.Fatal(resp.StatusCode)
	}
	for i := range 3000 {
		if resp, _ := e.do(http.MethodGet, fmt.Sprintf("%s/v2/registry.example.com/nobody/r%d/_trust/tuf/timestamp.json", e.url, i), nil, ""); resp.StatusCode != 404 {
			t.Fatalf("unknown repository: %d", resp.StatusCode)
		}
		if resp, _ := e.do(http.MethodGet, fmt.Sprintf("%s%d.root.json", e.tufURL(gun), i+2), nil, ""); resp.StatusCode != 404 {
			t.Fatalf("unknown version: %d", resp.StatusCode)
		}
	}
	_, body := e.do(http.MethodGet, e.url+"/metrics", nil, "")
	value := func(series string) float64 {
		m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(series) + ` (\S+)$`).FindSubmatch(body)
		if m == nil {
			t.Fatalf("no %s in /metrics", series)
		}
		v, _ := strconv.ParseFloat(string(m[1]), 64)
		return v
	}
	if known, absent, bytes := value(`signet_metadata_cache_repositories{state="known"}`), value(`signet_metadata_cache_repositories{state="absent"}`), value("signet_metadata_cache_bytes"); known != 1 || absent != 1024 || bytes > 64<<10 {
		t.Fatalf("after 6,000 anonymous misses: %v known, %v absent repositories, %v bytes", known, absent, bytes)
	}
}
