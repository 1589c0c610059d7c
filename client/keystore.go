package client

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/theupdateframework/go-tuf/v2/metadata"
	"github.com/youmark/pkcs8"

	"github.com/signetdev/signet/tufrules"
)

// PassphraseFunc returns the passphrase of a key of role (root, targets,
// delegation). The CLI reads SIGNET_<ROLE>_PASSPHRASE or prompts.
type PassphraseFunc func(role, keyID string) ([]byte, error)

// KeyInfo names a held key.
type KeyInfo struct {
	ID     string
	Role   string
	Public *metadata.Key
}

// KeyStore holds a developer's private keys. A PKCS#11 token can stand in
// for the file implementation.
type KeyStore interface {
	// Generate makes and stores a key for role.
	Generate(ctx context.Context, role string) (*KeyInfo, error)
	// Signer returns the signer of a held key, or an error wrapping
	// ErrNoKey.
	Signer(ctx context.Context, keyID string) (signature.Signer, error)
	// List returns the held keys.
	List(ctx context.Context) ([]KeyInfo, error)
	// Export returns a key as an encrypted PKCS#8 PEM file.
	Export(ctx context.Context, keyID string) ([]byte, error)
	// Import stores an encrypted PKCS#8 PEM key for role.
	Import(ctx context.Context, role string, pemBytes []byte) (*KeyInfo, error)
}

// FileKeyStore keeps each key in DIR/<key id>.key: encrypted PKCS#8 (PBES2,
// scrypt, AES-256-CBC), mode 0600, with its role in a PEM header.
type FileKeyStore struct {
	dir  string
	pass PassphraseFunc
	cost int

	mu       sync.Mutex
	unlocked map[string]signature.Signer // decrypted once per process
}

// DefaultScryptCost is scrypt's N for new key files (2^15, as OpenSSL and
// Go's x/crypto recommend for interactive use).
const DefaultScryptCost = 1 << 15

// NewFileKeyStore returns a key store in dir. cost is scrypt's N for new
// files; 0 means DefaultScryptCost (tests pass a small one).
func NewFileKeyStore(dir string, pass PassphraseFunc, cost int) *FileKeyStore {
	if cost == 0 {
		cost = DefaultScryptCost
	}
	return &FileKeyStore{dir: dir, pass: pass, cost: cost, unlocked: map[string]signature.Signer{}}
}

func (s *FileKeyStore) opts() *pkcs8.Opts {
	return &pkcs8.Opts{Cipher: pkcs8.AES256CBC, KDFOpts: pkcs8.ScryptOpts{CostParameter: s.cost, BlockSize: 8, ParallelizationParameter: 1, SaltSize: 16}}
}

func (s *FileKeyStore) passphrase(role, id string) ([]byte, error) {
	if s.pass == nil {
		return nil, errors.New("client: no passphrase source for the key store")
	}
	return s.pass(role, id)
}

// Generate implements KeyStore.
func (s *FileKeyStore) Generate(_ context.Context, role string) (*KeyInfo, error) {
	priv, pub, id, err := tufrules.GenerateKey(tufrules.Ed25519)
	if err != nil {
		return nil, err
	}
	pass, err := s.passphrase(role, id)
	if err != nil {
		return nil, err
	}
	if err := s.write(role, id, priv, pass); err != nil {
		return nil, err
	}
	return &KeyInfo{ID: id, Role: role, Public: pub}, nil
}

func (s *FileKeyStore) write(role, id string, priv crypto.Signer, pass []byte) error {
	der, err := pkcs8.MarshalPrivateKey(priv, pass, s.opts())
	if err != nil {
		return fmt.Errorf("client: encrypt key %s: %w", id, err)
	}
	pubDER, err := x509.MarshalPKIXPublicKey(priv.Public())
	if err != nil {
		return fmt.Errorf("client: key %s: %w", id, err)
	}
	// The public key rides in a header, so that listing needs no passphrase.
	headers := map[string]string{"role": role, "public": base64.StdEncoding.EncodeToString(pubDER)}
	data := pem.EncodeToMemory(&pem.Block{Type: "ENCRYPTED PRIVATE KEY", Headers: headers, Bytes: der})
	if err := os.MkdirAll(s.dir, 0o700); err != nil {
		return fmt.Errorf("client: %w", err)
	}
	if err := os.WriteFile(filepath.Join(s.dir, id+".key"), data, 0o600); err != nil {
		return fmt.Errorf("client: %w", err)
	}
	return nil
}

func (s *FileKeyStore) read(id string) (*pem.Block, error) {
	if strings.ContainsAny(id, `/\.`) || id == "" {
		return nil, fmt.Errorf("client: key %q: %w", id, ErrNoKey)
	}
	data, err := os.ReadFile(filepath.Join(s.dir, id+".key"))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("client: key %s: %w", id, ErrNoKey)
	}
	if err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	b, _ := pem.Decode(data)
	if b == nil || b.Type != "ENCRYPTED PRIVATE KEY" {
		return nil, fmt.Errorf("client: %s is not an encrypted PKCS#8 key", id)
	}
	return b, nil
}

