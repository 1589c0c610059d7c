package tufrepo_test

import (
	"context"
	"errors"
	"maps"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"
	"github.com/theupdateframework/go-tuf/v2/metadata/trustedmetadata"

	"github.com/signetdev/signet/internal/tuftest"
	"github.com/signetdev/signet/server/store"
	"github.com/signetdev/signet/server/store/memstore"
	"github.com/signetdev/signet/server/tufrepo"
	"github.com/signetdev/signet/signer/keystore"
)

const gun = "registry.example.com/team/app"

type fixture struct {
	t     testing.TB
	ctx   context.Context
	clock *tuftest.Clock
	store store.MetaStore
	repo  *tufrepo.Repo
	dev   *tuftest.Repo
}

// newFixture makes a repository whose root names the server's timestamp key
// and, with serverSnapshot, its snapshot key; nothing is published yet.
func newFixture(t testing.TB, serverSnapshot bool) *fixture {
	t.Helper()
	ctx := context.Background()
	clock := tuftest.NewClock()
	sg := keystore.NewMemory(keystore.WithClock(clock.Now))
	st := memstore.New()
	f := &fixture{t: t, ctx: ctx, clock: clock, store: st, repo: tufrepo.New(st, sg, tufrepo.WithClock(clock.Now))}
	ts, err := f.repo.ServerKey(ctx, gun, metadata.TIMESTAMP, true)
	if err != nil {
		t.Fatal(err)
	}
	var snap *metadata.Key
	if serverSnapshot {
		k, err := f.repo.ServerKey(ctx, gun, metadata.SNAPSHOT, true)
		if err != nil {
			t.Fatal(err)
		}
		snap = k.Public
	}
	f.dev = tuftest.NewRepo(t, clock.Now, ts.Public, snap)
	return f
}

func (f *fixture) publish(files map[string][]byte) (*tufrepo.Result, error) {
	return f.repo.Publish(f.ctx, gun, files)
}

func (f *fixture) mustPublish(files map[string][]byte) *tufrepo.Result {
	f.t.Helper()
	res, err := f.publish(files)
	if err != nil {
		f.t.Fatalf("publish: %v", err)
	}
	return res
}

// initial publishes root v1 and targets v1 with one tag.
func (f *fixture) initial() {
	f.t.Helper()
	f.initialWith(nil)
}

// initialWith publishes root, targets and, in the same upload, the
// delegated roles in delegated (a delegation is born published).
func (f *fixture) initialWith(delegated map[string][]byte) {
	f.t.Helper()
	f.dev.AddTag("1.0", "manifest-1.0")
	files := map[string][]byte{metadata.ROOT: f.dev.RootBytes(), metadata.TARGETS: f.dev.TargetsBytes()}
	maps.Copy(files, delegated)
	f.mustPublish(files)
}

// verify walks the stored repository as a TUF client would and returns
// the trusted set.
func (f *fixture) verify() *trustedmetadata.TrustedMetadata {
	f.t.Helper()
	get := func(role string) []byte {
		m, err := f.store.GetCurrent(f.ctx, gun, role)
		if err != nil {
			f.t.Fatalf("get %s: %v", role, err)
		}
		return m.Data
	}
	tm, err := trustedmetadata.New(get(metadata.ROOT))
	if err != nil {
		f.t.Fatal(err)
	}
	tm.RefTime = f.clock.Now()
	if _, err := tm.UpdateTimestamp(get(metadata.TIMESTAMP)); err != nil {
		f.t.Fatalf("timestamp: %v", err)
	}
	if _, err := tm.UpdateSnapshot(get(metadata.SNAPSHOT), false); err != nil {
		f.t.Fatalf("snapshot: %v", err)
	}
	if _, err := tm.UpdateTargets(get(metadata.TARGETS)); err != nil {
		f.t.Fatalf("targets: %v", err)
	}
	return tm
}

