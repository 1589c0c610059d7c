package notary_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/secure-systems-lab/go-securesystemslib/cjson"

	"github.com/signetdev/signet/client"
	"github.com/signetdev/signet/notary"
	"github.com/signetdev/signet/notary/notarytest"
)

func fixedNow() time.Time { return time.Date(2026, 12, 1, 20, 0, 0, 0, time.UTC) }

var fixtures = notary.ServerDir{Dir: "testdata"}

func firstRoot(t *testing.T, src notary.Source, gun string) notary.Anchor {
	t.Helper()
	b, err := src.Get(context.Background(), gun, "root", notary.Want{Version: 1})
	if err != nil {
		t.Fatal(err)
	}
	return notary.Anchor{Root: b}
}

// TestFixtures verifies what a real Notary v0.7.0 server stored.
func TestFixtures(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for _, tc := range []struct {
		gun   string
		chain []int64
		roles map[string]int // role → tags
	}{
		{"example.com/demo/app", []int64{1}, map[string]int{"targets": 23}},
		{"example.com/demo/feat", []int64{1, 2, 3, 4}, map[string]int{"targets": 0, "targets/releases": 1}},
		{"registry.example.com/acme/old", []int64{1}, map[string]int{"targets": 2}},
	} {
		r, err := notary.Verify(ctx, fixtures, tc.gun, notary.Options{Anchor: firstRoot(t, fixtures, tc.gun), Now: fixedNow})
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(r.RootChain, tc.chain) || len(r.Roles) != len(tc.roles) || len(r.Warnings) != 0 {
			t.Fatalf("%s: chain %v roles %d warnings %v", tc.gun, r.RootChain, len(r.Roles), r.Warnings)
		}
		for _, role := range r.Roles {
			if n, ok := tc.roles[role.Name]; !ok || len(role.Targets) != n || !role.Published {
				t.Fatalf("%s: %s has %d tags", tc.gun, role.Name, len(role.Targets))
			}
		}
	}
	feat, _ := notary.Verify(ctx, fixtures, "example.com/demo/feat", notary.Options{Anchor: notary.Anchor{TOFU: true}, Now: fixedNow})
	if rel := feat.Role("targets/releases"); rel.Delegator != "targets" || !slices.Equal(rel.Paths, []string{""}) || rel.Threshold != 1 {
		t.Fatalf("releases: %+v", rel)
	}
}

