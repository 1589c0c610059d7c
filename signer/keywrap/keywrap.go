// Package keywrap encrypts private keys at rest: AES-256-GCM under a
// key-encryption key (KEK) derived from a passphrase with argon2id. Each
// record stores its KDF parameters and salt, and names the passphrase alias
// it was wrapped under, so an operator can add a new passphrase and re-wrap
// every key (signet-signer rewrap). The additional data binds a ciphertext
// to its row (key ID, algorithm, GUN, role), so ciphertexts cannot be
// swapped between rows (Vault's barrier does the same).
//
// It imports only the standard library and x/crypto, and must not import
// other signet packages. A Keyring is safe for concurrent use; it derives
// each KEK once and keeps it in memory, and never prints a secret (String,
// GoString, LogValue).
package keywrap

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"golang.org/x/crypto/argon2"
)

var (
	// ErrDecrypt reports a record that does not decrypt: a wrong
	// passphrase, or a tampered or swapped record.
	ErrDecrypt = errors.New("keywrap: cannot decrypt (wrong passphrase, or a tampered record)")
	// ErrUnknownAlias reports a record wrapped under a passphrase alias the
	// keyring does not hold.
	ErrUnknownAlias = errors.New("keywrap: no passphrase for this alias")
)

// KDFArgon2id names the only KDF used.
const KDFArgon2id = "argon2id"

// Params are argon2id parameters.
type Params struct {
	Time      uint32 `json:"t"`
	MemoryKiB uint32 `json:"m"`
	Threads   uint8  `json:"p"`
}

// DefaultParams follows OWASP's argon2id guidance (t=3, 64 MiB).
func DefaultParams() Params { return Params{Time: 3, MemoryKiB: 64 << 10, Threads: 2} }

// check bounds p both ways: a record read from storage (untrusted) cannot
// make the signer spend more than 4 GiB or 100 passes deriving its KEK.
func (p Params) check() error {
	if p.Time == 0 || p.Time > 100 || p.MemoryKiB < 8 || p.MemoryKiB > 4<<20 || p.Threads == 0 {
		return fmt.Errorf("argon2id parameters t=%d m=%dKiB p=%d out of range (t 1..100, m 8KiB..4GiB, p>0)", p.Time, p.MemoryKiB, p.Threads)
	}
	return nil
}

// Wrapped is one encrypted record.
type Wrapped struct {
	Alias      string `json:"alias"`
	KDF        string `json:"kdf"`
	Params     Params `json:"params"`
	Salt       []byte `json:"salt"`
	Nonce      []byte `json:"nonce"`
	Ciphertext []byte `json:"ciphertext"`
}

type kekID struct {
	alias  string
	salt   string
	params Params
}

// Keyring holds passphrases by alias; new records are wrapped under the
// primary alias.
type Keyring struct {
	primary     string
	params      Params
	passphrases map[string][]byte

	mu   sync.Mutex
	salt []byte           // of the primary alias's KEK for new records
	keks map[kekID][]byte // derived keys
}

// NewKeyring returns a keyring. passphrases maps aliases to passphrases and
// must hold primary.
func NewKeyring(primary string, passphrases map[string][]byte, p Params) (*Keyring, error) {
	if len(passphrases[primary]) == 0 {
		return nil, fmt.Errorf("keywrap: no passphrase for the primary alias %q", primary)
	}
	if err := p.check(); err != nil {
		return nil, fmt.Errorf("keywrap: %w", err)
	}
	pp := make(map[string][]byte, len(passphrases))
	for a, v := range passphrases {
		pp[a] = append([]byte(nil), v...)
	}
	return &Keyring{primary: primary, params: p, passphrases: pp, keks: map[kekID][]byte{}}, nil
}

// Primary names the alias new records are wrapped under.
func (k *Keyring) Primary() string { return k.primary }

// String never shows a secret.
func (k *Keyring) String() string { return fmt.Sprintf("keywrap.Keyring(primary=%s)", k.primary) }

// GoString keeps %#v from printing the passphrases and derived keys.
func (k *Keyring) GoString() string { return k.String() }

// LogValue keeps slog from printing the passphrases and derived keys.
func (k *Keyring) LogValue() slog.Value { return slog.StringValue(k.String()) }

func (k *Keyring) kek(alias string, salt []byte, p Params) ([]byte, error) {
	id := kekID{alias: alias, salt: string(salt), params: p}
	if kek, ok := k.keks[id]; ok {
		return kek, nil
	}
	pass, ok := k.passphrases[alias]
	if !ok {
		return nil, fmt.Errorf("%w %q", ErrUnknownAlias, alias)
	}
	if err := p.check(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrDecrypt, err)
	}
	kek := argon2.IDKey(pass, salt, p.Time, p.MemoryKiB, p.Threads, 32)
	k.keks[id] = kek
	return kek, nil
}

// Wrap encrypts plaintext under the primary passphrase, bound to aad.
func (k *Keyring) Wrap(plaintext, aad []byte) (*Wrapped, error) {
	k.mu.Lock()
	if k.salt == nil {
		k.salt = make([]byte, 16)
		if _, err := rand.Read(k.salt); err != nil {
			k.salt = nil
			k.mu.Unlock()
			return nil, fmt.Errorf("keywrap: salt: %w", err)
		}
	}
	salt := k.salt
	kek, err := k.kek(k.primary, salt, k.params)
	k.mu.Unlock()
	if err != nil {
		return nil, err
	}
	aead, err := newAEAD(kek)
	if err != nil {
		return nil, err
	}
	nonce := make([]byte, aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, fmt.Errorf("keywrap: nonce: %w", err)
	}
	return &Wrapped{
		Alias: k.primary, KDF: KDFArgon2id, Params: k.params,
		Salt: salt, Nonce: nonce, Ciphertext: aead.Seal(nil, nonce, plaintext, aad),
	}, nil
}

// Unwrap decrypts w, which must have been wrapped with the same aad.
func (k *Keyring) Unwrap(w *Wrapped, aad []byte) ([]byte, error) {
	if w == nil || w.KDF != KDFArgon2id || len(w.Salt) < 8 {
		return nil, fmt.Errorf("%w: not an argon2id record", ErrDecrypt)
	}
	k.mu.Lock()
	kek, err := k.kek(w.Alias, w.Salt, w.Params)
	k.mu.Unlock()
	if err != nil {
		return nil, err
	}
	aead, err := newAEAD(kek)
	if err != nil {
		return nil, err
	}
	if len(w.Nonce) != aead.NonceSize() {
		return nil, fmt.Errorf("%w: bad nonce", ErrDecrypt)
	}
	pt, err := aead.Open(nil, w.Nonce, w.Ciphertext, aad)
	if err != nil {
		return nil, ErrDecrypt
	}
	return pt, nil
}

func newAEAD(kek []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(kek)
	if err != nil {
		return nil, fmt.Errorf("keywrap: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("keywrap: %w", err)
	}
	return aead, nil
}
