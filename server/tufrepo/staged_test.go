package tufrepo_test

import (
	"testing"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/signetdev/signet/internal/tuftest"
	"github.com/signetdev/signet/server/tufrepo"
)

// thresholdTwo publishes a repository whose targets role needs 2 of 3 keys.
func thresholdTwo(t *testing.T) (*fixture, []*tuftest.Key) {
	t.Helper()
	f := newFixture(t, true)
	keys := append(f.dev.TargetsKeys, tuftest.NewKey(t), tuftest.NewKey(t))
	for _, k := range keys[1:] {
		if err := f.dev.Root.Signed.AddKey(k.Public, metadata.TARGETS); err != nil {
			t.Fatal(err)
		}
	}
	f.dev.Root.Signed.Roles[metadata.TARGETS].Threshold = 2
	f.dev.TargetsKeys = keys[:2]
	f.initial()
	return f, keys
}

func (f *fixture) nextTargets(tag string) *metadata.Metadata[metadata.TargetsType] {
	next := tuftest.Clone(f.t, f.dev.Targets)
	next.Signed.Version++
	next.Signed.Targets[tag] = tuftest.Target("manifest-" + tag)
	return next
}

func TestStagedThresholdTwo(t *testing.T) {
	t.Parallel()
	f, keys := thresholdTwo(t)
	before := f.stateOfStore()
	next := f.nextTargets("2.0")
	one := tuftest.Sign(t, next, keys[0])

	// One signature of two: a publish is refused, staging stores nothing
	// that clients see.
	if _, err := f.publish(map[string][]byte{metadata.TARGETS: one}); codeOf(err) != tufrepo.CodeSignature {
		t.Fatalf("publish below threshold: %v, want %s", err, tufrepo.CodeSignature)
	}
	c, err := f.repo.Stage(f.ctx, gun, map[string][]byte{metadata.TARGETS: one})
	if err != nil {
		t.Fatal(err)
	}
	if c.Published != nil || c.ID == "" {
		t.Fatalf("stage below threshold published %v (id %q)", c.Published, c.ID)
	}
	if got := f.stateOfStore(); !equalMaps(got, before) {
		t.Fatalf("staging changed the published state: %v, was %v", got, before)
	}
	if _, ok := f.verify().Targets[metadata.TARGETS].Signed.Targets["2.0"]; ok {
		t.Fatal("a staged tag is visible to clients")
	}
	list, err := f.repo.ListStaged(f.ctx, gun)
	if err != nil || len(list) != 1 {
		t.Fatalf("ListStaged = %v, %v; want one change", list, err)
	}
	r := list[0].Roles[0]
	if r.Role != metadata.TARGETS || r.Version != 2 || r.BaseVersion != 1 || r.Threshold != 2 || len(r.SignedBy) != 1 || r.SignedBy[0] != keys[0].ID {
		t.Fatalf("staged role = %+v", r)
	}

	// The same key again adds nothing; a key of no role is refused.
	if c, err := f.repo.Approve(f.ctx, gun, c.ID, map[string][]byte{metadata.TARGETS: tuftest.Sign(t, next, keys[0])}); err != nil || c.Published != nil {
		t.Fatalf("approval by the same key: %+v, %v", c, err)
	}
	if _, err := f.repo.Approve(f.ctx, gun, c.ID, map[string][]byte{metadata.TARGETS: tuftest.Sign(t, next, tuftest.NewKey(t))}); codeOf(err) != tufrepo.CodeSignature {
		t.Fatalf("approval by a stranger's key: %v", err)
	}
	// A different "signed" object is not an approval.
	changed := tuftest.Clone(t, next)
	changed.Signed.Targets["evil"] = tuftest.Target("evil")
	if _, err := f.repo.Approve(f.ctx, gun, c.ID, map[string][]byte{metadata.TARGETS: tuftest.Sign(t, changed, keys[1])}); codeOf(err) != tufrepo.CodeInvalid {
		t.Fatalf("approval of changed metadata: %v", err)
	}
	if got := f.stateOfStore(); !equalMaps(got, before) {
		t.Fatalf("refused approvals changed the state: %v, was %v", got, before)
	}

	// The second key publishes.
	done, err := f.repo.Approve(f.ctx, gun, c.ID, map[string][]byte{metadata.TARGETS: tuftest.Sign(t, next, keys[2])})
	if err != nil {
		t.Fatal(err)
	}
	if done.Published[metadata.TARGETS] != 2 {
		t.Fatalf("approval did not publish targets v2: %+v", done)
	}
	if _, ok := f.verify().Targets[metadata.TARGETS].Signed.Targets["2.0"]; !ok {
		t.Fatal("published tag not visible")
	}
	if list, _ := f.repo.ListStaged(f.ctx, gun); len(list) != 0 {
		t.Fatalf("published change still staged: %v", list)
	}
	if _, err := f.repo.Approve(f.ctx, gun, c.ID, map[string][]byte{metadata.TARGETS: one}); codeOf(err) != tufrepo.CodeNotFound {
		t.Fatalf("approval after publish: %v", err)
	}
}

