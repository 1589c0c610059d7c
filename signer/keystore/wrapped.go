package keystore

import (
	"context"
	"crypto"
	"crypto/x509"
	"errors"
	"fmt"

	"github.com/signetdev/signet/tufrules"

	"github.com/signetdev/signet/signer/keywrap"
)

// Wrapped is the Backend that keeps private keys in the store, wrapped by a
// keyring. Safe for concurrent use.
type Wrapped struct{ kr *keywrap.Keyring }

// NewWrapped returns the backend for kr.
func NewWrapped(kr *keywrap.Keyring) *Wrapped { return &Wrapped{kr: kr} }

// Create implements Backend.
func (w *Wrapped) Create(_ context.Context, r *Record) (crypto.Signer, error) {
	priv, pub, id, err := tufrules.GenerateKey(r.Algorithm)
	if err != nil {
		return nil, err
	}
	r.ID, r.Public = id, pub
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, fmt.Errorf("keystore: %w", err)
	}
	defer clear(der)
	if r.Private, err = w.kr.Wrap(der, r.AAD()); err != nil {
		return nil, fmt.Errorf("keystore: wrap: %w", err)
	}
	return priv, nil
}

// Load implements Backend.
func (w *Wrapped) Load(_ context.Context, r *Record) (crypto.Signer, error) {
	if r.Private == nil {
		return nil, fmt.Errorf("keystore: key %s is on a token, not wrapped", r.ID)
	}
	der, err := w.kr.Unwrap(r.Private, r.AAD())
	if err != nil {
		if errors.Is(err, keywrap.ErrDecrypt) || errors.Is(err, keywrap.ErrUnknownAlias) {
			return nil, fmt.Errorf("keystore: key %s: %w (wrong or missing signer passphrase for alias %q?)", r.ID, err, r.Private.Alias)
		}
		return nil, fmt.Errorf("keystore: key %s: %w", r.ID, err)
	}
	priv, err := x509.ParsePKCS8PrivateKey(der)
	clear(der)
	if err != nil {
		return nil, fmt.Errorf("keystore: key %s: %w", r.ID, err)
	}
	cs, ok := priv.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("keystore: key %s is not a signing key", r.ID)
	}
	return cs, nil
}

// Rewrap re-encrypts every wrapped key of st under to's primary alias; from
// must unwrap them all.
func Rewrap(ctx context.Context, st Store, from, to *keywrap.Keyring) (int, error) {
	all, err := st.All(ctx)
	if err != nil {
		return 0, fmt.Errorf("keystore: rewrap: %w", err)
	}
	n := 0
	for i := range all {
		r := &all[i]
		if r.Private == nil {
			continue // on a token
		}
		der, err := from.Unwrap(r.Private, r.AAD())
		if err != nil {
			return n, fmt.Errorf("keystore: rewrap key %s: %w", r.ID, err)
		}
		w, err := to.Wrap(der, r.AAD())
		clear(der)
		if err != nil {
			return n, fmt.Errorf("keystore: rewrap key %s: %w", r.ID, err)
		}
		if err := st.UpdatePrivate(ctx, r.ID, w); err != nil {
			return n, fmt.Errorf("keystore: rewrap key %s: %w", r.ID, err)
		}
		n++
	}
	return n, nil
}
