// Package metacache keeps signet-server's hot read path off the database:
// it caches, per repository, the latest version of each role and any exact
// versions asked for, and forgets a repository as soon as anything of it is
// written (by this process, or, through store.Watcher, by any replica).
//
// Latest entries of a store shared between processes are also trusted for at
// most a short TTL, so a replica serves another replica's new timestamp
// within that TTL even if a notification is lost.
//
// Memory is bounded against anonymous reads: every entry is counted at what
// it costs (its bytes plus a measured per-entry and per-repository
// overhead, not just its data), whole repositories are evicted least
// recently used first, a repository keeps at most a few not-found answers,
// and not-found answers for repositories the cache holds nothing of go to a
// small separate table of fixed size, so that requests for made-up names
// cannot push real repositories out.
//
// The Meta values returned are shared: callers must not modify them. A
// Cache is safe for concurrent use. It imports no driver and applies no TUF
// rules.
package metacache

import (
	"container/list"
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/signetdev/signet/server/store"
)

// Defaults.
const (
	DefaultSharedTTL = 500 * time.Millisecond
	DefaultMaxBytes  = 256 << 20
	// DefaultMaxAbsent is how many repositories the cache remembers as
	// holding nothing (for unknown names): a miss beyond it reads the store.
	DefaultMaxAbsent = 1024
)

// Accounting. The overheads were measured with runtime.MemStats on Go 1.26
// (amd64), ~1.5 KB for a repository with one role and three not-found
// answers: TestCacheCountsRealSizes keeps them honest.
const (
	// entryOverhead is one cached answer: its map slot and the entry.
	entryOverhead = 96
	// metaOverhead is a found answer's store.Meta beside its strings and
	// data.
	metaOverhead = 112
	// gunOverhead is one repository: its gunEntry, two maps, the list
	// element and its slot in the index.
	gunOverhead = 640
	// maxNegativePerGUN bounds the not-found answers kept per repository
	// (e.g. unknown versions or delegated roles): past it, misses read the
	// store.
	maxNegativePerGUN = 32
	// maxNegativePerAbsent bounds the not-found answers kept per unknown
	// repository (a client asks for root, timestamp, a key or two).
	maxNegativePerAbsent = 4
)

// Cache is a read-through cache in front of a store.MetaStore. Its writes go
// to the store and invalidate the repository they touch.
type Cache struct {
	store.MetaStore
	ttl      time.Duration
	maxBytes int64
	now      func() time.Time

	group singleflight.Group

	mu    sync.Mutex
	gen   uint64 // bumped on every invalidation
	guns  map[string]*list.Element
	lru   *list.List // of *gunEntry, most recent first
	bytes int64

	// Not-found answers for repositories with nothing in guns.
	maxAbsent int
	absent    map[string]*list.Element
	absentLRU *list.List // of *absentEntry, most recent first

	hits, misses atomic.Uint64
}

type entry struct {
	meta    *store.Meta // nil: known not to exist
	fetched time.Time
}

type verKey struct {
	role    string
	version int64
}

type gunEntry struct {
	gun       string
	latest    map[string]entry
	versions  map[verKey]entry
	bytes     int64
	negatives int
}

type absentEntry struct {
	gun  string
	keys map[verKey]time.Time
}

// Option configures a Cache.
type Option func(*Cache)

// WithTTL sets how long a latest entry is trusted without a write in this
// process; 0 trusts it until invalidated. New sets DefaultSharedTTL for
// stores that implement store.Watcher and 0 for others.
func WithTTL(d time.Duration) Option { return func(c *Cache) { c.ttl = d } }

// WithMaxBytes bounds the cached metadata bytes.
func WithMaxBytes(n int64) Option { return func(c *Cache) { c.maxBytes = n } }

// WithMaxAbsent bounds how many unknown repositories' not-found answers
// are remembered (0 remembers none).
func WithMaxAbsent(n int) Option { return func(c *Cache) { c.maxAbsent = n } }

// WithClock sets the clock used for TTLs.
func WithClock(now func() time.Time) Option { return func(c *Cache) { c.now = now } }

// New returns a cache in front of st.
func New(st store.MetaStore, opts ...Option) *Cache {
	c := &Cache{MetaStore: st, maxBytes: DefaultMaxBytes, now: time.Now, guns: map[string]*list.Element{}, lru: list.New(),
		maxAbsent: DefaultMaxAbsent, absent: map[string]*list.Element{}, absentLRU: list.New()}
	if _, shared := st.(store.Watcher); shared {
		c.ttl = DefaultSharedTTL
	}
	for _, o := range opts {
		o(c)
	}
	return c
}

