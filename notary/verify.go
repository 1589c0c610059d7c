package notary

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"path"
	"slices"
	"strings"
	"time"
)

// MaxRoles bounds the delegated roles one verification loads.
const MaxRoles = 4096

// Anchor is what a verification trusts first. Exactly one of Root, Certs
// or TOFU is set.
type Anchor struct {
	// Root is a Notary root.json already trusted: the one the Notary or
	// Docker client pinned in its trust directory, or one given by the
	// user. The source's root must chain to it.
	Root []byte
	// Certs are root certificates: the earliest root the source has must
	// name one of them as a root key, and the chain runs from there.
	Certs []*x509.Certificate
	// TOFU trusts the earliest root the source serves. Only on request.
	TOFU bool
}

// Options configure Verify.
type Options struct {
	Anchor Anchor
	// Now is the clock for expiry; default time.Now.
	Now func() time.Time
	// AllowExpired accepts expired metadata and root certificates (every
	// signature is still checked) and records a warning instead.
	AllowExpired bool
}

// Role is one verified targets-type role: targets or a delegation.
type Role struct {
	Name      string
	Delegator string // "" for targets
	// Keys that may sign the role, by Notary key ID, with its threshold.
	Keys      map[string]PublicKey
	KeyIDs    []string
	Threshold int
	// Paths are the Notary path prefixes the role may list, after its
	// delegators' restrictions ("" matches every tag).
	Paths []string
	// Published is false for a delegation the snapshot does not list (a
	// role nobody signed yet: it lists nothing).
	Published bool
	Version   int64
	Expires   time.Time
	Targets   map[string]FileMeta
	// SignedBy are the key IDs whose signatures verified.
	SignedBy []string
}

// Repository is a GUN's Notary trust data after verification.
type Repository struct {
	GUN string
	// Root is the latest root, reached from the anchor along RootChain.
	Root      *Root
	RootChain []int64
	Timestamp *Timestamp
	Snapshot  *Snapshot
	// Roles are targets and its delegations in Notary's pre-order walk
	// (depth first, delegations in their listed order).
	Roles []*Role
	// Warnings say what was accepted only on request (TOFU, expiry).
	Warnings []string
}

// Role returns the verified role name, or nil.
func (r *Repository) Role(name string) *Role {
	for _, x := range r.Roles {
		if x.Name == name {
			return x
		}
	}
	return nil
}

type verifier struct {
	ctx  context.Context
	src  Source
	gun  string
	opts Options
	repo *Repository
}

