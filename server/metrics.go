package server

import (
	"net/http"
	"strconv"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metrics of one Server. No label takes unbounded values: routes are chi
// patterns and never contain a GUN or tag.
type metrics struct {
	registry  *prometheus.Registry
	requests  *prometheus.CounterVec
	latency   *prometheus.HistogramVec
	publishes *prometheus.CounterVec
	refreshes prometheus.Counter
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
	}
	reg.MustRegister(m.requests, m.latency, m.publishes, m.refreshes,
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "signet_metadata_cache_hits_total", Help: "Metadata reads answered from memory.",
		}, func() float64 { h, _ := cacheStats(); return float64(h) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "signet_metadata_cache_misses_total", Help: "Metadata reads that went to the store.",
		}, func() float64 { _, m := cacheStats(); return float64(m) }),
	)
	return m
}

func (m *metrics) observeRequest(method, route string, status int, d time.Duration) {
	m.requests.WithLabelValues(method, route, strconv.Itoa(status)).Inc()
	m.latency.WithLabelValues(method, route).Observe(d.Seconds())
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
