// Package memstore is an in-memory store.MetaStore: the fast fake for tests
// of the layers above storage. It passes the storetest conformance suite.
// Data is lost when the process ends. Safe for concurrent use.
package memstore

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/signetdev/signet/server/store"
)

type key struct{ gun, role string }

// Store keeps every version of every role in maps behind one lock.
type Store struct {
	now func() time.Time

	mu       sync.RWMutex
	versions map[key][]*store.Meta // ascending by version
	changes  []store.Change
	nextID   int64
	staged   map[key]*store.Staged // key.role holds the staged change's ID
}

var _ store.MetaStore = (*Store)(nil)

// New returns an empty store.
func New() *Store {
	return &Store{now: time.Now, versions: map[key][]*store.Meta{}, nextID: 1, staged: map[key]*store.Staged{}}
}

func clone(m *store.Meta) *store.Meta {
	c := *m
	c.Data = slices.Clone(m.Data)
	return &c
}

// UpdateMany implements store.MetaStore.
func (s *Store) UpdateMany(ctx context.Context, gun string, updates []store.Update) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("memstore: update %s: %w", gun, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.updateLocked(gun, updates)
}

func (s *Store) updateLocked(gun string, updates []store.Update) error {
	for _, u := range updates {
		for _, m := range s.versions[key{gun, u.Role}] {
			if m.Version == u.Version {
				return &store.VersionConflictError{GUN: gun, Role: u.Role, Version: u.Version}
			}
		}
	}
	now := s.now().UTC()
	change := store.Change{ID: s.nextID, GUN: gun, Category: store.ChangeUpdate, CreatedAt: now}
	for _, u := range updates {
		k := key{gun, u.Role}
		m := &store.Meta{GUN: gun, Role: u.Role, Version: u.Version, Data: slices.Clone(u.Data), SHA256: u.SHA256, Expires: u.Expires, CreatedAt: now}
		s.versions[k] = append(s.versions[k], m)
		slices.SortFunc(s.versions[k], func(a, b *store.Meta) int { return cmp.Compare(a.Version, b.Version) })
		if u.Role == "timestamp" {
			change.Version, change.SHA256 = u.Version, u.SHA256
		}
	}
	s.changes = append(s.changes, change)
	s.nextID++
	return nil
}

func (s *Store) find(ctx context.Context, gun, role string, match func(*store.Meta) bool, what string) (*store.Meta, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("memstore: get %s/%s %s: %w", gun, role, what, err)
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	vs := s.versions[key{gun, role}]
	for i := len(vs) - 1; i >= 0; i-- {
		if match(vs[i]) {
			return clone(vs[i]), nil
		}
	}
	return nil, fmt.Errorf("memstore: get %s/%s %s: %w", gun, role, what, store.ErrNotFound)
}

// GetCurrent implements store.MetaStore.
func (s *Store) GetCurrent(ctx context.Context, gun, role string) (*store.Meta, error) {
	return s.find(ctx, gun, role, func(*store.Meta) bool { return true }, "current")
}

// CurrentVersions implements store.MetaStore.
func (s *Store) CurrentVersions(ctx context.Context, gun string) (map[string]store.RoleVersion, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("memstore: current versions of %s: %w", gun, err)
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := map[string]store.RoleVersion{}
	for k, vs := range s.versions {
		if k.gun == gun && len(vs) > 0 {
			cur := vs[len(vs)-1]
			out[k.role] = store.RoleVersion{Version: cur.Version, SHA256: cur.SHA256}
		}
	}
	return out, nil
}

// GetVersion implements store.MetaStore.
func (s *Store) GetVersion(ctx context.Context, gun, role string, version int64) (*store.Meta, error) {
	return s.find(ctx, gun, role, func(m *store.Meta) bool { return m.Version == version }, fmt.Sprintf("v%d", version))
}

// GetChecksum implements store.MetaStore.
func (s *Store) GetChecksum(ctx context.Context, gun, role, checksum string) (*store.Meta, error) {
	return s.find(ctx, gun, role, func(m *store.Meta) bool { return m.SHA256 == checksum }, "sha256 "+checksum)
}

// Delete implements store.MetaStore.
func (s *Store) Delete(ctx context.Context, gun string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("memstore: delete %s: %w", gun, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	found := false
	for k := range s.versions {
		if k.gun == gun {
			delete(s.versions, k)
			found = true
		}
	}
	if !found {
		return fmt.Errorf("memstore: delete %s: %w", gun, store.ErrNotFound)
	}
	for k := range s.staged {
		if k.gun == gun {
			delete(s.staged, k)
		}
	}
	s.changes = append(s.changes, store.Change{ID: s.nextID, GUN: gun, Category: store.ChangeDeletion, CreatedAt: s.now().UTC()})
	s.nextID++
	return nil
}

// Changes implements store.MetaStore.
func (s *Store) Changes(ctx context.Context, since int64, limit int) ([]store.Change, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("memstore: changes: %w", err)
	}
	if limit <= 0 {
		limit = 100
	}
	limit = min(limit, store.MaxChangesPage)
	s.mu.RLock()
	defer s.mu.RUnlock()
	i, _ := slices.BinarySearchFunc(s.changes, since+1, func(c store.Change, id int64) int { return cmp.Compare(c.ID, id) })
	out := slices.Clone(s.changes[i:min(len(s.changes), i+limit)])
	return out, nil
}

// Expiring implements store.MetaStore.
func (s *Store) Expiring(ctx context.Context, role string, before time.Time, limit int) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("memstore: expiring: %w", err)
	}
	s.mu.RLock()
	var cur []*store.Meta
	for k, vs := range s.versions {
		if k.role == role && len(vs) > 0 && vs[len(vs)-1].Expires.Before(before) {
			cur = append(cur, vs[len(vs)-1])
		}
	}
	s.mu.RUnlock()
	slices.SortFunc(cur, func(a, b *store.Meta) int { return cmp.Or(a.Expires.Compare(b.Expires), cmp.Compare(a.GUN, b.GUN)) })
	out := make([]string, 0, min(len(cur), limit))
	for _, m := range cur[:min(len(cur), limit)] {
		out = append(out, m.GUN)
	}
	return out, nil
}

// Ping implements store.MetaStore.
func (s *Store) Ping(ctx context.Context) error { return ctx.Err() }

// Close implements store.MetaStore.
func (s *Store) Close() error { return nil }

var _ store.Pruner = (*Store)(nil)

// GUNs implements store.Pruner.
func (s *Store) GUNs(ctx context.Context, after string, limit int) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("memstore: list repositories: %w", err)
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	seen := map[string]bool{}
	var out []string
	for k, vs := range s.versions {
		if len(vs) > 0 && k.gun > after && !seen[k.gun] {
			seen[k.gun] = true
			out = append(out, k.gun)
		}
	}
	slices.Sort(out)
	if len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

// PruneVersions implements store.Pruner.
func (s *Store) PruneVersions(ctx context.Context, gun, role string, keep int, protect []int64) (int64, error) {
	if role == "root" {
		return 0, fmt.Errorf("memstore: prune %s/%s: %w", gun, role, store.ErrPruneRoot)
	}
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("memstore: prune %s/%s: %w", gun, role, err)
	}
	keep = max(keep, 1)
	s.mu.Lock()
	defer s.mu.Unlock()
	k := key{gun, role}
	vs := s.versions[k]
	var kept []*store.Meta
	var n int64
	for i, m := range vs {
		if i >= len(vs)-keep || slices.Contains(protect, m.Version) {
			kept = append(kept, m)
			continue
		}
		n++
	}
	s.versions[k] = kept
	return n, nil
}
