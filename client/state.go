package client

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"
	"github.com/theupdateframework/go-tuf/v2/metadata/trustedmetadata"

	"github.com/signetdev/signet/tufjson"
	"github.com/signetdev/signet/tufrules"
)

// Lengths the client downloads at most where the metadata above gives none
// (go-tuf's names; targets and snapshot are larger than go-tuf's defaults
// because one flat repository may list 100,000 tags).
const (
	rootMaxLength      = 512_000
	timestampMaxLength = 16_384
	snapshotMaxLength  = 16 << 20
	targetsMaxLength   = 64 << 20
	maxRootRotations   = 256
)

// errUnpublished: a delegated role the trusted snapshot does not list.
var errUnpublished = errors.New("delegated role is not in the trusted snapshot")

// repoState is one verified view of a repository: the top-level roles of
// one TUF refresh (root chain, timestamp, snapshot, targets, all checked by
// go-tuf's trustedmetadata) and the delegated roles verified in this view,
// each under the delegator the walk reached it through. Nothing verified
// under one delegator is trusted under another. It is used under the GUN's
// lock; ctx is the current call's.
type repoState struct {
	c       *Client
	ctx     context.Context
	gun     string
	dir     string // the cache directory
	trusted *trustedmetadata.TrustedMetadata
	f       *fetcher
	// verified holds delegated roles by (role, delegator).
	verified map[[2]string]*metadata.Metadata[metadata.TargetsType]
	// checked holds delegators whose delegations passed tufrules.
	checked map[string]bool
	// updated is when this view was last checked against the server.
	updated time.Time
	// renewing marks a view made to replace expired roles (withView for an
	// edit): a targets-type role that has expired but verifies in every
	// other respect is loaded and listed in stale, so that its key
	// holders can publish its next version. Such a view is never kept
	// warm and never answers a resolve.
	renewing bool
	stale    map[string]bool
	// only, when not nil, makes this a view for one resolve of these tags
	// (ResolveOnce): every role is verified in full, but keeps only their
	// entries (tufjson.DecodeTargetsOf). Such a view is never kept warm and
	// answers nothing else.
	only []string
}

// refresh makes a fresh verified view of gun: from the cache alone while
// it is younger than MaxStaleness, else by a TUF update from the server
// (TUF §5.3–5.5, as go-tuf's updater does it, on go-tuf's
// trustedmetadata with the client's clock).
func (c *Client) refresh(ctx context.Context, gun string, ahead *fetched, renewing bool, only []string) (*repoState, error) {
	root, cached, err := c.trustedRoot(ctx, gun)
	if err != nil {
		return nil, err
	}
	hc, err := c.httpFor(ctx, gun, "pull")
	if err != nil {
		return nil, err
	}
	s := &repoState{c: c, ctx: ctx, gun: gun, dir: c.cacheDir(gun), f: &fetcher{ctx: ctx, hc: hc, token: c.opts.Token, ahead: ahead},
		renewing: renewing, stale: map[string]bool{}, only: only}
	stamp := filepath.Join(s.dir, ".updated")
	if c.opts.MaxStaleness > 0 && !renewing {
		if fi, err := os.Stat(stamp); err == nil && c.opts.Now().Sub(fi.ModTime()) < c.opts.MaxStaleness {
			if err := s.start(root, cached); err != nil {
				return nil, err
			}
			if err := s.loadLocal(); err == nil {
				s.updated = fi.ModTime()
				return s, nil
			}
			c.log.InfoContext(ctx, "cached trust data incomplete; updating from the server", "gun", gun)
		}
	}
	if err := s.start(root, cached); err != nil {
		return nil, err
	}
	if err := s.update(); err != nil {
		var he *metadata.ErrDownloadHTTP
		if errors.As(err, &he) && he.StatusCode == http.StatusNotFound {
			return nil, fmt.Errorf("client: %s has no trust data on %s: %w", gun, c.opts.Server, ErrNotSigned)
		}
		return nil, s.trustErr(err)
	}
	_ = os.WriteFile(stamp, nil, 0o600)
	s.updated = c.opts.Now()
	return s, nil
}

