package signer

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"fmt"

	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// Generate makes a private key of alg (Ed25519 when empty) and returns it
// with its TUF public key and key ID.
func Generate(alg Algorithm) (crypto.Signer, *metadata.Key, string, error) {
	var (
		priv crypto.Signer
		err  error
	)
	switch alg {
	case Ed25519, "":
		_, priv, err = ed25519.GenerateKey(rand.Reader)
	case ECDSAP256:
		priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	default:
		return nil, nil, "", fmt.Errorf("signer: unsupported algorithm %q", alg)
	}
	if err != nil {
		return nil, nil, "", fmt.Errorf("signer: generate %s key: %w", alg, err)
	}
	pub, err := metadata.KeyFromPublicKey(priv.Public())
	if err != nil {
		return nil, nil, "", fmt.Errorf("signer: %w", err)
	}
	id, err := pub.ID()
	if err != nil {
		return nil, nil, "", fmt.Errorf("signer: %w", err)
	}
	return priv, pub, id, nil
}

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