// stateOfStore is what must not change when a publish is refused.
func (f *fixture) stateOfStore() map[string]int64 {
	f.t.Helper()
	out := map[string]int64{}
	for _, role := range []string{metadata.ROOT, metadata.TARGETS, metadata.SNAPSHOT, metadata.TIMESTAMP, "targets/releases"} {
		m, err := f.store.GetCurrent(f.ctx, gun, role)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			f.t.Fatal(err)
		}
		out[role] = m.Version
	}
	ch, err := f.store.Changes(f.ctx, 0, store.MaxChangesPage)
	if err != nil {
		f.t.Fatal(err)
	}
	out["changes"] = int64(len(ch))
	return out
}

func codeOf(err error) tufrepo.Code {
	var e *tufrepo.Error
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}

func TestPublishInitialVerifiesWithGoTUF(t *testing.T) {
	t.Parallel()
	for _, serverSnapshot := range []bool{true, false} {
		f := newFixture(t, serverSnapshot)
		files := map[string][]byte{metadata.ROOT: f.dev.RootBytes()}
		f.dev.AddTag("1.0", "manifest-1.0")
		files[metadata.TARGETS] = f.dev.TargetsBytes()
		if !serverSnapshot {
			files[metadata.SNAPSHOT] = f.clientSnapshot(1, map[string]int64{metadata.TARGETS: 1})
		}
		res := f.mustPublish(files)
		want := map[string]int64{metadata.ROOT: 1, metadata.TARGETS: 1, metadata.SNAPSHOT: 1, metadata.TIMESTAMP: 1}
		for role, v := range want {
			if res.Versions[role] != v {
				t.Errorf("serverSnapshot=%v: %s version %d, want %d", serverSnapshot, role, res.Versions[role], v)
			}
		}
		tm := f.verify()
		if _, ok := tm.Targets[metadata.TARGETS].Signed.Targets["1.0"]; !ok {
			t.Errorf("serverSnapshot=%v: tag 1.0 missing", serverSnapshot)
		}
	}
}

// clientSnapshot builds a developer-made snapshot signed with the targets key
// (which the client-snapshot fixture's root names for snapshot).
func (f *fixture) clientSnapshot(version int64, roles map[string]int64) []byte {
	snap := metadata.Snapshot(f.clock.Now().Add(7 * 24 * time.Hour))
	snap.Signed.Version = version
	snap.Signed.Meta = map[string]*metadata.MetaFiles{}
	for role, v := range roles {
		snap.Signed.Meta[role+".json"] = metadata.MetaFile(v)
	}
	return tuftest.Sign(f.t, snap, f.dev.TargetsKeys...)
}

