package signer

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
)

// SignPayload signs payload as go-tuf verifies it: Ed25519 over the payload
// itself, ECDSA P-256 over its sha256 with an ASN.1 DER signature. priv may
// live in memory or on a PKCS#11 token.
func SignPayload(priv crypto.Signer, payload []byte) ([]byte, error) {
	switch priv.Public().(type) {
	case *ecdsa.PublicKey:
		sum := sha256.Sum256(payload)
		return priv.Sign(rand.Reader, sum[:], crypto.SHA256)
	case ed25519.PublicKey:
		return priv.Sign(rand.Reader, payload, crypto.Hash(0))
	}
	return nil, fmt.Errorf("signer: unsupported key type %T", priv.Public())
}
