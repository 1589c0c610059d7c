// Package localsigner is an in-process signer.Service for signet-server's
// single-node default: the online timestamp and snapshot keys live in one
// JSON file, each private key PKCS#8-encoded and wrapped by keywrap
// (AES-256-GCM under an argon2id KEK, bound to its row), written atomically
// with mode 0600. NewMemory keeps keys in memory only, for tests.
//
// Decrypted keys are held in memory while the process runs, as any online
// signer must. It must not import server packages. A Signer is safe for
// concurrent use within one process; two processes must not share a file.
package localsigner

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/signetdev/signet/signer"
	"github.com/signetdev/signet/signer/keywrap"
)

// Signer holds keys and signs with them.
type Signer struct {
	path string // "" keeps keys in memory only
	kr   *keywrap.Keyring
	now  func() time.Time

	mu   sync.Mutex
	keys []*entry // oldest first
}

var _ signer.Service = (*Signer)(nil)

type entry struct {
	info    signer.KeyInfo
	alg     signer.Algorithm
	priv    crypto.Signer
	wrapped *keywrap.Wrapped
}

// record is one key in the file.
type record struct {
	GUN       string           `json:"gun"`
	Role      string           `json:"role"`
	ID        string           `json:"id"`
	Algorithm signer.Algorithm `json:"algorithm"`
	Public    *metadata.Key    `json:"public"`
	CreatedAt time.Time        `json:"created_at"`
	Private   *keywrap.Wrapped `json:"private"`
}

type file struct {
	Version int      `json:"version"`
	Keys    []record `json:"keys"`
}

// Option configures a Signer.
type Option func(*Signer)

// WithClock sets the clock used for creation times.
func WithClock(now func() time.Time) Option { return func(s *Signer) { s.now = now } }

// NewMemory returns a signer that keeps keys in memory only.
func NewMemory(opts ...Option) *Signer {
	s := &Signer{now: time.Now}
	for _, o := range opts {
		o(s)
	}
	return s
}

// Open loads the key file at path (creating it with the first key), with
// every key unwrapped by kr. A key that does not unwrap stops Open with an
// error naming the file: a wrong passphrase never starts a second set of
// keys.
func Open(ctx context.Context, path string, kr *keywrap.Keyring, opts ...Option) (*Signer, error) {
	s := NewMemory(opts...)
	s.path, s.kr = path, kr
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return s, nil
	}
	if err != nil {
		return nil, fmt.Errorf("localsigner: %w", err)
	}
	var f file
	if err := json.Unmarshal(data, &f); err != nil {
		return nil, fmt.Errorf("localsigner: %s is not a key file: %w", path, err)
	}
	for _, r := range f.Keys {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		der, err := kr.Unwrap(r.Private, aad(r.ID, r.Algorithm, r.GUN, r.Role))
		if err != nil {
			return nil, fmt.Errorf("localsigner: key %s in %s: %w (is SIGNET_SIGNER_PASSPHRASE right?)", r.ID, path, err)
		}
		priv, err := x509.ParsePKCS8PrivateKey(der)
		clear(der)
		if err != nil {
			return nil, fmt.Errorf("localsigner: key %s in %s: %w", r.ID, path, err)
		}
		cs, ok := priv.(crypto.Signer)
		if !ok {
			return nil, fmt.Errorf("localsigner: key %s in %s is not a signing key", r.ID, path)
		}
		s.keys = append(s.keys, &entry{
			info: signer.KeyInfo{GUN: r.GUN, Role: r.Role, ID: r.ID, Public: r.Public, CreatedAt: r.CreatedAt},
			alg:  r.Algorithm, priv: cs, wrapped: r.Private,
		})
	}
	return s, nil
}

// Rewrap re-encrypts every key under kr's primary alias and saves the file.
func (s *Signer) Rewrap(kr *keywrap.Keyring) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	old := s.kr
	s.kr = kr
	for _, e := range s.keys {
		if err := s.wrap(e); err != nil {
			s.kr = old
			return err
		}
	}
	return s.save()
}

func aad(id string, alg signer.Algorithm, gun, role string) []byte {
	return []byte(id + "\x00" + string(alg) + "\x00" + gun + "\x00" + role)
}

func (s *Signer) wrap(e *entry) error {
	if s.kr == nil {
		return nil
	}
	der, err := x509.MarshalPKCS8PrivateKey(e.priv)
	if err != nil {
		return fmt.Errorf("localsigner: %w", err)
	}
	defer clear(der)
	e.wrapped, err = s.kr.Wrap(der, aad(e.info.ID, e.alg, e.info.GUN, e.info.Role))
	if err != nil {
		return fmt.Errorf("localsigner: wrap key %s: %w", e.info.ID, err)
	}
	return nil
}

// save writes the file atomically; the caller holds mu.
func (s *Signer) save() error {
	if s.path == "" {
		return nil
	}
	f := file{Version: 1, Keys: make([]record, len(s.keys))}
	for i, e := range s.keys {
		f.Keys[i] = record{GUN: e.info.GUN, Role: e.info.Role, ID: e.info.ID, Algorithm: e.alg, Public: e.info.Public, CreatedAt: e.info.CreatedAt, Private: e.wrapped}
	}
	data, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return fmt.Errorf("localsigner: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(s.path), 0o700); err != nil {
		return fmt.Errorf("localsigner: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(s.path), ".keys-*")
	if err != nil {
		return fmt.Errorf("localsigner: %w", err)
	}
	defer os.Remove(tmp.Name())
	err = tmp.Chmod(0o600)
	if err == nil {
		_, err = tmp.Write(data)
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), s.path)
	}
	if err != nil {
		return fmt.Errorf("localsigner: save %s: %w", s.path, err)
	}
	return nil
}

