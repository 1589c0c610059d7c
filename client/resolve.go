package client

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/distribution/reference"
	"github.com/opencontainers/go-digest"
	"github.com/theupdateframework/go-tuf/v2/metadata"
	"github.com/theupdateframework/go-tuf/v2/metadata/config"
	"github.com/theupdateframework/go-tuf/v2/metadata/trustedmetadata"
	"github.com/theupdateframework/go-tuf/v2/metadata/updater"
)

// Target is a trusted tag.
type Target struct {
	GUN    string
	Tag    string
	Digest digest.Digest
	Size   int64
	// Role is the role whose metadata lists the tag.
	Role string
}

// ParseRef splits "registry.example.com/team/app:1.2" into GUN and tag.
func ParseRef(ref string) (gun, tag string, err error) {
	r, err := reference.Parse(ref)
	if err != nil {
		return "", "", fmt.Errorf("client: %q is not an image reference: %w", ref, err)
	}
	nt, ok := r.(reference.NamedTagged)
	if !ok {
		return "", "", fmt.Errorf("client: %q has no tag (want NAME:TAG)", ref)
	}
	return nt.Name(), nt.Tag(), nil
}

// Resolve returns the target that the repository's trusted keys vouch for
// under ref's tag, after a TUF update of the repository (unless the cache
// is younger than MaxStaleness).
func (c *Client) Resolve(ctx context.Context, ref string) (*Target, error) {
	gun, tag, err := ParseRef(ref)
	if err != nil {
		return nil, err
	}
	var t *Target
	err = c.withState(ctx, gun, func(up *updater.Updater) error {
		if _, err := up.GetTargetInfo(tag); err != nil {
			if te := classify(gun, err); errors.As(te, new(*TrustError)) {
				return te
			}
			// go-tuf reports a tag no trusted role lists with an untyped
			// error, and stops at a delegation that was never signed (no
			// snapshot entry). The walk below treats such a delegation as
			// empty, as Notary did, and goes on.
		}
		trusted := up.GetTrustedMetadataSet()
		s := c.roleState(ctx, gun, &trusted)
		role, err := s.listing(tag)
		if err != nil {
			return err
		}
		t, err = targetOf(gun, tag, role, trusted.Targets[role].Signed.Targets[tag])
		return err
	})
	return t, err
}

// withState runs fn on gun's verified state, with the GUN locked and the
// call bounded by the client's timeout.
func (c *Client) withState(ctx context.Context, gun string, fn func(*updater.Updater) error) error {
	ctx, cancel := context.WithTimeout(ctx, c.opts.Timeout)
	defer cancel()
	unlock, err := c.lock(gun)
	if err != nil {
		return err
	}
	defer unlock()
	up, err := c.current(ctx, gun)
	if err != nil {
		return err
	}
	return fn(up)
}

// targetOf turns the entry of tag in role into a Target; it must name a
// sha256 digest.
func targetOf(gun, tag, role string, tf *metadata.TargetFiles) (*Target, error) {
	sum, ok := tf.Hashes["sha256"]
	if !ok || len(sum) != 32 {
		return nil, &TrustError{GUN: gun, Kind: ErrInvalid, Err: fmt.Errorf("%s lists %s without a sha256 digest", role, tag)}
	}
	return target(gun, tag, role, tf), nil
}

// target describes the entry of tag in role; Digest is empty when the
// entry names no sha256 (targetOf refuses such an entry).
func target(gun, tag, role string, tf *metadata.TargetFiles) *Target {
	t := &Target{GUN: gun, Tag: tag, Size: tf.Length, Role: role}
	if sum, ok := tf.Hashes["sha256"]; ok {
		t.Digest = digest.NewDigestFromEncoded(digest.SHA256, hex.EncodeToString(sum))
	}
	return t
}

