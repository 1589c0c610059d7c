package tufrepo_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/secure-systems-lab/go-securesystemslib/cjson"
	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/signetdev/signet/internal/tuftest"
	"github.com/signetdev/signet/server/store/memstore"
	"github.com/signetdev/signet/server/tufrepo"
	"github.com/signetdev/signet/signer"
	"github.com/signetdev/signet/signer/keystore"
)

// countingSigner counts the signatures the repository asks for (n) and
// the calls it makes for them (calls: round trips to a remote signer).
type countingSigner struct {
	signer.Service
	n, calls atomic.Int64
}

func (c *countingSigner) Sign(ctx context.Context, gun, role, keyID string, payload []byte) ([]byte, error) {
	c.n.Add(1)
	c.calls.Add(1)
	return c.Service.Sign(ctx, gun, role, keyID, payload)
}

func (c *countingSigner) SignBatch(ctx context.Context, reqs []signer.SignRequest) ([][]byte, error) {
	c.n.Add(int64(len(reqs)))
	c.calls.Add(1)
	return c.Service.SignBatch(ctx, reqs)
}

func newCountingFixture(t *testing.T) (*fixture, *countingSigner) {
	t.Helper()
	ctx := context.Background()
	clock := tuftest.NewClock()
	cs := &countingSigner{Service: keystore.NewMemory(keystore.WithClock(clock.Now))}
	st := memstore.New()
	f := &fixture{t: t, ctx: ctx, clock: clock, store: st, repo: tufrepo.New(st, cs, tufrepo.WithClock(clock.Now))}
	ts, err := f.repo.ServerKey(ctx, gun, metadata.TIMESTAMP, true)
	if err != nil {
		t.Fatal(err)
	}
	snap, err := f.repo.ServerKey(ctx, gun, metadata.SNAPSHOT, true)
	if err != nil {
		t.Fatal(err)
	}
	f.dev = tuftest.NewRepo(t, clock.Now, ts.Public, snap.Public)
	return f, cs
}

func delegate(t *testing.T, d **metadata.Delegations, name string, paths []string, keys ...*tuftest.Key) {
	t.Helper()
	if *d == nil {
		*d = &metadata.Delegations{Keys: map[string]*metadata.Key{}}
	}
	(*d).Roles = append((*d).Roles, metadata.DelegatedRole{Name: name, Threshold: 1, Paths: paths})
	for _, k := range keys {
		dd := &metadata.Metadata[metadata.TargetsType]{Signed: metadata.TargetsType{Delegations: *d}}
		if err := dd.Signed.AddKey(k.Public, name); err != nil {
			t.Fatal(err)
		}
	}
}

// A refused publish, a staged change and an incomplete approval ask the
// signer for nothing; a good publish asks for snapshot and timestamp.
func TestRefusalsMakeNoSignerCalls(t *testing.T) {
	t.Parallel()
	f, cs := newCountingFixture(t)
	f.initial()
	base := cs.n.Load()
	if base != 2 || cs.calls.Load() != 1 {
		t.Fatalf("initial publish made %d signatures in %d calls, want 2 (snapshot, timestamp) in one", base, cs.calls.Load())
	}
	// targets signed by a key the root does not name.
	f.dev.Bump()
	f.dev.AddTag("2.0", "m2")
	bad := tuftest.Sign(t, f.dev.Targets, tuftest.NewKey(t))
	if _, err := f.publish(map[string][]byte{metadata.TARGETS: bad}); codeOf(err) != tufrepo.CodeSignature {
		t.Fatalf("unknown key: %v", err)
	}
	if n := cs.n.Load() - base; n != 0 {
		t.Fatalf("a refused publish made %d signer calls", n)
	}
	// A staged change (2-of-2 delegation, one signature) makes none either.
	a, b := tuftest.NewKey(t), tuftest.NewKey(t)
	delegate(t, &f.dev.Targets.Signed.Delegations, "targets/releases", []string{"*"}, a, b)
	f.dev.Targets.Signed.Delegations.Roles[0].Threshold = 2
	rel := metadata.Targets(f.clock.Now().Add(24 * time.Hour))
	st, err := f.repo.Stage(f.ctx, gun, map[string][]byte{metadata.TARGETS: f.dev.TargetsBytes(), "targets/releases": tuftest.Sign(t, rel, a)})
	if err != nil || st.ID == "" {
		t.Fatalf("stage: %+v %v", st, err)
	}
	if n := cs.n.Load() - base; n != 0 {
		t.Fatalf("staging made %d signer calls", n)
	}
	// The approval that completes it signs snapshot and timestamp once.
	done, err := f.repo.Approve(f.ctx, gun, st.ID, map[string][]byte{"targets/releases": tuftest.Sign(t, rel, b)})
	if err != nil || done.Published == nil {
		t.Fatalf("approve: %+v %v", done, err)
	}
	if n := cs.n.Load() - base; n != 2 {
		t.Fatalf("completing approval made %d signer calls, want 2", n)
	}
}

