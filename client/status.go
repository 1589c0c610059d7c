package client

import (
	"context"
	"errors"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// RoleExpiry is one role's expiry, from Status.
type RoleExpiry struct {
	Role    string    `json:"role"`
	Version int64     `json:"version"`
	Expires time.Time `json:"expires"`
	// Expired: the role has expired; resolves of the repository fail.
	Expired bool `json:"expired,omitempty"`
	// Soon: a developer-signed role that expires within 30 days.
	Soon bool `json:"expires_soon,omitempty"`
}

// Status updates gun and reports when each role expires: the top-level
// roles and every published delegated role (hashed bins included). When
// some role has expired (a plain update fails then), it still reports
// every role, from metadata verified in full except for expiry, with
// Expired set, so that a person sees what to re-sign; the error wraps
// ErrExpired then.
func (c *Client) Status(ctx context.Context, gun string) ([]RoleExpiry, error) {
	out, err := c.status(ctx, gun)
	if !errors.Is(err, ErrExpired) {
		return out, err
	}
	// Verify everything but expiry: go-tuf checks expiry against its
	// reference time, so a client whose clock reads the Unix epoch accepts
	// expired metadata and checks every signature, threshold and version.
	lenient := c.opts
	lenient.Now = func() time.Time { return time.Unix(0, 0) }
	lenient.MaxStaleness = 0
	lenient.Keys = c.keys
	lc, lerr := New(lenient)
	if lerr != nil {
		return nil, err
	}
	lc.hc = c.hc
	out, lerr = lc.status(ctx, gun)
	if lerr != nil {
		return nil, err
	}
	now := c.opts.Now()
	for i := range out {
		out[i].Expired = !out[i].Expires.After(now)
		out[i].Soon = !out[i].Expired && out[i].Role != metadata.TIMESTAMP && out[i].Role != metadata.SNAPSHOT && out[i].Expires.Sub(now) < 30*24*time.Hour
	}
	return out, err
}

func (c *Client) status(ctx context.Context, gun string) ([]RoleExpiry, error) {
	ctx, cancel := context.WithTimeout(ctx, c.opts.Timeout)
	defer cancel()
	var out []RoleExpiry
	err := c.withLockedState(ctx, gun, func(s *roleState) error {
		tm := s.trusted
		out = []RoleExpiry{
			{Role: metadata.ROOT, Version: tm.Root.Signed.Version, Expires: tm.Root.Signed.Expires},
			{Role: metadata.TIMESTAMP, Version: tm.Timestamp.Signed.Version, Expires: tm.Timestamp.Signed.Expires},
			{Role: metadata.SNAPSHOT, Version: tm.Snapshot.Signed.Version, Expires: tm.Snapshot.Signed.Expires},
		}
		return s.each(func(name string, t *metadata.Metadata[metadata.TargetsType]) {
			out = append(out, RoleExpiry{Role: name, Version: t.Signed.Version, Expires: t.Signed.Expires})
		})
	})
	if err != nil {
		return nil, err
	}
	now := c.opts.Now()
	for i := range out {
		// The server keeps timestamp (and its own snapshots) fresh.
		out[i].Soon = out[i].Role != metadata.TIMESTAMP && out[i].Role != metadata.SNAPSHOT && out[i].Expires.Sub(now) < 30*24*time.Hour
	}
	return out, nil
}
