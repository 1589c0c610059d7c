package client

import (
	"bytes"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"
	"github.com/theupdateframework/go-tuf/v2/metadata/trustedmetadata"
)

// Pinned roots: TrustDir/trust/<escaped GUN>/root.json is the trust anchor
// a user chose; TrustDir/tuf/<escaped GUN>/ is go-tuf's cache of what was
// verified from it (the newest root of the chain among it). Resolution
// starts from the cache, so a new pin must clear it, or the old chain
// would stay in force.

// PinResult says what Pin changed.
type PinResult struct {
	// Replaced is true when another root was pinned before; the cache
	// verified from it was removed.
	Replaced bool
	// Version is the pinned root's version; Previous the replaced one's.
	Version, Previous int64
}

// Pin makes root (a root.json, e.g. from the key ceremony) the trust
// anchor of gun in this trust directory. It must verify by itself. When it
// differs from the root pinned before, the cached metadata verified from
// the old pin is removed, so that the next update starts from the new
// root.
func (c *Client) Pin(gun string, root []byte) (*PinResult, error) {
	if _, err := trustedmetadata.New(root); err != nil {
		return nil, fmt.Errorf("client: pin %s: the root does not verify by itself: %w", gun, err)
	}
	m, err := metadata.Root().FromBytes(root)
	if err != nil {
		return nil, fmt.Errorf("client: pin %s: %w", gun, err)
	}
	unlock, err := c.lock(gun)
	if err != nil {
		return nil, err
	}
	defer unlock()
	res := &PinResult{Version: m.Signed.Version}
	f := c.pinFile(gun)
	old, err := os.ReadFile(f)
	switch {
	case err == nil:
		res.Replaced = !bytes.Equal(old, root)
		if m, err := metadata.Root().FromBytes(old); err == nil && res.Replaced {
			res.Previous = m.Signed.Version
		}
	case !errors.Is(err, os.ErrNotExist):
		return nil, fmt.Errorf("client: %w", err)
	}
	if res.Replaced {
		if err := c.clearCache(gun); err != nil {
			return nil, err
		}
	}
	if err := c.writePin(gun, root); err != nil {
		return nil, err
	}
	return res, nil
}

// writePin stores root as gun's pinned root.
func (c *Client) writePin(gun string, root []byte) error {
	f := c.pinFile(gun)
	if err := os.MkdirAll(filepath.Dir(f), 0o700); err != nil {
		return fmt.Errorf("client: %w", err)
	}
	if err := os.WriteFile(f, root, 0o600); err != nil {
		return fmt.Errorf("client: %w", err)
	}
	return nil
}

// clearCache removes gun's cached metadata (not its lock file) and its
// in-memory state. The caller holds the lock.
func (c *Client) clearCache(gun string) error {
	c.mu.Lock()
	delete(c.warm, gun)
	c.mu.Unlock()
	dir := c.cacheDir(gun)
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("client: %w", err)
	}
	for _, e := range entries {
		if e.Name() == ".lock" {
			continue
		}
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			return fmt.Errorf("client: clear the cache of %s: %w", gun, err)
		}
	}
	return nil
}

// Unpin removes gun's pinned root and its cached metadata: the trust
// directory no longer trusts the repository (resolves fail with ErrNoTrust).
func (c *Client) Unpin(gun string) error {
	unlock, err := c.lock(gun)
	if err != nil {
		return err
	}
	defer unlock()
	f := c.pinFile(gun)
	if _, err := os.Stat(f); errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("client: no root of %s is pinned in this trust directory: nothing to remove", gun)
	}
	if err := c.clearCache(gun); err != nil {
		return err
	}
	if err := os.RemoveAll(filepath.Dir(f)); err != nil {
		return fmt.Errorf("client: %w", err)
	}
	return nil
}

// PinInfo describes one pinned repository.
type PinInfo struct {
	GUN string `json:"gun"`
	// PinnedVersion and PinnedExpires are the pinned root's.
	PinnedVersion int64     `json:"pinned_version"`
	PinnedExpires time.Time `json:"pinned_expires"`
	// TrustedVersion is the newest root verified from the pin (the cache),
	// 0 if nothing was verified yet.
	TrustedVersion int64 `json:"trusted_version,omitempty"`
}

// Pins lists the repositories this trust directory has pinned, by GUN.
func (c *Client) Pins() ([]PinInfo, error) {
	dir := filepath.Join(c.opts.TrustDir, "trust")
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	var out []PinInfo
	for _, e := range entries {
		gun, err := url.PathUnescape(e.Name())
		if err != nil || !e.IsDir() {
			continue
		}
		data, err := os.ReadFile(c.pinFile(gun))
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("client: %w", err)
		}
		p := PinInfo{GUN: gun}
		if m, err := metadata.Root().FromBytes(data); err == nil {
			p.PinnedVersion, p.PinnedExpires = m.Signed.Version, m.Signed.Expires
		}
		if data, err := os.ReadFile(filepath.Join(c.cacheDir(gun), "root.json")); err == nil {
			if m, err := metadata.Root().FromBytes(data); err == nil {
				p.TrustedVersion = m.Signed.Version
			}
		}
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].GUN < out[j].GUN })
	return out, nil
}
