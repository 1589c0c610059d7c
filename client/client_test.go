package client_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	"go.uber.org/goleak"

	"github.com/signetdev/signet/client"
	"github.com/signetdev/signet/server"
	"github.com/signetdev/signet/server/store/memstore"
	"github.com/signetdev/signet/signer/keystore"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const gun = "registry.example.com/team/app"

func pass(string, string) ([]byte, error) { return []byte("test passphrase"), nil }

// newServer runs signet-server in-process; wrap, if set, sits in front of
// it (a hostile network or server).
func newServer(t *testing.T, wrap func(http.Handler) http.Handler) string {
	t.Helper()
	srv := server.New(memstore.New(), keystore.NewMemory(), server.WithSweepInterval(0), server.WithRequestTimeout(5*time.Minute))
	h := srv.Handler()
	if wrap != nil {
		h = wrap(h)
	}
	hs := httptest.NewServer(h)
	t.Cleanup(hs.Close)
	return hs.URL
}

func newClient(t testing.TB, url, dir string, mod ...func(*client.Options)) *client.Client {
	t.Helper()
	o := client.Options{Server: url, TrustDir: dir, Keys: client.NewFileKeyStore(dir+"/private", pass, 1<<10)}
	for _, m := range mod {
		m(&o)
	}
	c, err := client.New(o)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

var d10 = digest.FromString("manifest 1.0")

// publisher initialises gun and signs 1.0; it returns a second client that
// pinned the root (another machine).
func publisher(t *testing.T, url string) (dev, engine *client.Client) {
	t.Helper()
	ctx := context.Background()
	dev = newClient(t, url, t.TempDir())
	root, err := dev.Init(ctx, gun)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dev.Publish(ctx, gun, []client.Change{{Tag: "1.0", Digest: d10, Size: 1234}}); err != nil {
		t.Fatal(err)
	}
	engine = newClient(t, url, t.TempDir())
	if err := engine.PinRoot(gun, root); err != nil {
		t.Fatal(err)
	}
	return dev, engine
}

func TestSignResolveUnsign(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := newServer(t, nil)
	dev, engine := publisher(t, url)
	got, err := engine.Resolve(ctx, gun+":1.0")
	if err != nil {
		t.Fatal(err)
	}
	if got.Digest != d10 || got.Size != 1234 || got.Role != "targets" || got.GUN != gun || got.Tag != "1.0" {
		t.Fatalf("resolved %+v", got)
	}
	if _, err := engine.Resolve(ctx, gun+":2.0"); !errors.Is(err, client.ErrNotSigned) || !strings.Contains(err.Error(), gun+":2.0 is not signed") {
		t.Fatalf("unsigned tag: %v", err)
	}
	if _, err := dev.Publish(ctx, gun, []client.Change{{Tag: "1.0", Remove: true}}); err != nil {
		t.Fatal(err)
	}
	if _, err := engine.Resolve(ctx, gun+":1.0"); !errors.Is(err, client.ErrNotSigned) {
		t.Fatalf("after unsign: %v", err)
	}
	for _, bad := range []string{gun, "UPPER/app:1", gun + "@" + d10.String()} {
		if _, err := engine.Resolve(ctx, bad); err == nil {
			t.Errorf("%q resolved", bad)
		}
	}
}

func TestTrustBootstrap(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := newServer(t, nil)
	publisher(t, url)
	if _, err := newClient(t, url, t.TempDir()).Resolve(ctx, gun+":1.0"); !errors.Is(err, client.ErrNoTrust) || !strings.Contains(err.Error(), "signet trust pin") {
		t.Fatalf("without a pinned root: %v", err)
	}
	tofu := newClient(t, url, t.TempDir(), func(o *client.Options) { o.TOFU = true })
	if got, err := tofu.Resolve(ctx, gun+":1.0"); err != nil || got.Digest != d10 {
		t.Fatalf("TOFU: %v %v", got, err)
	}
}

// hostile serves the real server's answers, except where tamper changes
// them.
func hostile(tamper func(w http.ResponseWriter, r *http.Request, real http.Handler) bool) func(http.Handler) http.Handler {
	return func(real http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if !tamper(w, r, real) {
				real.ServeHTTP(w, r)
			}
		})
	}
}

