package migrate_test

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/signetdev/signet/client"
	"github.com/signetdev/signet/notary"
	"github.com/signetdev/signet/notary/migrate"
	"github.com/signetdev/signet/notary/notarytest"
	"github.com/signetdev/signet/server"
	"github.com/signetdev/signet/server/store/memstore"
	"github.com/signetdev/signet/signer/keystore"
	"github.com/signetdev/signet/tufedit"
)

var tsExpiry = time.Date(2026, 12, 6, 11, 0, 0, 0, time.UTC)

// docker builds a repository as docker trust signer add + docker trust
// sign leave it: targets/releases and targets/alice share alice's key;
// targets lists an older digest of "1.0" than targets/releases.
func docker(t *testing.T, gun string) (*notarytest.Repo, *notarytest.Key) {
	r := notarytest.NewRepo(t, gun, tsExpiry)
	// docker trust signer add loads the signer's key as an x509 certificate.
	alice := notarytest.NewRootKey(t, "alice", r.CertStart)
	r.Tags["1.0"] = notarytest.Tag("old manifest")
	r.Tags["base"] = notarytest.Tag("base manifest")
	r.Delegations = []*notarytest.Delegation{
		{Name: "targets/releases", Keys: []*notarytest.Key{alice}, Paths: []string{""}, Tags: map[string]notary.FileMeta{"1.0": notarytest.Tag("new manifest"), "2.0": notarytest.Tag("two")}},
		{Name: "targets/alice", Keys: []*notarytest.Key{alice}, Paths: []string{"alice-"}, Tags: map[string]notary.FileMeta{"alice-1": notarytest.Tag("a1")}},
		{Name: "targets/bob", Keys: []*notarytest.Key{alice}, Paths: []string{"bob-"}, Tags: map[string]notary.FileMeta{}},
	}
	// A nested delegation: targets/releases delegates qa-… to
	// targets/releases/qa (and "other-", outside nothing, passes through).
	r.Delegations[0].Delegations = []*notarytest.Delegation{
		{Name: "targets/releases/qa", Keys: []*notarytest.Key{alice}, Paths: []string{"qa-"}, Tags: map[string]notary.FileMeta{"qa-1": notarytest.Tag("qa one")}},
	}
	return r, alice
}

func want(r *notarytest.Repo, tags map[string]notary.FileMeta) map[string]string {
	w := map[string]string{}
	for tag, m := range tags {
		w[tag] = fmt.Sprintf("%s %d", notarytest.Hex(m), m.Length)
	}
	return w
}

