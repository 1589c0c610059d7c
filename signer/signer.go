// Package signer defines the online-signing contract: the service that holds
// the timestamp and snapshot private keys of every repository and signs TUF
// metadata for signet-server, which never holds those keys itself.
//
// Implementations: keystore.Signer (keys wrapped in the signer's own
// database; what signet-signer serves, and what signet-server runs
// in-process in its single-node default) and signerclient.Client (the
// server's client of a remote signet-signer over mutual TLS). Every
// implementation refuses to sign a payload that is not the role its key
// belongs to (see CheckPayloadRole). Implementations are safe for concurrent
// use.
package signer

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"
)

var (
	// ErrKeyNotFound reports that no key exists for the GUN, role or key ID.
	ErrKeyNotFound = errors.New("signer: key not found")
	// ErrRoleMismatch reports that a payload is not metadata of the role the
	// key belongs to; the signer refused to sign it.
	ErrRoleMismatch = errors.New("signer: payload does not match the key's role")
	// ErrUnsupportedRole reports a role the signer does not hold keys for.
	ErrUnsupportedRole = errors.New("signer: only timestamp and snapshot keys are held online")
	// ErrUnavailable reports that the signer cannot be reached.
	ErrUnavailable = errors.New("signer: unavailable")
)

// Algorithm names a key algorithm.
type Algorithm string

// Supported algorithms.
const (
	Ed25519   Algorithm = "ed25519"
	ECDSAP256 Algorithm = "ecdsa-p256"
)

// KeyInfo describes one stored key.
type KeyInfo struct {
	GUN       string
	Role      string
	ID        string
	Public    *metadata.Key
	CreatedAt time.Time
}

// Service holds online keys and signs with them.
type Service interface {
	// EnsureKey returns the newest key for (gun, role), creating one with
	// alg if none exists. Concurrent calls create at most one key.
	EnsureKey(ctx context.Context, gun, role string, alg Algorithm) (*KeyInfo, error)
	// PublicKey returns the newest key for (gun, role) or ErrKeyNotFound.
	PublicKey(ctx context.Context, gun, role string) (*KeyInfo, error)
	// RotateKey creates a new key for (gun, role) that becomes the newest;
	// older keys are kept (and still sign) until deleted.
	RotateKey(ctx context.Context, gun, role string, alg Algorithm) (*KeyInfo, error)
	// ListKeys returns every key of gun, oldest first.
	ListKeys(ctx context.Context, gun string) ([]KeyInfo, error)
	// Sign signs payload, the canonical JSON of a metadata's "signed"
	// object, with key keyID of (gun, role). It refuses (ErrRoleMismatch) a
	// payload whose _type is not role.
	Sign(ctx context.Context, gun, role, keyID string, payload []byte) ([]byte, error)
	// DeleteKeys removes every key of gun.
	DeleteKeys(ctx context.Context, gun string) error
	// Ping reports whether the signer answers.
	Ping(ctx context.Context) error
}

// CheckRole reports whether role is one the signer holds keys for.
func CheckRole(role string) error {
	switch role {
	case metadata.TIMESTAMP, metadata.SNAPSHOT:
		return nil
	}
	return fmt.Errorf("%w: %q", ErrUnsupportedRole, role)
}
