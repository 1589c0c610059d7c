package notary

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"strings"
	"time"

	"github.com/secure-systems-lab/go-securesystemslib/cjson"
)

// Notary key types.
const (
	KeyECDSA     = "ecdsa"
	KeyECDSAX509 = "ecdsa-x509"
	KeyRSA       = "rsa"
	KeyRSAX509   = "rsa-x509"
	KeyED25519   = "ed25519"
)

// minRSABits is the smallest RSA modulus accepted (Notary's own minimum).
const minRSABits = 2048

// ID returns the key's Notary key ID: the hex sha256 of its canonical JSON
// ({"keytype":…,"keyval":{"private":null,"public":…}}); for x509 keys the
// certificate is part of it, so it differs from the bare key's ID.
func (k PublicKey) ID() (string, error) {
	if len(k.Value.Private) > 0 && string(k.Value.Private) != "null" {
		return "", fmt.Errorf("%w: a public key entry holds a private key", ErrMalformed)
	}
	b, err := cjson.EncodeCanonical(map[string]any{"keytype": k.Type, "keyval": map[string]any{"private": nil, "public": k.Value.Public}})
	if err != nil {
		return "", fmt.Errorf("%w: key JSON: %v", ErrMalformed, err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:]), nil
}

// Certificate returns the certificate of an x509 key.
func (k PublicKey) Certificate() (*x509.Certificate, error) {
	if k.Type != KeyECDSAX509 && k.Type != KeyRSAX509 {
		return nil, fmt.Errorf("%w: key type %s has no certificate", ErrMalformed, k.Type)
	}
	b, rest := pem.Decode(k.Value.Public)
	if b == nil || b.Type != "CERTIFICATE" || len(strings.TrimSpace(string(rest))) != 0 {
		return nil, fmt.Errorf("%w: %s key is not one PEM certificate", ErrMalformed, k.Type)
	}
	cert, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%w: certificate: %v", ErrMalformed, err)
	}
	return cert, nil
}

// Public returns the key as a Go public key (for x509 keys, the
// certificate's key). Only ECDSA P-256, RSA of at least 2048 bits and
// ed25519 are accepted.
func (k PublicKey) Public() (crypto.PublicKey, error) {
	var pub crypto.PublicKey
	switch k.Type {
	case KeyECDSA, KeyRSA:
		p, err := x509.ParsePKIXPublicKey(k.Value.Public)
		if err != nil {
			return nil, fmt.Errorf("%w: %s public key: %v", ErrMalformed, k.Type, err)
		}
		pub = p
	case KeyECDSAX509, KeyRSAX509:
		cert, err := k.Certificate()
		if err != nil {
			return nil, err
		}
		pub = cert.PublicKey
	case KeyED25519:
		if len(k.Value.Public) != ed25519.PublicKeySize {
			return nil, fmt.Errorf("%w: ed25519 key of %d bytes", ErrMalformed, len(k.Value.Public))
		}
		pub = ed25519.PublicKey(slices.Clone(k.Value.Public))
	default:
		return nil, fmt.Errorf("%w: key type %q is not supported", ErrMalformed, k.Type)
	}
	switch p := pub.(type) {
	case *ecdsa.PublicKey:
		if !strings.HasPrefix(k.Type, "ecdsa") || p.Curve != elliptic.P256() {
			return nil, fmt.Errorf("%w: %s key on curve %s (want P-256)", ErrMalformed, k.Type, p.Curve.Params().Name)
		}
	case *rsa.PublicKey:
		if !strings.HasPrefix(k.Type, "rsa") || p.N.BitLen() < minRSABits {
			return nil, fmt.Errorf("%w: %s key of %d bits", ErrMalformed, k.Type, p.N.BitLen())
		}
	case ed25519.PublicKey:
	default:
		return nil, fmt.Errorf("%w: %s key holds a %T", ErrMalformed, k.Type, pub)
	}
	return pub, nil
}

// fingerprint identifies the key material (the same key under an x509 and
// a bare key ID has one fingerprint): hex sha256 of its PKIX DER.
func fingerprint(pub crypto.PublicKey) (string, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(der)
	return hex.EncodeToString(sum[:]), nil
}

// Fingerprint returns the hex sha256 of a Go public key's PKIX DER, as
// PublicKey.Fingerprint does.
func Fingerprint(pub crypto.PublicKey) (string, error) { return fingerprint(pub) }

// Fingerprint returns the hex sha256 of the key's PKIX DER: equal for the
// same key material whatever its Notary key ID.
func (k PublicKey) Fingerprint() (string, error) {
	pub, err := k.Public()
	if err != nil {
		return "", err
	}
	return fingerprint(pub)
}