func TestPublishRefusals(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		// files builds the upload after the initial publish (root v1,
		// targets v1 with tag 1.0) when initial is true.
		initial bool
		files   func(f *fixture) map[string][]byte
		want    tufrepo.Code
	}{
		{"first publish without root", false, func(f *fixture) map[string][]byte {
			return map[string][]byte{metadata.TARGETS: f.dev.TargetsBytes()}
		}, tufrepo.CodeMissingRole},
		{"malformed JSON", true, func(f *fixture) map[string][]byte {
			return map[string][]byte{metadata.TARGETS: []byte(`{"signed": {`)}
		}, tufrepo.CodeMalformed},
		{"wrong metadata type", true, func(f *fixture) map[string][]byte {
			return map[string][]byte{metadata.TARGETS: f.dev.RootBytes()}
		}, tufrepo.CodeMalformed},
		{"null target entry (go-tuf panics on it)", true, func(f *fixture) map[string][]byte {
			f.dev.Bump()
			data := strings.Replace(string(f.dev.TargetsBytes()), `"targets":{`, `"targets":{"nil":null,`, 1)
			return map[string][]byte{metadata.TARGETS: []byte(data)}
		}, tufrepo.CodeMalformed},
		{"tampered in a form go-tuf's encoder does not write", true, func(f *fixture) map[string][]byte {
			f.dev.Bump()
			data := strings.Replace(string(f.dev.TargetsBytes()), `"1.0":{`, `"1.0":{"custom":{"evil":true},`, 1)
			return map[string][]byte{metadata.TARGETS: []byte(data)}
		}, tufrepo.CodeSignature},
		{"timestamp uploaded", true, func(f *fixture) map[string][]byte {
			return map[string][]byte{metadata.TIMESTAMP: []byte(`{}`)}
		}, tufrepo.CodeUnknownRole},
		{"unknown delegated role", true, func(f *fixture) map[string][]byte {
			m := metadata.Targets(f.clock.Now().Add(time.Hour))
			return map[string][]byte{"targets/nobody": tuftest.Sign(f.t, m, f.dev.TargetsKeys...)}
		}, tufrepo.CodeUnknownRole},
		{"odd role name", true, func(f *fixture) map[string][]byte {
			return map[string][]byte{"targets/../x": f.dev.TargetsBytes()}
		}, tufrepo.CodeUnknownRole},
		{"signed by a stranger", true, func(f *fixture) map[string][]byte {
			f.dev.Bump()
			return map[string][]byte{metadata.TARGETS: tuftest.Sign(f.t, f.dev.Targets, tuftest.NewKey(f.t))}
		}, tufrepo.CodeSignature},
		{"no signatures", true, func(f *fixture) map[string][]byte {
			f.dev.Bump()
			return map[string][]byte{metadata.TARGETS: tuftest.Sign[metadata.TargetsType](f.t, f.dev.Targets)}
		}, tufrepo.CodeSignature},
		{"tampered after signing", true, func(f *fixture) map[string][]byte {
			f.dev.Bump()
			f.dev.TargetsBytes()
			f.dev.AddTag("evil", "evil")
			return map[string][]byte{metadata.TARGETS: tuftest.AddSignatures[metadata.TargetsType](f.t, f.dev.Targets)}
		}, tufrepo.CodeSignature},
		{"duplicate signature by one key", true, func(f *fixture) map[string][]byte {
			f.dev.Bump()
			f.dev.TargetsBytes()
			f.dev.Targets.Signatures = append(f.dev.Targets.Signatures, f.dev.Targets.Signatures[0])
			return map[string][]byte{metadata.TARGETS: tuftest.AddSignatures[metadata.TargetsType](f.t, f.dev.Targets)}
		}, tufrepo.CodeMalformed},
		{"version not increasing", true, func(f *fixture) map[string][]byte {
			f.dev.AddTag("1.1", "manifest-1.1")
			return map[string][]byte{metadata.TARGETS: f.dev.TargetsBytes()}
		}, tufrepo.CodeVersionConflict},
		{"expired targets", true, func(f *fixture) map[string][]byte {
			f.dev.Bump()
			f.dev.Targets.Signed.Expires = f.clock.Now().Add(-time.Minute)
			return map[string][]byte{metadata.TARGETS: f.dev.TargetsBytes()}
		}, tufrepo.CodeExpired},
		{"root skips a version", true, func(f *fixture) map[string][]byte {
			f.dev.Root.Signed.Version = 3
			return map[string][]byte{metadata.ROOT: f.dev.RootBytes()}
		}, tufrepo.CodeBadVersion},
		{"root not naming the server timestamp key", false, func(f *fixture) map[string][]byte {
			other := tuftest.NewKey(f.t)
			f.dev.Root.Signed.Roles[metadata.TIMESTAMP].KeyIDs = nil
			if err := f.dev.Root.Signed.AddKey(other.Public, metadata.TIMESTAMP); err != nil {
				f.t.Fatal(err)
			}
			return map[string][]byte{metadata.ROOT: f.dev.RootBytes(), metadata.TARGETS: f.dev.TargetsBytes()}
		}, tufrepo.CodeServerKey},
		{"root threshold above its keys", false, func(f *fixture) map[string][]byte {
			f.dev.Root.Signed.Roles[metadata.TARGETS].Threshold = 2
			return map[string][]byte{metadata.ROOT: f.dev.RootBytes(), metadata.TARGETS: f.dev.TargetsBytes()}
		}, tufrepo.CodeInvalid},
		{"expired root", false, func(f *fixture) map[string][]byte {
			f.dev.Root.Signed.Expires = f.clock.Now().Add(-time.Second)
			return map[string][]byte{metadata.ROOT: f.dev.RootBytes(), metadata.TARGETS: f.dev.TargetsBytes()}
		}, tufrepo.CodeExpired},
		{"snapshot uploaded although server-managed", true, func(f *fixture) map[string][]byte {
			f.dev.Bump()
			return map[string][]byte{metadata.TARGETS: f.dev.TargetsBytes(), metadata.SNAPSHOT: f.clientSnapshot(2, map[string]int64{metadata.TARGETS: 2})}
		}, tufrepo.CodeInvalid},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, true)
			if tc.initial {
				f.initial()
			}
			before := f.stateOfStore()
			_, err := f.publish(tc.files(f))
			if got := codeOf(err); got != tc.want {
				t.Fatalf("code %q (err %v), want %q", got, err, tc.want)
			}
			if after := f.stateOfStore(); !equalMaps(before, after) {
				t.Errorf("refused publish changed the store: %v → %v", before, after)
			}
		})
	}
}