// Update runs a TUF update of gun (timestamp, snapshot, top-level targets)
// and returns the trusted metadata.
func (c *Client) Update(ctx context.Context, gun string) (*trustedmetadata.TrustedMetadata, error) {
	var trusted trustedmetadata.TrustedMetadata
	err := c.withState(ctx, gun, func(up *updater.Updater) error {
		trusted = up.GetTrustedMetadataSet()
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &trusted, nil
}

// current returns an updater holding gun's verified state: the warm one if
// the server's timestamp is unchanged and nothing has expired, else a fresh
// update. The caller holds the lock.
func (c *Client) current(ctx context.Context, gun string) (*updater.Updater, error) {
	c.mu.Lock()
	w := c.warm[gun]
	c.mu.Unlock()
	if w != nil {
		w.f.ctx = ctx
		if !expired(w.up.GetTrustedMetadataSet(), c.opts.Now()) && w.f.unchanged(c.tufURL(gun)+"timestamp.json", w.etag) {
			return w.up, nil
		}
	}
	up, f, err := c.update(ctx, gun, nil)
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.warm, gun)
	if err == nil && f.etag != "" && c.opts.MaxStaleness == 0 {
		c.warm[gun] = &warmState{up: up, f: f, etag: f.etag}
	}
	return up, err
}

// expired reports whether any loaded top-level role has expired.
func expired(tm trustedmetadata.TrustedMetadata, now time.Time) bool {
	if tm.Root == nil || tm.Timestamp == nil || tm.Snapshot == nil || tm.Root.Signed.IsExpired(now) ||
		tm.Timestamp.Signed.IsExpired(now) || tm.Snapshot.Signed.IsExpired(now) {
		return true
	}
	for _, t := range tm.Targets {
		if t.Signed.IsExpired(now) {
			return true
		}
	}
	return false
}

// update builds a fresh go-tuf updater (an Updater refreshes once and is
// not safe for concurrent use) and refreshes it. The caller holds the lock.
func (c *Client) update(ctx context.Context, gun string, fetched *int64) (*updater.Updater, *fetcher, error) {
	dir := c.cacheDir(gun)
	root, err := c.trustedRoot(ctx, gun)
	if err != nil {
		return nil, nil, err
	}
	cfg, err := config.New(c.tufURL(gun), root)
	if err != nil {
		return nil, nil, fmt.Errorf("client: %w", err)
	}
	cfg.LocalMetadataDir = dir
	cfg.LocalTargetsDir = filepath.Join(dir, "targets")
	cfg.TargetsMaxLength = 64 << 20
	cfg.SnapshotMaxLength = 16 << 20
	f := &fetcher{ctx: ctx, hc: c.hc, token: c.opts.Token, bytes: fetched}
	if f.hc, err = c.httpFor(ctx, gun, "pull"); err != nil {
		return nil, nil, err
	}
	cfg.Fetcher = f
	stamp := filepath.Join(dir, ".updated")
	if c.opts.MaxStaleness > 0 {
		if fi, err := os.Stat(stamp); err == nil && time.Since(fi.ModTime()) < c.opts.MaxStaleness {
			cfg.UnsafeLocalMode = true
		}
	}
	up, err := updater.New(cfg)
	if err != nil {
		return nil, nil, classify(gun, err)
	}
	up.UnsafeSetRefTime(c.opts.Now())
	if err := up.Refresh(); err != nil {
		var he *metadata.ErrDownloadHTTP
		if errors.As(err, &he) && he.StatusCode == http.StatusNotFound {
			return nil, nil, fmt.Errorf("client: %s has no trust data on %s: %w", gun, c.opts.Server, ErrNotSigned)
		}
		te := classify(gun, err)
		var tErr *TrustError
		if errors.As(te, &tErr) && tErr.Kind == ErrExpired {
			if ts := up.GetTrustedMetadataSet().Timestamp; ts != nil {
				tErr.Expires = ts.Signed.Expires
			}
		}
		return nil, nil, te
	}
	if !cfg.UnsafeLocalMode {
		_ = os.WriteFile(stamp, nil, 0o600)
	}
	return up, f, nil
}

// trustedRoot returns the root to start the chain from: the newest root
// this trust directory verified (go-tuf keeps it in the cache), else the
// pinned root, else, with TOFU only, the server's first root (then pinned).
func (c *Client) trustedRoot(ctx context.Context, gun string) ([]byte, error) {
	for _, f := range []string{filepath.Join(c.cacheDir(gun), "root.json"), c.pinFile(gun)} {
		data, err := os.ReadFile(f)
		if err == nil {
			return data, nil
		}
		if !errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("client: %w", err)
		}
	}
	if !c.opts.TOFU {
		return nil, fmt.Errorf("client: %s: %w: pin its root first (signet trust pin %s --root root.json, with the root.json from the repository's key ceremony or `signet trust show %s` on a trusted machine)", gun, ErrNoTrust, gun, gun)
	}
	hc, err := c.httpFor(ctx, gun, "pull")
	if err != nil {
		return nil, err
	}
	f := &fetcher{ctx: ctx, hc: hc, token: c.opts.Token}
	data, err := f.DownloadFile(c.tufURL(gun)+"1.root.json", 512_000, 0)
	if err != nil {
		return nil, fmt.Errorf("client: trust on first use of %s: %w", gun, err)
	}
	c.log.WarnContext(ctx, "trusting the server's first root (TOFU)", "gun", gun)
	if err := c.PinRoot(gun, data); err != nil {
		return nil, err
	}
	return data, nil
}

// PinRoot makes root (a root.json, e.g. from the key ceremony) the trust
// anchor of gun in this trust directory. It must verify by itself.
func (c *Client) PinRoot(gun string, root []byte) error {
	if _, err := trustedmetadata.New(root); err != nil {
		return fmt.Errorf("client: pin %s: the root does not verify by itself: %w", gun, err)
	}
	f := c.pinFile(gun)
	if err := os.MkdirAll(filepath.Dir(f), 0o700); err != nil {
		return fmt.Errorf("client: %w", err)
	}
	if err := os.WriteFile(f, root, 0o600); err != nil {
		return fmt.Errorf("client: %w", err)
	}
	return nil
}

// PinnedRoot returns the pinned root.json of gun.
func (c *Client) PinnedRoot(gun string) ([]byte, error) {
	data, err := os.ReadFile(c.pinFile(gun))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("client: %s: %w", gun, ErrNoTrust)
	}
	return data, err
}