// TestMirrorDelegations: with every key in the trust directory, the
// delegations are mirrored with the same keys, tags keep their Notary
// role, and "1.0" (listed by targets and, differently, by targets/releases)
// resolves to the digest Docker's client used: targets/releases's.
func TestMirrorDelegations(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	gun := "registry.example.com/team/docker"
	r, _ := docker(t, gun)
	r.Build(t, nil)
	dir := t.TempDir()
	r.WriteTrustDir(t, dir, map[string]string{"targets": "fixture-targets-passphrase", "targets/releases": "delegation pw"})
	keys, err := notary.ReadPrivateKeys(dir)
	if err != nil {
		t.Fatal(err)
	}
	td := notary.TrustDir{Dir: dir}
	pinned, _ := td.PinnedRoot(gun)
	e := newEnv(t, newSignet(t))
	m := e.migrator(td, notary.Anchor{Root: pinned}, func(o *migrate.Options) {
		o.Keys = keys
		o.NotaryPassphrase = func(role string) ([]byte, error) {
			if role == "delegation" {
				return []byte("delegation pw"), nil
			}
			return notaryPass(role)
		}
	})
	rep := mustOK(t, m.Migrate(ctx, gun))
	if len(rep.KeysImported) != 2 || rep.Publishes != 2 {
		t.Fatalf("%+v", rep)
	}
	var conflict bool
	for _, row := range rep.Rows {
		if row.Tag == "1.0" && row.NotaryRole == "targets" {
			conflict = row.Outcome == migrate.Skipped && strings.Contains(row.Reason, "Docker used targets/releases")
		}
	}
	if !conflict {
		t.Fatalf("the targets/targets-releases conflict on 1.0 is not reported: %+v", rep.Rows)
	}
	eng := e.engine(gun)
	w := want(r, map[string]notary.FileMeta{"1.0": notarytest.Tag("new manifest"), "2.0": notarytest.Tag("two"), "base": notarytest.Tag("base manifest"), "alice-1": notarytest.Tag("a1"), "qa-1": notarytest.Tag("qa one")})
	checkResolves(t, eng, gun, w, map[string]string{"1.0": "targets/releases", "2.0": "targets/releases", "base": "targets", "alice-1": "targets/alice", "qa-1": "targets/releases/qa"})
	rel, err := eng.Role(ctx, gun, "targets/releases")
	if err != nil {
		t.Fatal(err)
	}
	if qa := tufedit.ListDelegations(&rel.Signed); len(qa) != 1 || qa[0].Name != "targets/releases/qa" || qa[0].Paths[0] != "qa-*" {
		t.Fatalf("nested delegation: %+v", qa)
	}
	ds, err := eng.Role(ctx, gun, "targets")
	if err != nil {
		t.Fatal(err)
	}
	got := tufedit.ListDelegations(&ds.Signed)
	// targets/bob lists nothing: it is published empty in the same upload,
	// so the snapshot lists every delegated role.
	if bob, err := eng.Role(ctx, gun, "targets/bob"); err != nil || len(bob.Signed.Targets) != 0 {
		t.Fatalf("targets/bob: %v", err)
	}
	if len(got) != 3 || got[0].Name != "targets/releases" || got[1].Name != "targets/alice" || got[1].Paths[0] != "alice-*" || got[0].KeyIDs[0] != got[1].KeyIDs[0] {
		t.Fatalf("delegations: %+v", got)
	}
	again := mustOK(t, m.Migrate(ctx, gun))
	if again.Publishes != 0 {
		t.Fatalf("re-run published: %+v", again)
	}
	// Another machine that has not pinned the Signet root cannot --init
	// over it.
	other := newEnv(t, e.url)
	m2 := other.migrator(td, notary.Anchor{Root: pinned})
	if rep := m2.Migrate(ctx, gun); !rep.Failed() || !strings.Contains(rep.Error, "exists already: pin its root") {
		t.Fatalf("init over an existing repository: %+v", rep)
	}
}

