package tufrules

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"fmt"

	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// MinRSABits is the smallest RSA modulus accepted in any role.
const MinRSABits = 2048

// CheckPublicKey accepts ed25519, ECDSA P-256 and RSA public keys of at
// least MinRSABits.
func CheckPublicKey(pub crypto.PublicKey) error {
	switch p := pub.(type) {
	case ed25519.PublicKey:
		if len(p) != ed25519.PublicKeySize {
			return broken("ed25519 public key has %d bytes, want %d", len(p), ed25519.PublicKeySize)
		}
	case *ecdsa.PublicKey:
		if p.Curve != elliptic.P256() {
			return broken("ECDSA curve %s is not supported (want P-256)", p.Curve.Params().Name)
		}
	case *rsa.PublicKey:
		if p.N.BitLen() < MinRSABits {
			return broken("RSA key of %d bits is too small (want at least %d)", p.N.BitLen(), MinRSABits)
		}
	case ed25519.PrivateKey, *ecdsa.PrivateKey, *rsa.PrivateKey:
		return broken("is a private key; give the public key")
	case nil:
		return broken("no public key")
	default:
		return broken("key type %T is not supported (want ed25519, ECDSA P-256 or RSA)", pub)
	}
	return nil
}

// schemes maps every accepted TUF keytype to the one scheme it may use.
// "ecdsa-sha2-nistp256" is the specification's name for ECDSA P-256 keys,
// "ecdsa" go-tuf's and python-tuf's: both are accepted.
var schemes = map[string]string{
	metadata.KeyTypeEd25519:                metadata.KeySchemeEd25519,
	metadata.KeyTypeECDSA_SHA2_P256:        metadata.KeySchemeECDSA_SHA2_P256,
	metadata.KeyTypeECDSA_SHA2_P256_COMPAT: metadata.KeySchemeECDSA_SHA2_P256,
	metadata.KeyTypeRSASSA_PSS_SHA256:      metadata.KeySchemeRSASSA_PSS_SHA256,
}

// Fingerprint checks that k is an accepted TUF key (keytype, scheme, a
// public value that parses, CheckPublicKey) and returns the hex sha256 of
// its PKIX encoding: two keys with one fingerprint are one key, whatever
// their key IDs, and count once towards a threshold (as go-tuf counts
// signatures).
func Fingerprint(k *metadata.Key) (string, error) {
	if k == nil {
		return "", broken("no key")
	}
	want, ok := schemes[k.Type]
	if !ok {
		return "", broken("keytype %q is not supported (want ed25519, ecdsa, ecdsa-sha2-nistp256 or rsa)", k.Type)
	}
	if k.Scheme != want {
		return "", broken("keytype %q with scheme %q is not supported (want scheme %q)", k.Type, k.Scheme, want)
	}
	pub, err := k.ToPublicKey()
	if err != nil {
		return "", broken("%s public value does not parse: %v", k.Type, err)
	}
	if err := CheckPublicKey(pub); err != nil {
		return "", err
	}
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return "", broken("%s public key does not encode: %v", k.Type, err)
	}
	sum := sha256.Sum256(der)
	return hex.EncodeToString(sum[:]), nil
}

// Algorithm names a key algorithm for GenerateKey.
type Algorithm string

// Algorithms GenerateKey makes.
const (
	Ed25519   Algorithm = "ed25519"
	ECDSAP256 Algorithm = "ecdsa-p256"
)

// GenerateKey makes a private key of alg (Ed25519 when empty) and returns
// it with its TUF public key and key ID.
func GenerateKey(alg Algorithm) (crypto.Signer, *metadata.Key, string, error) {
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
		return nil, nil, "", fmt.Errorf("tufrules: unsupported key algorithm %q", alg)
	}
	if err != nil {
		return nil, nil, "", fmt.Errorf("tufrules: generate %s key: %w", alg, err)
	}
	pub, err := metadata.KeyFromPublicKey(priv.Public())
	if err != nil {
		return nil, nil, "", fmt.Errorf("tufrules: %w", err)
	}
	id, err := pub.ID()
	if err != nil {
		return nil, nil, "", fmt.Errorf("tufrules: %w", err)
	}
	return priv, pub, id, nil
}