// start trusts root, the newest root this trust directory verified or the
// pinned one, and caches it unless it came from the cache (cached).
func (s *repoState) start(root []byte, cached bool) error {
	t, err := trustedmetadata.New(root)
	if err != nil {
		return s.trustErr(err)
	}
	t.RefTime = s.c.opts.Now().UTC()
	if err := tufrules.CheckRoot(&t.Root.Signed); err != nil {
		return &TrustError{GUN: s.gun, Kind: ErrInvalid, Err: fmt.Errorf("trusted root v%d: %w", t.Root.Signed.Version, err)}
	}
	s.trusted = t
	s.verified = map[[2]string]*metadata.Metadata[metadata.TargetsType]{}
	s.checked = map[string]bool{}
	if cached {
		return nil
	}
	return s.persist(metadata.ROOT, root)
}

// update runs the TUF update of the top-level roles.
func (s *repoState) update() error {
	t := s.trusted
	from := t.Root.Signed.Version
	for v := t.Root.Signed.Version + 1; v <= t.Root.Signed.Version+maxRootRotations; v++ {
		data, err := s.download(metadata.ROOT, rootMaxLength, v)
		var he *metadata.ErrDownloadHTTP
		if errors.As(err, &he) && he.StatusCode == http.StatusNotFound {
			break
		}
		if err != nil {
			return err
		}
		if _, err := t.UpdateRoot(data); err != nil {
			return err
		}
		if err := tufrules.CheckRoot(&t.Root.Signed); err != nil {
			return &TrustError{GUN: s.gun, Kind: ErrInvalid, Err: fmt.Errorf("root v%d: %w", t.Root.Signed.Version, err)}
		}
		if err := s.persist(metadata.ROOT, data); err != nil {
			return err
		}
	}

	if t.Root.Signed.Version != from {
		s.f.ahead = nil // fetched under the old root: fetch it again
	}
	if data, err := s.cached(metadata.TIMESTAMP); err == nil {
		if _, err := t.UpdateTimestamp(data); err != nil && !errors.Is(err, &metadata.ErrRepository{}) {
			return err
		}
	}
	data, err := s.download(metadata.TIMESTAMP, timestampMaxLength, 0)
	if err != nil {
		return err
	}
	switch _, err := t.UpdateTimestamp(data); {
	case errors.Is(err, &metadata.ErrEqualVersionNumber{}):
		// The cached timestamp is the current one.
	case err != nil:
		return err
	default:
		if err := s.persist(metadata.TIMESTAMP, data); err != nil {
			return err
		}
	}

	loaded := false
	if data, err := s.cached(metadata.SNAPSHOT); err == nil {
		_, err := t.UpdateSnapshot(data, true)
		if err != nil && !errors.Is(err, &metadata.ErrRepository{}) {
			return err
		}
		loaded = err == nil
	}
	if !loaded {
		mf := t.Timestamp.Signed.Meta[metaFile(metadata.SNAPSHOT)]
		if mf == nil {
			return &metadata.ErrRepository{Msg: "timestamp does not list snapshot.json"}
		}
		data, err := s.download(metadata.SNAPSHOT, lengthOr(mf.Length, snapshotMaxLength), mf.Version)
		if err != nil {
			return err
		}
		if _, err := t.UpdateSnapshot(data, false); err != nil {
			return err
		}
		if err := s.persist(metadata.SNAPSHOT, data); err != nil {
			return err
		}
	}
	_, err = s.load(metadata.TARGETS, metadata.ROOT, nil)
	return err
}

// loadLocal verifies timestamp, snapshot and targets from the cache alone
// (for MaxStaleness), against the trusted root and the clock.
func (s *repoState) loadLocal() error {
	t := s.trusted
	data, err := s.cached(metadata.TIMESTAMP)
	if err != nil {
		return err
	}
	if _, err := t.UpdateTimestamp(data); err != nil {
		return err
	}
	if data, err = s.cached(metadata.SNAPSHOT); err != nil {
		return err
	}
	if _, err := t.UpdateSnapshot(data, true); err != nil {
		return err
	}
	data, err = s.cached(metadata.TARGETS)
	if err != nil {
		return err
	}
	_, err = updateDelegated(t, data, metadata.TARGETS, metadata.ROOT, s.only)
	return err
}