// Verify reads gun's Notary metadata from src and checks it as a Notary
// client would before trusting any tag, failing closed: the root chains to
// the anchor (every version signed by a threshold of the previous root's
// keys and of its own), the root certificates name the GUN, timestamp,
// snapshot, targets and every published delegation are signed to their
// thresholds by the keys their delegator names, each matches the length
// and hashes listed above it, nothing has expired (unless AllowExpired),
// and every delegated role lists only targets inside its delegated paths.
func Verify(ctx context.Context, src Source, gun string, opts Options) (*Repository, error) {
	if !ValidGUN(gun) {
		return nil, fmt.Errorf("notary: %q is not a repository name", gun)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	v := &verifier{ctx: ctx, src: src, gun: gun, opts: opts, repo: &Repository{GUN: gun}}
	if err := v.verify(); err != nil {
		return nil, fmt.Errorf("notary: %s: %w", gun, err)
	}
	return v.repo, nil
}

func (v *verifier) verify() error {
	rootBytes, err := v.root()
	if err != nil {
		return err
	}
	root := v.repo.Root
	ts, _, err := v.top(RoleTimestamp, nil, &Timestamp{})
	if err != nil {
		return err
	}
	v.repo.Timestamp = ts.(*Timestamp)
	snapMeta, ok := v.repo.Timestamp.Meta[RoleSnapshot]
	if !ok {
		return fmt.Errorf("timestamp: %w: lists no snapshot", ErrMalformed)
	}
	snap, _, err := v.top(RoleSnapshot, &snapMeta, &Snapshot{})
	if err != nil {
		return err
	}
	v.repo.Snapshot = snap.(*Snapshot)
	if fm, ok := v.repo.Snapshot.Meta[RoleRoot]; ok {
		if err := checkMeta(rootBytes, fm); err != nil {
			return fmt.Errorf("snapshot lists another root than version %d: %w", root.Version, err)
		}
	}
	targetsMeta, ok := v.repo.Snapshot.Meta[RoleTargets]
	if !ok {
		return fmt.Errorf("snapshot: %w: lists no targets", ErrMalformed)
	}
	rk := root.Roles[RoleTargets]
	top := &Role{Name: RoleTargets, Keys: root.Keys, KeyIDs: rk.KeyIDs, Threshold: rk.Threshold, Paths: []string{""}}
	return v.walk(top, &targetsMeta)
}

// expiry refuses (or, with AllowExpired, records) an expired role.
func (v *verifier) expiry(what string, expires time.Time) error {
	now := v.opts.Now()
	if !now.After(expires) {
		return nil
	}
	at := expires.UTC().Format(time.RFC3339)
	if v.opts.AllowExpired {
		v.repo.Warnings = append(v.repo.Warnings, fmt.Sprintf("%s expired on %s (accepted: --allow-expired)", what, at))
		return nil
	}
	return fmt.Errorf("%s expired on %s: %w (much Docker Content Trust data is expiring now that Notary servers stop re-signing it; --allow-expired migrates it anyway, with every signature still checked)", what, at, ErrExpired)
}

// root establishes the latest trusted root and returns its bytes.
func (v *verifier) root() ([]byte, error) {
	latestBytes, err := v.src.Get(v.ctx, v.gun, RoleRoot, Want{})
	if err != nil {
		return nil, fmt.Errorf("root: %w", err)
	}
	latest, latestEnv, err := ParseRoot(latestBytes)
	if err != nil {
		return nil, fmt.Errorf("root: %w", err)
	}
	a := v.opts.Anchor
	var anchorBytes []byte
	switch {
	case a.Root != nil:
		anchorBytes = a.Root
	case len(a.Certs) > 0 || a.TOFU:
		anchorBytes, err = v.src.Get(v.ctx, v.gun, RoleRoot, Want{Version: 1})
		if errors.Is(err, ErrNotFound) {
			anchorBytes = latestBytes
		} else if err != nil {
			return nil, fmt.Errorf("root v1: %w", err)
		}
	default:
		return nil, fmt.Errorf("%w: no trust anchor: give the root the Notary client pinned (a trust directory, or a root.json or root certificate), or --trust-on-first-use", ErrUntrustedRoot)
	}
	trusted, trustedEnv, err := ParseRoot(anchorBytes)
	if err != nil {
		return nil, fmt.Errorf("anchor root: %w", err)
	}
	if err := checkRoot(trusted); err != nil {
		return nil, fmt.Errorf("anchor root v%d: %w", trusted.Version, err)
	}
	rk := trusted.Roles[RoleRoot]
	if _, err := verifyThreshold(trustedEnv, trusted.Keys, rk.KeyIDs, rk.Threshold); err != nil {
		return nil, fmt.Errorf("anchor root v%d is not signed by its own root keys: %w", trusted.Version, err)
	}
	switch {
	case len(a.Certs) > 0:
		if !namesCert(trusted, a.Certs) {
			return nil, fmt.Errorf("%w: root v%d names none of the given root certificates as a root key", ErrUntrustedRoot, trusted.Version)
		}
	case a.Root == nil && a.TOFU:
		v.repo.Warnings = append(v.repo.Warnings, fmt.Sprintf("TRUST ON FIRST USE: root v%d of %s is trusted only because %s served it; nothing proves it is the owner's", trusted.Version, v.gun, v.src))
	}
	if trusted.Version > latest.Version {
		return nil, fmt.Errorf("%w: the source's root is version %d, older than the pinned version %d (rollback)", ErrUntrustedRoot, latest.Version, trusted.Version)
	}
	if trusted.Version == latest.Version {
		x, err1 := canonical(trustedEnv.Signed)
		y, err2 := canonical(latestEnv.Signed)
		if err := errors.Join(err1, err2); err != nil {
			return nil, err
		}
		if !bytes.Equal(x, y) {
			return nil, fmt.Errorf("%w: the source's root v%d differs from the pinned root v%d", ErrUntrustedRoot, latest.Version, trusted.Version)
		}
	}
	v.repo.RootChain = []int64{trusted.Version}
	from := trusted.Version
	for n := trusted.Version + 1; n <= latest.Version; n++ {
		data := latestBytes
		if n != latest.Version {
			if data, err = v.src.Get(v.ctx, v.gun, RoleRoot, Want{Version: n}); err != nil {
				return nil, fmt.Errorf("%w: root v%d is needed to chain the pinned v%d to v%d: %w", ErrUntrustedRoot, n, from, latest.Version, err)
			}
		}
		next, env, err := ParseRoot(data)
		if err != nil {
			return nil, fmt.Errorf("root v%d: %w", n, err)
		}
		if next.Version != n {
			return nil, fmt.Errorf("%w: root file for version %d holds version %d", ErrMalformed, n, next.Version)
		}
		if err := checkRoot(next); err != nil {
			return nil, fmt.Errorf("root v%d: %w", n, err)
		}
		prev := trusted.Roles[RoleRoot]
		if _, err := verifyThreshold(env, trusted.Keys, prev.KeyIDs, prev.Threshold); err != nil {
			return nil, fmt.Errorf("%w: root v%d is not signed by the keys of root v%d: %w", ErrUntrustedRoot, n, trusted.Version, err)
		}
		own := next.Roles[RoleRoot]
		if _, err := verifyThreshold(env, next.Keys, own.KeyIDs, own.Threshold); err != nil {
			return nil, fmt.Errorf("root v%d is not signed by its own root keys: %w", n, err)
		}
		trusted = next
		v.repo.RootChain = append(v.repo.RootChain, n)
	}
	if err := checkRootCerts(v.gun, trusted, v.opts.Now(), v.opts.AllowExpired); err != nil {
		if errors.Is(err, ErrExpired) && v.opts.AllowExpired {
			v.repo.Warnings = append(v.repo.Warnings, err.Error())
		} else {
			return nil, fmt.Errorf("root v%d: %w", trusted.Version, err)
		}
	}
	if err := v.expiry(fmt.Sprintf("root v%d", trusted.Version), trusted.Expires); err != nil {
		return nil, err
	}
	v.repo.Root = trusted
	return latestBytes, nil
}

// checkRoot checks a root's shape: every top-level role with keys it lists
// under their own IDs.
func checkRoot(r *Root) error {
	if err := checkKeyIDs(r.Keys); err != nil {
		return err
	}
	for _, name := range []string{RoleRoot, RoleTargets, RoleSnapshot, RoleTimestamp} {
		rk, ok := r.Roles[name]
		if !ok {
			return fmt.Errorf("%w: no %s role", ErrMalformed, name)
		}
		if rk.Threshold < 1 || rk.Threshold > len(rk.KeyIDs) {
			return fmt.Errorf("%w: %s threshold %d with %d keys", ErrMalformed, name, rk.Threshold, len(rk.KeyIDs))
		}
		for _, id := range rk.KeyIDs {
			if _, ok := r.Keys[id]; !ok {
				return fmt.Errorf("%w: %s names key %s, which the root does not list", ErrMalformed, name, short(id))
			}
		}
	}
	return nil
}

func namesCert(r *Root, certs []*x509.Certificate) bool {
	for _, id := range r.Roles[RoleRoot].KeyIDs {
		c, err := r.Keys[id].Certificate()
		if err != nil {
			continue
		}
		if slices.ContainsFunc(certs, func(x *x509.Certificate) bool { return x.Equal(c) }) {
			return true
		}
	}
	return false
}

// top fetches and verifies timestamp or snapshot (meta: what lists it).
func (v *verifier) top(role string, meta *FileMeta, into interface{ common() *Common }) (any, []byte, error) {
	want := Want{}
	if meta != nil {
		sum, ok := meta.Hashes["sha256"]
		if !ok {
			return nil, nil, fmt.Errorf("%s: %w: listed without a sha256 hash", role, ErrMalformed)
		}
		want.SHA256 = hex.EncodeToString(sum)
	}
	data, err := v.src.Get(v.ctx, v.gun, role, want)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", role, err)
	}
	if meta != nil {
		if err := checkMeta(data, *meta); err != nil {
			return nil, nil, fmt.Errorf("%s: %w", role, err)
		}
	}
	env, err := parse(data, role, into)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", role, err)
	}
	rk := v.repo.Root.Roles[role]
	if _, err := verifyThreshold(env, v.repo.Root.Keys, rk.KeyIDs, rk.Threshold); err != nil {
		return nil, nil, fmt.Errorf("%s v%d: %w", role, into.common().Version, err)
	}
	if err := v.expiry(fmt.Sprintf("%s v%d", role, into.common().Version), into.common().Expires); err != nil {
		return nil, nil, err
	}
	return into, data, nil
}

