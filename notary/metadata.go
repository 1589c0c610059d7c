// Package notary reads and verifies Notary v1 trust data (the pre-1.0 TUF
// dialect that notary-server, the notary CLI and Docker Content Trust
// wrote): capitalised "_type", base64 hashes, {keyid, method, sig}
// signatures, ecdsa-x509 root keys whose certificate CN is the GUN, key IDs
// over the canonical key JSON, and targets/… delegations with prefix paths.
//
// It owns the dialect only: parsing, signature and hash checks, the root
// chain, expiry, delegation paths, the sources Notary data comes from (a
// notary-server's read API, a client trust directory, a directory of
// server-stored files) and Notary's encrypted private key files. It is
// written from Notary's formats, not vendored, and must not import any
// signet package (client, server): the migration (notary/migrate) maps what
// this package verified into Signet.
//
// Functions are safe for concurrent use; a Source is safe for concurrent
// use unless its documentation says otherwise.
package notary

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/secure-systems-lab/go-securesystemslib/cjson"
)

// Role names of Notary's top-level roles.
const (
	RoleRoot      = "root"
	RoleTargets   = "targets"
	RoleSnapshot  = "snapshot"
	RoleTimestamp = "timestamp"
)

// Sentinels; the errors this package returns wrap one of them.
var (
	// ErrNotFound: the source has no such metadata.
	ErrNotFound = errors.New("not found")
	// ErrMalformed: metadata that does not parse as Notary's dialect.
	ErrMalformed = errors.New("malformed Notary metadata")
	// ErrSignature: not signed by a threshold of the keys that must sign.
	ErrSignature = errors.New("not signed by enough trusted keys")
	// ErrUntrustedRoot: the root does not chain to the trust anchor.
	ErrUntrustedRoot = errors.New("root does not chain to the trust anchor")
	// ErrHashMismatch: metadata differs from the hashes or length that the
	// metadata above it lists.
	ErrHashMismatch = errors.New("metadata does not match the hashes that vouch for it")
	// ErrExpired: expired metadata or root certificate.
	ErrExpired = errors.New("expired")
	// ErrPath: a delegated role lists a target outside its delegated paths.
	ErrPath = errors.New("target outside the delegated paths")
)

// Envelope is a signed Notary document: the signed bytes exactly as
// stored, and the signatures over their canonical form.
type Envelope struct {
	Signed     json.RawMessage `json:"signed"`
	Signatures []Signature     `json:"signatures"`
}

// Signature is Notary's {keyid, method, sig}; Sig is base64 in JSON.
type Signature struct {
	KeyID  string `json:"keyid"`
	Method string `json:"method"`
	Sig    []byte `json:"sig"`
}

// PublicKey is a Notary key: keytype ecdsa, ecdsa-x509, rsa, rsa-x509 or
// ed25519, and its public value (PKIX DER, a PEM certificate for the x509
// types, or 32 raw bytes for ed25519), base64 in JSON.
type PublicKey struct {
	Type  string `json:"keytype"`
	Value struct {
		Public  []byte          `json:"public"`
		Private json.RawMessage `json:"private"`
	} `json:"keyval"`
}

// RoleKeys are the key IDs and threshold of a top-level role.
type RoleKeys struct {
	KeyIDs    []string `json:"keyids"`
	Threshold int      `json:"threshold"`
}

// Common fields of every role.
type Common struct {
	Type    string    `json:"_type"`
	Version int64     `json:"version"`
	Expires time.Time `json:"expires"`
}

// Root is Notary's root.json.
type Root struct {
	Common
	ConsistentSnapshot bool                 `json:"consistent_snapshot"`
	Keys               map[string]PublicKey `json:"keys"`
	Roles              map[string]RoleKeys  `json:"roles"`
}

// FileMeta is what snapshot and timestamp list about a role, and what a
// targets role lists about a tag: length and base64 hashes.
type FileMeta struct {
	Length int64             `json:"length"`
	Hashes map[string][]byte `json:"hashes"`
}

// Snapshot is Notary's snapshot.json.
type Snapshot struct {
	Common
	Meta map[string]FileMeta `json:"meta"`
}

// Timestamp is Notary's timestamp.json.
type Timestamp struct {
	Common
	Meta map[string]FileMeta `json:"meta"`
}

// Targets is Notary's targets.json or a delegated targets/… role.
type Targets struct {
	Common
	Targets     map[string]FileMeta `json:"targets"`
	Delegations Delegations         `json:"delegations"`
}

// Delegations are the keys and roles a targets role delegates to.
type Delegations struct {
	Keys  map[string]PublicKey `json:"keys"`
	Roles []DelegationRole     `json:"roles"`
}

// DelegationRole is one delegation. Paths are prefixes: "" matches every
// target.
type DelegationRole struct {
	Name             string   `json:"name"`
	KeyIDs           []string `json:"keyids"`
	Threshold        int      `json:"threshold"`
	Paths            []string `json:"paths"`
	PathHashPrefixes []string `json:"path_hash_prefixes,omitempty"`
}

// typeNames are the "_type" values Notary writes.
var typeNames = map[string]string{RoleRoot: "Root", RoleTargets: "Targets", RoleSnapshot: "Snapshot", RoleTimestamp: "Timestamp"}

// parse decodes a signed document of kind (root, targets, snapshot,
// timestamp; delegated roles are "targets") into v.
func parse(data []byte, kind string, v interface{ common() *Common }) (*Envelope, error) {
	var env Envelope
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&env); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if len(env.Signed) == 0 || bytes.Equal(env.Signed, []byte("null")) {
		return nil, fmt.Errorf("%w: no \"signed\" object", ErrMalformed)
	}
	if err := json.Unmarshal(env.Signed, v); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	c := v.common()
	if want := typeNames[kind]; c.Type != want {
		return nil, fmt.Errorf("%w: _type is %q, want %q", ErrMalformed, c.Type, want)
	}
	if c.Version < 1 {
		return nil, fmt.Errorf("%w: version %d", ErrMalformed, c.Version)
	}
	if c.Expires.IsZero() {
		return nil, fmt.Errorf("%w: no expiry", ErrMalformed)
	}
	return &env, nil
}

func (c *Common) common() *Common { return c }

// canonical returns the bytes Notary signs: the canonical JSON (OLPC
// canonical JSON, as docker/go's canonical encoder writes it) of the signed
// object.
func canonical(signed json.RawMessage) ([]byte, error) {
	b, err := cjson.EncodeCanonical(signed)
	if err != nil {
		return nil, fmt.Errorf("%w: canonical JSON: %v", ErrMalformed, err)
	}
	return b, nil
}

// ParseRoot parses a Notary root.json (unverified).
func ParseRoot(data []byte) (*Root, *Envelope, error) {
	var r Root
	env, err := parse(data, RoleRoot, &r)
	if err != nil {
		return nil, nil, err
	}
	return &r, env, nil
}
