package client_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/signetdev/signet/client"
)

// TestFileKeyStoreUnlocksOnce: however many callers ask for a key at once,
// and whether or not Prefetch started it, the passphrase is asked once; a
// wrong passphrase is not kept, so the next call asks again.
func TestFileKeyStoreUnlocksOnce(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	var asked atomic.Int64
	wrong := atomic.Bool{}
	passFn := func(string, string) ([]byte, error) {
		asked.Add(1)
		if wrong.Load() {
			return []byte("wrong"), nil
		}
		return []byte("test passphrase"), nil
	}
	k, err := client.NewFileKeyStore(dir, passFn, 1<<10).Generate(ctx, "targets")
	if err != nil {
		t.Fatal(err)
	}

	ks := client.NewFileKeyStore(dir, passFn, 1<<10)
	asked.Store(0)
	ks.Prefetch(k.ID, "not-held")
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			if _, err := ks.Signer(ctx, k.ID); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if n := asked.Load(); n != 1 {
		t.Errorf("passphrase asked %d times, want 1", n)
	}

	ks = client.NewFileKeyStore(dir, passFn, 1<<10)
	asked.Store(0)
	wrong.Store(true)
	ks.Prefetch(k.ID)
	if _, err := ks.Signer(ctx, k.ID); err == nil || !strings.Contains(err.Error(), "wrong passphrase") {
		t.Fatalf("wrong passphrase: %v", err)
	}
	wrong.Store(false)
	if _, err := ks.Signer(ctx, k.ID); err != nil {
		t.Fatalf("after a wrong passphrase: %v", err)
	}
	if n := asked.Load(); n != 2 {
		t.Errorf("passphrase asked %d times, want 2 (a failed unlock is not kept)", n)
	}
	if _, err := ks.Signer(ctx, "not-held"); !errors.Is(err, client.ErrNoKey) {
		t.Errorf("a key not held: %v", err)
	}
}

// TestPublishUnlocksDuringUpdate: a publish starts unlocking the targets
// key before its metadata update is done, instead of after it. The server's
// timestamp.json is held back until the passphrase has been asked for; a
// client that unlocks only when it signs never gets it and fails.
func TestPublishUnlocksDuringUpdate(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	unlocking := make(chan struct{})
	var once sync.Once
	var hold atomic.Bool
	url := newServer(t, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if hold.Load() && strings.HasSuffix(r.URL.Path, "/timestamp.json") {
				select {
				case <-unlocking:
				case <-time.After(5 * time.Second):
					http.Error(w, "the key was not being unlocked during the update", http.StatusServiceUnavailable)
					return
				}
			}
			h.ServeHTTP(w, r)
		})
	})
	dir := t.TempDir()
	dev := newClient(t, url, dir)
	if _, err := dev.Init(ctx, gun); err != nil {
		t.Fatal(err)
	}
	if _, err := dev.Publish(ctx, gun, []client.Change{{Tag: "1.0", Digest: d10, Size: 1}}); err != nil {
		t.Fatal(err)
	}

	// A new command: a fresh key store on the same trust directory.
	passFn := func(role, id string) ([]byte, error) {
		once.Do(func() { close(unlocking) })
		return pass(role, id)
	}
	next := newClient(t, url, dir, func(o *client.Options) { o.Keys = client.NewFileKeyStore(dir+"/private", passFn, 1<<10) })
	hold.Store(true)
	if _, err := next.Publish(ctx, gun, []client.Change{{Tag: "2.0", Digest: digest.FromString("2.0"), Size: 1}}); err != nil {
		t.Fatal(err)
	}
}
