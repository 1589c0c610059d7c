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
	"slices"
	"strings"
	"sync"

	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/theupdateframework/go-tuf/v2/metadata"
	"github.com/youmark/pkcs8"

	"github.com/signetdev/signet/tufedit"
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
// scrypt, AES-256-CBC), mode 0600, with its role in a PEM header. A key is
// decrypted once per store (once per command in the CLI), and Prefetch can
// start that early. It is safe for concurrent use.
type FileKeyStore struct {
	dir  string
	pass PassphraseFunc
	cost int

	passMu   sync.Mutex // one passphrase asked for at a time (a prompt)
	mu       sync.Mutex
	unlocked map[string]*unlock // decrypted, or being decrypted, by key ID
}

// unlock is one key's decryption; done closes when sg or err is set.
type unlock struct {
	done chan struct{}
	sg   signature.Signer
	err  error
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
	return &FileKeyStore{dir: dir, pass: pass, cost: cost, unlocked: map[string]*unlock{}}
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
// asked for) once per store; if Prefetch started that, Signer waits for it.
// A failed unlock (a mistyped passphrase) is not kept: the next call asks
// again.
func (s *FileKeyStore) Signer(ctx context.Context, keyID string) (signature.Signer, error) {
	s.mu.Lock()
	u, ok := s.unlocked[keyID]
	s.mu.Unlock()
	if !ok {
		if _, err := s.read(keyID); err != nil {
			return nil, err // not held: no passphrase asked
		}
		u = s.start(keyID)
	}
	select {
	case <-u.done:
		return u.sg, u.err
	case <-ctx.Done():
		return nil, fmt.Errorf("client: unlock key %s: %w", keyID, ctx.Err())
	}
}

// Prefetch starts decrypting the held keys among keyIDs in the background,
// so that the scrypt work (about 60 ms per key at N=2^15, or a passphrase
// prompt) overlaps what the caller does next, such as updating the
// repository's metadata; Signer then takes the result. IDs of keys not held
// here are ignored.
func (s *FileKeyStore) Prefetch(keyIDs ...string) {
	for _, id := range keyIDs {
		if _, err := s.read(id); err == nil {
			s.start(id)
		}
	}
}

// start returns keyID's unlock, beginning it if none is done or under way.
func (s *FileKeyStore) start(keyID string) *unlock {
	s.mu.Lock()
	defer s.mu.Unlock()
	if u, ok := s.unlocked[keyID]; ok {
		return u
	}
	u := &unlock{done: make(chan struct{})}
	s.unlocked[keyID] = u
	go func() {
		u.sg, u.err = s.open(keyID)
		if u.err != nil {
			s.mu.Lock()
			delete(s.unlocked, keyID)
			s.mu.Unlock()
		}
		close(u.done)
	}()
	return u
}

// open reads, asks the passphrase of, and decrypts one key file.
func (s *FileKeyStore) open(keyID string) (signature.Signer, error) {
	b, err := s.read(keyID)
	if err != nil {
		return nil, err
	}
	s.passMu.Lock()
	pass, err := s.passphrase(b.Headers["role"], keyID)
	s.passMu.Unlock()
	if err != nil {
		return nil, err
	}
	sg, err := decrypt(b, pass)
	if err != nil {
		return nil, fmt.Errorf("client: key %s: %w", keyID, err)
	}
	return sg, nil
}

// keyPrefetcher is a KeyStore that can start unlocking keys early
// (FileKeyStore). Other stores (a PKCS#11 token) need not.
type keyPrefetcher interface {
	Prefetch(keyIDs ...string)
}

// prefetchKeys starts unlocking, while the caller updates gun's metadata,
// the targets keys held here that gun's last trusted root (in the local
// cache) names: the key a sign, unsign, approve or delegation edit of gun
// will most likely need. The cached files are only a hint of which key to
// decrypt early, never a trust decision: the publish still signs with the
// keys of the freshly updated, verified metadata. When this trust directory
// also holds a key of one of gun's delegations, the change may go there
// instead, so nothing is prefetched: an unlock nobody needs could prompt
// for a passphrase in vain.
func (c *Client) prefetchKeys(ctx context.Context, gun string) {
	p, ok := c.keys.(keyPrefetcher)
	if !ok {
		return
	}
	data, err := os.ReadFile(filepath.Join(c.cacheDir(gun), "root.json"))
	if err != nil {
		return
	}
	root, err := metadata.Root().FromBytes(data)
	if err != nil || root.Signed.Roles[metadata.TARGETS] == nil {
		return
	}
	keys, err := c.keys.List(ctx)
	if err != nil {
		return
	}
	var targets, others []string
	for _, k := range keys {
		switch {
		case slices.Contains(root.Signed.Roles[metadata.TARGETS].KeyIDs, k.ID):
			targets = append(targets, k.ID)
		case k.Role != metadata.ROOT && k.Role != metadata.TARGETS:
			others = append(others, k.ID)
		}
	}
	if len(targets) == 0 {
		return
	}
	// Only a holder of delegation keys pays for reading targets.json (which
	// is large in a big flat repository).
	if len(others) > 0 {
		data, err := os.ReadFile(filepath.Join(c.cacheDir(gun), "targets.json"))
		if err != nil {
			return
		}
		t, err := metadata.Targets().FromBytes(data)
		if err != nil {
			return
		}
		if t.Signed.Delegations != nil {
			for _, id := range others {
				if _, ok := t.Signed.Delegations.Keys[id]; ok {
					return
				}
			}
		}
	}
	p.Prefetch(targets...)
}

// OpenKeyFile decrypts one key file in the format FileKeyStore writes (an
// encrypted PKCS#8 PEM) wherever it is, such as a root key on a ceremony
// machine's removable disk (tufedit.SignRoot takes the signer).
func OpenKeyFile(path string, pass []byte) (signature.Signer, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	b, _ := pem.Decode(data)
	s, err := decrypt(b, pass)
	if err != nil {
		return nil, fmt.Errorf("client: %s: %w", path, err)
	}
	return s, nil
}

// KeyFilePublic reads, with no passphrase, the public key that signet
// keeps in a key file's header: nil for files written before it did.
func KeyFilePublic(path string) (*metadata.Key, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	b, _ := pem.Decode(data)
	if b == nil {
		return nil, fmt.Errorf("client: %s is not a PEM key file", path)
	}
	return publicOf(b), nil
}

// KeyGen is ks's Generate as the key maker of tufedit.NewRoot: a new key
// of role, kept in ks.
func KeyGen(ks KeyStore) tufedit.KeyGen {
	return func(ctx context.Context, role string) (*metadata.Key, error) {
		k, err := ks.Generate(ctx, role)
		if err != nil {
			return nil, err
		}
		return k.Public, nil
	}
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