// Duplicate key IDs multiply go-tuf's verification work: refused at root
// and in delegations before any signature is checked.
func TestDuplicateKeyIDsRefused(t *testing.T) {
	t.Parallel()
	f := newFixture(t, true)
	f.initial()
	next := tuftest.Clone(t, f.dev.Root)
	next.Signed.Version = 2
	id := f.dev.TargetsKeys[0].ID
	next.Signed.Roles[metadata.TARGETS].KeyIDs = slices.Repeat([]string{id}, 60)
	if _, err := f.publish(map[string][]byte{metadata.ROOT: tuftest.Sign(t, next, f.dev.RootKeys...)}); codeOf(err) != tufrepo.CodeInvalid {
		t.Fatalf("root with 200 copies of a key ID: %v", err)
	}

	k := tuftest.NewKey(t)
	rel := metadata.Targets(f.clock.Now().Add(24 * time.Hour))
	delegate(t, &f.dev.Targets.Signed.Delegations, "targets/releases", []string{"*"}, k)
	f.dev.Targets.Signed.Delegations.Roles[0].KeyIDs = slices.Repeat([]string{k.ID}, 60)
	f.dev.Bump()
	_, err := f.publish(map[string][]byte{metadata.TARGETS: f.dev.TargetsBytes(), "targets/releases": tuftest.Sign(t, rel, k)})
	if codeOf(err) != tufrepo.CodeInvalid {
		t.Fatalf("delegation with 200 copies of a key ID: %v", err)
	}
}

// TestDelegateCannotTakeOverRole: targets delegates targets/alice (alice-*,
// alice's key) and targets/team (*, bob's key); team delegates targets/bob
// (bob's key). Alice may not make targets/alice delegate targets/bob to her
// own key and sign targets/bob herself.
func TestDelegateCannotTakeOverRole(t *testing.T) {
	t.Parallel()
	f := newFixture(t, true)
	alice, bob := tuftest.NewKey(t), tuftest.NewKey(t)
	exp := f.clock.Now().Add(24 * time.Hour)
	delegate(t, &f.dev.Targets.Signed.Delegations, "targets/alice", []string{"alice-*"}, alice)
	delegate(t, &f.dev.Targets.Signed.Delegations, "targets/team", []string{"*"}, bob)
	team := metadata.Targets(exp)
	delegate(t, &team.Signed.Delegations, "targets/bob", []string{"*"}, bob)
	bobRole := metadata.Targets(exp)
	bobRole.Signed.Targets["app"] = tuftest.Target("bob's")
	f.initialWith(map[string][]byte{
		"targets/alice": tuftest.Sign(t, metadata.Targets(exp), alice),
		"targets/team":  tuftest.Sign(t, team, bob),
		"targets/bob":   tuftest.Sign(t, bobRole, bob),
	})

	evil := metadata.Targets(exp)
	evil.Signed.Version = 2
	delegate(t, &evil.Signed.Delegations, "targets/bob", []string{"*"}, alice)
	// targets/bob v2, listing only a path alice's delegation allows, signed
	// by alice alone: valid under her delegation, not under team's.
	takeover := metadata.Targets(exp)
	takeover.Signed.Version = 2
	takeover.Signed.Targets["alice-x"] = tuftest.Target("alice's")
	_, err := f.publish(map[string][]byte{"targets/alice": tuftest.Sign(t, evil, alice), "targets/bob": tuftest.Sign(t, takeover, alice)})
	if codeOf(err) != tufrepo.CodeSignature {
		t.Fatalf("takeover of targets/bob: %v (code %q)", err, codeOf(err))
	}
	// Nor may she add the delegation alone: the stored targets/bob (bob's
	// signature) would not verify under it.
	_, err = f.publish(map[string][]byte{"targets/alice": tuftest.Sign(t, evil, alice)})
	if err == nil {
		t.Fatal("a second delegation of targets/bob to another key was accepted")
	}
	// Bob still publishes.
	next := tuftest.Clone(t, bobRole)
	next.Signed.Version = 2
	next.Signed.Targets["app"] = tuftest.Target("bob's v2")
	if _, err := f.publish(map[string][]byte{"targets/bob": tuftest.Sign(t, next, bob)}); err != nil {
		t.Fatalf("bob's publish: %v", err)
	}
}