func TestStagedStaleRefused(t *testing.T) {
	t.Parallel()
	f, keys := thresholdTwo(t)
	next := f.nextTargets("2.0")
	c, err := f.repo.Stage(f.ctx, gun, map[string][]byte{metadata.TARGETS: tuftest.Sign(t, next, keys[0])})
	if err != nil {
		t.Fatal(err)
	}
	// Meanwhile two holders publish another v2 directly.
	other := f.nextTargets("hotfix")
	f.mustPublish(map[string][]byte{metadata.TARGETS: tuftest.Sign(t, other, keys[0], keys[1])})
	before := f.stateOfStore()
	_, err = f.repo.Approve(f.ctx, gun, c.ID, map[string][]byte{metadata.TARGETS: tuftest.Sign(t, next, keys[1])})
	if codeOf(err) != tufrepo.CodeStaleStaged {
		t.Fatalf("approval of a stale change: %v, want %s", err, tufrepo.CodeStaleStaged)
	}
	if got := f.stateOfStore(); !equalMaps(got, before) {
		t.Fatalf("stale approval changed the state: %v, was %v", got, before)
	}
	tm := f.verify()
	if _, ok := tm.Targets[metadata.TARGETS].Signed.Targets["hotfix"]; !ok {
		t.Fatal("the direct publish was undone")
	}
}

func TestStagedExpiresAndWithdraws(t *testing.T) {
	t.Parallel()
	f, keys := thresholdTwo(t)
	stage := func(tag string) string {
		c, err := f.repo.Stage(f.ctx, gun, map[string][]byte{metadata.TARGETS: tuftest.Sign(t, f.nextTargets(tag), keys[0])})
		if err != nil {
			t.Fatal(err)
		}
		return c.ID
	}
	a, b := stage("a"), stage("b")
	if err := f.repo.WithdrawStaged(f.ctx, gun, a); err != nil {
		t.Fatal(err)
	}
	if _, err := f.repo.GetStaged(f.ctx, gun, a); codeOf(err) != tufrepo.CodeNotFound {
		t.Fatalf("withdrawn change: %v", err)
	}
	f.clock.Advance(tufrepo.DefaultStagedLifetime + time.Minute)
	if _, err := f.repo.GetStaged(f.ctx, gun, b); codeOf(err) != tufrepo.CodeStagedExpired {
		t.Fatalf("expired change: %v, want %s", err, tufrepo.CodeStagedExpired)
	}
	if list, _ := f.repo.ListStaged(f.ctx, gun); len(list) != 0 {
		t.Fatalf("expired change listed: %v", list)
	}
	if n, err := f.repo.SweepStaged(f.ctx); err != nil || n != 1 {
		t.Fatalf("SweepStaged = %d, %v; want 1", n, err)
	}
}

func TestStagedRefusesRootAndFullySignedPublishes(t *testing.T) {
	t.Parallel()
	f, keys := thresholdTwo(t)
	if _, err := f.repo.Stage(f.ctx, gun, map[string][]byte{metadata.ROOT: f.dev.RootBytes()}); codeOf(err) != tufrepo.CodeUnsupported {
		t.Fatalf("staged root: %v", err)
	}
	c, err := f.repo.Stage(f.ctx, gun, map[string][]byte{metadata.TARGETS: tuftest.Sign(t, f.nextTargets("x"), keys[0], keys[1])})
	if err != nil || c.Published[metadata.TARGETS] != 2 {
		t.Fatalf("fully signed stage: %+v, %v; want published targets v2", c, err)
	}
}

// TestStagedKeyRevocation: the owner revokes a delegate's key without
// holding the remaining key; the delegated role, re-signed by nobody yet, is
// staged with the new targets and the remaining delegate completes it.
func TestStagedKeyRevocation(t *testing.T) {
	t.Parallel()
	f := newFixture(t, true)
	alice, bob := tuftest.NewKey(t), tuftest.NewKey(t)
	f.dev.Targets.Signed.Delegations = &metadata.Delegations{
		Keys:  map[string]*metadata.Key{},
		Roles: []metadata.DelegatedRole{{Name: "targets/releases", Threshold: 1, Paths: []string{"*"}}},
	}
	for _, k := range []*tuftest.Key{alice, bob} {
		if err := f.dev.Targets.Signed.AddKey(k.Public, "targets/releases"); err != nil {
			t.Fatal(err)
		}
	}
	rel := metadata.Targets(f.clock.Now().Add(24 * time.Hour))
	rel.Signed.Targets["1.0"] = tuftest.Target("m1")
	f.initialWith(map[string][]byte{"targets/releases": tuftest.Sign(t, rel, alice)})

	if err := f.dev.Targets.Signed.RevokeKey(alice.ID, "targets/releases"); err != nil {
		t.Fatal(err)
	}
	f.dev.Bump()
	rel2 := tuftest.Clone(t, rel)
	rel2.Signed.Version = 2
	unsigned := tuftest.Sign(t, rel2)
	c, err := f.repo.Stage(f.ctx, gun, map[string][]byte{metadata.TARGETS: f.dev.TargetsBytes(), "targets/releases": unsigned})
	if err != nil {
		t.Fatal(err)
	}
	if c.Published != nil {
		t.Fatal("revocation published before the remaining delegate signed")
	}
	// The revoked key cannot complete it.
	if _, err := f.repo.Approve(f.ctx, gun, c.ID, map[string][]byte{"targets/releases": tuftest.Sign(t, rel2, alice)}); codeOf(err) != tufrepo.CodeSignature {
		t.Fatalf("approval by the revoked key: %v", err)
	}
	done, err := f.repo.Approve(f.ctx, gun, c.ID, map[string][]byte{"targets/releases": tuftest.Sign(t, rel2, bob)})
	if err != nil || done.Published == nil {
		t.Fatalf("approval by the remaining key: %+v, %v", done, err)
	}
	if done.Published[metadata.TARGETS] != 2 || done.Published["targets/releases"] != 2 {
		t.Fatalf("published %v", done.Published)
	}
}
