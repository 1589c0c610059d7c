package keystore

import (
	"context"
	"fmt"
	"slices"
	"sync"

	"github.com/signetdev/signet/signer"
	"github.com/signetdev/signet/signer/keywrap"
)

// Memory is a Store in memory, for tests.
type Memory struct {
	mu   sync.Mutex
	recs []Record
}

var _ Store = (*Memory)(nil)

// NewMemoryStore returns an empty store.
func NewMemoryStore() *Memory { return &Memory{} }

// Insert implements Store.
func (m *Memory) Insert(_ context.Context, r *Record) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.recs = append(m.recs, *r)
	return nil
}

// InsertFirst implements Store.
func (m *Memory) InsertFirst(_ context.Context, r *Record) (*Record, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for i := len(m.recs) - 1; i >= 0; i-- {
		if m.recs[i].GUN == r.GUN && m.recs[i].Role == r.Role {
			existing := m.recs[i]
			return &existing, ErrExists
		}
	}
	m.recs = append(m.recs, *r)
	return r, nil
}

// List implements Store.
func (m *Memory) List(_ context.Context, gun string) ([]Record, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []Record
	for _, r := range m.recs {
		if r.GUN == gun {
			out = append(out, r)
		}
	}
	return out, nil
}

// All implements Store.
func (m *Memory) All(context.Context) ([]Record, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.recs), nil
}

// UpdatePrivate implements Store.
func (m *Memory) UpdatePrivate(_ context.Context, id string, w *keywrap.Wrapped) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for i := range m.recs {
		if m.recs[i].ID == id {
			m.recs[i].Private = w
			return nil
		}
	}
	return fmt.Errorf("keystore: update %s: %w", id, signer.ErrKeyNotFound)
}

// DeleteGUN implements Store.
func (m *Memory) DeleteGUN(_ context.Context, gun string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.recs = slices.DeleteFunc(m.recs, func(r Record) bool { return r.GUN == gun })
	return nil
}

// Ping implements Store.
func (m *Memory) Ping(ctx context.Context) error { return ctx.Err() }

// Close implements Store.
func (m *Memory) Close() error { return nil }
