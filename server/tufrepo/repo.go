// Package tufrepo holds signet-server's TUF rules: it validates uploaded
// metadata with go-tuf (root chain, thresholds by distinct keys, versions,
// expiry, delegated paths, snapshot consistency), builds and signs the
// server-managed snapshot and timestamp through a signer.Service, and keeps
// timestamps and snapshots fresh.
//
// It must not import net/http, chi or any database driver: it talks to
// storage only through store.MetaStore and to keys only through
// signer.Service. A Repo is safe for concurrent use, also by several server
// processes sharing one store: conflicting writes are decided by the store.
package tufrepo

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/secure-systems-lab/go-securesystemslib/cjson"
	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/signetdev/signet/server/store"
	"github.com/signetdev/signet/signer"
	"github.com/signetdev/signet/tufjson"
)

// Default lifetimes of server-made metadata (DESIGN.md, freshness defaults).
const (
	DefaultTimestampLifetime = 24 * time.Hour
	DefaultSnapshotLifetime  = 7 * 24 * time.Hour
)

// maxPublishAttempts bounds how often a publish is re-validated after losing
// a race for the server-made snapshot or timestamp version.
const maxPublishAttempts = 4

// Repo applies TUF rules on top of a store and a signer.
type Repo struct {
	store             store.MetaStore
	signer            signer.Service
	now               func() time.Time
	log               *slog.Logger
	timestampLifetime time.Duration
	snapshotLifetime  time.Duration
	stagedLifetime    time.Duration
	keyAlgorithm      signer.Algorithm
	keys              keyCache
	roots             rootCache
	parsed            parsedCache
	snapshots         snapCache
	invalidate        func(gun string)
}

// Option configures a Repo.
type Option func(*Repo)

// WithClock sets the clock used for expiry checks and new expiries.
func WithClock(now func() time.Time) Option { return func(r *Repo) { r.now = now } }

// WithLogger sets the logger.
func WithLogger(l *slog.Logger) Option { return func(r *Repo) { r.log = l } }

// WithLifetimes sets how long server-made timestamps and snapshots last.
func WithLifetimes(timestamp, snapshot time.Duration) Option {
	return func(r *Repo) { r.timestampLifetime, r.snapshotLifetime = timestamp, snapshot }
}

// WithInvalidate sets a hook called after every write this Repo makes to
// a repository (publish, staged publish, refresh, delete), so that caches
// in front of the store (the server's metacache) forget it.
func WithInvalidate(fn func(gun string)) Option { return func(r *Repo) { r.invalidate = fn } }

// WithKeyAlgorithm sets the algorithm of server keys created on first ask.
func WithKeyAlgorithm(a signer.Algorithm) Option { return func(r *Repo) { r.keyAlgorithm = a } }

// New returns a Repo over st and sg. st is the store itself, never a
// cache in front of it: publishes read the latest state to decide versions.
// A cache learns of this Repo's writes through WithInvalidate.
func New(st store.MetaStore, sg signer.Service, opts ...Option) *Repo {
	r := &Repo{
		store:             st,
		signer:            sg,
		now:               time.Now,
		log:               slog.New(slog.DiscardHandler),
		timestampLifetime: DefaultTimestampLifetime,
		snapshotLifetime:  DefaultSnapshotLifetime,
		stagedLifetime:    DefaultStagedLifetime,
		keyAlgorithm:      signer.Ed25519,
		invalidate:        func(string) {},
		keys:              keyCache{entries: map[string]keyEntry{}},
		roots:             rootCache{roots: map[string]*metadata.Metadata[metadata.RootType]{}},
		parsed:            parsedCache{roles: map[string]*tufjson.Targets{}},
		snapshots:         snapCache{snaps: map[string]snapEntry{}},
	}
	for _, o := range opts {
		o(r)
	}
	r.log = r.log.With("component", "tufrepo")
	return r
}

// ServerKey returns the public key the server holds for role (timestamp or
// snapshot) of gun. With create, the first call for a GUN creates the key.
func (r *Repo) ServerKey(ctx context.Context, gun, role string, create bool) (*signer.KeyInfo, error) {
	if err := signer.CheckRole(role); err != nil {
		return nil, refuse(CodeUnsupported, role, "the server holds keys only for timestamp and snapshot")
	}
	var (
		k   *signer.KeyInfo
		err error
	)
	if create {
		r.forgetKeys(gun)
		k, err = r.signer.EnsureKey(ctx, gun, role, r.keyAlgorithm)
	} else {
		k, err = r.signer.PublicKey(ctx, gun, role)
	}
	if errors.Is(err, signer.ErrKeyNotFound) {
		return nil, refuse(CodeNotFound, role, "no %s key for %s", role, gun)
	}
	if err != nil {
		return nil, signerErr(fmt.Errorf("tufrepo: %s key of %s: %w", role, gun, err))
	}
	return k, nil
}

// RotateKey makes a new server key for role of gun. The old key keeps
// signing until a root no longer names it.
func (r *Repo) RotateKey(ctx context.Context, gun, role string) (*signer.KeyInfo, error) {
	if err := signer.CheckRole(role); err != nil {
		return nil, refuse(CodeUnsupported, role, "the server holds keys only for timestamp and snapshot")
	}
	r.forgetKeys(gun)
	k, err := r.signer.RotateKey(ctx, gun, role, r.keyAlgorithm)
	if err != nil {
		return nil, signerErr(fmt.Errorf("tufrepo: rotate %s key of %s: %w", role, gun, err))
	}
	r.log.InfoContext(ctx, "rotated server key", "gun", gun, "role", role, "key_id", k.ID)
	return k, nil
}

