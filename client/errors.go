package client

import (
	"errors"
	"fmt"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// Sentinels of failed resolutions and publishes; the typed errors below
// match them with errors.Is.
var (
	// ErrNotSigned: no trusted role lists the tag.
	ErrNotSigned = errors.New("not signed")
	// ErrNoTrust: no root is pinned for the repository and TOFU is off.
	ErrNoTrust = errors.New("no trusted root")
	// ErrExpired: trusted metadata has expired (or the server froze it).
	ErrExpired = errors.New("trust data expired")
	// ErrRollback: the server offered older metadata than already trusted.
	ErrRollback = errors.New("rollback")
	// ErrThreshold: metadata is not signed by enough trusted keys.
	ErrThreshold = errors.New("not signed by enough trusted keys")
	// ErrTampered: metadata does not match the length or hashes that the
	// metadata above it vouches for.
	ErrTampered = errors.New("metadata does not match what signed it")
	// ErrInvalid: the server's metadata breaks another TUF rule.
	ErrInvalid = errors.New("invalid trust data")
	// ErrNoKey: the key store holds no key of the role that must sign.
	ErrNoKey = errors.New("no signing key")
)

// NotSignedError says which tag of which repository is not signed.
type NotSignedError struct{ GUN, Tag string }

func (e *NotSignedError) Error() string { return fmt.Sprintf("%s:%s is not signed", e.GUN, e.Tag) }

// Is makes errors.Is(err, ErrNotSigned) true.
func (e *NotSignedError) Is(t error) bool { return t == ErrNotSigned }

// TrustError is a verification failure of a repository's metadata.
type TrustError struct {
	GUN     string
	Kind    error     // ErrExpired, ErrRollback, ErrThreshold, ErrTampered or ErrInvalid
	Expires time.Time // for ErrExpired, when known
	Err     error     // go-tuf's error
}

func (e *TrustError) Error() string {
	switch e.Kind {
	case ErrExpired:
		if !e.Expires.IsZero() {
			return fmt.Sprintf("trust data for %s expired on %s (%v)", e.GUN, e.Expires.UTC().Format(time.RFC3339), e.Err)
		}
		return fmt.Sprintf("trust data for %s expired (%v)", e.GUN, e.Err)
	case ErrRollback:
		return fmt.Sprintf("the server offered older trust data for %s than already trusted (rollback): %v", e.GUN, e.Err)
	case ErrThreshold:
		return fmt.Sprintf("the trust data of %s is not signed by enough trusted keys (the keys its trusted root names): it was tampered with, "+
			"or the repository was made again or its keys replaced without a root rotation; in that case check with its owner and pin the new root "+
			"(signet trust pin %s --root root.json). go-tuf: %v", e.GUN, e.GUN, e.Err)
	case ErrTampered:
		return fmt.Sprintf("trust data for %s was altered: %v", e.GUN, e.Err)
	}
	return fmt.Sprintf("invalid trust data for %s: %v", e.GUN, e.Err)
}

func (e *TrustError) Unwrap() []error { return []error{e.Kind, e.Err} }

// classify turns go-tuf's typed errors into a TrustError; other errors
// (network, local files) are returned wrapped as they are.
func classify(gun string, err error) error {
	var kind error
	switch {
	case errors.Is(err, &metadata.ErrExpiredMetadata{}):
		kind = ErrExpired
	case errors.Is(err, &metadata.ErrEqualVersionNumber{}), errors.Is(err, &metadata.ErrBadVersionNumber{}):
		kind = ErrRollback
	case errors.Is(err, &metadata.ErrUnsignedMetadata{}):
		kind = ErrThreshold
	case errors.Is(err, &metadata.ErrLengthOrHashMismatch{}), errors.Is(err, &metadata.ErrDownloadLengthMismatch{}):
		kind = ErrTampered
	case errors.Is(err, &metadata.ErrRepository{}), errors.Is(err, &metadata.ErrValue{}), errors.Is(err, &metadata.ErrType{}):
		kind = ErrInvalid
	default:
		return fmt.Errorf("client: update %s: %w", gun, err)
	}
	return &TrustError{GUN: gun, Kind: kind, Err: err}
}