// Signer implements KeyStore. A key is decrypted (and its passphrase
// asked for) once per process.
func (s *FileKeyStore) Signer(_ context.Context, keyID string) (signature.Signer, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if sg, ok := s.unlocked[keyID]; ok {
		return sg, nil
	}
	b, err := s.read(keyID)
	if err != nil {
		return nil, err
	}
	pass, err := s.passphrase(b.Headers["role"], keyID)
	if err != nil {
		return nil, err
	}
	sg, err := decrypt(b, pass)
	if err != nil {
		return nil, fmt.Errorf("client: key %s: %w", keyID, err)
	}
	s.unlocked[keyID] = sg
	return sg, nil
}

// decrypt opens an encrypted PKCS#8 PEM block.
func decrypt(b *pem.Block, pass []byte) (signature.Signer, error) {
	if b == nil || b.Type != "ENCRYPTED PRIVATE KEY" {
		return nil, errors.New("not an encrypted PKCS#8 key")
	}
	priv, err := pkcs8.ParsePKCS8PrivateKey(b.Bytes, pass)
	if err != nil {
		return nil, fmt.Errorf("wrong passphrase or damaged key: %w", err)
	}
	return loadSigner(priv)
}

// loadSigner makes a signer that signs as go-tuf verifies the key's TUF
// scheme: ed25519; ECDSA P-256 over sha256 (ecdsa-sha2-nistp256); RSA-PSS
// over sha256 (rsassa-pss-sha256). signature.LoadSigner with no hash
// refuses ECDSA keys, which imported Notary keys are.
func loadSigner(priv crypto.PrivateKey) (signature.Signer, error) {
	switch k := priv.(type) {
	case *ecdsa.PrivateKey:
		return signature.LoadECDSASigner(k, crypto.SHA256)
	case *rsa.PrivateKey:
		return signature.LoadRSAPSSSigner(k, crypto.SHA256, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash})
	}
	return signature.LoadSigner(priv, crypto.Hash(0))
}

// publicOf reads the public key header of a key file (nil if absent).
func publicOf(b *pem.Block) *metadata.Key {
	der, err := base64.StdEncoding.DecodeString(b.Headers["public"])
	if err != nil || len(der) == 0 {
		return nil
	}
	pub, err := x509.ParsePKIXPublicKey(der)
	if err != nil {
		return nil
	}
	k, err := metadata.KeyFromPublicKey(pub)
	if err != nil {
		return nil
	}
	return k
}

// List implements KeyStore. Public is nil for key files written before
// the public key was kept in them.
func (s *FileKeyStore) List(context.Context) ([]KeyInfo, error) {
	entries, err := os.ReadDir(s.dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	var out []KeyInfo
	for _, e := range entries {
		id, ok := strings.CutSuffix(e.Name(), ".key")
		if !ok {
			continue
		}
		b, err := s.read(id)
		if err != nil {
			return nil, err
		}
		out = append(out, KeyInfo{ID: id, Role: b.Headers["role"], Public: publicOf(b)})
	}
	return out, nil
}

// Export implements KeyStore.
func (s *FileKeyStore) Export(_ context.Context, keyID string) ([]byte, error) {
	b, err := s.read(keyID)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(b), nil
}

// Import implements KeyStore: the key keeps its passphrase.
func (s *FileKeyStore) Import(ctx context.Context, role string, pemBytes []byte) (*KeyInfo, error) {
	b, _ := pem.Decode(pemBytes)
	if b == nil || b.Type != "ENCRYPTED PRIVATE KEY" {
		return nil, errors.New("client: import: not an encrypted PKCS#8 PEM key")
	}
	pass, err := s.passphrase(role, "")
	if err != nil {
		return nil, err
	}
	priv, err := pkcs8.ParsePKCS8PrivateKey(b.Bytes, pass)
	if err != nil {
		return nil, fmt.Errorf("client: import: wrong passphrase or damaged key: %w", err)
	}
	cs, ok := priv.(crypto.Signer)
	if !ok {
		return nil, errors.New("client: import: not a signing key")
	}
	pub, err := metadata.KeyFromPublicKey(cs.Public())
	if err != nil {
		return nil, fmt.Errorf("client: import: %w", err)
	}
	id, err := pub.ID()
	if err != nil {
		return nil, err
	}
	if err := s.write(role, id, cs, pass); err != nil {
		return nil, err
	}
	return &KeyInfo{ID: id, Role: role, Public: pub}, nil
}

// Dir is where the store keeps its files.
func (s *FileKeyStore) Dir() string { return s.dir }
