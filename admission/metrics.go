package admission

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/signetdev/signet/client"
	"github.com/signetdev/signet/policy"
)

// metrics are the webhook's Prometheus metrics. No label carries an image
// or repository name (unbounded, and not every name is public).
type metrics struct {
	reviews   *prometheus.CounterVec
	decisions *prometheus.CounterVec
	latency   *prometheus.HistogramVec
	cache     *prometheus.CounterVec
}

func newMetrics() *metrics {
	return &metrics{
		reviews: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "signet_admission_reviews_total",
			Help: "Admission reviews answered, by endpoint and result (allowed, denied, bad_request).",
		}, []string{"endpoint", "result"}),
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "signet_admission_decisions_total",
			Help: "Image decisions, by endpoint, result (allow, deny) and reason class.",
		}, []string{"endpoint", "result", "reason"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "signet_admission_review_duration_seconds",
			Help:    "Time to answer one admission review.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"endpoint"}),
		cache: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "signet_admission_cache_lookups_total",
			Help: "Cache lookups of signed-image decisions, by result (hit; miss: a policy check; shared: joined a check already running).",
		}, []string{"result"}),
	}
}

func (m *metrics) register(r prometheus.Registerer, c *cache) error {
	cs := []prometheus.Collector{m.reviews, m.decisions, m.latency, m.cache}
	if c != nil {
		cs = append(cs, prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "signet_admission_cache_entries",
			Help: "Signed-image decisions held in the cache.",
		}, func() float64 { return float64(c.len()) }))
	}
	for _, col := range cs {
		if err := r.Register(col); err != nil {
			return err
		}
	}
	return nil
}

// classOf is the reason class of a refused policy decision.
func classOf(d policy.Decision) string {
	var ns *client.NotSignedError
	var te *client.TrustError
	switch {
	case d.Verdict == policy.Error:
		return "unavailable"
	case d.Name == "":
		return "invalid_reference"
	case d.Rule == "default":
		return "no_rule"
	case errors.As(d.Err, &ns), errors.Is(d.Err, client.ErrNotSigned):
		return "not_signed"
	case errors.As(d.Err, &te) && te.Kind == client.ErrExpired:
		return "expired"
	case errors.As(d.Err, &te):
		return "untrusted"
	case errors.Is(d.Err, client.ErrNoTrust):
		return "no_trusted_root"
	case d.Err == nil && d.Role != "":
		return "role_not_accepted"
	}
	return "denied"
}