func record(real http.Handler, r *http.Request) []byte {
	rec := httptest.NewRecorder()
	real.ServeHTTP(rec, r)
	return rec.Body.Bytes()
}

func TestAttacksFailClosed(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	var (
		mode    atomic.Value // string
		oldTS   []byte
		oldMu   sync.Mutex
		swapped []byte
	)
	mode.Store("")
	url := newServer(t, hostile(func(w http.ResponseWriter, r *http.Request, real http.Handler) bool {
		path := r.URL.Path
		switch m := mode.Load().(string); {
		case m == "tamper" && strings.HasSuffix(path, ".targets.json"):
			b := record(real, r)
			w.Write(bytes.Replace(b, []byte(`"length":1234`), []byte(`"length":4321`), 1))
			return true
		case m == "rollback" && strings.HasSuffix(path, "/timestamp.json"):
			oldMu.Lock()
			defer oldMu.Unlock()
			w.Write(oldTS)
			return true
		case m == "strip" && strings.HasSuffix(path, "/timestamp.json"):
			b := record(real, r)
			i := bytes.Index(b, []byte(`"signatures":[`))
			j := bytes.Index(b[i:], []byte("]"))
			w.Write(append(append(append([]byte{}, b[:i]...), []byte(`"signatures":[`)...), b[i+j:]...))
			return true
		case m == "swap" && strings.HasSuffix(path, "/2.root.json"):
			w.Write(swapped)
			return true
		case m == "" && strings.HasSuffix(path, "/timestamp.json"):
			oldMu.Lock()
			defer oldMu.Unlock()
			if oldTS == nil {
				oldTS = record(real, r)
			}
		}
		return false
	}))
	dev, engine := publisher(t, url)
	// Record timestamp v2, then publish so the server moves on to v3.
	if _, err := engine.Resolve(ctx, gun+":1.0"); err != nil {
		t.Fatal(err)
	}
	if _, err := dev.Publish(ctx, gun, []client.Change{{Tag: "1.1", Digest: digest.FromString("1.1"), Size: 1}}); err != nil {
		t.Fatal(err)
	}
	if _, err := engine.Resolve(ctx, gun+":1.1"); err != nil {
		t.Fatal(err)
	}
	// A root v2 for this repository from another ceremony (other keys).
	other := newClient(t, newServer(t, nil), t.TempDir())
	otherRoot, err := other.Init(ctx, "registry.example.com/other")
	if err != nil {
		t.Fatal(err)
	}
	swapped = bytes.Replace(otherRoot, []byte(`"version":1`), []byte(`"version":2`), 1)

	root, _ := engine.PinnedRoot(gun)
	fresh := func() *client.Client { // a machine with the pinned root and no cache
		c := newClient(t, url, t.TempDir())
		if err := c.PinRoot(gun, root); err != nil {
			t.Fatal(err)
		}
		return c
	}
	for _, tc := range []struct {
		mode string
		c    *client.Client
		want error
		text string
	}{
		{"tamper", fresh(), client.ErrTampered, "altered"},
		{"rollback", engine, client.ErrRollback, "rollback"},
		{"strip", fresh(), client.ErrThreshold, "not signed by enough trusted keys"},
		{"swap", fresh(), client.ErrThreshold, "not signed by enough trusted keys"},
	} {
		mode.Store(tc.mode)
		_, err := tc.c.Resolve(ctx, gun+":1.0")
		if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.text) {
			t.Errorf("%s: %v, want %v", tc.mode, err, tc.want)
		}
		once := tc.c
		if once != engine {
			once = fresh()
		}
		if _, err := once.ResolveOnce(ctx, gun+":1.0"); !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.text) {
			t.Errorf("%s, ResolveOnce: %v, want %v", tc.mode, err, tc.want)
		}
	}
	mode.Store("")

	// Freeze: the server keeps serving a timestamp that has expired (the
	// engine's clock is two days ahead of the server's signatures).
	late := newClient(t, url, t.TempDir(), func(o *client.Options) { o.Now = func() time.Time { return time.Now().Add(48 * time.Hour) } })
	if err := late.PinRoot(gun, root); err != nil {
		t.Fatal(err)
	}
	if _, err := late.Resolve(ctx, gun+":1.0"); !errors.Is(err, client.ErrExpired) || !strings.Contains(err.Error(), "expired on") {
		t.Fatalf("freeze: %v", err)
	}
	if _, err := late.ResolveOnce(ctx, gun+":1.0"); !errors.Is(err, client.ErrExpired) || !strings.Contains(err.Error(), "expired on") {
		t.Fatalf("freeze, ResolveOnce: %v", err)
	}
}

