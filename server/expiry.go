package server

import (
	"context"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/signetdev/signet/server/store"
)

// expiryCollector exports signet_metadata_expiry_seconds{role}: seconds
// until the earliest expiry of the current timestamp and snapshot among
// all repositories, negative once something expired. Those are the roles
// the server re-signs itself; the gauge falling towards zero means upkeep
// is failing (signer down, sweep behind), before clients see expired
// metadata. It reads the store at most once per expiryRefresh, at scrape
// time, with two small indexed queries per role.
type expiryCollector struct {
	st   store.MetaStore
	now  func() time.Time
	desc *prometheus.Desc

	mu       sync.Mutex
	read     time.Time
	earliest map[string]time.Time
}

const expiryRefresh = 15 * time.Second

// farFuture is later than any expiry and still fits the stores' int64
// nanoseconds.
var farFuture = time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC)

func newExpiryCollector(st store.MetaStore, now func() time.Time) *expiryCollector {
	return &expiryCollector{st: st, now: now, desc: prometheus.NewDesc("signet_metadata_expiry_seconds",
		"Seconds until the earliest expiry of the current version of a server-signed role (timestamp, snapshot) among all repositories; negative once expired.",
		[]string{"role"}, nil)}
}

func (c *expiryCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *expiryCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	if c.earliest == nil || now.Sub(c.read) >= expiryRefresh || now.Before(c.read) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		if e, err := earliestExpiry(ctx, c.st); err == nil {
			c.earliest, c.read = e, now
		}
		cancel()
	}
	for role, t := range c.earliest {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, t.Sub(now).Seconds(), role)
	}
}

// earliestExpiry finds, per server-signed role, the soonest expiry of a
// current version (roles no repository has are left out).
func earliestExpiry(ctx context.Context, st store.MetaStore) (map[string]time.Time, error) {
	out := map[string]time.Time{}
	for _, role := range []string{metadata.TIMESTAMP, metadata.SNAPSHOT} {
		guns, err := st.Expiring(ctx, role, farFuture, 1)
		if err != nil {
			return nil, err
		}
		if len(guns) == 0 {
			continue
		}
		m, err := st.GetCurrent(ctx, guns[0], role)
		if err != nil {
			return nil, err
		}
		out[role] = m.Expires
	}
	return out, nil
}
