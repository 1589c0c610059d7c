package client_test

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/signetdev/signet/client"
	"github.com/signetdev/signet/internal/tuftest"
)

// badRepo is a repository served by whoever holds every online key (or a
// server that cheats): the test builds each file itself, signed with the
// right keys, and chooses what the snapshot lists.
type badRepo struct {
	t          *testing.T
	exp        time.Time
	rootKey    *tuftest.Key
	targetsKey *tuftest.Key
	online     *tuftest.Key
	consistent bool
	root       []byte
	roles      map[string]*metadata.Metadata[metadata.TargetsType]
	signers    map[string][]*tuftest.Key
	omit       []string // roles the snapshot leaves out
	version    int64    // of snapshot and timestamp

	mu       sync.Mutex
	files    map[string][]byte
	requests []string
}

func newBadRepo(t *testing.T, consistent bool) *badRepo {
	t.Helper()
	h := &badRepo{t: t, exp: time.Now().Add(24 * time.Hour), rootKey: tuftest.NewKey(t), targetsKey: tuftest.NewKey(t), online: tuftest.NewKey(t),
		consistent: consistent, roles: map[string]*metadata.Metadata[metadata.TargetsType]{}, signers: map[string][]*tuftest.Key{}}
	root := metadata.Root(h.exp)
	root.Signed.ConsistentSnapshot = consistent
	for role, k := range map[string]*tuftest.Key{metadata.ROOT: h.rootKey, metadata.TARGETS: h.targetsKey, metadata.SNAPSHOT: h.online, metadata.TIMESTAMP: h.online} {
		if err := root.Signed.AddKey(k.Public, role); err != nil {
			t.Fatal(err)
		}
	}
	h.root = tuftest.Sign(t, root, h.rootKey)
	h.role(metadata.TARGETS, h.targetsKey)
	return h
}

// role adds an empty targets-type role signed by keys.
func (h *badRepo) role(name string, keys ...*tuftest.Key) *metadata.Metadata[metadata.TargetsType] {
	m := metadata.Targets(h.exp)
	h.roles[name], h.signers[name] = m, keys
	return m
}

// delegate makes parent delegate name (paths) to keys.
func (h *badRepo) delegate(parent, name string, paths []string, keys ...*tuftest.Key) {
	p := h.roles[parent]
	if p.Signed.Delegations == nil {
		p.Signed.Delegations = &metadata.Delegations{Keys: map[string]*metadata.Key{}}
	}
	p.Signed.Delegations.Roles = append(p.Signed.Delegations.Roles, metadata.DelegatedRole{Name: name, Threshold: 1, Paths: paths})
	for _, k := range keys {
		if err := p.Signed.AddKey(k.Public, name); err != nil {
			h.t.Fatal(err)
		}
	}
}

func tag(m *metadata.Metadata[metadata.TargetsType], name, content string) {
	m.Signed.Targets[name] = tuftest.Target(content)
}

// publish signs every role, a snapshot listing them (less omit) and a
// timestamp, each at the next version.
func (h *badRepo) publish() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.version++
	files := map[string][]byte{"1.root.json": h.root}
	snap := metadata.Snapshot(h.exp)
	snap.Signed.Version = h.version
	for name, m := range h.roles {
		m.Signed.Version = h.version
		data := tuftest.Sign(h.t, m, h.signers[name]...)
		files[h.name(name, h.version)] = data
		if !slices.Contains(h.omit, name) {
			sum := sha256.Sum256(data)
			snap.Signed.Meta[name+".json"] = &metadata.MetaFiles{Version: h.version, Length: int64(len(data)), Hashes: metadata.Hashes{"sha256": sum[:]}}
		}
	}
	snapBytes := tuftest.Sign(h.t, snap, h.online)
	files[h.name(metadata.SNAPSHOT, h.version)] = snapBytes
	ts := metadata.Timestamp(h.exp)
	ts.Signed.Version = h.version
	ts.Signed.Meta["snapshot.json"] = &metadata.MetaFiles{Version: h.version}
	files["timestamp.json"] = tuftest.Sign(h.t, ts, h.online)
	h.files = files
}

func (h *badRepo) name(role string, version int64) string {
	if h.consistent {
		return fmt.Sprintf("%d.%s.json", version, url.PathEscape(role))
	}
	return url.PathEscape(role) + ".json"
}