func equalMaps(a, b map[string]int64) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func TestRootRotationNeedsBothThresholds(t *testing.T) {
	t.Parallel()
	f := newFixture(t, true)
	f.initial()
	oldKeys := f.dev.RootKeys
	newKeys := []*tuftest.Key{tuftest.NewKey(t), tuftest.NewKey(t)}
	next := tuftest.Clone(t, f.dev.Root)
	next.Signed.Version = 2
	next.Signed.Roles[metadata.ROOT].KeyIDs = nil
	for _, k := range newKeys {
		if err := next.Signed.AddKey(k.Public, metadata.ROOT); err != nil {
			t.Fatal(err)
		}
	}
	next.Signed.Roles[metadata.ROOT].Threshold = 2

	for _, tc := range []struct {
		name string
		keys []*tuftest.Key
		want tufrepo.Code
	}{
		{"only new keys", newKeys, tufrepo.CodeSignature},
		{"old key and one new key", append([]*tuftest.Key{oldKeys[0]}, newKeys[0]), tufrepo.CodeSignature},
		{"old key and both new keys", append([]*tuftest.Key{oldKeys[0]}, newKeys...), ""},
	} {
		_, err := f.publish(map[string][]byte{metadata.ROOT: tuftest.Sign(t, next, tc.keys...)})
		if got := codeOf(err); got != tc.want || (tc.want == "" && err != nil) {
			t.Fatalf("%s: code %q (err %v), want %q", tc.name, got, err, tc.want)
		}
	}
	if tm := f.verify(); tm.Root.Signed.Version != 2 {
		t.Fatalf("root version %d, want 2", tm.Root.Signed.Version)
	}
}

