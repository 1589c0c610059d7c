// Package tuftest builds and signs TUF metadata for tests: keys, roots that
// name a server's online keys, targets with delegations, and a fixed clock.
// It is imported only by tests. Values are not safe for concurrent use unless
// stated.
package tuftest

import (
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// Key is a test signing key with its TUF public form.
type Key struct {
	Signer signature.Signer
	Public *metadata.Key
	ID     string
}

// NewKey makes a fresh ed25519 key.
func NewKey(t testing.TB) *Key {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s, err := signature.LoadSigner(priv, crypto.Hash(0))
	if err != nil {
		t.Fatal(err)
	}
	return keyFromSigner(t, s)
}

func keyFromSigner(t testing.TB, s signature.Signer) *Key {
	t.Helper()
	pub, err := s.PublicKey()
	if err != nil {
		t.Fatal(err)
	}
	k, err := metadata.KeyFromPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	id, err := k.ID()
	if err != nil {
		t.Fatal(err)
	}
	return &Key{Signer: s, Public: k, ID: id}
}

// Sign clears m's signatures, signs it with every key and returns its bytes.
func Sign[T metadata.Roles](t testing.TB, m *metadata.Metadata[T], keys ...*Key) []byte {
	t.Helper()
	m.ClearSignatures()
	return AddSignatures(t, m, keys...)
}

// AddSignatures signs m with every key, keeping earlier signatures, and
// returns its bytes.
func AddSignatures[T metadata.Roles](t testing.TB, m *metadata.Metadata[T], keys ...*Key) []byte {
	t.Helper()
	for _, k := range keys {
		if _, err := m.Sign(k.Signer); err != nil {
			t.Fatal(err)
		}
	}
	b, err := m.ToBytes(false)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Clock is a settable clock, safe for concurrent use.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

// NewClock returns a clock at a fixed, realistic instant.
func NewClock() *Clock {
	return &Clock{now: time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)}
}

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock forward.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// Target returns TUF target-file info for an image manifest of size n whose
// sha256 digest is that of content.
func Target(content string) *metadata.TargetFiles {
	sum := sha256.Sum256([]byte(content))
	return &metadata.TargetFiles{
		Length: int64(len(content)),
		Hashes: metadata.Hashes{"sha256": sum[:]},
	}
}

// Digest returns "sha256:<hex>" of content.
func Digest(content string) string {
	sum := sha256.Sum256([]byte(content))
	return "sha256:" + hex.EncodeToString(sum[:])
}

// Repo is a developer's side of one repository in tests: it holds root and
// targets keys and builds signed metadata that names the server's online
// keys. Not safe for concurrent use.
type Repo struct {
	T           testing.TB
	Now         func() time.Time
	RootKeys    []*Key
	TargetsKeys []*Key
	Root        *metadata.Metadata[metadata.RootType]
	Targets     *metadata.Metadata[metadata.TargetsType]
}

// NewRepo builds root v1 (root and targets threshold 1, one fresh key each)
// naming timestamp and, when snapshot is non-nil, snapshot as the server's
// keys, and an empty targets v1. When snapshot is nil the developer's
// targets key also signs snapshots (client-managed snapshot).
func NewRepo(t testing.TB, now func() time.Time, timestamp, snapshot *metadata.Key) *Repo {
	t.Helper()
	r := &Repo{T: t, Now: now, RootKeys: []*Key{NewKey(t)}, TargetsKeys: []*Key{NewKey(t)}}
	root := metadata.Root(now().Add(365 * 24 * time.Hour))
	root.Signed.ConsistentSnapshot = true
	add := func(k *metadata.Key, role string) {
		if err := root.Signed.AddKey(k, role); err != nil {
			t.Fatal(err)
		}
	}
	add(r.RootKeys[0].Public, metadata.ROOT)
	add(r.TargetsKeys[0].Public, metadata.TARGETS)
	add(timestamp, metadata.TIMESTAMP)
	if snapshot != nil {
		add(snapshot, metadata.SNAPSHOT)
	} else {
		add(r.TargetsKeys[0].Public, metadata.SNAPSHOT)
	}
	r.Root = root
	r.Targets = metadata.Targets(now().Add(90 * 24 * time.Hour))
	return r
}

// RootBytes signs the current root with every root key.
func (r *Repo) RootBytes() []byte { return Sign(r.T, r.Root, r.RootKeys...) }

// TargetsBytes signs the current targets with every targets key.
func (r *Repo) TargetsBytes() []byte { return Sign(r.T, r.Targets, r.TargetsKeys...) }

// AddTag adds tag → content to targets and bumps its version (unless it is a
// fresh v1 not yet published: call Bump yourself for full control).
func (r *Repo) AddTag(tag, content string) {
	r.Targets.Signed.Targets[tag] = Target(content)
}

// Bump increments targets' version.
func (r *Repo) Bump() { r.Targets.Signed.Version++ }

// Clone deep-copies metadata through JSON.
func Clone[T metadata.Roles](t testing.TB, m *metadata.Metadata[T]) *metadata.Metadata[T] {
	t.Helper()
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	var out metadata.Metadata[T]
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return &out
}
