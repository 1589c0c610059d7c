package memstore

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/signetdev/signet/server/store"
)

var _ store.StagedStore = (*Store)(nil)

func cloneStaged(st *store.Staged) *store.Staged {
	c := *st
	c.Data = slices.Clone(st.Data)
	return &c
}

// CreateStaged implements store.StagedStore.
func (s *Store) CreateStaged(ctx context.Context, st *store.Staged) error {
	return s.CreateStagedWithin(ctx, st, store.StagedQuota{})
}

// CreateStagedWithin implements store.StagedStore.
func (s *Store) CreateStagedWithin(ctx context.Context, st *store.Staged, q store.StagedQuota) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("memstore: stage %s: %w", st.GUN, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	k := key{st.GUN, st.ID}
	if _, ok := s.staged[k]; ok {
		return fmt.Errorf("memstore: stage %s/%s: %w", st.GUN, st.ID, store.ErrStagedConflict)
	}
	n, mine := 0, 0
	var gunBytes, principalBytes int64
	for k, other := range s.staged {
		if k.gun == st.GUN {
			n++
			gunBytes += int64(len(other.Data))
			if st.Principal != "" && other.Principal == st.Principal {
				mine++
			}
		}
		if st.Principal != "" && other.Principal == st.Principal {
			principalBytes += int64(len(other.Data))
		}
	}
	if n >= store.MaxStagedPerGUN {
		return fmt.Errorf("memstore: stage %s: %w", st.GUN, store.ErrTooManyStaged)
	}
	if err := store.CheckStagedQuota(q, st, gunBytes, principalBytes, mine); err != nil {
		return fmt.Errorf("memstore: stage %s: %w", st.GUN, err)
	}
	st.Revision, st.CreatedAt = 1, s.now().UTC()
	s.staged[k] = cloneStaged(st)
	return nil
}

// guarded returns the staged change gun/id if its revision is revision (0:
// any). The caller holds s.mu.
func (s *Store) guarded(gun, id string, revision int64, what string) (*store.Staged, error) {
	cur, ok := s.staged[key{gun, id}]
	if !ok {
		return nil, fmt.Errorf("memstore: %s staged %s/%s: %w", what, gun, id, store.ErrNotFound)
	}
	if revision != 0 && cur.Revision != revision {
		return nil, fmt.Errorf("memstore: %s staged %s/%s: %w", what, gun, id, store.ErrStagedConflict)
	}
	return cur, nil
}

// UpdateStaged implements store.StagedStore.
func (s *Store) UpdateStaged(ctx context.Context, st *store.Staged) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("memstore: update staged %s: %w", st.GUN, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	cur, err := s.guarded(st.GUN, st.ID, st.Revision, "update")
	if err != nil {
		return err
	}
	cur.Data = slices.Clone(st.Data)
	cur.Revision++
	st.Revision = cur.Revision
	return nil
}

// GetStaged implements store.StagedStore.
func (s *Store) GetStaged(ctx context.Context, gun, id string) (*store.Staged, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("memstore: staged %s: %w", gun, err)
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	cur, err := s.guarded(gun, id, 0, "get")
	if err != nil {
		return nil, err
	}
	return cloneStaged(cur), nil
}

// ListStaged implements store.StagedStore.
func (s *Store) ListStaged(ctx context.Context, gun string) ([]*store.Staged, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("memstore: list staged %s: %w", gun, err)
	}
	s.mu.RLock()
	var out []*store.Staged
	for k, st := range s.staged {
		if k.gun == gun {
			out = append(out, cloneStaged(st))
		}
	}
	s.mu.RUnlock()
	slices.SortFunc(out, func(a, b *store.Staged) int { return cmp.Or(a.CreatedAt.Compare(b.CreatedAt), cmp.Compare(a.ID, b.ID)) })
	return out, nil
}

// DeleteStaged implements store.StagedStore.
func (s *Store) DeleteStaged(ctx context.Context, gun, id string, revision int64) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("memstore: delete staged %s: %w", gun, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, err := s.guarded(gun, id, revision, "delete"); err != nil {
		return err
	}
	delete(s.staged, key{gun, id})
	return nil
}

// PublishStaged implements store.StagedStore.
func (s *Store) PublishStaged(ctx context.Context, gun, id string, revision int64, updates []store.Update) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("memstore: publish staged %s: %w", gun, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, err := s.guarded(gun, id, revision, "publish"); err != nil {
		return err
	}
	if err := s.updateLocked(gun, updates); err != nil {
		return err
	}
	delete(s.staged, key{gun, id})
	return nil
}

// DeleteExpiredStaged implements store.StagedStore.
func (s *Store) DeleteExpiredStaged(ctx context.Context, before time.Time) (int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("memstore: delete expired staged: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var n int64
	for k, st := range s.staged {
		if st.Expires.Before(before) {
			delete(s.staged, k)
			n++
		}
	}
	return n, nil
}