func TestDelegatedPathsAndKeyRemoval(t *testing.T) {
	t.Parallel()
	f := newFixture(t, true)
	alice, bob := tuftest.NewKey(t), tuftest.NewKey(t)
	f.dev.Targets.Signed.Delegations = &metadata.Delegations{
		Keys:  map[string]*metadata.Key{},
		Roles: []metadata.DelegatedRole{{Name: "targets/releases", Threshold: 1, Paths: []string{"release/*"}}},
	}
	for _, k := range []*tuftest.Key{alice, bob} {
		if err := f.dev.Targets.Signed.AddKey(k.Public, "targets/releases"); err != nil {
			t.Fatal(err)
		}
	}
	rel := metadata.Targets(f.clock.Now().Add(24 * time.Hour))
	rel.Signed.Targets["release/1.0"] = tuftest.Target("m1")
	f.initialWith(map[string][]byte{"targets/releases": tuftest.Sign(t, rel, alice)})

	outside := tuftest.Clone(t, rel)
	outside.Signed.Version = 2
	outside.Signed.Targets["latest"] = tuftest.Target("m2")
	if _, err := f.publish(map[string][]byte{"targets/releases": tuftest.Sign(t, outside, alice)}); codeOf(err) != tufrepo.CodePathNotDelegated {
		t.Fatalf("target outside paths: %v", err)
	}

	// Remove alice's key without re-signing the role: refused, since the
	// stored targets/releases (signed by alice only) would no longer verify.
	if err := f.dev.Targets.Signed.RevokeKey(alice.ID, "targets/releases"); err != nil {
		t.Fatal(err)
	}
	f.dev.Bump()
	if _, err := f.publish(map[string][]byte{metadata.TARGETS: f.dev.TargetsBytes()}); codeOf(err) != tufrepo.CodeSignature {
		t.Fatalf("revocation without re-signing: %v", err)
	}
	// With the remaining key re-signing in the same publish: accepted.
	rel2 := tuftest.Clone(t, rel)
	rel2.Signed.Version = 2
	f.mustPublish(map[string][]byte{metadata.TARGETS: f.dev.TargetsBytes(), "targets/releases": tuftest.Sign(t, rel2, bob)})
	// The revoked key's later signatures are refused.
	rel3 := tuftest.Clone(t, rel2)
	rel3.Signed.Version = 3
	if _, err := f.publish(map[string][]byte{"targets/releases": tuftest.Sign(t, rel3, alice)}); codeOf(err) != tufrepo.CodeSignature {
		t.Fatalf("revoked key: %v", err)
	}
	f.mustPublish(map[string][]byte{"targets/releases": tuftest.Sign(t, rel3, bob)})
}

func TestClientSnapshotMustMatch(t *testing.T) {
	t.Parallel()
	f := newFixture(t, false)
	f.dev.AddTag("1.0", "m")
	f.mustPublish(map[string][]byte{
		metadata.ROOT: f.dev.RootBytes(), metadata.TARGETS: f.dev.TargetsBytes(),
		metadata.SNAPSHOT: f.clientSnapshot(1, map[string]int64{metadata.TARGETS: 1}),
	})
	f.dev.Bump()
	targets := f.dev.TargetsBytes()
	for _, tc := range []struct {
		name  string
		files map[string][]byte
		want  tufrepo.Code
	}{
		{"no snapshot", map[string][]byte{metadata.TARGETS: targets}, tufrepo.CodeMissingRole},
		{"snapshot lists old targets", map[string][]byte{metadata.TARGETS: targets, metadata.SNAPSHOT: f.clientSnapshot(2, map[string]int64{metadata.TARGETS: 1})}, tufrepo.CodeSnapshot},
		{"snapshot version not newer", map[string][]byte{metadata.TARGETS: targets, metadata.SNAPSHOT: f.clientSnapshot(1, map[string]int64{metadata.TARGETS: 2})}, tufrepo.CodeVersionConflict},
		{"snapshot lists an unknown role", map[string][]byte{metadata.TARGETS: targets, metadata.SNAPSHOT: f.clientSnapshot(2, map[string]int64{metadata.TARGETS: 2, "ghost": 1})}, tufrepo.CodeSnapshot},
		{"good", map[string][]byte{metadata.TARGETS: targets, metadata.SNAPSHOT: f.clientSnapshot(2, map[string]int64{metadata.TARGETS: 2})}, ""},
	} {
		_, err := f.publish(tc.files)
		if got := codeOf(err); got != tc.want || (tc.want == "" && err != nil) {
			t.Fatalf("%s: code %q (err %v), want %q", tc.name, got, err, tc.want)
		}
	}
	f.verify()
}

