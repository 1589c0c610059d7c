// Package keystore holds signet-signer's online keys: the Store contract
// of key records, with its backends in sub-packages (postgres for
// production, sqlite for a single node, each in the signer's own schema;
// Memory here for tests) and their conformance suite (keystoretest); a
// Backend that makes and loads the private keys (Wrapped: keywrap's
// AES-256-GCM under an argon2id KEK, bound to the row; or a PKCS#11 token,
// package signer/pkcs11); and Signer, the signer.Service over both.
// Storage is untrusted: it never sees a private key in the clear.
//
// It must not import server packages, nor any database driver (the stores
// do). Stores and Signer are safe for concurrent use; SQL stores also
// across processes sharing one database.
package keystore

import (
	"context"
	"crypto"
	"errors"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/signetdev/signet/signer"
	"github.com/signetdev/signet/signer/keywrap"
)

// Record is one stored key. Private holds a wrapped key; HSMID instead
// names a key that never leaves a PKCS#11 token.
type Record struct {
	ID        string
	GUN       string
	Role      string
	Algorithm signer.Algorithm
	Public    *metadata.Key
	Private   *keywrap.Wrapped
	HSMID     string
	CreatedAt time.Time
}

// Backend makes and loads private keys.
type Backend interface {
	// Create makes a key of r.Algorithm for r.GUN and r.Role and fills in
	// r.ID, r.Public and r.Private or r.HSMID (and may change r.Algorithm
	// to one the backend supports).
	Create(ctx context.Context, r *Record) (crypto.Signer, error)
	// Load returns the private key of a record this backend made.
	Load(ctx context.Context, r *Record) (crypto.Signer, error)
}

// AAD binds a wrapped key to its row: key ID, algorithm, GUN and role.
func (r *Record) AAD() []byte {
	return []byte(r.ID + "\x00" + string(r.Algorithm) + "\x00" + r.GUN + "\x00" + r.Role)
}

// ErrExists reports that InsertFirst found a key already.
var ErrExists = errors.New("keystore: a key exists already")

// Store keeps records. Methods are safe for concurrent use.
type Store interface {
	// Insert adds a record (a rotation, or the first key).
	Insert(ctx context.Context, r *Record) error
	// InsertFirst adds r only if (r.GUN, r.Role) has no key yet; otherwise
	// it returns the newest existing record and ErrExists. Concurrent calls
	// insert at most one record.
	InsertFirst(ctx context.Context, r *Record) (*Record, error)
	// List returns gun's records, oldest first.
	List(ctx context.Context, gun string) ([]Record, error)
	// All returns every record, oldest first (for re-wrapping).
	All(ctx context.Context) ([]Record, error)
	// UpdatePrivate replaces the wrapped private key of a record.
	UpdatePrivate(ctx context.Context, id string, w *keywrap.Wrapped) error
	// DeleteGUN removes gun's records.
	DeleteGUN(ctx context.Context, gun string) error
	Ping(ctx context.Context) error
	Close() error
}