// serve answers like signet-server: the files, 404 for anything else, and
// 304 to a conditional GET of an unchanged timestamp.json.
func (h *badRepo) serve() string {
	prefix := "/v2/" + gun + "/_trust/tuf/"
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.mu.Lock()
		defer h.mu.Unlock()
		name, ok := strings.CutPrefix(r.URL.EscapedPath(), prefix)
		h.requests = append(h.requests, name)
		data, found := h.files[name]
		if !ok || !found {
			http.NotFound(w, r)
			return
		}
		if name == "timestamp.json" {
			etag := fmt.Sprintf(`"%d"`, h.version)
			w.Header().Set("ETag", etag)
			if r.Header.Get("If-None-Match") == etag {
				w.WriteHeader(http.StatusNotModified)
				return
			}
		}
		w.Write(data)
	}))
	h.t.Cleanup(hs.Close)
	return hs.URL
}

func (h *badRepo) engine(mod ...func(*client.Options)) *client.Client {
	h.t.Helper()
	c := newClient(h.t, h.serve(), h.t.TempDir(), mod...)
	if err := c.PinRoot(gun, h.root); err != nil {
		h.t.Fatal(err)
	}
	return c
}

func isTrustError(err error) bool {
	var te *client.TrustError
	return errors.As(err, &te)
}

// TestSnapshotWithoutDelegatedRole: whoever holds the online snapshot key
// serves a snapshot that leaves out targets/releases. The walk reaches
// targets/releases first for tag 1.0; it must stop with a trust error, not
// fall through to targets/ci's claim on the same tag (TUF §5.6).
func TestSnapshotWithoutDelegatedRole(t *testing.T) {
	t.Parallel()
	h := newBadRepo(t, true)
	rel, ci := tuftest.NewKey(t), tuftest.NewKey(t)
	h.delegate(metadata.TARGETS, "targets/releases", []string{"*"}, rel)
	h.delegate(metadata.TARGETS, "targets/ci", []string{"*"}, ci)
	tag(h.role("targets/releases", rel), "1.0", "release build")
	tag(h.role("targets/ci", ci), "1.0", "ci build")
	h.publish()
	got, err := h.engine().Resolve(context.Background(), gun+":1.0")
	if err != nil || got.Digest != digest.Digest(tuftest.Digest("release build")) {
		t.Fatalf("honest repository: %+v %v", got, err)
	}

	h.omit = []string{"targets/releases"}
	h.publish()
	got, err = h.engine().Resolve(context.Background(), gun+":1.0")
	if !isTrustError(err) {
		t.Fatalf("snapshot without targets/releases: resolved %+v (err %v), want a trust error", got, err)
	}
	if !strings.Contains(err.Error(), "targets/releases") {
		t.Fatalf("the error does not name the missing role: %v", err)
	}
}

