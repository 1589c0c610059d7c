package admission

import (
	"container/list"
	"sync"
	"time"

	"github.com/signetdev/signet/policy"
)

// cache is a bounded LRU of verified decisions. Safe for concurrent use.
type cache struct {
	size int
	ttl  time.Duration

	mu    sync.Mutex
	order *list.List // front: most recently used; values are *entry
	byKey map[string]*list.Element
}

type entry struct {
	key   string
	d     policy.Decision
	until time.Time
}

func newCache(size int, ttl time.Duration) *cache {
	return &cache{size: size, ttl: ttl, order: list.New(), byKey: map[string]*list.Element{}}
}

// get returns the decision for key if it is still fresh at now.
func (c *cache) get(key string, now time.Time) (policy.Decision, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.byKey[key]
	if !ok {
		return policy.Decision{}, false
	}
	e := el.Value.(*entry)
	if !now.Before(e.until) {
		c.order.Remove(el)
		delete(c.byKey, key)
		return policy.Decision{}, false
	}
	c.order.MoveToFront(el)
	return e.d, true
}

// put keeps d until now+ttl or expires, whichever comes first; a
// decision whose trust data has already expired is not kept.
func (c *cache) put(key string, d policy.Decision, now, expires time.Time) {
	until := now.Add(c.ttl)
	if expires.Before(until) {
		until = expires
	}
	if !now.Before(until) || c.size <= 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.byKey[key]; ok {
		el.Value = &entry{key: key, d: d, until: until}
		c.order.MoveToFront(el)
		return
	}
	c.byKey[key] = c.order.PushFront(&entry{key: key, d: d, until: until})
	for c.order.Len() > c.size {
		last := c.order.Back()
		c.order.Remove(last)
		delete(c.byKey, last.Value.(*entry).key)
	}
}

func (c *cache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.order.Len()
}
