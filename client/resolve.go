package client

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"time"

	"github.com/opencontainers/go-digest"
	"github.com/theupdateframework/go-tuf/v2/metadata"
	"github.com/theupdateframework/go-tuf/v2/metadata/trustedmetadata"

	"github.com/signetdev/signet/imageref"
)

// Target is a trusted tag.
type Target struct {
	GUN    string
	Tag    string
	Digest digest.Digest
	Size   int64
	// Role is the role whose metadata lists the tag.
	Role string
	// Expires (Resolve only) is the earliest expiry of the metadata the
	// resolve relied on: root, timestamp, snapshot and every role its walk
	// read. A decision taken on this target is valid until then at most.
	Expires time.Time
}

// ParseRef splits "registry.example.com/team/app:1.2" into GUN and tag. The
// GUN is the name normalised as Docker does (imageref.Parse): "alpine:3"
// is docker.io/library/alpine, tag 3. A reference must name a tag and no
// digest: comparing a digest with what the tag vouches for is the
// caller's part (the policy package does it).
func ParseRef(ref string) (gun, tag string, err error) {
	r, err := imageref.Parse(ref)
	if err != nil {
		return "", "", fmt.Errorf("client: %w", err)
	}
	if r.Digest != "" {
		return "", "", fmt.Errorf("client: %q carries a digest; resolve NAME:TAG and compare the digest it vouches for", ref)
	}
	if r.Tag == "" {
		return "", "", fmt.Errorf("client: %q has no tag (want NAME:TAG)", ref)
	}
	return r.Name, r.Tag, nil
}

// Resolve returns the target that the repository's trusted keys vouch for
// under ref's tag, after a TUF update of the repository (unless the cache
// is younger than MaxStaleness). It follows TUF §5.6 exactly: the
// delegation walk visits roles in pre-order, and a role it reaches that the
// trusted snapshot does not list, or that does not verify, ends the lookup
// with a *TrustError: never a fall-through to the next role.
func (c *Client) Resolve(ctx context.Context, ref string) (*Target, error) {
	return c.resolve(ctx, ref, false)
}

// ResolveOnce is Resolve for a caller that resolves one reference and
// stops (signet resolve, signet verify): with no warm view of the
// repository to answer from, it verifies every role its walk reads exactly
// as Resolve does but keeps, of each, only the entry of ref's tag (a
// 100,000-tag role decoded in full takes about 50 MB), and keeps no warm
// view for the next call. A client that resolves again uses Resolve.
func (c *Client) ResolveOnce(ctx context.Context, ref string) (*Target, error) {
	return c.resolve(ctx, ref, true)
}

func (c *Client) resolve(ctx context.Context, ref string, once bool) (*Target, error) {
	gun, tag, err := ParseRef(ref)
	if err != nil {
		return nil, err
	}
	var only []string
	if once {
		only = []string{tag}
	}
	var t *Target
	err = c.withView(ctx, gun, false, only, func(s *repoState) error {
		tm := s.trusted
		expires := earliest(tm.Root.Signed.Expires, tm.Timestamp.Signed.Expires, tm.Snapshot.Signed.Expires)
		role, tf, err := s.lookup(tag, func(role, parent string, pm *metadata.Metadata[metadata.TargetsType]) (*metadata.Metadata[metadata.TargetsType], error) {
			m, err := s.load(role, parent, pm)
			if err == nil {
				expires = earliest(expires, m.Signed.Expires)
			}
			return m, err
		})
		if err != nil {
			return err
		}
		if tf == nil {
			return &NotSignedError{GUN: gun, Tag: tag}
		}
		if t, err = targetOf(gun, tag, role, tf); err == nil {
			t.Expires = expires
		}
		return err
	})
	return t, err
}

func earliest(t time.Time, more ...time.Time) time.Time {
	for _, u := range more {
		if u.Before(t) {
			t = u
		}
	}
	return t
}

// withRepo runs fn on gun's verified view, with the GUN locked and the
// call bounded by the client's timeout.
func (c *Client) withRepo(ctx context.Context, gun string, fn func(*repoState) error) error {
	return c.withView(ctx, gun, false, nil, fn)
}

