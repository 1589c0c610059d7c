package tufjson

import (
	"bytes"
	"crypto"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"fmt"

	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// VerifyDelegate is go-tuf's Metadata.VerifyDelegate(role, t.Meta) for a
// delegator of type *metadata.Metadata[metadata.RootType] or
// *metadata.Metadata[metadata.TargetsType], over t.Canonical() computed
// once instead of once per key ID. It follows go-tuf's steps and returns
// its errors: the key IDs and threshold the delegator gives role, each key
// loaded (a key that does not load fails the call), each key's signature
// checked, and the threshold counted by distinct public keys (the sha256 of
// their PKIX encoding), so one key under two key IDs counts once.
func VerifyDelegate(delegator any, role string, t *Targets) error {
	var (
		keys      map[string]*metadata.Key
		ids       []string
		threshold int
	)
	switch m := delegator.(type) {
	case *metadata.Metadata[metadata.RootType]:
		if m == nil {
			return &metadata.ErrValue{Msg: "no delegator"}
		}
		keys = m.Signed.Keys
		r, ok := m.Signed.Roles[role]
		if !ok {
			return &metadata.ErrValue{Msg: fmt.Sprintf("no delegation found for %s", role)}
		}
		ids, threshold = r.KeyIDs, r.Threshold
	case *metadata.Metadata[metadata.TargetsType]:
		if m == nil {
			return &metadata.ErrValue{Msg: "no delegator"}
		}
		d := m.Signed.Delegations
		if d == nil {
			return &metadata.ErrValue{Msg: "no delegations found"}
		}
		keys = d.Keys
		if d.Roles != nil {
			found := false
			for _, r := range d.Roles {
				if r.Name == role {
					found, ids, threshold = true, r.KeyIDs, r.Threshold
					break
				}
			}
			if !found {
				return &metadata.ErrValue{Msg: fmt.Sprintf("no delegation found for %s", role)}
			}
		} else if d.SuccinctRoles != nil {
			ids, threshold = d.SuccinctRoles.KeyIDs, d.SuccinctRoles.Threshold
		}
	default:
		return &metadata.ErrType{Msg: "call is valid only on delegator metadata (should be either root or targets)"}
	}
	if len(ids) == 0 {
		return &metadata.ErrValue{Msg: fmt.Sprintf("no delegation found for %s", role)}
	}
	if threshold < 1 {
		return &metadata.ErrValue{Msg: fmt.Sprintf("insufficient threshold (%d) configured for %s", threshold, role)}
	}
	var payload []byte
	signing := map[[sha256.Size]byte]bool{}
	for _, id := range ids {
		key, ok := keys[id]
		if !ok || key == nil { // nil: go-tuf would panic; tufrules refuses such keys earlier
			return &metadata.ErrValue{Msg: fmt.Sprintf("key with ID %s not found in %s keyids", id, role)}
		}
		verifier, fingerprint, err := loadVerifier(key)
		if err != nil {
			return err
		}
		if payload == nil {
			if payload, err = t.Canonical(); err != nil {
				return err
			}
		}
		var sig []byte
		for _, s := range t.Meta.Signatures {
			if s.KeyID == id {
				sig = s.Signature
			}
		}
		if verifies(verifier, sig, payload) {
			signing[fingerprint] = true
		}
	}
	if len(signing) < threshold {
		return &metadata.ErrUnsignedMetadata{Msg: fmt.Sprintf("Verifying %s failed, not enough signatures, got %d, want %d", role, len(signing), threshold)}
	}
	return nil
}

// verifies is verifier.VerifySignature(sig, payload) == nil. sigstore's
// Ed25519 verifier first reads the payload into a copy of its own (io.ReadAll,
// 23 MB allocated for a 10 MB role) and then runs ed25519.Verify on it; for
// that verifier, ed25519.Verify runs here on the payload itself.
func verifies(verifier signature.Verifier, sig, payload []byte) bool {
	if v, ok := verifier.(*signature.ED25519Verifier); ok {
		if pub, err := v.PublicKey(); err == nil {
			if pk, ok := pub.(ed25519.PublicKey); ok {
				// ed25519.Verify panics on a key of another length
				// (tufrules refuses such keys before any signature is
				// checked); here it is a signature that does not verify.
				return len(pk) == ed25519.PublicKeySize && ed25519.Verify(pk, payload, sig)
			}
		}
	}
	return verifier.VerifySignature(bytes.NewReader(sig), bytes.NewReader(payload)) == nil
}

// loadVerifier loads key's verifier as go-tuf's VerifyDelegate does, with
// the fingerprint it counts thresholds by.
func loadVerifier(key *metadata.Key) (signature.Verifier, [sha256.Size]byte, error) {
	var fp [sha256.Size]byte
	pub, err := key.ToPublicKey()
	if err != nil {
		return nil, fp, err
	}
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, fp, err
	}
	fp = sha256.Sum256(der)
	hash := crypto.Hash(0)
	if key.Type != metadata.KeyTypeEd25519 {
		switch key.Scheme {
		case metadata.KeySchemeECDSA_SHA2_P256:
			hash = crypto.SHA256
		case metadata.KeySchemeECDSA_SHA2_P384:
			hash = crypto.SHA384
		default:
			hash = crypto.SHA256
		}
	}
	var v signature.Verifier
	if key.Type == metadata.KeyTypeRSASSA_PSS_SHA256 {
		rsaPub, ok := pub.(*rsa.PublicKey)
		if !ok {
			return nil, fp, &metadata.ErrType{Msg: "failed to convert public key to RSA PSS key"}
		}
		v, err = signature.LoadRSAPSSVerifier(rsaPub, hash, &rsa.PSSOptions{Hash: crypto.SHA256})
	} else {
		v, err = signature.LoadVerifier(pub, hash)
	}
	if err != nil {
		return nil, fp, err
	}
	return v, fp, nil
}