// verifySig checks one signature of msg by pub with Notary's method.
func verifySig(pub crypto.PublicKey, method string, msg, sig []byte) error {
	digest := sha256.Sum256(msg)
	switch p := pub.(type) {
	case *ecdsa.PublicKey:
		if method != "ecdsa" {
			return fmt.Errorf("method %q for an ECDSA key", method)
		}
		// Notary's ECDSA signatures are r‖s, each padded to the curve size.
		if len(sig) != 64 {
			return fmt.Errorf("ECDSA signature of %d bytes (want 64)", len(sig))
		}
		r, s := new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])
		if !ecdsa.Verify(p, digest[:], r, s) {
			return errors.New("ECDSA signature does not verify")
		}
	case *rsa.PublicKey:
		switch method {
		case "rsapss":
			if err := rsa.VerifyPSS(p, crypto.SHA256, digest[:], sig, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash}); err != nil {
				return fmt.Errorf("RSA-PSS signature: %w", err)
			}
		case "rsapkcs1v15":
			if err := rsa.VerifyPKCS1v15(p, crypto.SHA256, digest[:], sig); err != nil {
				return fmt.Errorf("RSA PKCS#1 v1.5 signature: %w", err)
			}
		default:
			return fmt.Errorf("method %q for an RSA key", method)
		}
	case ed25519.PublicKey:
		if method != "ed25519" {
			return fmt.Errorf("method %q for an ed25519 key", method)
		}
		if !ed25519.Verify(p, msg, sig) {
			return errors.New("ed25519 signature does not verify")
		}
	default:
		return fmt.Errorf("key of type %T", pub)
	}
	return nil
}

// checkKeyIDs checks that every key is listed under its own Notary key ID.
func checkKeyIDs(keys map[string]PublicKey) error {
	for id, k := range keys {
		got, err := k.ID()
		if err != nil {
			return fmt.Errorf("key %s: %w", short(id), err)
		}
		if got != id {
			return fmt.Errorf("%w: key listed as %s has key ID %s", ErrMalformed, short(id), short(got))
		}
	}
	return nil
}

// verifyThreshold checks that threshold distinct keys among ids (looked up
// in keys) signed env. It returns the IDs of the keys whose signature
// verified.
func verifyThreshold(env *Envelope, keys map[string]PublicKey, ids []string, threshold int) ([]string, error) {
	if threshold < 1 {
		return nil, fmt.Errorf("%w: threshold %d", ErrMalformed, threshold)
	}
	msg, err := canonical(env.Signed)
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{} // fingerprints that already counted
	var good []string
	var bad []string
	for _, sig := range env.Signatures {
		if !slices.Contains(ids, sig.KeyID) || slices.Contains(good, sig.KeyID) {
			continue
		}
		k, ok := keys[sig.KeyID]
		if !ok {
			continue
		}
		pub, err := k.Public()
		if err != nil {
			bad = append(bad, fmt.Sprintf("%s: %v", short(sig.KeyID), err))
			continue
		}
		if err := verifySig(pub, sig.Method, msg, sig.Sig); err != nil {
			bad = append(bad, fmt.Sprintf("%s: %v", short(sig.KeyID), err))
			continue
		}
		fp, err := fingerprint(pub)
		if err != nil || seen[fp] {
			continue
		}
		seen[fp] = true
		good = append(good, sig.KeyID)
	}
	if len(good) < threshold {
		msg := fmt.Sprintf("%d of %d required signatures verify", len(good), threshold)
		if len(bad) > 0 {
			msg += " (" + strings.Join(bad, "; ") + ")"
		}
		return good, fmt.Errorf("%w: %s", ErrSignature, msg)
	}
	return good, nil
}

// checkRootCerts checks the certificates of a root's root-role keys the way
// Notary's trust pinning does: each x509 key's certificate names the GUN
// as its common name and, unless allowExpired, is valid at now.
func checkRootCerts(gun string, r *Root, now time.Time, allowExpired bool) error {
	for _, id := range r.Roles[RoleRoot].KeyIDs {
		k, ok := r.Keys[id]
		if !ok {
			return fmt.Errorf("%w: root role names key %s, which the root does not list", ErrMalformed, short(id))
		}
		if k.Type != KeyECDSAX509 && k.Type != KeyRSAX509 {
			continue
		}
		cert, err := k.Certificate()
		if err != nil {
			return err
		}
		if cert.Subject.CommonName != gun {
			return fmt.Errorf("%w: root key %s has a certificate for %q, not %q", ErrUntrustedRoot, short(id), cert.Subject.CommonName, gun)
		}
		if !allowExpired && (now.Before(cert.NotBefore) || now.After(cert.NotAfter)) {
			return fmt.Errorf("%w: root key %s: certificate valid %s to %s", ErrExpired, short(id), cert.NotBefore.UTC().Format(time.RFC3339), cert.NotAfter.UTC().Format(time.RFC3339))
		}
	}
	return nil
}

func short(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}