func TestConcurrentPublishesOneWinner(t *testing.T) {
	t.Parallel()
	f := newFixture(t, true)
	f.initial()
	const n = 8
	uploads := make([][]byte, n)
	for i := range uploads {
		m := tuftest.Clone(t, f.dev.Targets)
		m.Signed.Version = 2
		m.Signed.Targets["race"] = tuftest.Target(string(rune('a' + i)))
		uploads[i] = tuftest.Sign(t, m, f.dev.TargetsKeys...)
	}
	var (
		wg        sync.WaitGroup
		mu        sync.Mutex
		wins      int
		conflicts int
	)
	for i := range n {
		wg.Go(func() {
			_, err := f.publish(map[string][]byte{metadata.TARGETS: uploads[i]})
			mu.Lock()
			defer mu.Unlock()
			switch codeOf(err) {
			case "":
				if err != nil {
					t.Errorf("unexpected error: %v", err)
				}
				wins++
			case tufrepo.CodeVersionConflict:
				conflicts++
			default:
				t.Errorf("unexpected error: %v", err)
			}
		})
	}
	wg.Wait()
	if wins != 1 || conflicts != n-1 {
		t.Fatalf("wins %d, conflicts %d", wins, conflicts)
	}
	f.verify()
}

func TestRefreshAtHalfLife(t *testing.T) {
	t.Parallel()
	f := newFixture(t, true)
	f.initial()
	if ok, err := f.repo.Refresh(f.ctx, gun); err != nil || ok {
		t.Fatalf("fresh timestamp refreshed: %v %v", ok, err)
	}
	f.clock.Advance(12*time.Hour + time.Second)
	// Two readers race to re-sign: exactly one stores a new timestamp.
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		done int
	)
	for range 2 {
		wg.Go(func() {
			ok, err := f.repo.Refresh(f.ctx, gun)
			if err != nil {
				t.Error(err)
			}
			if ok {
				mu.Lock()
				done++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if done != 1 {
		t.Fatalf("%d refreshes stored, want 1", done)
	}
	ts, err := f.store.GetCurrent(f.ctx, gun, metadata.TIMESTAMP)
	if err != nil {
		t.Fatal(err)
	}
	if ts.Version != 2 || !ts.Expires.Equal(f.clock.Now().Add(tufrepo.DefaultTimestampLifetime)) {
		t.Fatalf("timestamp v%d expires %s", ts.Version, ts.Expires)
	}
	// The snapshot is re-signed only at its own half-life.
	if snap, _ := f.store.GetCurrent(f.ctx, gun, metadata.SNAPSHOT); snap.Version != 1 {
		t.Fatalf("snapshot re-signed early: v%d", snap.Version)
	}
	f.clock.Advance(4 * 24 * time.Hour)
	if n, err := f.repo.Sweep(f.ctx, 10); err != nil || n != 1 {
		t.Fatalf("sweep refreshed %d: %v", n, err)
	}
	if snap, _ := f.store.GetCurrent(f.ctx, gun, metadata.SNAPSHOT); snap.Version != 2 {
		t.Fatalf("snapshot not re-signed at half-life: v%d", snap.Version)
	}
	f.verify()
}

// FuzzPublish feeds arbitrary bytes as each kind of role: Publish never
// panics, refuses with a coded *Error (a 4xx, never a 500) and stores nothing.
func FuzzPublish(f *testing.F) {
	fx := newFixture(f, true)
	fx.initial()
	f.Add("targets", fx.dev.TargetsBytes()) // a stale version
	f.Add("root", fx.dev.RootBytes())
	f.Add("targets/x", []byte(`{"signed":{"_type":"targets","version":2,"expires":"2030-01-01T00:00:00Z","targets":{}},"signatures":[]}`))
	f.Add("snapshot", []byte(`{"signed":{"_type":"snapshot"},"signatures":[{"keyid":"00","sig":"zz"}]}`))
	before := fx.stateOfStore()
	f.Fuzz(func(t *testing.T, role string, data []byte) {
		fx.t = t
		if tufrepo.ValidateRoleName(role) != nil && role != "root" && role != "snapshot" {
			return
		}
		_, err := fx.publish(map[string][]byte{role: data})
		if err == nil {
			t.Fatalf("accepted %s %q", role, data) // would need a valid signature
		}
		if codeOf(err) == "" {
			t.Fatalf("uncoded error for %s %q: %v", role, data, err)
		}
		if after := fx.stateOfStore(); !equalMaps(before, after) {
			t.Fatalf("refused publish changed the store")
		}
	})
}