// checkMeta checks data against a listed length and hashes: the length
// (when listed) and every sha256/sha512 hash must match, and a sha256 hash
// must be listed.
func checkMeta(data []byte, fm FileMeta) error {
	if fm.Length > 0 && int64(len(data)) != fm.Length {
		return fmt.Errorf("%w: %d bytes, listed as %d", ErrHashMismatch, len(data), fm.Length)
	}
	if _, ok := fm.Hashes["sha256"]; !ok {
		return fmt.Errorf("%w: no sha256 hash listed", ErrMalformed)
	}
	for alg, want := range fm.Hashes {
		var got []byte
		switch alg {
		case "sha256":
			s := sha256.Sum256(data)
			got = s[:]
		case "sha512":
			s := sha512.Sum512(data)
			got = s[:]
		default:
			continue
		}
		if !bytes.Equal(got, want) {
			return fmt.Errorf("%w: %s differs", ErrHashMismatch, alg)
		}
	}
	return nil
}

// walk verifies top (targets) and, in pre-order, every delegation.
func (v *verifier) walk(top *Role, meta *FileMeta) error {
	type item struct {
		role *Role
		meta *FileMeta
	}
	stack := []item{{top, meta}}
	seen := map[string]bool{}
	for len(stack) > 0 {
		it := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		r := it.role
		if seen[r.Name] {
			return fmt.Errorf("%w: role %s is delegated twice", ErrMalformed, r.Name)
		}
		seen[r.Name] = true
		if len(seen) > MaxRoles {
			return fmt.Errorf("%w: more than %d roles", ErrMalformed, MaxRoles)
		}
		v.repo.Roles = append(v.repo.Roles, r)
		if it.meta == nil {
			continue // delegated, never published
		}
		t, err := v.role(r, *it.meta)
		if err != nil {
			return err
		}
		var children []item
		for _, d := range t.Delegations.Roles {
			child, err := v.delegation(r, t, d)
			if err != nil {
				return err
			}
			var m *FileMeta
			if fm, ok := v.repo.Snapshot.Meta[d.Name]; ok {
				m = &fm
			}
			children = append(children, item{child, m})
		}
		slices.Reverse(children)
		stack = append(stack, children...)
	}
	return nil
}

