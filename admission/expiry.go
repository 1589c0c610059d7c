package admission

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/signetdev/signet/client"
)

// TrustExpiry reads, from a trust directory the policy keeps, when the
// verified metadata of a repository expires: the earliest expiry of its
// root, timestamp, snapshot and top-level targets, and of the delegated
// role that vouched. It reads and verifies only what is on disk (the state
// the policy's check has just verified and stored there) and never asks
// the network: its HTTP client refuses every request, so a repository
// without verified state gives an error and its decision is not cached.
// Intermediate delegators between targets and the vouching role are not
// included; a TUF update by the policy checks them on every miss. Safe
// for concurrent use.
type TrustExpiry struct {
	c *client.Client
}

// offline refuses every request.
type offline struct{}

func (offline) RoundTrip(*http.Request) (*http.Response, error) {
	return nil, errors.New("admission: the expiry reader reads the trust directory only")
}

// NewTrustExpiry reads trustDir, the policy file's trust_dir.
func NewTrustExpiry(trustDir string) (*TrustExpiry, error) {
	c, err := client.New(client.Options{
		Server:     "http://signet.invalid",
		TrustDir:   trustDir,
		HTTPClient: &http.Client{Transport: offline{}},
		// Read the stored state however old it is (go-tuf's local mode
		// still verifies signatures and expiry against the stored root).
		MaxStaleness: 100 * 365 * 24 * time.Hour,
		Timeout:      2 * time.Second,
	})
	if err != nil {
		return nil, fmt.Errorf("admission: %w", err)
	}
	return &TrustExpiry{c: c}, nil
}

// Expires implements Expirer.
func (e *TrustExpiry) Expires(ctx context.Context, name, role string) (time.Time, error) {
	tm, err := e.c.Update(ctx, name)
	if err != nil {
		return time.Time{}, fmt.Errorf("admission: expiry of %s: %w", name, err)
	}
	if tm.Root == nil || tm.Timestamp == nil || tm.Snapshot == nil || tm.Targets[metadata.TARGETS] == nil {
		return time.Time{}, fmt.Errorf("admission: expiry of %s: incomplete trusted metadata", name)
	}
	first := tm.Root.Signed.Expires
	for _, t := range []time.Time{tm.Timestamp.Signed.Expires, tm.Snapshot.Signed.Expires, tm.Targets[metadata.TARGETS].Signed.Expires} {
		if t.Before(first) {
			first = t
		}
	}
	if role != metadata.TARGETS {
		m, err := e.c.Role(ctx, name, role)
		if err != nil {
			return time.Time{}, fmt.Errorf("admission: expiry of %s %s: %w", name, role, err)
		}
		if m.Signed.Expires.Before(first) {
			first = m.Signed.Expires
		}
	}
	return first, nil
}