// TestCanonicalFixtures: every stored "signed" object is already in
// Notary's canonical form, which is what signatures are checked over.
func TestCanonicalFixtures(t *testing.T) {
	t.Parallel()
	n := 0
	err := filepath.Walk("testdata", func(p string, fi os.FileInfo, err error) error {
		if err != nil || fi.IsDir() || !strings.HasSuffix(p, ".json") {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		var env notary.Envelope
		if err := json.Unmarshal(data, &env); err != nil {
			return err
		}
		c, err := cjson.EncodeCanonical(env.Signed)
		if err != nil {
			return err
		}
		if !bytes.Equal(c, env.Signed) {
			t.Errorf("%s: signed part is not canonical", p)
		}
		n++
		return nil
	})
	if err != nil || n < 15 {
		t.Fatalf("%d files: %v", n, err)
	}
}

// TestTrustDir reads the Docker-style trust directory: the GUNs it holds,
// the root it pinned, and its encrypted keys.
func TestTrustDir(t *testing.T) {
	t.Parallel()
	td := notary.TrustDir{Dir: "testdata/docker-trust-dir"}
	guns, err := td.GUNs()
	if err != nil || !slices.Equal(guns, []string{"registry.example.com/acme/old"}) {
		t.Fatalf("GUNs %v %v", guns, err)
	}
	pinned, err := td.PinnedRoot(guns[0])
	if err != nil {
		t.Fatal(err)
	}
	r, err := notary.Verify(context.Background(), td, guns[0], notary.Options{Anchor: notary.Anchor{Root: pinned}, Now: fixedNow})
	if err != nil {
		t.Fatal(err)
	}
	tags := r.Roles[0].Targets
	if len(tags) != 2 || tags["v1"].Length != 4847 {
		t.Fatalf("tags %v", tags)
	}
	keys, err := notary.ReadPrivateKeys(td.Dir)
	if err != nil || len(keys) != 4 {
		t.Fatalf("keys %v %v", keys, err)
	}
	pass := map[string]string{"root": "fixture-root-passphrase", "targets": "fixture-targets-passphrase", "snapshot": "fixture-snapshot-passphrase"}
	roles := map[string]int{}
	for _, k := range keys {
		roles[k.Role]++
		if _, err := k.Decrypt([]byte(pass[k.Role])); err != nil {
			t.Fatal(err)
		}
		if _, err := k.Decrypt([]byte("wrong")); err == nil || !strings.Contains(err.Error(), "wrong passphrase") {
			t.Fatalf("wrong passphrase: %v", err)
		}
		if k.Role != "root" && k.GUN != guns[0] {
			t.Fatalf("%s: gun %q", k.ID, k.GUN)
		}
	}
	if roles["root"] != 2 || roles["targets"] != 1 || roles["snapshot"] != 1 {
		t.Fatalf("roles %v", roles)
	}
	// The targets key file is named after the key ID root.json uses.
	var targets notary.PrivateKeyFile
	for _, k := range keys {
		if k.Role == "targets" {
			targets = k
		}
	}
	if !slices.Contains(r.Roles[0].KeyIDs, targets.ID) {
		t.Fatalf("targets key %s not in %v", targets.ID, r.Roles[0].KeyIDs)
	}
}

// TestServerSource reads the fixtures over a notary-server's read API that
// asks for a registry token, through the client's token code.
func TestServerSource(t *testing.T) {
	t.Parallel()
	ns := &notarytest.Server{Dir: fixtures, User: "alice", Password: "hunter2"}
	// https, and its host configured as the registry's token service:
	// registry credentials go nowhere else.
	hs := httptest.NewTLSServer(ns)
	t.Cleanup(hs.Close)
	ns.URL = hs.URL
	kc := keychain{authn.FromConfig(authn.AuthConfig{Username: "alice", Password: "hunter2"})}
	src := notary.Server{URL: hs.URL, HTTPClient: func(ctx context.Context, gun string) (*http.Client, error) {
		return client.RegistryTokenClient(ctx, hs.Client(), hs.URL, gun, "pull", kc, hs.Listener.Addr().String())
	}}
	ctx := context.Background()
	gun := "example.com/demo/feat"
	r, err := notary.Verify(ctx, src, gun, notary.Options{Anchor: firstRoot(t, src, gun), Now: fixedNow})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(r.RootChain, []int64{1, 2, 3, 4}) || len(r.Role("targets/releases").Targets) != 1 {
		t.Fatalf("%+v", r)
	}
	if _, err := src.Get(ctx, gun, "targets/nobody", notary.Want{}); !errors.Is(err, notary.ErrNotFound) {
		t.Fatalf("missing role: %v", err)
	}
	if _, err := src.Get(ctx, gun, "root", notary.Want{Version: 9}); !errors.Is(err, notary.ErrNotFound) {
		t.Fatalf("missing version: %v", err)
	}
	// Without credentials the server's 401 is reported as such.
	anon := notary.Server{URL: hs.URL, HTTPClient: func(context.Context, string) (*http.Client, error) { return hs.Client(), nil }}
	if _, err := anon.Get(ctx, gun, "root", notary.Want{}); err == nil || !strings.Contains(err.Error(), "401") {
		t.Fatalf("anonymous: %v", err)
	}
	// The root chain needs every version: without v3 it is refused.
	dir := t.TempDir()
	copyDir(t, "testdata/example.com/demo/feat", filepath.Join(dir, gun))
	os.Remove(filepath.Join(dir, gun, "root.3.json"))
	_, err = notary.Verify(ctx, notary.ServerDir{Dir: dir}, gun, notary.Options{Anchor: firstRoot(t, fixtures, gun), Now: fixedNow})
	if !errors.Is(err, notary.ErrUntrustedRoot) || !strings.Contains(err.Error(), "root v3 is needed to chain the pinned v1 to v4") {
		t.Fatalf("gap in the chain: %v", err)
	}
	if _, err = notary.Verify(ctx, notary.ServerDir{Dir: dir}, "example.com/demo/app", notary.Options{Anchor: firstRoot(t, fixtures, gun), Now: fixedNow}); !errors.Is(err, notary.ErrNotFound) {
		t.Fatalf("unknown GUN: %v", err)
	}
	// A pinned root newer than the source's is a rollback.
	v4, _ := fixtures.Get(ctx, gun, "root", notary.Want{Version: 4})
	os.Remove(filepath.Join(dir, gun, "root.4.json"))
	_, err = notary.Verify(ctx, notary.ServerDir{Dir: dir}, gun, notary.Options{Anchor: notary.Anchor{Root: v4}, Now: fixedNow})
	if !errors.Is(err, notary.ErrUntrustedRoot) || !strings.Contains(err.Error(), "rollback") {
		t.Fatalf("rollback: %v", err)
	}
}

type keychain struct{ a authn.Authenticator }

func (k keychain) Resolve(authn.Resource) (authn.Authenticator, error) { return k.a, nil }

func copyDir(t *testing.T, from, to string) {
	t.Helper()
	err := filepath.Walk(from, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(from, p)
		if fi.IsDir() {
			return os.MkdirAll(filepath.Join(to, rel), 0o700)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(to, rel), b, 0o600)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// FuzzParse: no input makes the parsers or the verifier panic.
func FuzzParse(f *testing.F) {
	for _, p := range []string{"testdata/example.com/demo/feat/root.4.json", "testdata/example.com/demo/feat/targets.4.json"} {
		b, _ := os.ReadFile(p)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		_, _, _ = notary.ParseRoot(data)
		_, _ = notary.Verify(context.Background(), oneFile(data), "example.com/x", notary.Options{Anchor: notary.Anchor{TOFU: true}})
	})
}

// oneFile serves data for every role.
type oneFile []byte

func (o oneFile) Get(context.Context, string, string, notary.Want) ([]byte, error) { return o, nil }
func (o oneFile) String() string                                                   { return "fuzz" }

// TestNestedPaths: Notary restricts a nested delegation to the parts of
// its path prefixes inside its delegator's; a tag outside them is refused.
func TestNestedPaths(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	gun := "registry.example.com/team/nested"
	k := notarytest.NewKey(t)
	build := func(tags map[string]notary.FileMeta) notary.ServerDir {
		r := notarytest.NewRepo(t, gun, time.Date(2026, 12, 6, 0, 0, 0, 0, time.UTC))
		r.Delegations = []*notarytest.Delegation{{Name: "targets/ci", Keys: []*notarytest.Key{k}, Paths: []string{"ci-"}, Tags: map[string]notary.FileMeta{},
			Delegations: []*notarytest.Delegation{{Name: "targets/ci/nightly", Keys: []*notarytest.Key{k}, Paths: []string{"ci-nightly-", "release-"}, Tags: tags}}}}
		r.Build(t, nil)
		dir := t.TempDir()
		r.WriteServerDir(t, dir)
		return notary.ServerDir{Dir: dir}
	}
	src := build(map[string]notary.FileMeta{"ci-nightly-1": notarytest.Tag("n1")})
	repo, err := notary.Verify(ctx, src, gun, notary.Options{Anchor: notary.Anchor{TOFU: true}, Now: fixedNow})
	if err != nil {
		t.Fatal(err)
	}
	if n := repo.Role("targets/ci/nightly"); n == nil || n.Delegator != "targets/ci" || !slices.Equal(n.Paths, []string{"ci-nightly-"}) || len(n.Targets) != 1 {
		t.Fatalf("nightly: %+v", n)
	}
	src = build(map[string]notary.FileMeta{"release-1": notarytest.Tag("r1")})
	_, err = notary.Verify(ctx, src, gun, notary.Options{Anchor: notary.Anchor{TOFU: true}, Now: fixedNow})
	if !errors.Is(err, notary.ErrPath) || !strings.Contains(err.Error(), `targets/ci/nightly v1 lists "release-1"`) {
		t.Fatalf("outside the delegator's paths: %v", err)
	}
}