// withView is withRepo; with renew, for a change about to be published,
// a view whose targets or delegated roles have expired is made again as a
// renewing view (repoState.renewing), so that their key holders can
// re-sign them. An expired root, timestamp or snapshot, and every other
// failure, still ends the call. With only not nil (ResolveOnce), a view
// made for the call keeps only the entries of those tags (repoState.only).
func (c *Client) withView(ctx context.Context, gun string, renew bool, only []string, fn func(*repoState) error) error {
	ctx, cancel := context.WithTimeout(ctx, c.opts.Timeout)
	defer cancel()
	unlock, err := c.lock(gun)
	if err != nil {
		return err
	}
	defer unlock()
	s, err := c.current(ctx, gun, only)
	if renew && errors.Is(err, ErrExpired) {
		c.log.InfoContext(ctx, "some role has expired; verifying it but for its expiry, to re-sign it", "gun", gun)
		s, err = c.refresh(ctx, gun, nil, true, nil)
	}
	if err != nil {
		return err
	}
	return fn(s)
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

// Update runs a TUF update of gun (root chain, timestamp, snapshot,
// top-level targets) and returns the trusted top-level metadata.
func (c *Client) Update(ctx context.Context, gun string) (*trustedmetadata.TrustedMetadata, error) {
	var trusted trustedmetadata.TrustedMetadata
	err := c.withRepo(ctx, gun, func(s *repoState) error {
		trusted = *s.trusted
		trusted.Targets = maps.Clone(s.trusted.Targets)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &trusted, nil
}

// current returns gun's verified view: the warm one while nothing
// top-level has expired and either it was checked against the server less
// than MaxStaleness ago or the server's timestamp.json is unchanged (a
// conditional GET answers 304), else a fresh refresh. A warm view keeps the
// delegated roles it verified, each under the delegator it was verified
// against. The caller holds the lock. A view made with only (see
// repoState.only) is returned but not kept.
func (c *Client) current(ctx context.Context, gun string, only []string) (*repoState, error) {
	now := c.opts.Now().UTC()
	c.mu.Lock()
	w := c.warm[gun]
	c.mu.Unlock()
	var ahead *fetched // the new timestamp.json, when the conditional GET got one
	if w != nil {
		w.ctx, w.f.ctx = ctx, ctx
		fresh := c.opts.MaxStaleness > 0 && now.Sub(w.updated) < c.opts.MaxStaleness
		same := false
		if !w.expired(now) && !fresh {
			same, ahead = w.f.unchanged(c.tufURL(gun)+"timestamp.json", w.f.etag)
		}
		if !w.expired(now) && (fresh || same) {
			w.trusted.RefTime = now
			if !fresh {
				w.updated = now
			}
			return w, nil
		}
	}
	s, err := c.refresh(ctx, gun, ahead, false, only)
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.warm, gun)
	if err == nil && s.only == nil && (s.f.etag != "" || c.opts.MaxStaleness > 0) {
		c.warm[gun] = s
	}
	return s, err
}

// trustedRoot returns the root to start the chain from: the newest root
// this trust directory verified (go-tuf keeps it in the cache), else the
// pinned root, else, with TOFU only, the server's first root (then pinned).
func (c *Client) trustedRoot(ctx context.Context, gun string) (data []byte, cached bool, err error) {
	for i, f := range []string{filepath.Join(c.cacheDir(gun), "root.json"), c.pinFile(gun)} {
		data, err := os.ReadFile(f)
		if err == nil {
			return data, i == 0, nil
		}
		if !errors.Is(err, os.ErrNotExist) {
			return nil, false, fmt.Errorf("client: %w", err)
		}
	}
	if !c.opts.TOFU {
		return nil, false, fmt.Errorf("client: %s: %w: pin its root first (signet trust pin %s --root root.json, with the root.json from the repository's key ceremony or `signet trust show %s` on a trusted machine)", gun, ErrNoTrust, gun, gun)
	}
	hc, err := c.httpFor(ctx, gun, "pull")
	if err != nil {
		return nil, false, err
	}
	f := &fetcher{ctx: ctx, hc: hc, token: c.opts.Token}
	data, err = f.DownloadFile(c.tufURL(gun)+"1.root.json", rootMaxLength, 0)
	if err != nil {
		return nil, false, fmt.Errorf("client: trust on first use of %s: %w", gun, err)
	}
	c.log.WarnContext(ctx, "trusting the server's first root (TOFU)", "gun", gun)
	// The lock is held and nothing was pinned: no cache to clear.
	if err := c.writePin(gun, data); err != nil {
		return nil, false, err
	}
	return data, false, nil
}

// PinRoot makes root (a root.json, e.g. from the key ceremony) the trust
// anchor of gun in this trust directory; see Pin, which also says whether
// it replaced another pin (and the cache verified from it).
func (c *Client) PinRoot(gun string, root []byte) error {
	_, err := c.Pin(gun, root)
	return err
}

// PinnedRoot returns the pinned root.json of gun.
func (c *Client) PinnedRoot(gun string) ([]byte, error) {
	data, err := os.ReadFile(c.pinFile(gun))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("client: %s: %w", gun, ErrNoTrust)
	}
	return data, err
}
