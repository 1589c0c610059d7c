package tufrepo

import (
	"context"
	"errors"
	"fmt"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/signetdev/signet/server/store"
	"github.com/signetdev/signet/tufjson"
)

// state is the stored side of one publish (or staged change, or refresh):
// the current version and sha256 of every role, read in one round trip
// when the state is made, and each role's data fetched lazily, at most
// once, by that exact version, and only when no cache holds it by sha256.
// Caches keyed by content cannot be stale: the heads come fresh from the
// store for every publish, and the store's version guard decides races.
type state struct {
	ctx     context.Context
	r       *Repo
	gun     string
	up      *uploads
	heads   map[string]store.RoleVersion
	stored  map[string]*store.Meta      // fetched roles
	targets map[string]*tufjson.Targets // decoded stored targets-type roles
}

// errMoved reports that a role named by the heads was gone when fetched (a
// deletion, or pruning after many newer publishes): the publish is
// validated again from fresh heads.
var errMoved = &Error{Code: CodeVersionConflict, Msg: "the repository changed while this publish was being checked; fetch the latest metadata and retry"}

func (r *Repo) newState(ctx context.Context, gun string, up *uploads) (*state, error) {
	heads, err := r.store.CurrentVersions(ctx, gun)
	if err != nil {
		return nil, storeErr(fmt.Errorf("tufrepo: read %s: %w", gun, err))
	}
	if up == nil {
		up = &uploads{}
	}
	return &state{ctx: ctx, r: r, gun: gun, up: up, heads: heads, stored: map[string]*store.Meta{}, targets: map[string]*tufjson.Targets{}}, nil
}

// head returns the current version of role, and whether one is stored.
func (s *state) head(role string) (store.RoleVersion, bool) {
	h, ok := s.heads[role]
	return h, ok
}

// current returns the stored current version of role with its data, or
// nil if none is stored.
func (s *state) current(role string) (*store.Meta, error) {
	h, ok := s.heads[role]
	if !ok {
		return nil, nil
	}
	if m, ok := s.stored[role]; ok {
		return m, nil
	}
	m, err := s.r.store.GetVersion(s.ctx, s.gun, role, h.Version)
	if errors.Is(err, store.ErrNotFound) {
		return nil, errMoved
	}
	if err != nil {
		return nil, storeErr(fmt.Errorf("tufrepo: read %s/%s v%d: %w", s.gun, role, h.Version, err))
	}
	if m.SHA256 != h.SHA256 {
		return nil, errMoved // deleted and published again under the same version
	}
	s.stored[role] = m
	return m, nil
}

func (s *state) storedVersion(role string) (int64, error) {
	return s.heads[role].Version, nil
}

// storedTargets returns the stored, already validated version of a
// targets-type role, or nil.
func (s *state) storedTargets(role string) (*metadata.Metadata[metadata.TargetsType], error) {
	t, err := s.storedDecoded(role)
	if t == nil || err != nil {
		return nil, err
	}
	return t.Meta, nil
}

// storedDecoded is storedTargets with the role's canonical form.
func (s *state) storedDecoded(role string) (*tufjson.Targets, error) {
	if t, ok := s.targets[role]; ok {
		return t, nil
	}
	h, ok := s.heads[role]
	if !ok {
		return nil, nil
	}
	t := s.r.parsed.get(h.SHA256)
	if t == nil {
		cur, err := s.current(role)
		if err != nil {
			return nil, err
		}
		if t, err = tufjson.DecodeTargets(cur.Data); err != nil {
			return nil, fmt.Errorf("tufrepo: stored %s/%s v%d does not parse: %w", s.gun, role, cur.Version, err)
		}
		s.r.parsed.put(h.SHA256, len(cur.Data), t)
	}
	s.targets[role] = t
	return t, nil
}

// effective returns the uploaded version of a role if any, else the stored.
func (s *state) effective(role string) (*metadata.Metadata[metadata.TargetsType], error) {
	if m, ok := s.up.targets[role]; ok {
		return m, nil
	}
	return s.storedTargets(role)
}

// snapshot returns the stored snapshot, parsed (shared: read only), or nil.
func (s *state) snapshot() (*metadata.Metadata[metadata.SnapshotType], error) {
	h, ok := s.heads[metadata.SNAPSHOT]
	if !ok {
		return nil, nil
	}
	if snap := s.r.snapshots.get(s.gun, h.SHA256); snap != nil {
		return snap, nil
	}
	cur, err := s.current(metadata.SNAPSHOT)
	if err != nil {
		return nil, err
	}
	snap, err := metadata.Snapshot().FromBytes(cur.Data)
	if err != nil {
		return nil, fmt.Errorf("tufrepo: stored snapshot of %s v%d does not parse: %w", s.gun, cur.Version, err)
	}
	s.r.snapshots.put(s.gun, h.SHA256, snap)
	return snap, nil
}