// TestSharedTrustDir has two clients (as two processes would) resolve and
// refresh one cache at once while the repository changes.
func TestSharedTrustDir(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := newServer(t, nil)
	dev, engine := publisher(t, url)
	root, _ := engine.PinnedRoot(gun)
	dir := t.TempDir()
	var clients []*client.Client
	for range 2 {
		c := newClient(t, url, dir)
		if err := c.PinRoot(gun, root); err != nil {
			t.Fatal(err)
		}
		clients = append(clients, c)
	}
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for range 10 {
				if _, err := clients[i%2].Resolve(ctx, gun+":1.0"); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	for v := range 5 {
		if _, err := dev.Publish(ctx, gun, []client.Change{{Tag: "v", Digest: digest.FromString(string(rune('a' + v))), Size: 1}}); err != nil {
			t.Error(err)
		}
	}
	wg.Wait()
}

// TestConcurrentPublishersRetry has two publishers (sharing the targets
// key) sign different tags at once: the loser of each race gets 409, updates
// and retries, so every tag ends up signed.
func TestConcurrentPublishersRetry(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := newServer(t, nil)
	devDir := t.TempDir()
	dev := newClient(t, url, devDir)
	root, err := dev.Init(ctx, gun)
	if err != nil {
		t.Fatal(err)
	}
	engine := newClient(t, url, t.TempDir())
	if err := engine.PinRoot(gun, root); err != nil {
		t.Fatal(err)
	}
	// Two Clients on one trust directory (its keys), as two CI jobs on one
	// machine would be.
	devs := []*client.Client{dev, newClient(t, url, devDir)}
	var wg sync.WaitGroup
	for i := range 6 {
		wg.Go(func() {
			c := devs[i%2]
			if _, err := c.Publish(ctx, gun, []client.Change{{Tag: fmt.Sprintf("t%d", i), Digest: digest.FromString(fmt.Sprint(i)), Size: 1}}); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	for i := range 6 {
		if _, err := engine.Resolve(ctx, fmt.Sprintf("%s:t%d", gun, i)); err != nil {
			t.Errorf("t%d: %v", i, err)
		}
	}
}

func TestMaxStaleness(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := newServer(t, nil)
	dev, engine := publisher(t, url)
	root, _ := engine.PinnedRoot(gun)
	lazy := newClient(t, url, t.TempDir(), func(o *client.Options) { o.MaxStaleness = time.Hour })
	if err := lazy.PinRoot(gun, root); err != nil {
		t.Fatal(err)
	}
	if _, err := lazy.Resolve(ctx, gun+":1.0"); err != nil {
		t.Fatal(err)
	}
	if _, err := dev.Publish(ctx, gun, []client.Change{{Tag: "2.0", Digest: d10, Size: 1}}); err != nil {
		t.Fatal(err)
	}
	if _, err := lazy.Resolve(ctx, gun+":2.0"); !errors.Is(err, client.ErrNotSigned) {
		t.Fatalf("within the staleness window the cache answers: %v", err)
	}
	if _, err := engine.Resolve(ctx, gun+":2.0"); err != nil {
		t.Fatalf("a client checking every time sees 2.0: %v", err)
	}
}
