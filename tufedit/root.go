package tufedit

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// The offline root ceremony: roots are made, signed and checked here with
// no network; publishing a signed root is the client's (RootPublish). A
// root's private keys stay in key files (or a token) on the ceremony
// machine, never on the server.

// KeyGen makes a new key for role, keeps its private part (in a key store,
// on a token) and returns its public key.
type KeyGen func(ctx context.Context, role string) (*metadata.Key, error)

// RootPlan describes a new root.
type RootPlan struct {
	Keys      int // root keys to generate (N)
	Threshold int // signatures needed (K)
	// TargetsKeys are the targets role's public keys; if empty, one is
	// generated.
	TargetsKeys      []*metadata.Key
	TargetsThreshold int // 0 means 1
	// Timestamp and Snapshot are the server's online public keys
	// (signet key fetch GUN timestamp writes one to a file); both are
	// required. (A developer-signed snapshot would need every publish to
	// build and sign the snapshot on the client, which signet does not do:
	// the server makes snapshots.)
	Timestamp, Snapshot *metadata.Key
	// Expires is when the root expires; required (signet's default is
	// client.RootLifetime from now).
	Expires time.Time
}

// NewRoot generates the plan's root keys (and a targets key if it names
// none) with gen and returns the unsigned root.json naming them, with
// consistent snapshots. The plan is checked before any key is made.
func NewRoot(ctx context.Context, p RootPlan, gen KeyGen) ([]byte, error) {
	if p.Keys < 1 || p.Threshold < 1 || p.Threshold > p.Keys {
		return nil, fmt.Errorf("tufedit: a root needs 1 ≤ threshold (%d) ≤ keys (%d)", p.Threshold, p.Keys)
	}
	if p.Timestamp == nil || p.Snapshot == nil {
		return nil, errors.New("tufedit: the root must name the server's timestamp and snapshot keys (signet key fetch GUN timestamp, signet key fetch GUN snapshot)")
	}
	if p.Expires.IsZero() {
		return nil, errors.New("tufedit: the root needs an expiry (RootPlan.Expires)")
	}
	root := metadata.Root(p.Expires)
	root.Signed.ConsistentSnapshot = true
	for range p.Keys {
		k, err := gen(ctx, metadata.ROOT)
		if err != nil {
			return nil, err
		}
		if err := root.Signed.AddKey(k, metadata.ROOT); err != nil {
			return nil, fmt.Errorf("tufedit: %w", err)
		}
	}
	root.Signed.Roles[metadata.ROOT].Threshold = p.Threshold
	targets := p.TargetsKeys
	if len(targets) == 0 {
		k, err := gen(ctx, metadata.TARGETS)
		if err != nil {
			return nil, err
		}
		targets = []*metadata.Key{k}
	}
	for _, k := range targets {
		if err := root.Signed.AddKey(k, metadata.TARGETS); err != nil {
			return nil, fmt.Errorf("tufedit: %w", err)
		}
	}
	th := max(1, p.TargetsThreshold)
	if n := len(root.Signed.Roles[metadata.TARGETS].KeyIDs); th > n {
		return nil, fmt.Errorf("tufedit: targets threshold %d is above its %d key(s)", th, n)
	}
	root.Signed.Roles[metadata.TARGETS].Threshold = th
	if err := root.Signed.AddKey(p.Timestamp, metadata.TIMESTAMP); err != nil {
		return nil, fmt.Errorf("tufedit: %w", err)
	}
	if err := root.Signed.AddKey(p.Snapshot, metadata.SNAPSHOT); err != nil {
		return nil, fmt.Errorf("tufedit: %w", err)
	}
	return root.ToBytes(true)
}

// RootChange describes the next root version.
type RootChange struct {
	AddKeys    []*metadata.Key
	RemoveKeys []string // key IDs
	Threshold  int      // 0 keeps it
	// Expires is when the next root expires; required (signet's default is
	// client.RootLifetime from now).
	Expires time.Time
	// Replace gives other roles (targets, snapshot, timestamp) new keys:
	// each listed role's keys are replaced by these (a key rotation).
	Replace map[string][]*metadata.Key
}