// load is the tufrules.Loader of this view: the verified metadata of role
// under delegator (the loaded metadata of parent; nil for targets under
// root). A role is taken from the cache when it verifies there, else
// downloaded at the version and length the trusted snapshot lists. A
// delegated role the snapshot does not list is an error wrapping
// errUnpublished: TUF §5.6 stops the lookup there.
func (s *repoState) load(role, parent string, delegator *metadata.Metadata[metadata.TargetsType]) (*metadata.Metadata[metadata.TargetsType], error) {
	if role == metadata.TARGETS {
		if m := s.trusted.Targets[metadata.TARGETS]; m != nil {
			return m, nil
		}
	}
	key := [2]string{role, parent}
	if m, ok := s.verified[key]; ok && !m.Signed.IsExpired(s.trusted.RefTime) {
		return m, nil
	}
	tm := s.trusted
	if role != metadata.TARGETS {
		if err := s.checkDelegator(parent, delegator); err != nil {
			return nil, err
		}
		if !tufrules.Delegates(delegator.Signed.Delegations, role) {
			return nil, &TrustError{GUN: s.gun, Kind: ErrInvalid, Err: fmt.Errorf("%s does not delegate to %s", parent, role)}
		}
		// A set of its own, so that role is verified against this
		// delegator and nothing else.
		tm = &trustedmetadata.TrustedMetadata{Root: tm.Root, Timestamp: tm.Timestamp, Snapshot: tm.Snapshot, RefTime: tm.RefTime,
			Targets: map[string]*metadata.Metadata[metadata.TargetsType]{parent: delegator}}
	}
	mf, ok := tm.Snapshot.Signed.Meta[metaFile(role)]
	if !ok {
		return nil, &TrustError{GUN: s.gun, Kind: ErrInvalid, Err: fmt.Errorf("%s delegates to %s, but the trusted snapshot does not list %s: %w", parent, role, role, errUnpublished)}
	}
	if data, err := s.cached(role); err == nil {
		if m, err := s.verify(tm, data, role, parent); err == nil {
			s.verified[key] = m
			return m, nil
		}
	}
	data, err := s.download(role, lengthOr(mf.Length, targetsMaxLength), mf.Version)
	if err != nil {
		return nil, s.trustErr(fmt.Errorf("fetch %s: %w", role, err))
	}
	m, err := s.verify(tm, data, role, parent)
	if err != nil {
		return nil, s.trustErr(err)
	}
	if err := s.persist(role, data); err != nil {
		return nil, err
	}
	s.verified[key] = m
	return m, nil
}

// verify checks data as the metadata of role under parent in tm, as
// go-tuf's trustedmetadata does (signatures to the delegator's threshold,
// the snapshot's version, length and hashes, expiry). In a renewing view an
// expired role is accepted when it passes every other check: go-tuf runs
// the same checks at a reference time just before the role expired (the
// snapshot, verified at the real time, was valid then as well), and the
// role is listed in s.stale.
func (s *repoState) verify(tm *trustedmetadata.TrustedMetadata, data []byte, role, parent string) (*metadata.Metadata[metadata.TargetsType], error) {
	m, err := updateDelegated(tm, data, role, parent, s.only)
	if err == nil || !errors.Is(err, &metadata.ErrExpiredMetadata{}) {
		return m, err
	}
	parsed, perr := tufjson.DecodeTargetsOf(data) // for its expiry alone
	if perr != nil {
		return nil, err
	}
	expires := parsed.Meta.Signed.Expires
	if !s.renewing {
		return nil, &TrustError{GUN: s.gun, Kind: ErrExpired, Expires: expires,
			Err: fmt.Errorf("%s has expired; its key holders re-sign it (signet resign %s %s): %w", role, s.gun, role, err)}
	}
	before := *tm
	before.Targets = maps.Clone(tm.Targets)
	before.RefTime = expires.Add(-time.Second)
	if m, err = updateDelegated(&before, data, role, parent, s.only); err != nil {
		return nil, err
	}
	tm.Targets[role] = m
	s.stale[role] = true
	return m, nil
}

