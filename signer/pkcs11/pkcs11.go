//go:build cgo && pkcs11

// Package pkcs11 is the keystore.Backend whose keys are generated and used
// on a PKCS#11 token (an HSM, or SoftHSM2 in tests) through crypto11: the
// private key never leaves the token; the key store keeps only the public
// key and the token object's CKA_ID. Keys are ECDSA P-256 (crypto11 does not
// make Ed25519 keys).
//
// Built only with `-tags pkcs11` and cgo. It must not import server
// packages. A Backend is safe for concurrent use (crypto11 pools sessions).
package pkcs11

import (
	"context"
	"crypto"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/hex"
	"fmt"

	"github.com/ThalesGroup/crypto11"
	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/signetdev/signet/signer"
	"github.com/signetdev/signet/signer/keystore"
)

// Config names the token.
type Config struct {
	Module     string // path of the PKCS#11 library, e.g. /usr/lib/softhsm/libsofthsm2.so
	TokenLabel string
	PIN        string
}

// Backend makes and uses keys on a token.
type Backend struct{ ctx *crypto11.Context }

var _ keystore.Backend = (*Backend)(nil)

// Open logs in to the token.
func Open(cfg Config) (*Backend, error) {
	ctx, err := crypto11.Configure(&crypto11.Config{Path: cfg.Module, TokenLabel: cfg.TokenLabel, Pin: cfg.PIN})
	if err != nil {
		return nil, fmt.Errorf("pkcs11: open token %q with %s: %w", cfg.TokenLabel, cfg.Module, err)
	}
	return &Backend{ctx: ctx}, nil
}

// Close logs out.
func (b *Backend) Close() error { return b.ctx.Close() }

// Create implements keystore.Backend: an ECDSA P-256 key pair on the token,
// labelled with its repository and role.
func (b *Backend) Create(_ context.Context, r *keystore.Record) (crypto.Signer, error) {
	id := make([]byte, 16)
	if _, err := rand.Read(id); err != nil {
		return nil, err
	}
	priv, err := b.ctx.GenerateECDSAKeyPairWithLabel(id, []byte("signet "+r.GUN+" "+r.Role), elliptic.P256())
	if err != nil {
		return nil, fmt.Errorf("pkcs11: generate key for %s/%s: %w", r.GUN, r.Role, err)
	}
	pub, err := metadata.KeyFromPublicKey(priv.Public())
	if err != nil {
		return nil, fmt.Errorf("pkcs11: %w", err)
	}
	if r.ID, err = pub.ID(); err != nil {
		return nil, err
	}
	r.Public, r.Algorithm, r.HSMID = pub, signer.ECDSAP256, hex.EncodeToString(id)
	return priv, nil
}

// Load implements keystore.Backend.
func (b *Backend) Load(_ context.Context, r *keystore.Record) (crypto.Signer, error) {
	id, err := hex.DecodeString(r.HSMID)
	if err != nil || len(id) == 0 {
		return nil, fmt.Errorf("pkcs11: key %s is not on a token", r.ID)
	}
	priv, err := b.ctx.FindKeyPair(id, nil)
	if err != nil {
		return nil, fmt.Errorf("pkcs11: find key %s: %w", r.ID, err)
	}
	if priv == nil {
		return nil, fmt.Errorf("pkcs11: key %s (CKA_ID %s) is not on this token", r.ID, r.HSMID)
	}
	pub, err := metadata.KeyFromPublicKey(priv.Public())
	if err != nil {
		return nil, err
	}
	if id, err := pub.ID(); err != nil || id != r.ID {
		return nil, fmt.Errorf("pkcs11: the token's key %s does not match key %s", r.HSMID, r.ID)
	}
	return priv, nil
}