// TestCachedRoleVerifiedAgainstCurrentDelegator: targets/a and targets/b
// both delegate "shared", to different keys; shared is signed by a's key
// only. A warm engine that verified shared through a must verify it again
// when it reaches it through b, and refuse it there, even while the server
// answers 304 for timestamp.json (tuf-conformance
// test_cached_role_is_verified_against_current_delegator).
func TestCachedRoleVerifiedAgainstCurrentDelegator(t *testing.T) {
	t.Parallel()
	h := newBadRepo(t, true)
	ka, kb, k1, k2 := tuftest.NewKey(t), tuftest.NewKey(t), tuftest.NewKey(t), tuftest.NewKey(t)
	h.delegate(metadata.TARGETS, "targets/a", []string{"a-*"}, ka)
	h.delegate(metadata.TARGETS, "targets/b", []string{"b-*"}, kb)
	h.role("targets/a", ka)
	h.role("targets/b", kb)
	h.delegate("targets/a", "shared", []string{"*"}, k1)
	h.delegate("targets/b", "shared", []string{"*"}, k2)
	shared := h.role("shared", k1)
	tag(shared, "a-1", "a")
	tag(shared, "b-1", "b")
	h.publish()
	engine := h.engine()
	ctx := context.Background()
	if got, err := engine.Resolve(ctx, gun+":a-1"); err != nil || got.Role != "shared" {
		t.Fatalf("a-1 through targets/a: %+v %v", got, err)
	}
	got, err := engine.Resolve(ctx, gun+":b-1")
	if !isTrustError(err) {
		t.Fatalf("b-1 through targets/b, whose key did not sign shared: %+v (err %v), want a trust error", got, err)
	}
	// The warm state really was reused: one full download of the
	// timestamp, then conditional GETs.
	n := 0
	for _, r := range h.requests {
		if r == "1.targets.json" {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("targets.json downloaded %d times, want once (warm state)", n)
	}
}

// TestConsistentSnapshotFalse: a root without consistent snapshots is
// fetched by role name only, delegated roles included.
func TestConsistentSnapshotFalse(t *testing.T) {
	t.Parallel()
	h := newBadRepo(t, false)
	rel := tuftest.NewKey(t)
	h.delegate(metadata.TARGETS, "targets/releases", []string{"*"}, rel)
	tag(h.role("targets/releases", rel), "1.0", "release build")
	h.publish()
	engine := h.engine()
	got, err := engine.Resolve(context.Background(), gun+":1.0")
	if err != nil || got.Digest != digest.Digest(tuftest.Digest("release build")) {
		t.Fatalf("resolve: %+v %v", got, err)
	}
	// Status walks every role (the publishing side's path), here from a
	// fresh trust directory.
	if _, err := h.engine().Status(context.Background(), gun); err != nil {
		t.Fatalf("status: %v", err)
	}
	for _, r := range h.requests {
		if r != "2.root.json" && strings.HasSuffix(r, ".json") && r[0] >= '0' && r[0] <= '9' {
			t.Errorf("versioned request %s with consistent_snapshot false", r)
		}
	}
	if !slices.Contains(h.requests, "targets%2Freleases.json") {
		t.Errorf("requests %v, want targets%%2Freleases.json", h.requests)
	}
}

// TestDelegatedRoleLengthFromSnapshot: a delegated role longer than the
// length the snapshot gives is refused, not read and truncated.
func TestDelegatedRoleLengthFromSnapshot(t *testing.T) {
	t.Parallel()
	h := newBadRepo(t, true)
	rel := tuftest.NewKey(t)
	h.delegate(metadata.TARGETS, "targets/releases", []string{"*"}, rel)
	tag(h.role("targets/releases", rel), "1.0", "release build")
	h.publish()
	h.mu.Lock()
	name := h.name("targets/releases", h.version)
	h.files[name] = append(h.files[name], strings.Repeat(" ", 100)...)
	h.mu.Unlock()
	if _, err := h.engine().Resolve(context.Background(), gun+":1.0"); !errors.Is(err, client.ErrTampered) {
		t.Fatalf("over-long delegated role: %v, want ErrTampered", err)
	}
}

// TestDuplicateKeyIDsInDelegationRefused: a delegation listing one key ID
// 200 times (signed by the real targets key) is refused before go-tuf
// verifies anything against it.
func TestDuplicateKeyIDsInDelegationRefused(t *testing.T) {
	t.Parallel()
	h := newBadRepo(t, true)
	rel := tuftest.NewKey(t)
	h.delegate(metadata.TARGETS, "targets/releases", []string{"*"}, rel)
	tag(h.role("targets/releases", rel), "1.0", "release build")
	d := h.roles[metadata.TARGETS].Signed.Delegations
	d.Roles[0].KeyIDs = slices.Repeat([]string{rel.ID}, 50)
	h.publish()
	_, err := h.engine().Resolve(context.Background(), gun+":1.0")
	if !isTrustError(err) || !strings.Contains(err.Error(), "more than once") {
		t.Fatalf("duplicate key IDs: %v", err)
	}
}

// TestTopLevelNamedDelegationRefused: a delegated role named "Root" is
// refused, and never cached where the trusted root lives.
func TestTopLevelNamedDelegationRefused(t *testing.T) {
	t.Parallel()
	h := newBadRepo(t, true)
	k := tuftest.NewKey(t)
	h.delegate(metadata.TARGETS, "Root", []string{"*"}, k)
	tag(h.role("Root", k), "1.0", "evil")
	h.publish()
	dir := t.TempDir()
	engine := newClient(t, h.serve(), dir)
	if err := engine.PinRoot(gun, h.root); err != nil {
		t.Fatal(err)
	}
	if _, err := engine.Resolve(context.Background(), gun+":1.0"); !isTrustError(err) {
		t.Fatalf("delegation named Root: %v", err)
	}
	cached, err := os.ReadFile(filepath.Join(dir, "tuf", url.PathEscape(gun), "root.json"))
	if err != nil || string(cached) != string(h.root) {
		t.Fatalf("cached root.json changed (%v)", err)
	}
}

// TestWalkBound: a chain of delegations longer than MaxRolesVisited ends
// the lookup with a trust error.
func TestWalkBound(t *testing.T) {
	t.Parallel()
	h := newBadRepo(t, true)
	k := tuftest.NewKey(t)
	parent := metadata.TARGETS
	for i := range 6 {
		name := fmt.Sprintf("r%d", i)
		h.delegate(parent, name, []string{"*"}, k)
		h.role(name, k)
		parent = name
	}
	tag(h.roles[parent], "deep", "deep")
	h.publish()
	if _, err := h.engine(func(o *client.Options) { o.MaxRolesVisited = 3 }).Resolve(context.Background(), gun+":deep"); !isTrustError(err) {
		t.Fatalf("walk past MaxRolesVisited: %v", err)
	}
	if got, err := h.engine().Resolve(context.Background(), gun+":deep"); err != nil || got.Role != parent {
		t.Fatalf("within the default bound: %+v %v", got, err)
	}
}
