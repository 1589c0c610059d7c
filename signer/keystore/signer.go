package keystore

import (
	"context"
	"crypto"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/signetdev/signet/signer"
	"github.com/signetdev/signet/signer/keywrap"
)

// Signer is a signer.Service over a Store. Unwrapped keys stay in memory
// while the process runs, as any online signer's must.
type Signer struct {
	st  Store
	be  Backend
	now func() time.Time

	mu   sync.Mutex
	keys map[string]*cached // unwrapped keys by key ID
}

// cached is an unwrapped key with the slot it belongs to.
type cached struct {
	gun, role string
	priv      crypto.Signer
}

var _ signer.Service = (*Signer)(nil)

// Option configures a Signer.
type Option func(*Signer)

// WithClock sets the clock used for creation times.
func WithClock(now func() time.Time) Option { return func(s *Signer) { s.now = now } }

// New returns a Signer over st and be. It loads the newest stored key to
// check the backend: a wrong passphrase (or token PIN) stops it here,
// before anything could create a second set of keys.
func New(ctx context.Context, st Store, be Backend, opts ...Option) (*Signer, error) {
	s := &Signer{st: st, be: be, now: time.Now, keys: map[string]*cached{}}
	for _, o := range opts {
		o(s)
	}
	all, err := st.All(ctx)
	if err != nil {
		return nil, fmt.Errorf("keystore: %w", err)
	}
	if len(all) > 0 {
		if _, err := s.unwrap(ctx, &all[len(all)-1]); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// NewMemory returns a Signer on a memory store with cheap KDF parameters:
// the hermetic signer of tests.
func NewMemory(opts ...Option) *Signer {
	kr, err := keywrap.NewKeyring("test", map[string][]byte{"test": []byte("test")}, keywrap.Params{Time: 1, MemoryKiB: 64, Threads: 1})
	if err != nil {
		panic(err) // constant, valid arguments
	}
	s, err := New(context.Background(), NewMemoryStore(), NewWrapped(kr), opts...)
	if err != nil {
		panic(err) // an empty memory store cannot fail
	}
	return s
}

func (s *Signer) unwrap(ctx context.Context, r *Record) (crypto.Signer, error) {
	s.mu.Lock()
	k, ok := s.keys[r.ID]
	s.mu.Unlock()
	if ok {
		return k.priv, nil
	}
	priv, err := s.be.Load(ctx, r)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	s.keys[r.ID] = &cached{gun: r.GUN, role: r.Role, priv: priv}
	s.mu.Unlock()
	return priv, nil
}

func (s *Signer) newRecord(ctx context.Context, gun, role string, alg signer.Algorithm) (*Record, error) {
	if err := signer.CheckRole(role); err != nil {
		return nil, err
	}
	if alg == "" {
		alg = signer.Ed25519
	}
	r := &Record{GUN: gun, Role: role, Algorithm: alg, CreatedAt: s.now().UTC().Truncate(time.Microsecond)}
	priv, err := s.be.Create(ctx, r)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	s.keys[r.ID] = &cached{gun: gun, role: role, priv: priv}
	s.mu.Unlock()
	return r, nil
}

func info(r *Record) *signer.KeyInfo {
	return &signer.KeyInfo{GUN: r.GUN, Role: r.Role, ID: r.ID, Public: r.Public, CreatedAt: r.CreatedAt}
}

// EnsureKey implements signer.Service.
func (s *Signer) EnsureKey(ctx context.Context, gun, role string, alg signer.Algorithm) (*signer.KeyInfo, error) {
	if k, err := s.PublicKey(ctx, gun, role); err == nil || !errors.Is(err, signer.ErrKeyNotFound) {
		return k, err
	}
	r, err := s.newRecord(ctx, gun, role, alg)
	if err != nil {
		return nil, err
	}
	got, err := s.st.InsertFirst(ctx, r)
	if err != nil && !errors.Is(err, ErrExists) {
		return nil, fmt.Errorf("keystore: create %s key of %s: %w", role, gun, err)
	}
	return info(got), nil
}

// RotateKey implements signer.Service.
func (s *Signer) RotateKey(ctx context.Context, gun, role string, alg signer.Algorithm) (*signer.KeyInfo, error) {
	r, err := s.newRecord(ctx, gun, role, alg)
	if err != nil {
		return nil, err
	}
	if err := s.st.Insert(ctx, r); err != nil {
		return nil, fmt.Errorf("keystore: rotate %s key of %s: %w", role, gun, err)
	}
	return info(r), nil
}

// PublicKey implements signer.Service.
func (s *Signer) PublicKey(ctx context.Context, gun, role string) (*signer.KeyInfo, error) {
	recs, err := s.st.List(ctx, gun)
	if err != nil {
		return nil, fmt.Errorf("keystore: %s key of %s: %w", role, gun, err)
	}
	for i := len(recs) - 1; i >= 0; i-- {
		if recs[i].Role == role {
			return info(&recs[i]), nil
		}
	}
	return nil, fmt.Errorf("keystore: %s key of %s: %w", role, gun, signer.ErrKeyNotFound)
}

// ListKeys implements signer.Service.
func (s *Signer) ListKeys(ctx context.Context, gun string) ([]signer.KeyInfo, error) {
	recs, err := s.st.List(ctx, gun)
	if err != nil {
		return nil, fmt.Errorf("keystore: keys of %s: %w", gun, err)
	}
	out := make([]signer.KeyInfo, len(recs))
	for i := range recs {
		out[i] = *info(&recs[i])
	}
	return out, nil
}

// Sign implements signer.Service: only with a key of (gun, role), and only
// metadata of role.
func (s *Signer) Sign(ctx context.Context, gun, role, keyID string, payload []byte) ([]byte, error) {
	if err := signer.CheckPayloadRole(role, payload); err != nil {
		return nil, fmt.Errorf("keystore: sign %s/%s with %s: %w", gun, role, keyID, err)
	}
	priv, err := s.key(ctx, gun, role, keyID)
	if err != nil {
		return nil, err
	}
	return s.sign(priv, gun, role, keyID, payload)
}

// SignBatch implements signer.Service: every payload is checked, and its
// key found and unwrapped, before the first is signed.
func (s *Signer) SignBatch(ctx context.Context, reqs []signer.SignRequest) ([][]byte, error) {
	if err := signer.CheckBatch(reqs); err != nil {
		return nil, fmt.Errorf("keystore: sign batch: %w", err)
	}
	keys := make([]crypto.Signer, len(reqs))
	for i, r := range reqs {
		priv, err := s.key(ctx, r.GUN, r.Role, r.KeyID)
		if err != nil {
			return nil, fmt.Errorf("keystore: sign batch: %w", &signer.BatchError{Index: i, Role: r.Role, Err: err})
		}
		keys[i] = priv
	}
	sigs := make([][]byte, len(reqs))
	for i, r := range reqs {
		sig, err := s.sign(keys[i], r.GUN, r.Role, r.KeyID, r.Payload)
		if err != nil {
			return nil, fmt.Errorf("keystore: sign batch: %w", &signer.BatchError{Index: i, Role: r.Role, Err: err})
		}
		sigs[i] = sig
	}
	return sigs, nil
}

// key returns the private key keyID if it is a key of (gun, role), else
// an error wrapping signer.ErrKeyNotFound.
func (s *Signer) key(ctx context.Context, gun, role, keyID string) (crypto.Signer, error) {
	s.mu.Lock()
	k, ok := s.keys[keyID]
	s.mu.Unlock()
	if ok {
		if k.gun != gun || k.role != role {
			return nil, fmt.Errorf("keystore: sign %s/%s with %s: %w", gun, role, keyID, signer.ErrKeyNotFound)
		}
		return k.priv, nil
	}
	recs, err := s.st.List(ctx, gun)
	if err != nil {
		return nil, fmt.Errorf("keystore: sign %s/%s: %w", gun, role, err)
	}
	for i := range recs {
		if r := &recs[i]; r.ID == keyID && r.Role == role {
			return s.unwrap(ctx, r)
		}
	}
	return nil, fmt.Errorf("keystore: sign %s/%s with %s: %w", gun, role, keyID, signer.ErrKeyNotFound)
}

func (s *Signer) sign(priv crypto.Signer, gun, role, keyID string, payload []byte) ([]byte, error) {
	sig, err := signer.SignPayload(priv, payload)
	if err != nil {
		return nil, fmt.Errorf("keystore: sign %s/%s with %s: %w", gun, role, keyID, err)
	}
	return sig, nil
}

// DeleteKeys implements signer.Service. Another signer process sharing the
// database keeps a deleted key it has cached until it restarts; the server
// no longer asks it to sign, since the repository's metadata is gone.
func (s *Signer) DeleteKeys(ctx context.Context, gun string) error {
	recs, err := s.st.List(ctx, gun)
	if err != nil {
		return fmt.Errorf("keystore: delete keys of %s: %w", gun, err)
	}
	if err := s.st.DeleteGUN(ctx, gun); err != nil {
		return fmt.Errorf("keystore: delete keys of %s: %w", gun, err)
	}
	s.mu.Lock()
	for _, r := range recs {
		delete(s.keys, r.ID)
	}
	s.mu.Unlock()
	return nil
}

// Ping implements signer.Service: the store answers, at the schema version
// this binary expects.
func (s *Signer) Ping(ctx context.Context) error {
	if err := s.st.Ping(ctx); err != nil {
		return err
	}
	if ms, ok := s.st.(interface {
		MigrationStatus(ctx context.Context) (current, want int64, err error)
	}); ok {
		cur, want, err := ms.MigrationStatus(ctx)
		if err != nil {
			return fmt.Errorf("keystore: schema version: %w", err)
		}
		if cur != want {
			return fmt.Errorf("keystore: schema at version %d, this binary needs %d: run signet-signer migrate", cur, want)
		}
	}
	return nil
}

// CountByRole reports how many keys the store holds per role.
func (s *Signer) CountByRole(ctx context.Context) (map[string]int, error) {
	all, err := s.st.All(ctx)
	if err != nil {
		return nil, err
	}
	out := map[string]int{}
	for _, r := range all {
		out[r.Role]++
	}
	return out, nil
}
