package server

import (
	"context"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/signetdev/signet/server/metacache"
	"github.com/signetdev/signet/signer"
)

// metrics of one Server. No label takes unbounded values: routes are chi
// patterns and never contain a GUN or tag.
type metrics struct {
	registry  *prometheus.Registry
	requests  *prometheus.CounterVec
	latency   *prometheus.HistogramVec
	publishes *prometheus.CounterVec
	refreshes prometheus.Counter
	signer    *prometheus.HistogramVec

	series sync.Map // seriesKey → *requestSeries
	routes sync.Map // inner route pattern → its label
}

func newMetrics(reg *prometheus.Registry, cacheStats func() (hits, misses uint64)) *metrics {
	m := &metrics{
		registry: reg,
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "signet_http_requests_total", Help: "HTTP requests by method, route pattern and status code.",
		}, []string{"method", "route", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "signet_http_request_duration_seconds", Help: "HTTP request latency by method and route pattern.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}, []string{"method", "route"}),
		publishes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "signet_publishes_total", Help: "Publishes by result: accepted, or the refusal code.",
		}, []string{"result"}),
		refreshes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "signet_timestamps_resigned_total", Help: "Timestamps re-signed by upkeep (on read or by the sweep).",
		}),
		signer: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "signet_signer_call_duration_seconds", Help: "Calls to the online signer by operation and result (ok or error).",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}, []string{"op", "result"}),
	}
	reg.MustRegister(m.requests, m.latency, m.publishes, m.refreshes, m.signer,
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "signet_metadata_cache_hits_total", Help: "Metadata reads answered from memory.",
		}, func() float64 { h, _ := cacheStats(); return float64(h) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "signet_metadata_cache_misses_total", Help: "Metadata reads that went to the store.",
		}, func() float64 { _, m := cacheStats(); return float64(m) }),
	)
	return m
}

// observeRequest counts a request and its latency. The series of a (method,
// route, code) are looked up once and kept: WithLabelValues hashes the
// labels and takes a lock on every call, which was a visible part of a
// read.
func (m *metrics) observeRequest(method, route string, code int, d time.Duration) {
	k := seriesKey{method: method, route: route, code: code}
	v, ok := m.series.Load(k)
	if !ok {
		v, _ = m.series.LoadOrStore(k, &requestSeries{
			requests: m.requests.WithLabelValues(method, k.route, strconv.Itoa(code)),
			latency:  m.latency.WithLabelValues(method, k.route),
		})
	}
	rs := v.(*requestSeries)
	rs.requests.Inc()
	rs.latency.Observe(d.Seconds())
}

// seriesKey names one request series; every part is bounded (methodLabel,
// route patterns, the status codes handlers write).
type seriesKey struct {
	method, route string
	code          int
}

type requestSeries struct {
	requests prometheus.Counter
	latency  prometheus.Observer
}

// methodLabel is the method label of a request: net/http accepts any
// token as a method, and each would otherwise be a new series for as long
// as the process runs.
func methodLabel(method string) string {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions, http.MethodConnect, http.MethodTrace:
		return method
	}
	return "other"
}

func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{Registry: m.registry})
}

// routeLabel names the matched route pattern, with the GUN shown as {gun}.
func routeLabel(r *http.Request) string {
	rctx := chi.RouteContext(r.Context())
	if rctx == nil || len(rctx.RoutePatterns) == 0 {
		return "unmatched"
	}
	p := rctx.RoutePatterns
	if p[0] == "/v2/*" {
		if len(p) == 1 {
			return "unmatched"
		}
		return "/v2/{gun}" + p[len(p)-1]
	}
	return rctx.RoutePattern()
}

// routeLabel is the package's routeLabel, with the labels of repository
// routes kept (one per pattern of the route table) instead of built for
// every request.
func (m *metrics) routeLabel(r *http.Request) string {
	rctx := chi.RouteContext(r.Context())
	if rctx == nil || len(rctx.RoutePatterns) < 2 || rctx.RoutePatterns[0] != "/v2/*" {
		return routeLabel(r)
	}
	inner := rctx.RoutePatterns[len(rctx.RoutePatterns)-1]
	if l, ok := m.routes.Load(inner); ok {
		return l.(string)
	}
	l, _ := m.routes.LoadOrStore(inner, routeLabel(r))
	return l.(string)
}

