package tufrepo

import (
	"context"
	"fmt"
	"sync"
	"time"

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