// updateDelegated is go-tuf's trustedmetadata.UpdateDelegatedTargets(data,
// role, parent) on tm, step for step and with go-tuf's errors, but decoding
// and checking signatures with tufjson, which computes go-tuf's results
// without decoding the role five times over and re-encoding it for every
// key (a cold resolve of a 100,000-tag role took seconds and half a GiB).
// With only not nil, the role loaded keeps only the entries of those tags
// (tufjson.DecodeTargetsOf); every check is the same.
func updateDelegated(tm *trustedmetadata.TrustedMetadata, data []byte, role, parent string, only []string) (*metadata.Metadata[metadata.TargetsType], error) {
	if tm.Snapshot == nil || tm.Timestamp == nil {
		return nil, &metadata.ErrRuntime{Msg: "cannot load targets before snapshot"}
	}
	// Targets load only under the final snapshot.
	if tm.Snapshot.Signed.IsExpired(tm.RefTime) {
		return nil, &metadata.ErrExpiredMetadata{Msg: "snapshot.json is expired"}
	}
	if sm := tm.Timestamp.Signed.Meta[metaFile(metadata.SNAPSHOT)]; sm == nil || tm.Snapshot.Signed.Version != sm.Version {
		return nil, &metadata.ErrBadVersionNumber{Msg: fmt.Sprintf("snapshot v%d is not the one the timestamp lists", tm.Snapshot.Signed.Version)}
	}
	var delegator any = tm.Root
	if parent != metadata.ROOT {
		d, ok := tm.Targets[parent]
		if !ok {
			return nil, &metadata.ErrRuntime{Msg: "cannot load targets before delegator"}
		}
		delegator = d
	} else if tm.Root == nil {
		return nil, &metadata.ErrRuntime{Msg: "cannot load targets before delegator"}
	}
	meta, ok := tm.Snapshot.Signed.Meta[metaFile(role)]
	if !ok {
		return nil, &metadata.ErrRepository{Msg: fmt.Sprintf("snapshot does not contain information for %s", role)}
	}
	if err := meta.VerifyLengthHashes(data); err != nil {
		return nil, err
	}
	decode := tufjson.DecodeTargets
	if only != nil {
		decode = func(data []byte) (*tufjson.Targets, error) { return tufjson.DecodeTargetsOf(data, only...) }
	}
	t, err := decode(data)
	if err != nil {
		return nil, err
	}
	m := t.Meta
	if m.Signed.Type != metadata.TARGETS {
		return nil, &metadata.ErrRepository{Msg: fmt.Sprintf("expected %s, got %s", metadata.TARGETS, m.Signed.Type)}
	}
	if err := tufjson.VerifyDelegate(delegator, role, t); err != nil {
		return nil, err
	}
	if m.Signed.Version != meta.Version {
		return nil, &metadata.ErrBadVersionNumber{Msg: fmt.Sprintf("expected %s version %d, got %d", role, meta.Version, m.Signed.Version)}
	}
	if m.Signed.IsExpired(tm.RefTime) {
		return nil, &metadata.ErrExpiredMetadata{Msg: fmt.Sprintf("new %s is expired", role)}
	}
	tm.Targets[role] = m
	return m, nil
}

// checkDelegator applies the repository rules (tufrules) to the
// delegations of a delegator once per view: duplicate key IDs, key types
// and bounds are refused before any signature is checked against them.
func (s *repoState) checkDelegator(parent string, d *metadata.Metadata[metadata.TargetsType]) error {
	if d == nil {
		return &TrustError{GUN: s.gun, Kind: ErrInvalid, Err: fmt.Errorf("no metadata for delegator %s", parent)}
	}
	if s.checked[parent] {
		return nil
	}
	if err := tufrules.CheckDelegations(d.Signed.Delegations); err != nil {
		return &TrustError{GUN: s.gun, Kind: ErrInvalid, Err: fmt.Errorf("delegations of %s: %w", parent, err)}
	}
	s.checked[parent] = true
	return nil
}