// registerCacheSize exports what the read cache holds, so that its bound
// can be watched: bytes counted, and repositories cached (known) or
// remembered as holding nothing (absent).
func registerCacheSize(reg *prometheus.Registry, c *metacache.Cache) {
	reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "signet_metadata_cache_bytes", Help: "Bytes the metadata cache counts (data and measured overhead).",
		}, func() float64 { return float64(c.Size()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "signet_metadata_cache_repositories", Help: "Repositories in the metadata cache: known (with metadata) or absent (remembered as unknown).",
			ConstLabels: prometheus.Labels{"state": "known"},
		}, func() float64 { k, _ := c.Len(); return float64(k) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "signet_metadata_cache_repositories", Help: "Repositories in the metadata cache: known (with metadata) or absent (remembered as unknown).",
			ConstLabels: prometheus.Labels{"state": "absent"},
		}, func() float64 { _, a := c.Len(); return float64(a) }),
	)
}

// poolStats is implemented by stores with a connection pool.
type poolStats interface {
	PoolStats() (acquired, idle, total, max int32)
}

func (m *metrics) registerPool(p poolStats) {
	gauge := func(name, help string, f func(a, i, t, mx int32) int32) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, func() float64 {
			return float64(f(p.PoolStats()))
		})
	}
	m.registry.MustRegister(
		gauge("signet_db_pool_acquired_connections", "Database connections in use.", func(a, _, _, _ int32) int32 { return a }),
		gauge("signet_db_pool_idle_connections", "Idle database connections.", func(_, i, _, _ int32) int32 { return i }),
		gauge("signet_db_pool_total_connections", "Open database connections.", func(_, _, t, _ int32) int32 { return t }),
		gauge("signet_db_pool_max_connections", "Largest database pool size.", func(_, _, _, mx int32) int32 { return mx }),
	)
}

// instrumentedSigner measures every call to the signer.
type instrumentedSigner struct {
	signer.Service
	hist *prometheus.HistogramVec
}

func (s instrumentedSigner) observe(op string, start time.Time, err error) {
	result := "ok"
	if err != nil {
		result = "error"
	}
	s.hist.WithLabelValues(op, result).Observe(time.Since(start).Seconds())
}

func (s instrumentedSigner) EnsureKey(ctx context.Context, gun, role string, alg signer.Algorithm) (k *signer.KeyInfo, err error) {
	defer func(start time.Time) { s.observe("ensure_key", start, err) }(time.Now())
	return s.Service.EnsureKey(ctx, gun, role, alg)
}

func (s instrumentedSigner) RotateKey(ctx context.Context, gun, role string, alg signer.Algorithm) (k *signer.KeyInfo, err error) {
	defer func(start time.Time) { s.observe("rotate_key", start, err) }(time.Now())
	return s.Service.RotateKey(ctx, gun, role, alg)
}

func (s instrumentedSigner) PublicKey(ctx context.Context, gun, role string) (k *signer.KeyInfo, err error) {
	defer func(start time.Time) { s.observe("public_key", start, err) }(time.Now())
	return s.Service.PublicKey(ctx, gun, role)
}

func (s instrumentedSigner) ListKeys(ctx context.Context, gun string) (k []signer.KeyInfo, err error) {
	defer func(start time.Time) { s.observe("list_keys", start, err) }(time.Now())
	return s.Service.ListKeys(ctx, gun)
}

func (s instrumentedSigner) Sign(ctx context.Context, gun, role, keyID string, payload []byte) (sig []byte, err error) {
	defer func(start time.Time) { s.observe("sign", start, err) }(time.Now())
	return s.Service.Sign(ctx, gun, role, keyID, payload)
}

func (s instrumentedSigner) SignBatch(ctx context.Context, reqs []signer.SignRequest) (sigs [][]byte, err error) {
	defer func(start time.Time) { s.observe("sign_batch", start, err) }(time.Now())
	return s.Service.SignBatch(ctx, reqs)
}

func (s instrumentedSigner) DeleteKeys(ctx context.Context, gun string) (err error) {
	defer func(start time.Time) { s.observe("delete_keys", start, err) }(time.Now())
	return s.Service.DeleteKeys(ctx, gun)
}
