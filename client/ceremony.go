package client

import (
	"context"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"slices"
	"time"

	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// The offline root ceremony: roots are made, signed and checked with no
// network; only RootPublish talks to the server. A root's private keys live
// in key files (or a token) on the ceremony machine, never on the server.

// RootPlan describes a new root.
type RootPlan struct {
	Keys      int // root keys to generate (N)
	Threshold int // signatures needed (K)
	// TargetsKeys are the targets role's public keys; if empty, one is
	// generated in the key store.
	TargetsKeys      []*metadata.Key
	TargetsThreshold int
	// Timestamp and Snapshot are the server's online public keys
	// (signet key fetch GUN timestamp writes one to a file); both are
	// required. (A developer-signed snapshot would need every publish to
	// build and sign the snapshot on the client, which signet does not do:
	// the server makes snapshots.)
	Timestamp, Snapshot *metadata.Key
	Expires             time.Time
}

// RootInit generates the root keys (one encrypted file each) and returns
// the unsigned root.json naming them.
func (c *Client) RootInit(ctx context.Context, p RootPlan) ([]byte, error) {
	if p.Keys < 1 || p.Threshold < 1 || p.Threshold > p.Keys {
		return nil, fmt.Errorf("client: a root needs 1 ≤ threshold (%d) ≤ keys (%d)", p.Threshold, p.Keys)
	}
	if p.Timestamp == nil || p.Snapshot == nil {
		return nil, errors.New("client: the root must name the server's timestamp and snapshot keys (signet key fetch GUN timestamp, signet key fetch GUN snapshot)")
	}
	if p.Expires.IsZero() {
		p.Expires = c.opts.Now().Add(RootLifetime)
	}
	root := metadata.Root(p.Expires)
	root.Signed.ConsistentSnapshot = true
	for range p.Keys {
		k, err := c.keys.Generate(ctx, metadata.ROOT)
		if err != nil {
			return nil, err
		}
		if err := root.Signed.AddKey(k.Public, metadata.ROOT); err != nil {
			return nil, fmt.Errorf("client: %w", err)
		}
	}
	root.Signed.Roles[metadata.ROOT].Threshold = p.Threshold
	targets := p.TargetsKeys
	if len(targets) == 0 {
		k, err := c.keys.Generate(ctx, metadata.TARGETS)
		if err != nil {
			return nil, err
		}
		targets = []*metadata.Key{k.Public}
	}
	for _, k := range targets {
		if err := root.Signed.AddKey(k, metadata.TARGETS); err != nil {
			return nil, fmt.Errorf("client: %w", err)
		}
	}
	th := max(1, p.TargetsThreshold)
	if n := len(root.Signed.Roles[metadata.TARGETS].KeyIDs); th > n {
		return nil, fmt.Errorf("client: targets threshold %d is above its %d key(s)", th, n)
	}
	root.Signed.Roles[metadata.TARGETS].Threshold = th
	if err := root.Signed.AddKey(p.Timestamp, metadata.TIMESTAMP); err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	if err := root.Signed.AddKey(p.Snapshot, metadata.SNAPSHOT); err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	return root.ToBytes(true)
}

// RootChange describes the next root version.
type RootChange struct {
	AddKeys    []*metadata.Key
	RemoveKeys []string // key IDs
	Threshold  int      // 0 keeps it
	Expires    time.Time
	// Replace gives other roles (targets, snapshot, timestamp) new keys:
	// each listed role's keys are replaced by these (a key rotation).
	Replace map[string][]*metadata.Key
}

// RootNext returns the next, unsigned version of root with change applied
// (a rotation; with an empty change, a re-sign that extends expiry).
func (c *Client) RootNext(root []byte, change RootChange) ([]byte, error) {
	m, err := metadata.Root().FromBytes(root)
	if err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	m.ClearSignatures()
	m.Signed.Version++
	m.Signed.Expires = change.Expires
	if m.Signed.Expires.IsZero() {
		m.Signed.Expires = c.opts.Now().Add(RootLifetime)
	}
	for _, id := range change.RemoveKeys {
		if err := m.Signed.RevokeKey(id, metadata.ROOT); err != nil {
			return nil, fmt.Errorf("client: remove root key %s: %w", id, err)
		}
	}
	for _, k := range change.AddKeys {
		if err := m.Signed.AddKey(k, metadata.ROOT); err != nil {
			return nil, fmt.Errorf("client: %w", err)
		}
	}
	for r, keys := range change.Replace {
		if r == metadata.ROOT || m.Signed.Roles[r] == nil || len(keys) == 0 {
			return nil, fmt.Errorf("client: replace the keys of %q: want targets, snapshot or timestamp and at least one key", r)
		}
		for _, id := range slices.Clone(m.Signed.Roles[r].KeyIDs) {
			if err := m.Signed.RevokeKey(id, r); err != nil {
				return nil, fmt.Errorf("client: replace the keys of %s: %w", r, err)
			}
		}
		for _, k := range keys {
			if err := m.Signed.AddKey(k, r); err != nil {
				return nil, fmt.Errorf("client: %w", err)
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
		return nil, fmt.Errorf("client: root threshold %d with %d keys", role.Threshold, len(role.KeyIDs))
	}
	return m.ToBytes(true)
}

// ErrNotRootKey: RootSign was given a key that the root does not list.
var ErrNotRootKey = errors.New("not a root key of this root")

// RootSign adds the signature of one key to root, offline. The key must be
// one of the root role's keys of root or of previous, the root it replaces
// (a rotation needs a threshold of the old root's keys too, removed ones
// included); ErrNotRootKey otherwise. keyFile is an encrypted PKCS#8 key
// file (as signet writes them); pass decrypts it.
func RootSign(root []byte, keyFile string, pass []byte, previous ...[]byte) ([]byte, error) {
	m, err := metadata.Root().FromBytes(root)
	if err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	ids, err := rootKeyIDs(append([][]byte{root}, previous...)...)
	if err != nil {
		return nil, err
	}
	s, err := loadKeyFile(keyFile, pass)
	if err != nil {
		return nil, err
	}
	pub, err := s.PublicKey()
	if err != nil {
		return nil, err
	}
	k, err := metadata.KeyFromPublicKey(pub)
	if err != nil {
		return nil, err
	}
	id, err := k.ID()
	if err != nil {
		return nil, fmt.Errorf("client: %s: %w", keyFile, err)
	}
	// A signature by a key the root does not list counts for nothing:
	// refuse it rather than add it silently (a targets key, or another
	// repository's root key).
	if !slices.Contains(ids, id) {
		return nil, fmt.Errorf("client: key %s (%s) is not a root key of this root.json or of the root it replaces (they list %v): %w", id, keyFile, ids, ErrNotRootKey)
	}
	m.Signatures = slices.DeleteFunc(m.Signatures, func(sig metadata.Signature) bool { return sig.KeyID == id })
	if _, err := m.Sign(s); err != nil {
		return nil, fmt.Errorf("client: sign with %s: %w", id, err)
	}
	return m.ToBytes(true)
}

// CheckRootKeyFile tells, before any passphrase is asked for, whether the
// key file is one of root's root keys: it reads the public key that signet
// keeps in the file's header (files without one pass here and are checked
// by RootSign once decrypted).
func CheckRootKeyFile(root []byte, keyFile string, previous ...[]byte) error {
	ids, err := rootKeyIDs(append([][]byte{root}, previous...)...)
	if err != nil {
		return err
	}
	data, err := os.ReadFile(keyFile)
	if err != nil {
		return fmt.Errorf("client: %w", err)
	}
	b, _ := pem.Decode(data)
	if b == nil {
		return fmt.Errorf("client: %s is not a PEM key file", keyFile)
	}
	k := publicOf(b)
	if k == nil {
		return nil
	}
	id, err := k.ID()
	if err != nil {
		return fmt.Errorf("client: %s: %w", keyFile, err)
	}
	if !slices.Contains(ids, id) {
		return fmt.Errorf("client: key %s (%s) is not a root key of this root.json or of the root it replaces (they list %v): %w", id, keyFile, ids, ErrNotRootKey)
	}
	return nil
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
			return nil, fmt.Errorf("client: %w", err)
		}
		if role := m.Signed.Roles[metadata.ROOT]; role != nil {
			ids = append(ids, role.KeyIDs...)
		}
	}
	slices.Sort(ids)
	return slices.Compact(ids), nil
}

func loadKeyFile(path string, pass []byte) (signature.Signer, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	b, _ := pem.Decode(data)
	s, err := decrypt(b, pass)
	if err != nil {
		return nil, fmt.Errorf("client: %s: %w", path, err)
	}
	return s, nil
}

// KeySignature says whether one root key signed.
type KeySignature struct {
	ID     string `json:"id"`
	Signed bool   `json:"signed"`
}

// RootReport is what RootVerify found.
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

// RootVerify reports, per key, who signed root and whether its own
// threshold (and, given the previous root, the previous threshold) is met.
func RootVerify(root, previous []byte) (*RootReport, error) {
	m, err := metadata.Root().FromBytes(root)
	if err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	role := m.Signed.Roles[metadata.ROOT]
	r := &RootReport{Version: m.Signed.Version, Threshold: role.Threshold}
	for _, id := range role.KeyIDs {
		signed := false
		one := *m
		one.Signed.Roles = map[string]*metadata.Role{metadata.ROOT: {KeyIDs: []string{id}, Threshold: 1}}
		if one.VerifyDelegate(metadata.ROOT, m) == nil {
			signed = true
		}
		r.Keys = append(r.Keys, KeySignature{ID: id, Signed: signed})
	}
	if err := m.VerifyDelegate(metadata.ROOT, m); err == nil {
		r.SelfOK = true
	} else {
		r.Errors = append(r.Errors, "own threshold: "+err.Error())
	}
	if previous != nil {
		prev, err := metadata.Root().FromBytes(previous)
		if err != nil {
			return nil, fmt.Errorf("client: previous root: %w", err)
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

// RootPublish uploads a signed root from an online machine that holds no
// root key. For a new repository it also publishes an empty targets v1,
// signed by the targets keys this key store holds.
func (c *Client) RootPublish(ctx context.Context, gun string, root []byte) error {
	ctx, cancel := context.WithTimeout(ctx, c.opts.Timeout)
	defer cancel()
	m, err := metadata.Root().FromBytes(root)
	if err != nil {
		return fmt.Errorf("client: %w", err)
	}
	files := map[string][]byte{metadata.ROOT: root}
	if m.Signed.Version == 1 {
		held, err := c.heldKeys(ctx, m.Signed.Roles[metadata.TARGETS].KeyIDs)
		if err != nil {
			return err
		}
		if th := m.Signed.Roles[metadata.TARGETS].Threshold; len(held) < th {
			// Staging needs a published root: the first targets must be
			// complete. Later changes are staged for k-of-n signing.
			return fmt.Errorf("client: the first publish of %s needs targets v1 signed by %d targets keys: %w: this trust directory holds %d (signet key import the others for this publish)", gun, th, ErrNoKey, len(held))
		}
		targets := metadata.Targets(c.opts.Now().Add(TargetsLifetime))
		data, err := c.sign(ctx, targets, held...)
		if err != nil {
			return err
		}
		files[metadata.TARGETS] = data
	} else {
		// A root that gives targets new keys (signet key rotate GUN
		// targets) leaves the stored targets unverifiable: publish its
		// next version, signed by the new keys this directory holds, in
		// the same upload.
		err := c.withEditState(ctx, gun, func(s *roleState) error {
			cur, err := s.load(metadata.TARGETS)
			if err != nil || cur == nil || m.VerifyDelegate(metadata.TARGETS, cur) == nil {
				return err
			}
			if d := cur.Signed.Delegations; d != nil && d.SuccinctRoles != nil {
				// The bins are signed by the targets keys too; re-signing
				// every bin in this publish is not built yet.
				return fmt.Errorf("client: root v%d gives targets new keys, but %s keeps its tags in hashed bins signed by the old ones: rotating the targets key of a hashed-bin repository is not supported yet", m.Signed.Version, gun)
			}
			r := m.Signed.Roles[metadata.TARGETS]
			held, err := c.heldKeys(ctx, r.KeyIDs)
			if err != nil {
				return err
			}
			if len(held) < r.Threshold {
				return fmt.Errorf("client: root v%d gives targets new keys, so targets must be re-signed by %d of them in the same publish: %w: this trust directory holds %d", m.Signed.Version, r.Threshold, ErrNoKey, len(held))
			}
			next, err := s.next(metadata.TARGETS)
			if err != nil {
				return err
			}
			next.ClearSignatures()
			files[metadata.TARGETS], err = c.sign(ctx, next, held...)
			return err
		})
		if err != nil {
			return err
		}
	}
	if _, err := c.post(ctx, gun, files); err != nil {
		return err
	}
	if m.Signed.Version == 1 {
		return c.PinRoot(gun, root)
	}
	return nil
}

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