// role fetches r at the checksum the snapshot lists and verifies it.
func (v *verifier) role(r *Role, meta FileMeta) (*Targets, error) {
	sum, ok := meta.Hashes["sha256"]
	if !ok {
		return nil, fmt.Errorf("%s: %w: listed without a sha256 hash", r.Name, ErrMalformed)
	}
	data, err := v.src.Get(v.ctx, v.gun, r.Name, Want{SHA256: hex.EncodeToString(sum)})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", r.Name, err)
	}
	if err := checkMeta(data, meta); err != nil {
		return nil, fmt.Errorf("%s: %w", r.Name, err)
	}
	var t Targets
	env, err := parse(data, RoleTargets, &t)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", r.Name, err)
	}
	if r.SignedBy, err = verifyThreshold(env, r.Keys, r.KeyIDs, r.Threshold); err != nil {
		return nil, fmt.Errorf("%s v%d: %w", r.Name, t.Version, err)
	}
	if err := v.expiry(fmt.Sprintf("%s v%d", r.Name, t.Version), t.Expires); err != nil {
		return nil, err
	}
	for tag := range t.Targets {
		if !matchesPrefix(r.Paths, tag) {
			return nil, fmt.Errorf("%s v%d lists %q: %w %s", r.Name, t.Version, tag, ErrPath, quotePaths(r.Paths))
		}
	}
	r.Published, r.Version, r.Expires, r.Targets = true, t.Version, t.Expires, t.Targets
	return &t, nil
}