// NextRoot returns the next, unsigned version of root with change applied
// (a rotation; with only Expires set, a re-sign that extends expiry).
func NextRoot(root []byte, change RootChange) ([]byte, error) {
	if change.Expires.IsZero() {
		return nil, errors.New("tufedit: the next root needs an expiry (RootChange.Expires)")
	}
	m, err := metadata.Root().FromBytes(root)
	if err != nil {
		return nil, fmt.Errorf("tufedit: %w", err)
	}
	m.ClearSignatures()
	m.Signed.Version++
	m.Signed.Expires = change.Expires
	for _, id := range change.RemoveKeys {
		if err := m.Signed.RevokeKey(id, metadata.ROOT); err != nil {
			return nil, fmt.Errorf("tufedit: remove root key %s: %w", id, err)
		}
	}
	for _, k := range change.AddKeys {
		if err := m.Signed.AddKey(k, metadata.ROOT); err != nil {
			return nil, fmt.Errorf("tufedit: %w", err)
		}
	}
	for r, keys := range change.Replace {
		if r == metadata.ROOT || m.Signed.Roles[r] == nil || len(keys) == 0 {
			return nil, fmt.Errorf("tufedit: replace the keys of %q: want targets, snapshot or timestamp and at least one key", r)
		}
		for _, id := range slices.Clone(m.Signed.Roles[r].KeyIDs) {
			if err := m.Signed.RevokeKey(id, r); err != nil {
				return nil, fmt.Errorf("tufedit: replace the keys of %s: %w", r, err)
			}
		}
		for _, k := range keys {
			if err := m.Signed.AddKey(k, r); err != nil {
				return nil, fmt.Errorf("tufedit: %w", err)
			}
		}
		if th := m.Signed.Roles[r].Threshold; th > len(m.Signed.Roles[r].KeyIDs) {
			m.Signed.Roles[r].Threshold = len(m.Signed.Roles[r].KeyIDs)
		}
	}
	role := m.Signed.Roles[metadata.ROOT]
	if change.Threshold > 0 {
		role.Threshold = change.Threshold
	}
	if role.Threshold < 1 || role.Threshold > len(role.KeyIDs) {
		return nil, fmt.Errorf("tufedit: root threshold %d with %d keys", role.Threshold, len(role.KeyIDs))
	}
	return m.ToBytes(true)
}

// ErrNotRootKey: a key that the root (and the root it replaces) does not
// list as a root key was offered to sign it.
var ErrNotRootKey = errors.New("not a root key of this root")

// SignRoot adds s's signature to root, replacing an earlier one by the
// same key. The key must be one of the root role's keys of root or of
// previous, the root it replaces (a rotation needs a threshold of the old
// root's keys too, removed ones included); ErrNotRootKey otherwise.
func SignRoot(root []byte, s signature.Signer, previous ...[]byte) ([]byte, error) {
	m, err := metadata.Root().FromBytes(root)
	if err != nil {
		return nil, fmt.Errorf("tufedit: %w", err)
	}
	pub, err := s.PublicKey()
	if err != nil {
		return nil, fmt.Errorf("tufedit: %w", err)
	}
	k, err := metadata.KeyFromPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("tufedit: %w", err)
	}
	// A signature by a key the root does not list counts for nothing:
	// refuse it rather than add it silently (a targets key, or another
	// repository's root key).
	id, err := CheckRootKey(root, k, previous...)
	if err != nil {
		return nil, err
	}
	m.Signatures = slices.DeleteFunc(m.Signatures, func(sig metadata.Signature) bool { return sig.KeyID == id })
	if _, err := m.Sign(s); err != nil {
		return nil, fmt.Errorf("tufedit: sign with %s: %w", id, err)
	}
	return m.ToBytes(true)
}

