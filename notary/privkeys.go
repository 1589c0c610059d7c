package notary

import (
	"crypto"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"slices"
	"strings"

	"github.com/youmark/pkcs8"
)

// PrivateKeyFile is one of Notary's encrypted private keys: a PEM
// "ENCRYPTED PRIVATE KEY" (PKCS#8, PBES2) with "role:" and, for keys of one
// repository, "gun:" headers, named after the key ID of the bare public
// key (so for an x509 root key it differs from the ID root.json uses).
// Older Notary versions kept keys in private/root_keys/ID_root.key and
// private/tuf_keys/GUN/ID_ROLE.key without headers; the role then comes
// from the file name.
type PrivateKeyFile struct {
	Path string
	ID   string
	Role string
	GUN  string
	pem  *pem.Block
}

// ReadPrivateKeys reads every *.key file under DIR/private.
func ReadPrivateKeys(dir string) ([]PrivateKeyFile, error) {
	base := filepath.Join(dir, "private")
	var out []PrivateKeyFile
	err := filepath.WalkDir(base, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() || !strings.HasSuffix(d.Name(), ".key") {
			return nil
		}
		data, err := readLimited(p)
		if err != nil {
			return err
		}
		b, _ := pem.Decode(data)
		if b == nil || b.Type != "ENCRYPTED PRIVATE KEY" {
			return fmt.Errorf("notary: %s is not an encrypted private key (PEM ENCRYPTED PRIVATE KEY)", p)
		}
		id := strings.TrimSuffix(d.Name(), ".key")
		role := b.Headers["role"]
		if i := strings.LastIndex(id, "_"); i > 0 {
			if role == "" {
				role = id[i+1:]
			}
			id = id[:i]
		}
		gun := b.Headers["gun"]
		if gun == "" {
			if rel, err := filepath.Rel(filepath.Join(base, "tuf_keys"), filepath.Dir(p)); err == nil && !strings.HasPrefix(rel, "..") && rel != "." {
				gun = filepath.ToSlash(rel)
			}
		}
		out = append(out, PrivateKeyFile{Path: p, ID: id, Role: role, GUN: gun, pem: b})
		return nil
	})
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("notary: private keys: %w", err)
	}
	slices.SortFunc(out, func(a, b PrivateKeyFile) int { return strings.Compare(a.Path, b.Path) })
	return out, nil
}

// Decrypt opens the key with its Notary passphrase.
func (f PrivateKeyFile) Decrypt(pass []byte) (crypto.Signer, error) {
	priv, err := pkcs8.ParsePKCS8PrivateKey(f.pem.Bytes, pass)
	if err != nil {
		return nil, fmt.Errorf("notary: key %s (%s): wrong passphrase or damaged key: %w", short(f.ID), f.Role, err)
	}
	s, ok := priv.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("notary: key %s: %T is not a signing key", short(f.ID), priv)
	}
	return s, nil
}