// lookup finds tag as a TUF client does (tufrules.Walk, §5.6.7) over the
// roles load gives (s.load, or a prediction of an edit): the role that
// lists it and its entry, or nil when no visited role lists it. Any role
// the walk cannot load or verify ends it with a TrustError.
func (s *repoState) lookup(tag string, load tufrules.Loader) (string, *metadata.TargetFiles, error) {
	var (
		role string
		tf   *metadata.TargetFiles
	)
	err := tufrules.Walk(s.ctx, tag, s.c.opts.MaxRolesVisited, load, func(name, _ string, m *metadata.Metadata[metadata.TargetsType]) (bool, error) {
		if t, ok := m.Signed.Targets[tag]; ok {
			role, tf = name, t
			return true, nil
		}
		return false, nil
	})
	if err != nil {
		return "", nil, s.trustErr(err)
	}
	return role, tf, nil
}

// trustErr classifies err as a TrustError where it is one (go-tuf's typed
// errors, tufrules' rules); other errors are wrapped with the GUN.
func (s *repoState) trustErr(err error) error {
	var te *TrustError
	if errors.As(err, &te) {
		return te
	}
	if errors.Is(err, tufrules.ErrRule) {
		return &TrustError{GUN: s.gun, Kind: ErrInvalid, Err: err}
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("client: update %s: %w", s.gun, err)
	}
	te2 := classify(s.gun, err)
	var tErr *TrustError
	if errors.As(te2, &tErr) && tErr.Kind == ErrExpired && s.trusted != nil && s.trusted.Timestamp != nil {
		tErr.Expires = s.trusted.Timestamp.Signed.Expires
	}
	return te2
}

// download fetches role at version (0: the unversioned name; versioned
// only when the root asks for consistent snapshots, and always for root)
// through the fetcher, which refuses anything longer than maxLength.
func (s *repoState) download(role string, maxLength, version int64) ([]byte, error) {
	name := url.PathEscape(role) + ".json"
	if version > 0 && (role == metadata.ROOT || s.trusted.Root.Signed.ConsistentSnapshot) && role != metadata.TIMESTAMP {
		name = strconv.FormatInt(version, 10) + "." + name
	}
	return s.f.DownloadFile(s.c.tufURL(s.gun)+name, maxLength, 0)
}

// cachePath is where role is cached: top-level roles under their own
// names (as go-tuf's updater keeps them), delegated roles path-escaped in
// a folder of their own, so that no delegated role's file can stand for a
// top-level one, even on a case-insensitive file system.
func (s *repoState) cachePath(role string) string {
	if tufrules.IsTopLevel(role) {
		return filepath.Join(s.dir, role+".json")
	}
	return filepath.Join(s.dir, "delegated", url.PathEscape(role)+".json")
}

func (s *repoState) cached(role string) ([]byte, error) {
	return os.ReadFile(s.cachePath(role))
}

// persist writes verified metadata to the cache atomically.
func (s *repoState) persist(role string, data []byte) error {
	p := s.cachePath(role)
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return fmt.Errorf("client: cache %s: %w", role, err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(p), ".tmp-*")
	if err != nil {
		return fmt.Errorf("client: cache %s: %w", role, err)
	}
	_, werr := tmp.Write(data)
	cerr := tmp.Close()
	if err := errors.Join(werr, cerr); err != nil {
		_ = os.Remove(tmp.Name())
		return fmt.Errorf("client: cache %s: %w", role, err)
	}
	if err := os.Rename(tmp.Name(), p); err != nil {
		_ = os.Remove(tmp.Name())
		return fmt.Errorf("client: cache %s: %w", role, err)
	}
	return nil
}

// expired reports whether any top-level role of the view has expired.
func (s *repoState) expired(now time.Time) bool {
	t := s.trusted
	return t.Root == nil || t.Timestamp == nil || t.Snapshot == nil || t.Targets[metadata.TARGETS] == nil ||
		t.Root.Signed.IsExpired(now) || t.Timestamp.Signed.IsExpired(now) || t.Snapshot.Signed.IsExpired(now) ||
		t.Targets[metadata.TARGETS].Signed.IsExpired(now)
}

func metaFile(role string) string { return role + ".json" }

func lengthOr(n, max int64) int64 {
	if n > 0 {
		return n
	}
	return max
}
