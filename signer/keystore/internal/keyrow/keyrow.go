// Package keyrow is what the SQL key stores (keystore/postgres and
// keystore/sqlite) share of the signer_keys table: its columns, and a
// Record's algorithm, public key and wrapped private key as the text
// columns hold them. Each store owns its own SQL, transactions and time
// encoding. It holds no state.
package keyrow

import (
	"encoding/json"
	"fmt"

	"github.com/signetdev/signet/signer"
	"github.com/signetdev/signet/signer/keystore"
	"github.com/signetdev/signet/signer/keywrap"
)

// Columns are signer_keys' columns in the order Encode's values and
// Decode's arguments take them: id, gun, role, algorithm, public, private,
// hsm_id, then created_at (each store encodes that one itself).
const Columns = `id, gun, role, algorithm, public, private, hsm_id, created_at`

// Encode returns r's columns but created_at, in Columns order.
func Encode(r *keystore.Record) ([]any, error) {
	pub, err := json.Marshal(r.Public)
	if err != nil {
		return nil, fmt.Errorf("public part: %w", err)
	}
	priv, err := EncodePrivate(r.Private)
	if err != nil {
		return nil, err
	}
	return []any{r.ID, r.GUN, r.Role, string(r.Algorithm), string(pub), priv, r.HSMID}, nil
}

// EncodePrivate is the private column of a wrapped key (JSON null for a
// key on a token).
func EncodePrivate(w *keywrap.Wrapped) (string, error) {
	priv, err := json.Marshal(w)
	if err != nil {
		return "", fmt.Errorf("private part: %w", err)
	}
	return string(priv), nil
}

// Decode fills in r's algorithm, public key and wrapped private key from
// their columns (r.ID is set, for errors). Errors, as Encode's, carry no
// package prefix: the store adds its own.
func Decode(r *keystore.Record, alg, pub, priv string) error {
	r.Algorithm = signer.Algorithm(alg)
	if err := json.Unmarshal([]byte(pub), &r.Public); err != nil {
		return fmt.Errorf("key %s public part: %w", r.ID, err)
	}
	if err := json.Unmarshal([]byte(priv), &r.Private); err != nil {
		return fmt.Errorf("key %s private part: %w", r.ID, err)
	}
	return nil
}
