package tufedit

import (
	"bytes"
	"crypto"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/signetdev/signet/tufrules"
)

// ParsePublicKey reads one public key given as
//
//   - TUF key JSON ({"keytype":..,"scheme":..,"keyval":{"public":..}}, as
//     go-tuf's metadata.Key marshals),
//   - a PEM "PUBLIC KEY" (PKIX) block, or
//   - a PEM "CERTIFICATE" block, whose public key is used (the certificate's
//     validity and issuer are not checked: it only carries the key).
//
// Supported keys are ed25519, ECDSA P-256 and RSA (at least 2048 bits).
// Private keys, other curves, empty input and anything else are refused.
func ParsePublicKey(data []byte) (*metadata.Key, error) {
	k, err := parsePublicKey(data)
	if err != nil {
		return nil, fmt.Errorf("tufedit: public key: %w", err)
	}
	return k, nil
}

func parsePublicKey(data []byte) (*metadata.Key, error) {
	s := bytes.TrimSpace(data)
	if len(s) == 0 {
		return nil, errors.New("empty input")
	}
	if s[0] == '{' {
		return keyFromTUFJSON(s)
	}
	block, rest := pem.Decode(s)
	if block == nil {
		return nil, errors.New("neither TUF key JSON nor PEM")
	}
	if next, _ := pem.Decode(rest); next != nil {
		return nil, errors.New("more than one PEM block; give exactly one key or certificate")
	}
	var pub crypto.PublicKey
	switch {
	case block.Type == "PUBLIC KEY":
		p, err := x509.ParsePKIXPublicKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("PEM PUBLIC KEY: %w", err)
		}
		pub = p
	case block.Type == "CERTIFICATE":
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("PEM CERTIFICATE: %w", err)
		}
		pub = cert.PublicKey
	case strings.Contains(block.Type, "PRIVATE KEY"):
		return nil, fmt.Errorf("PEM %q is a private key; give the public key or a certificate", block.Type)
	default:
		return nil, fmt.Errorf("PEM block %q is not supported (want PUBLIC KEY or CERTIFICATE)", block.Type)
	}
	// Check before KeyFromPublicKey: it labels every ECDSA key P-256.
	if err := tufrules.CheckPublicKey(pub); err != nil {
		return nil, err
	}
	k, err := metadata.KeyFromPublicKey(pub)
	if err != nil {
		return nil, err
	}
	return k, nil
}

func keyFromTUFJSON(s []byte) (*metadata.Key, error) {
	var k metadata.Key
	if err := json.Unmarshal(s, &k); err != nil {
		return nil, fmt.Errorf("TUF key JSON: %w", err)
	}
	if k.Type == "" {
		return nil, errors.New("TUF key JSON has no keytype")
	}
	if p, ok := k.Value.UnrecognizedFields["private"]; ok && p != nil && p != "" {
		return nil, errors.New("TUF key JSON holds a private key; give the public key only")
	}
	if _, err := tufrules.Fingerprint(&k); err != nil {
		return nil, err
	}
	return &k, nil
}
