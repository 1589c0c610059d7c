package client_test

import (
	"context"
	"crypto/sha256"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/signetdev/signet/client"
	"github.com/signetdev/signet/internal/tuftest"
)

// TestSmuggledTargetIgnored: a hostile server serves a repository, signed
// with every right key, in which targets/ci (delegated "release-*" only)
// also lists "latest". The real server refuses such a publish; a client
// must not trust the tag either: "latest" does not resolve, "release-1"
// does.
func TestSmuggledTargetIgnored(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	exp := time.Now().Add(24 * time.Hour)
	rootKey, targetsKey, ciKey, onlineKey := tuftest.NewKey(t), tuftest.NewKey(t), tuftest.NewKey(t), tuftest.NewKey(t)

	root := metadata.Root(exp)
	root.Signed.ConsistentSnapshot = true
	for role, k := range map[string]*tuftest.Key{metadata.ROOT: rootKey, metadata.TARGETS: targetsKey, metadata.SNAPSHOT: onlineKey, metadata.TIMESTAMP: onlineKey} {
		if err := root.Signed.AddKey(k.Public, role); err != nil {
			t.Fatal(err)
		}
	}
	targets := metadata.Targets(exp)
	targets.Signed.Delegations = &metadata.Delegations{Keys: map[string]*metadata.Key{}, Roles: []metadata.DelegatedRole{{Name: "targets/ci", Threshold: 1, Paths: []string{"release-*"}}}}
	if err := targets.Signed.AddKey(ciKey.Public, "targets/ci"); err != nil {
		t.Fatal(err)
	}
	ci := metadata.Targets(exp)
	for _, tag := range []string{"release-1", "latest"} {
		ci.Signed.Targets[tag] = tuftest.Target(tag)
	}
	files := map[string][]byte{
		"1.root.json":         tuftest.Sign(t, root, rootKey),
		"1.targets.json":      tuftest.Sign(t, targets, targetsKey),
		"1.targets%2Fci.json": tuftest.Sign(t, ci, ciKey),
	}
	snap := metadata.Snapshot(exp)
	snap.Signed.Meta["targets.json"] = &metadata.MetaFiles{Version: 1}
	snap.Signed.Meta["targets/ci.json"] = &metadata.MetaFiles{Version: 1}
	files["1.snapshot.json"] = tuftest.Sign(t, snap, onlineKey)
	ts := metadata.Timestamp(exp)
	sum := sha256.Sum256(files["1.snapshot.json"])
	ts.Signed.Meta["snapshot.json"] = &metadata.MetaFiles{Version: 1, Length: int64(len(files["1.snapshot.json"])), Hashes: metadata.Hashes{"sha256": sum[:]}}
	files["timestamp.json"] = tuftest.Sign(t, ts, onlineKey)

	prefix := "/v2/" + gun + "/_trust/tuf/"
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name, ok := strings.CutPrefix(r.URL.EscapedPath(), prefix)
		if data, found := files[name]; ok && found {
			w.Write(data)
			return
		}
		http.NotFound(w, r)
	}))
	t.Cleanup(hs.Close)

	engine := newClient(t, hs.URL, t.TempDir())
	if err := engine.PinRoot(gun, files["1.root.json"]); err != nil {
		t.Fatal(err)
	}
	got, err := engine.Resolve(ctx, gun+":release-1")
	if err != nil {
		t.Fatal(err)
	}
	if want := digest.Digest(tuftest.Digest("release-1")); got.Digest != want || got.Role != "targets/ci" {
		t.Fatalf("release-1 = %s from %s, want %s from targets/ci", got.Digest, got.Role, want)
	}
	if got, err := engine.Resolve(ctx, gun+":latest"); !errors.Is(err, client.ErrNotSigned) {
		t.Fatalf("smuggled tag resolved: %v, %v", got, err)
	}
}