// signetEmpty asserts that nothing of gun reached the Signet server.
func signetEmpty(t *testing.T, url, gun string) {
	t.Helper()
	c, err := client.New(client.Options{Server: url, TrustDir: t.TempDir(), TOFU: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Resolve(context.Background(), gun+":anything"); err == nil || !strings.Contains(err.Error(), "404") && !errors.Is(err, client.ErrNotSigned) {
		t.Fatalf("%s exists on Signet: %v", gun, err)
	}
}

// TestRefused: tampered or untrusted Notary data is refused with a reason
// naming what is wrong, and nothing is published.
func TestRefused(t *testing.T) {
	t.Parallel()
	gun := "registry.example.com/team/bad"
	other := notarytest.NewRepo(t, gun, tsExpiry) // another root for the same GUN
	other.Build(t, nil)
	cases := []struct {
		name   string
		build  func(r *notarytest.Repo)
		tamper func(r *notarytest.Repo) func(string, map[string]any) []*notarytest.Key
		anchor func(r *notarytest.Repo) notary.Anchor
		edit   func(t *testing.T, dir string)
		now    func() time.Time
		want   error
		reason string
	}{
		{name: "changed digest", edit: func(t *testing.T, dir string) {
			p := filepath.Join(dir, gun, "targets.1.json")
			b, _ := os.ReadFile(p)
			old := notarytest.Tag("base manifest").Hashes["sha256"]
			nb := strings.Replace(string(b), b64(old), b64(notarytest.Tag("evil").Hashes["sha256"]), 1)
			if nb == string(b) {
				t.Fatal("digest not found")
			}
			os.WriteFile(p, []byte(nb), 0o600)
		}, want: notary.ErrHashMismatch, reason: "targets: metadata does not match"},
		{name: "removed signature", build: func(r *notarytest.Repo) {
			r.Delegations[0].Signers = []*notarytest.Key{}
		}, want: notary.ErrSignature, reason: "targets/releases v1: not signed by enough trusted keys: 0 of 1"},
		{name: "timestamp signature removed", edit: func(t *testing.T, dir string) {
			p := filepath.Join(dir, gun, "timestamp.1.json")
			b, _ := os.ReadFile(p)
			i := strings.Index(string(b), `"signatures":[`)
			os.WriteFile(p, []byte(string(b[:i])+`"signatures":[]}`), 0o600)
		}, want: notary.ErrSignature, reason: "timestamp v1"},
		{name: "root does not chain to the pinned one", anchor: func(*notarytest.Repo) notary.Anchor {
			return notary.Anchor{Root: other.Files["root.1"]}
		}, want: notary.ErrUntrustedRoot, reason: "differs from the pinned root v1"},
		{name: "tag outside the delegated prefix", build: func(r *notarytest.Repo) {
			r.Delegations[1].Tags["v9"] = notarytest.Tag("v9")
		}, want: notary.ErrPath, reason: `targets/alice v1 lists "v9": target outside the delegated paths (its delegated path prefixes: "alice-")`},
		{name: "root certificate for another GUN", build: func(r *notarytest.Repo) {
			r.Root = notarytest.NewRootKey(t, "registry.example.com/team/other", r.CertStart)
		}, want: notary.ErrUntrustedRoot, reason: `certificate for "registry.example.com/team/other"`},
		{name: "key listed under another key ID", tamper: func(r *notarytest.Repo) func(string, map[string]any) []*notarytest.Key {
			return func(role string, signed map[string]any) []*notarytest.Key {
				if role == "root" {
					keys := signed["keys"].(map[string]any)
					fake := strings.Repeat("ab", 32)
					keys[fake] = keys[r.Targets.ID]
					delete(keys, r.Targets.ID)
					signed["roles"].(map[string]any)["targets"] = map[string]any{"keyids": []string{fake}, "threshold": 1}
				}
				return nil
			}
		}, want: notary.ErrMalformed, reason: "key listed as abababababab has key ID"},
		{name: "expired", now: func() time.Time { return tsExpiry.Add(time.Hour) }, want: notary.ErrExpired, reason: "--allow-expired"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r, _ := docker(t, gun)
			if tc.build != nil {
				tc.build(r)
			}
			var tamper func(string, map[string]any) []*notarytest.Key
			if tc.tamper != nil {
				tamper = tc.tamper(r)
			}
			r.Build(t, tamper)
			dir := t.TempDir()
			r.WriteServerDir(t, dir)
			if tc.edit != nil {
				tc.edit(t, dir)
			}
			anchor := notary.Anchor{Root: r.Files["root.1"]}
			if tc.anchor != nil {
				anchor = tc.anchor(r)
			}
			_, err := notary.Verify(context.Background(), notary.ServerDir{Dir: dir}, gun, notary.Options{Anchor: anchor, Now: fixedNow})
			if tc.now != nil {
				_, err = notary.Verify(context.Background(), notary.ServerDir{Dir: dir}, gun, notary.Options{Anchor: anchor, Now: tc.now})
			}
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.reason) {
				t.Fatalf("got %v, want %v with %q", err, tc.want, tc.reason)
			}
			url := newSignet(t)
			e := newEnv(t, url)
			m := e.migrator(notary.ServerDir{Dir: dir}, anchor, func(o *migrate.Options) {
				if tc.now != nil {
					o.Verify.Now = tc.now
				}
			})
			rep := m.Migrate(context.Background(), gun)
			if !rep.Failed() || !strings.Contains(rep.Error, tc.reason) {
				t.Fatalf("migrated: %+v", rep)
			}
			signetEmpty(t, url, gun)
		})
	}
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

// TestAllowExpired migrates fixtures whose timestamp expired, only with
// AllowExpired, and says so; with the real clock (today) it verifies too.
func TestAllowExpired(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	feat := "example.com/demo/feat"
	after := func() time.Time { return time.Date(2026, 12, 7, 0, 0, 0, 0, time.UTC) }
	e := newEnv(t, newSignet(t))
	src := notary.ServerDir{Dir: testdata}
	rep := e.migrator(src, notary.Anchor{TOFU: true}, func(o *migrate.Options) { o.Verify.Now = after; o.Flatten = true }).Migrate(ctx, feat)
	if !rep.Failed() || !strings.Contains(rep.Error, "timestamp v7 expired on 2026-12-06T11:52:53Z") || !strings.Contains(rep.Error, "--allow-expired") {
		t.Fatalf("expired data migrated: %+v", rep)
	}
	signetEmpty(t, e.url, feat)
	rep = mustOK(t, e.migrator(src, notary.Anchor{TOFU: true}, func(o *migrate.Options) {
		o.Verify.Now, o.Verify.AllowExpired, o.Flatten = after, true, true
	}).Migrate(ctx, feat))
	if !strings.Contains(strings.Join(rep.Warnings, "\n"), "timestamp v7 expired") || outcomes(rep)[migrate.Migrated] != 1 {
		t.Fatalf("%+v", rep)
	}
	// The real clock, AllowExpired: whatever today is, it migrates (and
	// warns only if something expired).
	e2 := newEnv(t, newSignet(t))
	mustOK(t, e2.migrator(src, notary.Anchor{TOFU: true}, func(o *migrate.Options) {
		o.Verify.Now, o.Verify.AllowExpired, o.Flatten = time.Now, true, true
	}).Migrate(ctx, feat))
	checkResolves(t, e2.engine(feat), feat, map[string]string{"v2": b64hex(t, "ZKtuU6vXWDNktsNqGyx3zD8plW2J/ZxibxAAjZBTnEA=") + " 13"}, nil)
}

// TestDryRun verifies and plans, and changes nothing: no repository, no
// imported key.
func TestDryRun(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	gun := "registry.example.com/acme/old"
	td := notary.TrustDir{Dir: testdata + "/docker-trust-dir"}
	pinned, _ := td.PinnedRoot(gun)
	keys, _ := notary.ReadPrivateKeys(td.Dir)
	e := newEnv(t, newSignet(t))
	rep := mustOK(t, e.migrator(td, notary.Anchor{Root: pinned}, func(o *migrate.Options) { o.Keys, o.DryRun = keys, true }).Migrate(ctx, gun))
	if outcomes(rep)[migrate.WouldMigrate] != 2 || len(rep.KeysImported) != 1 || rep.Publishes != 0 {
		t.Fatalf("%+v", rep)
	}
	if held, _ := e.dev.Keys().List(ctx); len(held) != 0 {
		t.Fatalf("a dry run imported keys: %v", held)
	}
	signetEmpty(t, e.url, gun)
}

// TestPartialFailure: a migration in several batches whose third upload
// fails undoes the earlier batches (the repository is as it was), and a
// re-run completes it.
func TestPartialFailure(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	gun := "registry.example.com/team/many"
	r := notarytest.NewRepo(t, gun, tsExpiry)
	for i := range 60 {
		r.Tags[fmt.Sprintf("t%03d", i)] = notarytest.Tag(fmt.Sprint("manifest ", i))
	}
	r.Build(t, nil)
	dir := t.TempDir()
	r.WriteTrustDir(t, dir, map[string]string{"targets": "fixture-targets-passphrase"})
	keys, _ := notary.ReadPrivateKeys(dir)
	var posts, failAt atomic.Int32
	srv := server.New(memstore.New(), keystore.NewMemory(), server.WithSweepInterval(0))
	h := srv.Handler()
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.Method == http.MethodPost && strings.HasSuffix(req.URL.Path, "/_trust/tuf/") {
			if n := posts.Add(1); n == failAt.Load() {
				http.Error(w, `{"errors":[{"code":"UNAVAILABLE","message":"injected failure"}]}`, http.StatusServiceUnavailable)
				return
			}
		}
		h.ServeHTTP(w, req)
	}))
	t.Cleanup(hs.Close)
	e := newEnv(t, hs.URL)
	td := notary.TrustDir{Dir: dir}
	pinned, _ := td.PinnedRoot(gun)
	var progress []string
	m := e.migrator(td, notary.Anchor{Root: pinned}, func(o *migrate.Options) {
		o.Keys, o.MaxUploadBytes = keys, 20*170
		o.Progress = func(_ string, done, total int) { progress = append(progress, fmt.Sprintf("%d/%d", done, total)) }
	})
	// POST 1 creates the repository, 2.. are batches of 20 tags.
	failAt.Store(4)
	rep := m.Migrate(ctx, gun)
	if !rep.Failed() || !strings.Contains(rep.Error, "batch 3 of 3 failed (the earlier batches were undone)") {
		t.Fatalf("%+v", rep)
	}
	eng := e.engine(gun)
	tm, err := eng.Update(ctx, gun)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(tm.Targets["targets"].Signed.Targets); n != 0 {
		t.Fatalf("after the failure targets lists %d tags", n)
	}
	failAt.Store(0)
	rep = mustOK(t, m.Migrate(ctx, gun))
	if outcomes(rep)[migrate.Migrated] != 60 || strings.Join(progress[len(progress)-3:], " ") != "20/60 40/60 60/60" {
		t.Fatalf("%+v %v", rep, progress)
	}
	checkResolves(t, eng, gun, want(r, r.Tags), nil)
}