// delegation checks one delegation d made by parent (verified as t).
func (v *verifier) delegation(parent *Role, t *Targets, d DelegationRole) (*Role, error) {
	if !validRole(d.Name) || d.Name == RoleTargets || path.Dir(d.Name) != parent.Name {
		return nil, fmt.Errorf("%s: %w: it may delegate only to %s/NAME, not %q", parent.Name, ErrMalformed, parent.Name, d.Name)
	}
	if len(d.PathHashPrefixes) > 0 {
		return nil, fmt.Errorf("%s: delegation %s uses path_hash_prefixes, which Notary clients never used and this migration does not map", parent.Name, d.Name)
	}
	if d.Threshold < 1 || d.Threshold > len(d.KeyIDs) {
		return nil, fmt.Errorf("%s: %w: delegation %s has threshold %d with %d keys", parent.Name, ErrMalformed, d.Name, d.Threshold, len(d.KeyIDs))
	}
	keys := map[string]PublicKey{}
	for _, id := range d.KeyIDs {
		k, ok := t.Delegations.Keys[id]
		if !ok {
			return nil, fmt.Errorf("%s: %w: delegation %s names key %s, which it does not list", parent.Name, ErrMalformed, d.Name, short(id))
		}
		keys[id] = k
	}
	if err := checkKeyIDs(keys); err != nil {
		return nil, fmt.Errorf("%s: delegation %s: %w", parent.Name, d.Name, err)
	}
	// Notary restricts a delegation to the parts of its paths that lie
	// inside its delegator's paths.
	var paths []string
	for _, p := range d.Paths {
		if matchesPrefix(parent.Paths, p) && !slices.Contains(paths, p) {
			paths = append(paths, p)
		}
	}
	return &Role{Name: d.Name, Delegator: parent.Name, Keys: keys, KeyIDs: slices.Clone(d.KeyIDs), Threshold: d.Threshold, Paths: paths}, nil
}

func matchesPrefix(prefixes []string, s string) bool {
	return slices.ContainsFunc(prefixes, func(p string) bool { return strings.HasPrefix(s, p) })
}

func quotePaths(paths []string) string {
	if len(paths) == 0 {
		return "(it is delegated no paths)"
	}
	q := make([]string, len(paths))
	for i, p := range paths {
		q[i] = fmt.Sprintf("%q", p)
	}
	return "(its delegated path prefixes: " + strings.Join(q, ", ") + ")"
}