// CheckRootKey returns k's key ID if k is one of the root role's keys of
// root or of previous, and an error wrapping ErrNotRootKey if not: what
// SignRoot checks, for a caller that can read the public key before it
// asks for a passphrase.
func CheckRootKey(root []byte, k *metadata.Key, previous ...[]byte) (string, error) {
	ids, err := rootKeyIDs(append([][]byte{root}, previous...)...)
	if err != nil {
		return "", err
	}
	id, err := k.ID()
	if err != nil {
		return "", fmt.Errorf("tufedit: %w", err)
	}
	if !slices.Contains(ids, id) {
		return "", fmt.Errorf("tufedit: key %s is not a root key of this root.json or of the root it replaces (they list %v): %w", id, ids, ErrNotRootKey)
	}
	return id, nil
}

// rootKeyIDs lists the root role's key IDs of every given root.
func rootKeyIDs(roots ...[]byte) ([]string, error) {
	var ids []string
	for _, r := range roots {
		if len(r) == 0 {
			continue
		}
		m, err := metadata.Root().FromBytes(r)
		if err != nil {
			return nil, fmt.Errorf("tufedit: %w", err)
		}
		if role := m.Signed.Roles[metadata.ROOT]; role != nil {
			ids = append(ids, role.KeyIDs...)
		}
	}
	slices.Sort(ids)
	return slices.Compact(ids), nil
}

// KeySignature says whether one root key signed.
type KeySignature struct {
	ID     string `json:"id"`
	Signed bool   `json:"signed"`
}

// RootReport is what VerifyRoot found.
type RootReport struct {
	Version   int64          `json:"version"`
	Keys      []KeySignature `json:"keys"` // the root role's keys
	Threshold int            `json:"threshold"`
	// SelfOK: a threshold of the root's own keys signed it.
	SelfOK bool `json:"self_ok"`
	// PreviousOK: a threshold of the previous root's keys signed it (only
	// checked when a previous root is given).
	PreviousOK bool     `json:"previous_ok"`
	Errors     []string `json:"errors,omitempty"`
}

// VerifyRoot reports, per key, who signed root and whether its own
// threshold (and, given the previous root, the previous threshold and the
// version step) is met. Signatures are go-tuf's to check.
func VerifyRoot(root, previous []byte) (*RootReport, error) {
	m, err := metadata.Root().FromBytes(root)
	if err != nil {
		return nil, fmt.Errorf("tufedit: %w", err)
	}
	role := m.Signed.Roles[metadata.ROOT]
	if role == nil {
		return nil, errors.New("tufedit: the root names no root role")
	}
	r := &RootReport{Version: m.Signed.Version, Threshold: role.Threshold}
	for _, id := range role.KeyIDs {
		one := *m
		one.Signed.Roles = map[string]*metadata.Role{metadata.ROOT: {KeyIDs: []string{id}, Threshold: 1}}
		r.Keys = append(r.Keys, KeySignature{ID: id, Signed: one.VerifyDelegate(metadata.ROOT, m) == nil})
	}
	if err := m.VerifyDelegate(metadata.ROOT, m); err == nil {
		r.SelfOK = true
	} else {
		r.Errors = append(r.Errors, "own threshold: "+err.Error())
	}
	if previous != nil {
		prev, err := metadata.Root().FromBytes(previous)
		if err != nil {
			return nil, fmt.Errorf("tufedit: previous root: %w", err)
		}
		if err := prev.VerifyDelegate(metadata.ROOT, m); err == nil {
			r.PreviousOK = true
		} else {
			r.Errors = append(r.Errors, "previous root's threshold: "+err.Error())
		}
		if m.Signed.Version != prev.Signed.Version+1 {
			r.Errors = append(r.Errors, fmt.Sprintf("version %d does not follow %d", m.Signed.Version, prev.Signed.Version))
		}
	}
	return r, nil
}