// Delete removes gun's trust data and then its server keys, so that a new
// repository under the same name starts from fresh keys.
func (r *Repo) Delete(ctx context.Context, gun string) error {
	err := r.store.Delete(ctx, gun)
	r.invalidate(gun)
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return refuse(CodeNotFound, "", "no trust data for %s", gun)
		}
		return storeErr(fmt.Errorf("tufrepo: delete %s: %w", gun, err))
	}
	r.forgetKeys(gun)
	r.snapshots.forget(gun) // never stale (keyed by sha256), but no longer of use
	if err := r.signer.DeleteKeys(ctx, gun); err != nil {
		// The metadata is gone; orphaned keys are harmless and retried by a
		// later delete. Report, don't fail the request.
		r.log.WarnContext(ctx, "trust data deleted but server keys kept", "gun", gun, "err", err)
	}
	return nil
}

func signerErr(err error) error {
	if errors.Is(err, signer.ErrUnavailable) {
		return &Error{Code: CodeSignerDown, Msg: "the signer (signet-signer) is unavailable", Err: err}
	}
	return err
}

func storeErr(err error) error {
	if errors.Is(err, store.ErrUnavailable) {
		return &Error{Code: CodeStoreDown, Msg: "the database is unavailable", Err: err}
	}
	return err
}

// signingKeys returns the server keys of gun that root names for role, and
// whether they reach the role's threshold.
func signingKeys(root *metadata.RootType, keys []signer.KeyInfo, role string) ([]signer.KeyInfo, bool) {
	r, ok := root.Roles[role]
	if !ok {
		return nil, false
	}
	named := make(map[string]bool, len(r.KeyIDs))
	for _, id := range r.KeyIDs {
		named[id] = true
	}
	var out []signer.KeyInfo
	for _, k := range keys {
		if k.Role == role && named[k.ID] {
			out = append(out, k)
		}
	}
	return out, len(out) > 0 && len(out) >= r.Threshold
}

// signJob is one role to sign: the canonical JSON of its "signed" object
// and the server keys that sign it; the signatures land in *sigs, and then
// encode returns the signed metadata's bytes.
type signJob struct {
	role    string
	payload []byte
	keys    []signer.KeyInfo
	sigs    *[]metadata.Signature
	encode  func() ([]byte, error)
}

// job prepares the signing of m. The snapshots and timestamps the server
// builds are written by tufjson, once: their canonical form is also what
// go-tuf's encoder writes, so the stored bytes are assembled around it
// instead of encoding the metadata twice more through go-tuf and cjson.
func job[T metadata.Roles](role string, m *metadata.Metadata[T], keys []signer.KeyInfo) (signJob, error) {
	var (
		payload []byte
		direct  bool
	)
	switch s := any(&m.Signed).(type) {
	case *metadata.SnapshotType:
		payload, direct = tufjson.CanonicalSnapshot(s)
	case *metadata.TimestampType:
		payload, direct = tufjson.CanonicalTimestamp(s)
	}
	if !direct {
		var err error
		if payload, err = cjson.EncodeCanonical(m.Signed); err != nil {
			return signJob{}, fmt.Errorf("tufrepo: encode %s: %w", role, err)
		}
	}
	encode := func() ([]byte, error) {
		if direct {
			if b, ok := tufjson.Envelope(payload, m.Signatures); ok {
				return b, nil
			}
		}
		b, err := m.ToBytes(false)
		if err != nil {
			return nil, fmt.Errorf("tufrepo: encode %s: %w", role, err)
		}
		return b, nil
	}
	return signJob{role: role, payload: payload, keys: keys, sigs: &m.Signatures, encode: encode}, nil
}

// signAll asks the signer for every job's signatures in one call
// (SignBatch: one round trip to a remote signer per publish, each payload
// still checked against its key's role and GUN). It does not use
// metadata.Sign, which drops the signer's error.
func signAll(ctx context.Context, sg signer.Service, gun string, jobs ...signJob) error {
	var reqs []signer.SignRequest
	for _, j := range jobs {
		for _, k := range j.keys {
			reqs = append(reqs, signer.SignRequest{GUN: gun, Role: j.role, KeyID: k.ID, Payload: j.payload})
		}
	}
	sigs, err := sg.SignBatch(ctx, reqs)
	if err != nil {
		return signerErr(fmt.Errorf("tufrepo: sign %s: %w", gun, err))
	}
	if len(sigs) != len(reqs) {
		return fmt.Errorf("tufrepo: sign %s: the signer returned %d signatures for %d payloads", gun, len(sigs), len(reqs))
	}
	i := 0
	for _, j := range jobs {
		*j.sigs = (*j.sigs)[:0]
		for _, k := range j.keys {
			*j.sigs = append(*j.sigs, metadata.Signature{KeyID: k.ID, Signature: sigs[i]})
			i++
		}
	}
	return nil
}

func sum256(b []byte) []byte {
	s := sha256.Sum256(b)
	return s[:]
}

func update(role string, version int64, expires time.Time, data []byte) store.Update {
	return store.Update{Role: role, Version: version, Data: data, SHA256: hex.EncodeToString(sum256(data)), Expires: expires}
}

// metaName is the key of a role in snapshot and timestamp "meta".
func metaName(role string) string { return role + ".json" }
