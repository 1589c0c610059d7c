package tufrepo

import (
	"sync"

	"github.com/theupdateframework/go-tuf/v2/metadata"
	"github.com/theupdateframework/go-tuf/v2/metadata/trustedmetadata"

	"github.com/signetdev/signet/tufjson"
)

// The caches below hold what one publish decoded or verified, for the
// next: every entry is keyed by the sha256 of the bytes it was made from
// (and the state of a publish names the current sha256 of every role, read
// fresh from the store), so an entry is never stale, only unused, and none
// needs invalidating when another replica writes. Cached values are shared
// and read-only. Each cache is bounded and simply emptied when full.

// maxRoots bounds the verified-root cache.
const maxRoots = 4096

// rootCache keeps stored roots that have been verified, by sha256, so that
// a publish does not re-verify the unchanged root of its repository.
type rootCache struct {
	mu    sync.Mutex
	roots map[string]*metadata.Metadata[metadata.RootType]
}

// trusted returns a go-tuf trusted set rooted at the stored root whose
// sha256 is sum, verifying it (with data, called only then) the first time
// it is seen.
func (c *rootCache) trusted(sum string, data func() ([]byte, error)) (*trustedmetadata.TrustedMetadata, error) {
	c.mu.Lock()
	root, ok := c.roots[sum]
	c.mu.Unlock()
	if !ok {
		b, err := data()
		if err != nil {
			return nil, err
		}
		tm, err := trustedmetadata.New(b)
		if err != nil {
			return nil, err
		}
		root = tm.Root
		c.put(sum, root)
	}
	return &trustedmetadata.TrustedMetadata{Root: root, Targets: map[string]*metadata.Metadata[metadata.TargetsType]{}}, nil
}

// put caches root, verified (by itself, or as the next link of a chain
// from a verified root), under the sha256 of its bytes.
func (c *rootCache) put(sum string, root *metadata.Metadata[metadata.RootType]) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.roots) >= maxRoots {
		clear(c.roots)
	}
	c.roots[sum] = root
}

// Bounds of the decoded-role cache, in bytes of the roles' JSON (decoded,
// a role takes several times that).
const (
	maxParsedBytes = 16 << 20
	maxParsedRole  = maxParsedBytes / 4
)

// parsedCache keeps stored targets-type roles decoded, by sha256, so that
// a publish into a delegated role does not decode its unchanged delegators
// again. The bytes were validated when they were published; the cache
// only saves their decoding (and their canonical form, when a change of
// delegation makes a stored role verify again).
type parsedCache struct {
	mu    sync.Mutex
	roles map[string]*tufjson.Targets
	bytes int
}

func (c *parsedCache) get(sum string) *tufjson.Targets {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.roles[sum]
}

// put caches t, decoded from size bytes whose sha256 is sum.
func (c *parsedCache) put(sum string, size int, t *tufjson.Targets) {
	if size > maxParsedRole {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.roles[sum]; ok {
		return
	}
	if c.bytes+size > maxParsedBytes {
		clear(c.roles)
		c.bytes = 0
	}
	c.roles[sum] = t
	c.bytes += size
}

// maxSnapshots bounds the snapshot cache: one entry per repository.
const maxSnapshots = 4096

// snapCache keeps the latest snapshot of each repository parsed, with its
// sha256, so that the next publish builds on it without fetching or
// decoding it: a server-made snapshot is put here by the publish that
// made it, and is never decoded again by this replica.
type snapCache struct {
	mu    sync.Mutex
	snaps map[string]snapEntry // by GUN
}

type snapEntry struct {
	sum  string
	snap *metadata.Metadata[metadata.SnapshotType]
}

func (c *snapCache) get(gun, sum string) *metadata.Metadata[metadata.SnapshotType] {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.snaps[gun]; ok && e.sum == sum {
		return e.snap
	}
	return nil
}

func (c *snapCache) put(gun, sum string, snap *metadata.Metadata[metadata.SnapshotType]) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.snaps[gun]; !ok && len(c.snaps) >= maxSnapshots {
		clear(c.snaps)
	}
	c.snaps[gun] = snapEntry{sum: sum, snap: snap}
}

func (c *snapCache) forget(gun string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.snaps, gun)
}
