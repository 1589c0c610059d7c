package tufrepo

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"
	"github.com/theupdateframework/go-tuf/v2/metadata/trustedmetadata"

	"github.com/signetdev/signet/server/store"
	"github.com/signetdev/signet/server/tufrepo/tufjson"
	"github.com/signetdev/signet/signer"
)

// keysTTL bounds how long a replica trusts its copy of a GUN's server key
// list. Keys only matter once a root names them, and a publish that brings
// a root always asks the signer afresh, so a stale copy never refuses a
// valid publish.
const keysTTL = 30 * time.Second

// keyCache keeps each GUN's server key list, saving a signer round trip per
// publish and per timestamp refresh.
type keyCache struct {
	mu      sync.Mutex
	entries map[string]keyEntry
}

type keyEntry struct {
	keys    []signer.KeyInfo
	fetched time.Time
}

// serverKeys returns gun's server keys, from the cache unless fresh is
// asked for or the copy is older than keysTTL.
func (r *Repo) serverKeys(ctx context.Context, gun string, fresh bool) ([]signer.KeyInfo, error) {
	now := time.Now()
	r.keys.mu.Lock()
	e, ok := r.keys.entries[gun]
	r.keys.mu.Unlock()
	if ok && !fresh && now.Sub(e.fetched) < keysTTL {
		return e.keys, nil
	}
	keys, err := r.signer.ListKeys(ctx, gun)
	if err != nil {
		return nil, signerErr(fmt.Errorf("tufrepo: list server keys of %s: %w", gun, err))
	}
	r.keys.mu.Lock()
	r.keys.entries[gun] = keyEntry{keys: keys, fetched: now}
	r.keys.mu.Unlock()
	return keys, nil
}

func (r *Repo) forgetKeys(gun string) {
	r.keys.mu.Lock()
	delete(r.keys.entries, gun)
	r.keys.mu.Unlock()
}

// maxRoots bounds the verified-root cache.
const maxRoots = 4096

// rootCache keeps stored roots that have been verified, by sha256, so that
// a publish does not re-verify the unchanged root of its repository. Cached
// roots are shared and must be treated as read-only.
type rootCache struct {
	mu    sync.Mutex
	roots map[string]*metadata.Metadata[metadata.RootType]
}

// trusted returns a go-tuf trusted set rooted at the stored root m,
// verifying m only the first time it is seen.
func (c *rootCache) trusted(m *store.Meta) (*trustedmetadata.TrustedMetadata, error) {
	c.mu.Lock()
	root, ok := c.roots[m.SHA256]
	c.mu.Unlock()
	if !ok {
		tm, err := trustedmetadata.New(m.Data)
		if err != nil {
			return nil, err
		}
		root = tm.Root
		c.mu.Lock()
		if len(c.roots) >= maxRoots {
			clear(c.roots)
		}
		c.roots[m.SHA256] = root
		c.mu.Unlock()
	}
	return &trustedmetadata.TrustedMetadata{Root: root, Targets: map[string]*metadata.Metadata[metadata.TargetsType]{}}, nil
}

// maxParsed bounds the parsed-role cache.
const maxParsed = 1024

// parsedCache keeps stored targets-type roles decoded, by sha256, so that a
// publish into a delegated role does not decode its unchanged delegators
// again. The bytes were validated when they were published; the cache
// only saves their decoding (and their canonical form, when a change of
// delegation makes a stored role verify again). Cached roles are shared
// and read-only.
type parsedCache struct {
	mu    sync.Mutex
	roles map[string]*tufjson.Targets
}

func (c *parsedCache) targets(m *store.Meta) (*tufjson.Targets, error) {
	c.mu.Lock()
	t, ok := c.roles[m.SHA256]
	c.mu.Unlock()
	if ok {
		return t, nil
	}
	t, err := tufjson.DecodeTargets(m.Data)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	if len(c.roles) >= maxParsed {
		clear(c.roles)
	}
	c.roles[m.SHA256] = t
	c.mu.Unlock()
	return t, nil
}