// Stats reports cache hits and misses since start.
func (c *Cache) Stats() (hits, misses uint64) { return c.hits.Load(), c.misses.Load() }

// Size reports the approximate bytes held for known repositories.
func (c *Cache) Size() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.bytes
}

// Len reports how many repositories are cached, and how many unknown ones
// are remembered as absent.
func (c *Cache) Len() (known, absent int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lru.Len(), c.absentLRU.Len()
}

// Run follows the store's change notifications until ctx ends, if the store
// is shared; otherwise it returns at once.
func (c *Cache) Run(ctx context.Context) error {
	w, ok := c.MetaStore.(store.Watcher)
	if !ok {
		return nil
	}
	return w.Watch(ctx, func(gun string) {
		if gun == "" {
			c.InvalidateAll()
			return
		}
		c.Invalidate(gun)
	})
}

// Invalidate forgets everything cached for gun.
func (c *Cache) Invalidate(gun string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	if el, ok := c.guns[gun]; ok {
		c.removeLocked(el)
	}
	if el, ok := c.absent[gun]; ok {
		c.absentLRU.Remove(el)
		delete(c.absent, gun)
	}
}

// InvalidateAll forgets everything.
func (c *Cache) InvalidateAll() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	c.guns = map[string]*list.Element{}
	c.lru.Init()
	c.bytes = 0
	c.absent = map[string]*list.Element{}
	c.absentLRU.Init()
}

// GetCurrent returns the latest version of role, from memory when fresh.
func (c *Cache) GetCurrent(ctx context.Context, gun, role string) (*store.Meta, error) {
	return c.get(ctx, gun, verKey{role: role}, func(ctx context.Context) (*store.Meta, error) {
		return c.MetaStore.GetCurrent(ctx, gun, role)
	})
}

// GetVersion returns one exact version of role, from memory when cached.
func (c *Cache) GetVersion(ctx context.Context, gun, role string, version int64) (*store.Meta, error) {
	return c.get(ctx, gun, verKey{role: role, version: version}, func(ctx context.Context) (*store.Meta, error) {
		return c.MetaStore.GetVersion(ctx, gun, role, version)
	})
}

// UpdateMany writes through and invalidates gun.
func (c *Cache) UpdateMany(ctx context.Context, gun string, updates []store.Update) error {
	defer c.Invalidate(gun)
	return c.MetaStore.UpdateMany(ctx, gun, updates)
}

// Delete writes through and invalidates gun.
func (c *Cache) Delete(ctx context.Context, gun string) error {
	defer c.Invalidate(gun)
	return c.MetaStore.Delete(ctx, gun)
}

// PublishStaged writes through and invalidates gun.
func (c *Cache) PublishStaged(ctx context.Context, gun, id string, revision int64, updates []store.Update) error {
	defer c.Invalidate(gun)
	return c.MetaStore.PublishStaged(ctx, gun, id, revision, updates)
}

func (c *Cache) get(ctx context.Context, gun string, k verKey, fetch func(context.Context) (*store.Meta, error)) (*store.Meta, error) {
	if e, ok := c.lookup(gun, k); ok {
		c.hits.Add(1)
		if e.meta == nil {
			return nil, fmt.Errorf("metacache: %s/%s v%d: %w", gun, k.role, k.version, store.ErrNotFound)
		}
		return e.meta, nil
	}
	c.misses.Add(1)
	sfKey := fmt.Sprintf("%s\x00%s\x00%d", gun, k.role, k.version)
	v, err, _ := c.group.Do(sfKey, func() (any, error) {
		c.mu.Lock()
		gen := c.gen
		c.mu.Unlock()
		// Detached from one caller's cancellation: the result serves all
		// waiters. The store applies its own timeouts.
		m, err := fetch(context.WithoutCancel(ctx))
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return nil, err
		}
		c.insert(gun, k, m, gen)
		return m, err
	})
	if err != nil {
		return nil, err
	}
	return v.(*store.Meta), nil
}

func (c *Cache) lookup(gun string, k verKey) (entry, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.guns[gun]
	if !ok {
		return c.lookupAbsentLocked(gun, k)
	}
	g := el.Value.(*gunEntry)
	var e entry
	if k.version == 0 {
		e, ok = g.latest[k.role]
	} else {
		e, ok = g.versions[k]
		if ok && e.meta != nil {
			c.lru.MoveToFront(el)
			return e, true // an existing version never changes until invalidated
		}
	}
	if !ok || c.expired(e.fetched) {
		return entry{}, false
	}
	c.lru.MoveToFront(el)
	return e, true
}