func generate(alg signer.Algorithm) (crypto.Signer, error) {
	switch alg {
	case signer.Ed25519, "":
		_, priv, err := ed25519.GenerateKey(rand.Reader)
		return priv, err
	case signer.ECDSAP256:
		return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	}
	return nil, fmt.Errorf("localsigner: unsupported algorithm %q", alg)
}

// create makes a key; the caller holds mu.
func (s *Signer) create(gun, role string, alg signer.Algorithm) (*signer.KeyInfo, error) {
	if err := signer.CheckRole(role); err != nil {
		return nil, err
	}
	if alg == "" {
		alg = signer.Ed25519
	}
	priv, err := generate(alg)
	if err != nil {
		return nil, err
	}
	pub, err := metadata.KeyFromPublicKey(priv.Public())
	if err != nil {
		return nil, fmt.Errorf("localsigner: %w", err)
	}
	id, err := pub.ID()
	if err != nil {
		return nil, fmt.Errorf("localsigner: %w", err)
	}
	e := &entry{info: signer.KeyInfo{GUN: gun, Role: role, ID: id, Public: pub, CreatedAt: s.now().UTC()}, alg: alg, priv: priv}
	if err := s.wrap(e); err != nil {
		return nil, err
	}
	s.keys = append(s.keys, e)
	if err := s.save(); err != nil {
		s.keys = s.keys[:len(s.keys)-1]
		return nil, err
	}
	info := e.info
	return &info, nil
}

func (s *Signer) newest(gun, role string) *entry {
	for i := len(s.keys) - 1; i >= 0; i-- {
		if k := s.keys[i]; k.info.GUN == gun && k.info.Role == role {
			return k
		}
	}
	return nil
}

// EnsureKey implements signer.Service.
func (s *Signer) EnsureKey(_ context.Context, gun, role string, alg signer.Algorithm) (*signer.KeyInfo, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e := s.newest(gun, role); e != nil {
		info := e.info
		return &info, nil
	}
	return s.create(gun, role, alg)
}

// RotateKey implements signer.Service.
func (s *Signer) RotateKey(_ context.Context, gun, role string, alg signer.Algorithm) (*signer.KeyInfo, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.create(gun, role, alg)
}

// PublicKey implements signer.Service.
func (s *Signer) PublicKey(_ context.Context, gun, role string) (*signer.KeyInfo, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.newest(gun, role)
	if e == nil {
		return nil, fmt.Errorf("localsigner: %s key of %s: %w", role, gun, signer.ErrKeyNotFound)
	}
	info := e.info
	return &info, nil
}

// ListKeys implements signer.Service.
func (s *Signer) ListKeys(_ context.Context, gun string) ([]signer.KeyInfo, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []signer.KeyInfo
	for _, e := range s.keys {
		if e.info.GUN == gun {
			out = append(out, e.info)
		}
	}
	return out, nil
}

// Sign implements signer.Service. The key must belong to (gun, role) and
// the payload must be metadata of role.
func (s *Signer) Sign(_ context.Context, gun, role, keyID string, payload []byte) ([]byte, error) {
	if err := signer.CheckPayloadRole(role, payload); err != nil {
		return nil, fmt.Errorf("localsigner: sign %s/%s with %s: %w", gun, role, keyID, err)
	}
	s.mu.Lock()
	var e *entry
	for _, k := range s.keys {
		if k.info.ID == keyID && k.info.GUN == gun && k.info.Role == role {
			e = k
		}
	}
	s.mu.Unlock()
	if e == nil {
		return nil, fmt.Errorf("localsigner: sign %s/%s with %s: %w", gun, role, keyID, signer.ErrKeyNotFound)
	}
	var (
		sig []byte
		err error
	)
	switch e.alg {
	case signer.ECDSAP256:
		sum := sha256.Sum256(payload)
		sig, err = e.priv.Sign(rand.Reader, sum[:], crypto.SHA256)
	default:
		sig, err = e.priv.Sign(rand.Reader, payload, crypto.Hash(0))
	}
	if err != nil {
		return nil, fmt.Errorf("localsigner: sign %s/%s with %s: %w", gun, role, keyID, err)
	}
	return sig, nil
}

// DeleteKeys implements signer.Service.
func (s *Signer) DeleteKeys(_ context.Context, gun string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	kept := slices.DeleteFunc(slices.Clone(s.keys), func(e *entry) bool { return e.info.GUN == gun })
	if len(kept) == len(s.keys) {
		return nil
	}
	old := s.keys
	s.keys = kept
	if err := s.save(); err != nil {
		s.keys = old
		return err
	}
	return nil
}

// Ping implements signer.Service.
func (s *Signer) Ping(ctx context.Context) error { return ctx.Err() }

// LoadOrCreatePassphraseFile returns the passphrase stored in path, or, if
// there is no such file, creates one (0600) with a random passphrase and
// reports created. For the single-node default only.
func LoadOrCreatePassphraseFile(path string) (pass []byte, created bool, err error) {
	data, err := os.ReadFile(path)
	if err == nil {
		pass = bytes.TrimSpace(data)
		if len(pass) == 0 {
			return nil, false, fmt.Errorf("localsigner: passphrase file %s is empty", path)
		}
		return pass, false, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, false, fmt.Errorf("localsigner: %w", err)
	}
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return nil, false, err
	}
	pass = []byte(hex.EncodeToString(b[:]))
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, false, fmt.Errorf("localsigner: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, false, fmt.Errorf("localsigner: %w", err)
	}
	if _, err := f.Write(append(pass, '\n')); err != nil {
		f.Close()
		return nil, false, fmt.Errorf("localsigner: %w", err)
	}
	if err := f.Close(); err != nil {
		return nil, false, fmt.Errorf("localsigner: %w", err)
	}
	return pass, true, nil
}