// TestStageFailureUndoes: when staging the roles whose keys are missing
// fails, what the same run published is undone: never half-migrated. A
// re-run completes it.
func TestStageFailureUndoes(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	gun := "registry.example.com/team/carol"
	r := notarytest.NewRepo(t, gun, tsExpiry)
	r.Tags["1.0"] = notarytest.Tag("one")
	r.Delegations = []*notarytest.Delegation{{Name: "targets/carol", Keys: []*notarytest.Key{notarytest.NewKey(t)}, Paths: []string{""}, Tags: map[string]notary.FileMeta{"2.0": notarytest.Tag("two")}}}
	r.Build(t, nil)
	dir := t.TempDir()
	r.WriteTrustDir(t, dir, map[string]string{"targets": "fixture-targets-passphrase"}) // carol's key is not here
	keys, _ := notary.ReadPrivateKeys(dir)
	var failStage atomic.Bool
	srv := server.New(memstore.New(), keystore.NewMemory(), server.WithSweepInterval(0))
	h := srv.Handler()
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if failStage.Load() && req.Method == http.MethodPost && strings.Contains(req.URL.Path, "/_trust/staged/") {
			http.Error(w, `{"errors":[{"code":"UNAVAILABLE","message":"injected failure"}]}`, http.StatusServiceUnavailable)
			return
		}
		h.ServeHTTP(w, req)
	}))
	t.Cleanup(hs.Close)
	e := newEnv(t, hs.URL)
	td := notary.TrustDir{Dir: dir}
	pinned, _ := td.PinnedRoot(gun)
	m := e.migrator(td, notary.Anchor{Root: pinned}, func(o *migrate.Options) { o.Keys = keys })
	failStage.Store(true)
	rep := m.Migrate(ctx, gun)
	if !rep.Failed() || !strings.Contains(rep.Error, "what this run had published was undone") || outcomes(rep)[migrate.Skipped] != 2 {
		t.Fatalf("%+v", rep)
	}
	eng := e.engine(gun)
	tm, err := eng.Update(ctx, gun)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(tm.Targets["targets"].Signed.Targets); n != 0 {
		t.Fatalf("targets lists %d tags after the undo", n)
	}
	if staged, err := e.dev.ListStaged(ctx, gun); err != nil || len(staged) != 0 {
		t.Fatalf("staged %v %v", staged, err)
	}
	failStage.Store(false)
	rep = mustOK(t, m.Migrate(ctx, gun))
	if rep.Staged == "" || outcomes(rep)[migrate.Migrated] != 1 || outcomes(rep)[migrate.StagedFor+" targets/carol"] != 1 {
		t.Fatalf("%+v", rep)
	}
	checkResolves(t, eng, gun, want(r, r.Tags), nil)
}
