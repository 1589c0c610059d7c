package migrate_test

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	"go.uber.org/goleak"

	"github.com/signetdev/signet/client"
	"github.com/signetdev/signet/notary"
	"github.com/signetdev/signet/notary/migrate"
	"github.com/signetdev/signet/server"
	"github.com/signetdev/signet/server/store/memstore"
	"github.com/signetdev/signet/signer/keystore"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fixedNow is inside every fixture's validity (the timestamps expire on
// 2026-12-06; acme/old's root certificate starts at 2026-12-01T18:51:47Z).
func fixedNow() time.Time { return time.Date(2026, 12, 1, 20, 0, 0, 0, time.UTC) }

const testdata = "../testdata"

func signetPass(string, string) ([]byte, error) { return []byte("signet pw"), nil }

func notaryPass(role string) ([]byte, error) {
	return []byte(map[string]string{"root": "fixture-root-passphrase", "targets": "fixture-targets-passphrase", "snapshot": "fixture-snapshot-passphrase"}[role]), nil
}

func newSignet(t *testing.T) string {
	t.Helper()
	srv := server.New(memstore.New(), keystore.NewMemory(), server.WithSweepInterval(0))
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(hs.Close)
	return hs.URL
}

func newClient(t *testing.T, url, dir string) *client.Client {
	t.Helper()
	c, err := client.New(client.Options{Server: url, TrustDir: dir, Keys: client.NewFileKeyStore(dir+"/private", signetPass, 1<<10)})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func b64hex(t *testing.T, s string) string {
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

type env struct {
	t      *testing.T
	url    string
	dev    *client.Client
	devDir string
}

func newEnv(t *testing.T, url string) *env {
	dir := t.TempDir()
	return &env{t: t, url: url, dev: newClient(t, url, dir), devDir: dir}
}

func (e *env) migrator(src notary.Source, anchor notary.Anchor, mod ...func(*migrate.Options)) *migrate.Migrator {
	e.t.Helper()
	o := migrate.Options{
		Client: e.dev, Source: src,
		Anchor: func(string) (notary.Anchor, error) { return anchor, nil },
		Verify: notary.Options{Now: fixedNow}, Init: true, SignetPassphrase: signetPass, NotaryPassphrase: notaryPass,
	}
	for _, m := range mod {
		m(&o)
	}
	m, err := migrate.New(o)
	if err != nil {
		e.t.Fatal(err)
	}
	return m
}

// engine is another machine that pinned the new Signet root.
func (e *env) engine(gun string) *client.Client {
	e.t.Helper()
	root, err := e.dev.PinnedRoot(gun)
	if err != nil {
		e.t.Fatal(err)
	}
	c := newClient(e.t, e.url, e.t.TempDir())
	if err := c.PinRoot(gun, root); err != nil {
		e.t.Fatal(err)
	}
	return c
}

// checkResolves resolves every tag of w through Signet.
func checkResolves(t *testing.T, c *client.Client, gun string, w map[string]string, role map[string]string) {
	t.Helper()
	ctx := context.Background()
	for tag, dh := range w {
		got, err := c.Resolve(ctx, gun+":"+tag)
		if err != nil {
			t.Fatalf("%s:%s: %v", gun, tag, err)
		}
		hexSize := got.Digest.Encoded() + " " + strconv.FormatInt(got.Size, 10)
		if hexSize != dh {
			t.Fatalf("%s:%s resolved to %s, Notary had %s", gun, tag, hexSize, dh)
		}
		if r, ok := role[tag]; ok && got.Role != r {
			t.Fatalf("%s:%s resolved through %s, want %s", gun, tag, got.Role, r)
		}
	}
}

func mustOK(t *testing.T, rep *migrate.GUNReport) *migrate.GUNReport {
	t.Helper()
	if rep.Failed() {
		t.Fatalf("%s: %s", rep.GUN, rep.Error)
	}
	return rep
}

func outcomes(rep *migrate.GUNReport) map[string]int {
	out := map[string]int{}
	for _, r := range rep.Rows {
		out[r.Outcome]++
	}
	return out
}

// TestMigrateTrustDirectory migrates the Docker-style trust directory of
// registry.example.com/acme/old: its pinned root is the anchor, its
// targets key is imported, and both tags resolve through Signet, signed by
// the same targets key. A second run changes nothing.
func TestMigrateTrustDirectory(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	gun := "registry.example.com/acme/old"
	td := notary.TrustDir{Dir: testdata + "/docker-trust-dir"}
	pinned, err := td.PinnedRoot(gun)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := notary.ReadPrivateKeys(td.Dir)
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, newSignet(t))
	m := e.migrator(td, notary.Anchor{Root: pinned}, func(o *migrate.Options) { o.Keys = keys })
	rep := mustOK(t, m.Migrate(ctx, gun))
	if len(rep.KeysImported) != 1 || rep.Publishes != 2 || !rep.Created || outcomes(rep)[migrate.Migrated] != 2 {
		t.Fatalf("report %+v", rep)
	}
	// The Notary targets key (8151ac5c… as Notary names its bare key) is
	// the Signet targets key.
	root, _ := e.dev.PinnedRoot(gun)
	if !strings.Contains(string(root), rep.KeysImported[0]) {
		t.Fatalf("the new root does not name the imported targets key %s", rep.KeysImported[0])
	}
	w := map[string]string{
		"v1": b64hex(t, "ssF1Xf/2FbkG2AoxIM9jFuO+r3IbxKddJ9h9r3zzVh4=") + " 4847",
		"v2": b64hex(t, "EUO5tOERVWFdO0QuZc7y5x6HyxPQ9Zr8Br1d3DwPNAw=") + " 4574",
	}
	checkResolves(t, e.engine(gun), gun, w, map[string]string{"v1": "targets", "v2": "targets"})
	again := mustOK(t, m.Migrate(ctx, gun))
	if again.Publishes != 0 || outcomes(again)[migrate.AlreadyThere] != 2 || len(again.KeysImported) != 0 {
		t.Fatalf("re-run: %+v", again)
	}
}

// TestMigrateServerFiles migrates notary-server's stored files of
// example.com/demo/app (23 tags) and example.com/demo/feat (root rotated
// v1 → v4, tag v2 in targets/releases), anchored at their first root.
func TestMigrateServerFiles(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	src := notary.ServerDir{Dir: testdata}
	e := newEnv(t, newSignet(t))
	anchor := func(gun string) notary.Anchor {
		b, err := src.Get(ctx, gun, "root", notary.Want{Version: 1})
		if err != nil {
			t.Fatal(err)
		}
		return notary.Anchor{Root: b}
	}
	app := "example.com/demo/app"
	rep := mustOK(t, e.migrator(src, anchor(app)).Migrate(ctx, app))
	if n := outcomes(rep)[migrate.Migrated]; n != 23 || len(rep.Rows) != 23 {
		t.Fatalf("app: %+v", rep)
	}
	w := map[string]string{}
	for _, r := range rep.Rows {
		w[r.Tag] = strings.TrimPrefix(r.Digest, "sha256:") + " " + strconv.FormatInt(r.Size, 10)
	}
	if w["probe1"] != b64hex(t, "ZKtuU6vXWDNktsNqGyx3zD8plW2J/ZxibxAAjZBTnEA=")+" 13" {
		t.Fatalf("probe1: %q", w["probe1"])
	}
	checkResolves(t, e.engine(app), app, w, nil)

	// feat, mirrored: this directory holds no key of targets/releases, so
	// v2 is staged for its holders (and the root chain was followed).
	feat := "example.com/demo/feat"
	rep = mustOK(t, e.migrator(src, anchor(feat)).Migrate(ctx, feat))
	if !slices.Equal(rep.RootChain, []int64{1, 2, 3, 4}) || rep.Staged == "" || rep.StagedFor["targets/releases"] != 1 || rep.Rows[0].Outcome != migrate.StagedFor+" targets/releases" {
		t.Fatalf("feat mirrored: %+v", rep)
	}
	if a := rep.Approvers["targets/releases"]; len(a) != 1 || !strings.Contains(strings.Join(rep.Delegations, " "), a[0][:12]) {
		t.Fatalf("approvers %v, delegations %v", rep.Approvers, rep.Delegations)
	}
	if _, err := e.engine(feat).Resolve(ctx, feat+":v2"); !errors.Is(err, client.ErrNotSigned) {
		t.Fatalf("a staged tag resolved: %v", err)
	}
	again := mustOK(t, e.migrator(src, anchor(feat)).Migrate(ctx, feat))
	if again.Publishes != 0 || !strings.HasPrefix(again.Rows[0].Outcome, migrate.AlreadyThere) {
		t.Fatalf("re-run staged again: %+v", again)
	}
	// Once targets changes, that staged change is stale: a re-run stages a
	// fresh one and says which to withdraw.
	if _, err := e.dev.PublishAs(ctx, feat, "targets", []client.Change{{Tag: "other", Digest: digest.Digest("sha256:" + strings.Repeat("ab", 32)), Size: 1}}); err != nil {
		t.Fatal(err)
	}
	fresh := mustOK(t, e.migrator(src, anchor(feat)).Migrate(ctx, feat))
	if fresh.Publishes != 1 || fresh.Staged == rep.Staged || !strings.Contains(strings.Join(fresh.Notes, "\n"), "staged change "+rep.Staged+" is stale") {
		t.Fatalf("stale staged change: %+v", fresh)
	}
}

// TestMigrateFlatten signs feat's v2 (Notary: targets/releases) with the
// Signet targets key.
func TestMigrateFlatten(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t, newSignet(t))
	feat := "example.com/demo/feat"
	rep := mustOK(t, e.migrator(notary.ServerDir{Dir: testdata}, notary.Anchor{TOFU: true}, func(o *migrate.Options) { o.Flatten = true }).Migrate(ctx, feat))
	if len(rep.Warnings) == 0 || !strings.Contains(rep.Warnings[0], "TRUST ON FIRST USE") {
		t.Fatalf("no TOFU warning: %v", rep.Warnings)
	}
	w := map[string]string{"v2": b64hex(t, "ZKtuU6vXWDNktsNqGyx3zD8plW2J/ZxibxAAjZBTnEA=") + " 13"}
	checkResolves(t, e.engine(feat), feat, w, map[string]string{"v2": "targets"})
}