func (c *Cache) lookupAbsentLocked(gun string, k verKey) (entry, bool) {
	el, ok := c.absent[gun]
	if !ok {
		return entry{}, false
	}
	fetched, ok := el.Value.(*absentEntry).keys[k]
	if !ok || c.expired(fetched) {
		return entry{}, false
	}
	c.absentLRU.MoveToFront(el)
	return entry{fetched: fetched}, true
}

func (c *Cache) expired(fetched time.Time) bool {
	return c.ttl > 0 && c.now().Sub(fetched) > c.ttl
}

// costOf is what an entry is counted at. A latest entry shares its Meta
// with the version entry beside it, so only the version entry counts the
// data.
func costOf(role string, e entry, withData bool) int64 {
	n := int64(entryOverhead + len(role))
	if e.meta != nil && withData {
		n += int64(metaOverhead + len(e.meta.Data) + len(e.meta.GUN) + len(e.meta.Role) + len(e.meta.SHA256))
	}
	return n
}

func (c *Cache) insert(gun string, k verKey, m *store.Meta, gen uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if gen != c.gen {
		return // invalidated while fetching: the result may be stale
	}
	el, ok := c.guns[gun]
	if !ok && m == nil {
		c.insertAbsentLocked(gun, k)
		return
	}
	if !ok {
		if ael, ok := c.absent[gun]; ok {
			c.absentLRU.Remove(ael)
			delete(c.absent, gun)
		}
		el = c.lru.PushFront(&gunEntry{gun: gun, latest: map[string]entry{}, versions: map[verKey]entry{}, bytes: int64(gunOverhead + len(gun))})
		c.guns[gun] = el
		c.bytes += int64(gunOverhead + len(gun))
	}
	g := el.Value.(*gunEntry)
	e := entry{meta: m, fetched: c.now()}
	if m == nil && g.negatives >= maxNegativePerGUN {
		if _, replacing := g.versions[k]; k.version != 0 && !replacing {
			return
		}
		if _, replacing := g.latest[k.role]; k.version == 0 && !replacing {
			return
		}
	}
	if k.version == 0 {
		setLocked(c, g, g.latest, k.role, k.role, e, false)
		if m != nil {
			vk := verKey{role: k.role, version: m.Version}
			if old, ok := g.versions[vk]; !ok || old.meta == nil {
				setLocked(c, g, g.versions, vk, k.role, e, true) // shares Data
			}
		}
	} else {
		setLocked(c, g, g.versions, k, k.role, e, true)
	}
	for c.bytes > c.maxBytes && c.lru.Len() > 1 {
		c.removeLocked(c.lru.Back())
	}
}

// setLocked puts e at key in one of g's maps, keeping the byte and
// negative counts.
func setLocked[K comparable](c *Cache, g *gunEntry, m map[K]entry, key K, role string, e entry, withData bool) {
	if old, had := m[key]; had {
		n := costOf(role, old, withData)
		g.bytes -= n
		c.bytes -= n
		if old.meta == nil {
			g.negatives--
		}
	}
	m[key] = e
	n := costOf(role, e, withData)
	g.bytes += n
	c.bytes += n
	if e.meta == nil {
		g.negatives++
	}
}

func (c *Cache) insertAbsentLocked(gun string, k verKey) {
	if c.maxAbsent <= 0 {
		return
	}
	el, ok := c.absent[gun]
	if !ok {
		for c.absentLRU.Len() >= c.maxAbsent {
			back := c.absentLRU.Back()
			c.absentLRU.Remove(back)
			delete(c.absent, back.Value.(*absentEntry).gun)
		}
		el = c.absentLRU.PushFront(&absentEntry{gun: gun, keys: map[verKey]time.Time{}})
		c.absent[gun] = el
	}
	a := el.Value.(*absentEntry)
	if _, ok := a.keys[k]; !ok && len(a.keys) >= maxNegativePerAbsent {
		return
	}
	a.keys[k] = c.now()
}

func (c *Cache) removeLocked(el *list.Element) {
	g := el.Value.(*gunEntry)
	c.lru.Remove(el)
	delete(c.guns, g.gun)
	c.bytes -= g.bytes
}
