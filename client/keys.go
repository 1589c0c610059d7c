package client

import (
	"context"
	"crypto"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/signetdev/signet/api"

	"github.com/theupdateframework/go-tuf/v2/metadata"
	"github.com/youmark/pkcs8"
)

// Key and repository housekeeping: key ID prefixes, which repositories a
// key serves, removing a key, changing its passphrase, deleting a
// repository's trust data.

// MinKeyIDPrefix is the shortest key ID prefix accepted for a key ID.
const MinKeyIDPrefix = 8

// ErrAmbiguousKeyID: a key ID prefix is too short or matches no key or
// several keys.
var ErrAmbiguousKeyID = errors.New("not one key ID")

// MatchKeyID returns the one ID of ids that is prefix (a full ID or a
// unique prefix of at least MinKeyIDPrefix hex characters).
func MatchKeyID(prefix string, ids []string) (string, error) {
	if slices.Contains(ids, prefix) {
		return prefix, nil
	}
	if len(prefix) < MinKeyIDPrefix {
		return "", fmt.Errorf("client: key ID %q: %w: give the full ID or at least %d of its hex characters", prefix, ErrAmbiguousKeyID, MinKeyIDPrefix)
	}
	var found []string
	for _, id := range ids {
		if strings.HasPrefix(id, prefix) && !slices.Contains(found, id) {
			found = append(found, id)
		}
	}
	switch len(found) {
	case 0:
		return "", fmt.Errorf("client: key ID %s: %w: no such key", prefix, ErrAmbiguousKeyID)
	case 1:
		return found[0], nil
	}
	return "", fmt.Errorf("client: key ID %s: %w: it starts %d keys (%s)", prefix, ErrAmbiguousKeyID, len(found), strings.Join(found, ", "))
}

// HeldKeyID resolves a key ID or prefix among the keys this client holds.
func (c *Client) HeldKeyID(ctx context.Context, prefix string) (string, error) {
	keys, err := c.keys.List(ctx)
	if err != nil {
		return "", err
	}
	ids := make([]string, len(keys))
	for i, k := range keys {
		ids[i] = k.ID
	}
	return MatchKeyID(prefix, ids)
}

// KeyUse is a repository and role that name a key.
type KeyUse struct {
	GUN  string `json:"gun"`
	Role string `json:"role"`
}

// KeyUses reports, per key ID, the repositories of this trust directory
// whose trusted metadata (the newest verified root, else the pinned one,
// and the cached targets-type roles' delegations) name it. It reads local
// files only.
func (c *Client) KeyUses() (map[string][]KeyUse, error) {
	pins, err := c.Pins()
	if err != nil {
		return nil, err
	}
	out := map[string][]KeyUse{}
	add := func(id string, u KeyUse) {
		if !slices.Contains(out[id], u) {
			out[id] = append(out[id], u)
		}
	}
	for _, p := range pins {
		rootFile := filepath.Join(c.cacheDir(p.GUN), "root.json")
		data, err := os.ReadFile(rootFile)
		if err != nil {
			data, err = os.ReadFile(c.pinFile(p.GUN))
		}
		if err == nil {
			if m, err := metadata.Root().FromBytes(data); err == nil {
				for role, r := range m.Signed.Roles {
					for _, id := range r.KeyIDs {
						add(id, KeyUse{p.GUN, role})
					}
				}
			}
		}
		entries, _ := os.ReadDir(c.cacheDir(p.GUN))
		for _, e := range entries {
			switch e.Name() {
			case "root.json", "timestamp.json", "snapshot.json":
				continue
			}
			if !strings.HasSuffix(e.Name(), ".json") {
				continue
			}
			data, err := os.ReadFile(filepath.Join(c.cacheDir(p.GUN), e.Name()))
			if err != nil {
				continue
			}
			m, err := metadata.Targets().FromBytes(data)
			if err != nil || m.Signed.Delegations == nil {
				continue
			}
			for _, r := range m.Signed.Delegations.Roles {
				for _, id := range r.KeyIDs {
					add(id, KeyUse{p.GUN, r.Name})
				}
			}
			if sr := m.Signed.Delegations.SuccinctRoles; sr != nil {
				for _, id := range sr.KeyIDs {
					add(id, KeyUse{p.GUN, sr.NamePrefix + "-*"})
				}
			}
		}
	}
	return out, nil
}

// Remove deletes a held key's file. It cannot be undone: export the key
// first if it may be needed again.
func (s *FileKeyStore) Remove(_ context.Context, keyID string) error {
	if _, err := s.read(keyID); err != nil {
		return err
	}
	s.mu.Lock()
	delete(s.unlocked, keyID)
	s.mu.Unlock()
	if err := os.Remove(filepath.Join(s.dir, keyID+".key")); err != nil {
		return fmt.Errorf("client: remove key %s: %w", keyID, err)
	}
	return nil
}

// ChangePassphrase re-encrypts a held key under newPass, after decrypting
// it with its current passphrase (asked for through the store's
// PassphraseFunc). The key and its ID stay the same.
func (s *FileKeyStore) ChangePassphrase(_ context.Context, keyID string, newPass []byte) error {
	if len(newPass) == 0 {
		return errors.New("client: the new passphrase is empty")
	}
	b, err := s.read(keyID)
	if err != nil {
		return err
	}
	old, err := s.passphrase(b.Headers["role"], keyID)
	if err != nil {
		return err
	}
	priv, err := pkcs8.ParsePKCS8PrivateKey(b.Bytes, old)
	if err != nil {
		return fmt.Errorf("client: key %s: wrong passphrase or damaged key: %w", keyID, err)
	}
	cs, ok := priv.(crypto.Signer)
	if !ok {
		return fmt.Errorf("client: key %s is not a signing key", keyID)
	}
	// write replaces the file in place (same name, mode 0600).
	return s.write(b.Headers["role"], keyID, cs, newPass)
}

// DeleteRepository deletes gun's trust data on the server (every version
// of every role, and its server keys; it needs admin rights). Clients that
// pinned its root can no longer resolve it; a repository made again under
// the name has a new root, which they must pin anew.
func (c *Client) DeleteRepository(ctx context.Context, gun string) error {
	if err := ValidateGUN(gun); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, c.opts.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodDelete, c.tufURL(gun), nil)
	if err != nil {
		return err
	}
	if _, err := c.do(ctx, gun, "*", req); err != nil {
		return fmt.Errorf("client: delete %s: %w", gun, err)
	}
	return nil
}

// RotateServerKey makes the server create a new key for role (timestamp or
// snapshot) of gun and returns its public part. The old key keeps signing
// until a root that names the new one is published (tufedit.RootChange.Replace,
// signed by the root keys: the ceremony), so nothing breaks in between.
// It needs admin rights.
func (c *Client) RotateServerKey(ctx context.Context, gun, role string) (*metadata.Key, error) {
	if role != metadata.TIMESTAMP && role != metadata.SNAPSHOT {
		return nil, fmt.Errorf("client: the server holds only timestamp and snapshot keys, not %q", role)
	}
	ctx, cancel := context.WithTimeout(ctx, c.opts.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.opts.Server+api.KeyPath(gun, role), nil)
	if err != nil {
		return nil, err
	}
	body, err := c.do(ctx, gun, "*", req)
	if err != nil {
		return nil, fmt.Errorf("client: rotate the %s key of %s: %w", role, gun, err)
	}
	var k metadata.Key
	if err := json.Unmarshal(body, &k); err != nil {
		return nil, fmt.Errorf("client: rotate the %s key of %s: answer: %w", role, gun, err)
	}
	return &k, nil
}