// A delegation is born published: targets may not delegate to a role that
// the resulting snapshot does not list.
func TestDelegationMustBePublished(t *testing.T) {
	t.Parallel()
	f := newFixture(t, true)
	delegate(t, &f.dev.Targets.Signed.Delegations, "targets/releases", []string{"*"}, tuftest.NewKey(t))
	f.dev.AddTag("1.0", "m")
	_, err := f.publish(map[string][]byte{metadata.ROOT: f.dev.RootBytes(), metadata.TARGETS: f.dev.TargetsBytes()})
	if codeOf(err) != tufrepo.CodeNotPublished {
		t.Fatalf("unpublished delegation: %v", err)
	}
	if _, err := f.store.GetCurrent(f.ctx, gun, metadata.ROOT); err == nil {
		t.Fatal("a refused publish stored root")
	}
}

func TestRoleNamesAndKeyTypes(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"Root", "SNAPSHOT", "Targets", "timeStamp", "1.x"} {
		if err := tufrepo.ValidateRoleName(name); err == nil {
			t.Errorf("role name %q accepted", name)
		}
	}
	f := newFixture(t, true)
	// An ECDSA P-256 key under the specification's keytype name signs a
	// delegated role: accepted, as go-tuf and the client accept it.
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s, err := signature.LoadSigner(priv, crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := metadata.KeyFromPublicKey(priv.Public())
	if err != nil {
		t.Fatal(err)
	}
	pub.Type = metadata.KeyTypeECDSA_SHA2_P256_COMPAT
	id, err := pub.ID()
	if err != nil {
		t.Fatal(err)
	}
	ek := &tuftest.Key{Signer: s, Public: pub, ID: id}
	delegate(t, &f.dev.Targets.Signed.Delegations, "targets/ci", []string{"*"}, ek)
	ci := metadata.Targets(f.clock.Now().Add(time.Hour))
	payload, err := cjson.EncodeCanonical(ci.Signed)
	if err != nil {
		t.Fatal(err)
	}
	sig, err := s.SignMessage(bytes.NewReader(payload))
	if err != nil {
		t.Fatal(err)
	}
	ci.Signatures = []metadata.Signature{{KeyID: id, Signature: sig}}
	ciBytes, err := ci.ToBytes(false)
	if err != nil {
		t.Fatal(err)
	}
	f.initialWith(map[string][]byte{"targets/ci": ciBytes})

	// RSA below 2048 bits is refused in any role.
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	rk, err := metadata.KeyFromPublicKey(small.Public())
	if err != nil {
		t.Fatal(err)
	}
	f.dev.Bump()
	if err := f.dev.Targets.Signed.AddKey(rk, "targets/ci"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.publish(map[string][]byte{metadata.TARGETS: f.dev.TargetsBytes()}); codeOf(err) != tufrepo.CodeInvalid {
		t.Fatalf("RSA-1024 delegation key: %v", err)
	}
}

// A publish whose request is gone does no further work.
func TestPublishStopsWithItsContext(t *testing.T) {
	t.Parallel()
	f := newFixture(t, true)
	f.initial()
	ctx, cancel := context.WithCancel(f.ctx)
	cancel()
	f.dev.Bump()
	f.dev.AddTag("2.0", "m2")
	if _, err := f.repo.Publish(ctx, gun, map[string][]byte{metadata.TARGETS: f.dev.TargetsBytes()}); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled publish: %v", err)
	}
}
