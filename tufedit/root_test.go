package tufedit_test

import (
	"context"
	"crypto"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/signetdev/signet/tufedit"
	"github.com/signetdev/signet/tufrules"
)

// keyring is an in-memory key maker: the signers of the keys it made, by
// key ID, and the roles it made them for.
type keyring struct {
	t       *testing.T
	signers map[string]signature.Signer
	roles   []string
}

func newKeyring(t *testing.T) *keyring {
	return &keyring{t: t, signers: map[string]signature.Signer{}}
}

func (kr *keyring) gen(_ context.Context, role string) (*metadata.Key, error) {
	k, _ := kr.make()
	kr.roles = append(kr.roles, role)
	return k, nil
}

// make returns a new key and its signer.
func (kr *keyring) make() (*metadata.Key, signature.Signer) {
	kr.t.Helper()
	priv, pub, id, err := tufrules.GenerateKey(tufrules.Ed25519)
	if err != nil {
		kr.t.Fatal(err)
	}
	s, err := signature.LoadSigner(priv, crypto.Hash(0))
	if err != nil {
		kr.t.Fatal(err)
	}
	kr.signers[id] = s
	return pub, s
}

// serverKeys are stand-ins for the server's timestamp and snapshot keys.
func serverKeys(kr *keyring) (ts, snap *metadata.Key) {
	ts, _ = kr.make()
	snap, _ = kr.make()
	return ts, snap
}

func rootOf(t *testing.T, data []byte) *metadata.Metadata[metadata.RootType] {
	t.Helper()
	m, err := metadata.Root().FromBytes(data)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestNewRootChecksThePlanFirst: a plan that cannot make a valid root is
// refused before any key is made (no stray key files on the ceremony
// machine).
func TestNewRootChecksThePlanFirst(t *testing.T) {
	t.Parallel()
	kr := newKeyring(t)
	ts, snap := serverKeys(kr)
	exp := time.Now().Add(time.Hour)
	for name, tc := range map[string]struct {
		plan tufedit.RootPlan
		want string
	}{
		"no keys":          {tufedit.RootPlan{Keys: 0, Threshold: 1, Timestamp: ts, Snapshot: snap, Expires: exp}, "1 ≤ threshold"},
		"threshold 0":      {tufedit.RootPlan{Keys: 2, Threshold: 0, Timestamp: ts, Snapshot: snap, Expires: exp}, "1 ≤ threshold"},
		"threshold above":  {tufedit.RootPlan{Keys: 2, Threshold: 3, Timestamp: ts, Snapshot: snap, Expires: exp}, "1 ≤ threshold (3) ≤ keys (2)"},
		"no timestamp key": {tufedit.RootPlan{Keys: 1, Threshold: 1, Snapshot: snap, Expires: exp}, "timestamp and snapshot keys"},
		"no snapshot key":  {tufedit.RootPlan{Keys: 1, Threshold: 1, Timestamp: ts, Expires: exp}, "timestamp and snapshot keys"},
		"no expiry":        {tufedit.RootPlan{Keys: 1, Threshold: 1, Timestamp: ts, Snapshot: snap}, "needs an expiry"},
	} {
		made := 0
		_, err := tufedit.NewRoot(context.Background(), tc.plan, func(ctx context.Context, role string) (*metadata.Key, error) {
			made++
			return kr.gen(ctx, role)
		})
		if err == nil || !strings.HasPrefix(err.Error(), "tufedit: ") || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one with %q", name, err, tc.want)
		}
		if made != 0 {
			t.Errorf("%s: %d keys made before the plan was refused", name, made)
		}
	}
}

func TestNewRoot(t *testing.T) {
	t.Parallel()
	kr := newKeyring(t)
	ts, snap := serverKeys(kr)
	exp := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	data, err := tufedit.NewRoot(context.Background(), tufedit.RootPlan{Keys: 3, Threshold: 2, Timestamp: ts, Snapshot: snap, Expires: exp}, kr.gen)
	if err != nil {
		t.Fatal(err)
	}
	m := rootOf(t, data)
	if want := []string{metadata.ROOT, metadata.ROOT, metadata.ROOT, metadata.TARGETS}; !slices.Equal(kr.roles, want) {
		t.Errorf("made keys for %v, want %v (a targets key when the plan names none)", kr.roles, want)
	}
	if r := m.Signed.Roles[metadata.ROOT]; len(r.KeyIDs) != 3 || r.Threshold != 2 {
		t.Errorf("root role %+v, want 3 keys, threshold 2", r)
	}
	if r := m.Signed.Roles[metadata.TARGETS]; len(r.KeyIDs) != 1 || r.Threshold != 1 {
		t.Errorf("targets role %+v, want 1 key, threshold 1", r)
	}
	for role, k := range map[string]*metadata.Key{metadata.TIMESTAMP: ts, metadata.SNAPSHOT: snap} {
		id, _ := k.ID()
		if r := m.Signed.Roles[role]; !slices.Equal(r.KeyIDs, []string{id}) {
			t.Errorf("%s keys %v, want the server's %s", role, r.KeyIDs, id)
		}
	}
	if !m.Signed.ConsistentSnapshot || !m.Signed.Expires.Equal(exp) || m.Signed.Version != 1 || len(m.Signatures) != 0 {
		t.Errorf("root v%d, consistent %v, expires %v, %d signatures; want an unsigned v1 with consistent snapshots expiring %v",
			m.Signed.Version, m.Signed.ConsistentSnapshot, m.Signed.Expires, len(m.Signatures), exp)
	}

	// Given targets keys: none is made; their threshold must fit them.
	kr2 := newKeyring(t)
	a, _ := kr2.make()
	b, _ := kr2.make()
	plan := tufedit.RootPlan{Keys: 1, Threshold: 1, TargetsKeys: []*metadata.Key{a, b}, TargetsThreshold: 2, Timestamp: ts, Snapshot: snap, Expires: exp}
	data, err = tufedit.NewRoot(context.Background(), plan, kr2.gen)
	if err != nil {
		t.Fatal(err)
	}
	if r := rootOf(t, data).Signed.Roles[metadata.TARGETS]; len(r.KeyIDs) != 2 || r.Threshold != 2 || !slices.Equal(kr2.roles, []string{metadata.ROOT}) {
		t.Errorf("targets role %+v after making %v, want the 2 given keys, threshold 2, and only a root key made", r, kr2.roles)
	}
	plan.TargetsThreshold = 3
	if _, err := tufedit.NewRoot(context.Background(), plan, kr2.gen); err == nil || !strings.Contains(err.Error(), "targets threshold 3 is above its 2 key(s)") {
		t.Errorf("targets threshold 3 of 2 keys: %v", err)
	}
}

// TestSignAndVerifyRoot: only root keys sign; a key signs once; the report
// says per key who signed and whether the threshold is met.
func TestSignAndVerifyRoot(t *testing.T) {
	t.Parallel()
	kr := newKeyring(t)
	ts, snap := serverKeys(kr)
	unsigned, err := tufedit.NewRoot(context.Background(), tufedit.RootPlan{Keys: 3, Threshold: 2, Timestamp: ts, Snapshot: snap, Expires: time.Now().Add(time.Hour)}, kr.gen)
	if err != nil {
		t.Fatal(err)
	}
	m := rootOf(t, unsigned)
	ids := m.Signed.Roles[metadata.ROOT].KeyIDs
	targetsID := m.Signed.Roles[metadata.TARGETS].KeyIDs[0]

	if _, err := tufedit.SignRoot(unsigned, kr.signers[targetsID]); !errors.Is(err, tufedit.ErrNotRootKey) {
		t.Errorf("signed by the targets key: %v, want ErrNotRootKey", err)
	}
	targetsKey := m.Signed.Keys[targetsID]
	if _, err := tufedit.CheckRootKey(unsigned, targetsKey); !errors.Is(err, tufedit.ErrNotRootKey) || !strings.Contains(err.Error(), targetsID) {
		t.Errorf("CheckRootKey of the targets key: %v, want ErrNotRootKey naming it", err)
	}
	if id, err := tufedit.CheckRootKey(unsigned, m.Signed.Keys[ids[1]]); err != nil || id != ids[1] {
		t.Errorf("CheckRootKey of root key %s: %s, %v", ids[1], id, err)
	}

	one, err := tufedit.SignRoot(unsigned, kr.signers[ids[0]])
	if err != nil {
		t.Fatal(err)
	}
	if again, err := tufedit.SignRoot(one, kr.signers[ids[0]]); err != nil || len(rootOf(t, again).Signatures) != 1 {
		t.Errorf("signing twice with one key: %v, want one signature", err)
	}
	rep, err := tufedit.VerifyRoot(one, nil)
	if err != nil {
		t.Fatal(err)
	}
	if rep.SelfOK || rep.Threshold != 2 || rep.Version != 1 || len(rep.Errors) != 1 {
		t.Errorf("1 of 3 signed: %+v, want threshold 2 not met and its error", rep)
	}
	for _, k := range rep.Keys {
		if k.Signed != (k.ID == ids[0]) {
			t.Errorf("key %s signed: %v", k.ID, k.Signed)
		}
	}
	two, err := tufedit.SignRoot(one, kr.signers[ids[2]])
	if err != nil {
		t.Fatal(err)
	}
	if rep, err := tufedit.VerifyRoot(two, nil); err != nil || !rep.SelfOK || len(rep.Errors) != 0 {
		t.Errorf("2 of 3 signed: %+v, %v", rep, err)
	}
	if _, err := tufedit.VerifyRoot([]byte(`{"signed":{}}`), nil); err == nil {
		t.Error("VerifyRoot accepted a root that does not parse")
	}
}

// TestNextRoot: a rotation bumps the version, drops the old signatures and
// applies the change; it needs both thresholds: the previous root's keys
// (removed ones included) may sign it.
func TestNextRoot(t *testing.T) {
	t.Parallel()
	kr := newKeyring(t)
	ts, snap := serverKeys(kr)
	unsigned, err := tufedit.NewRoot(context.Background(), tufedit.RootPlan{Keys: 2, Threshold: 1, Timestamp: ts, Snapshot: snap, Expires: time.Now().Add(time.Hour)}, kr.gen)
	if err != nil {
		t.Fatal(err)
	}
	ids := rootOf(t, unsigned).Signed.Roles[metadata.ROOT].KeyIDs
	v1, err := tufedit.SignRoot(unsigned, kr.signers[ids[0]])
	if err != nil {
		t.Fatal(err)
	}

	if _, err := tufedit.NextRoot(v1, tufedit.RootChange{}); err == nil || !strings.Contains(err.Error(), "needs an expiry") {
		t.Errorf("next root without expiry: %v", err)
	}
	exp := time.Now().Add(48 * time.Hour).UTC().Truncate(time.Second)
	added, _ := kr.make()
	addedID, _ := added.ID()
	newTS, _ := kr.make()
	newTSID, _ := newTS.ID()
	next, err := tufedit.NextRoot(v1, tufedit.RootChange{AddKeys: []*metadata.Key{added}, RemoveKeys: []string{ids[0]}, Threshold: 2, Expires: exp,
		Replace: map[string][]*metadata.Key{metadata.TIMESTAMP: {newTS}}})
	if err != nil {
		t.Fatal(err)
	}
	m := rootOf(t, next)
	if m.Signed.Version != 2 || len(m.Signatures) != 0 || !m.Signed.Expires.Equal(exp) {
		t.Errorf("next root v%d, %d signatures, expires %v; want unsigned v2 expiring %v", m.Signed.Version, len(m.Signatures), m.Signed.Expires, exp)
	}
	if r := m.Signed.Roles[metadata.ROOT]; !slices.Equal(sorted(r.KeyIDs...), sorted(ids[1], addedID)) || r.Threshold != 2 {
		t.Errorf("root role %+v, want keys %v, threshold 2", r, sorted(ids[1], addedID))
	}
	if r := m.Signed.Roles[metadata.TIMESTAMP]; !slices.Equal(r.KeyIDs, []string{newTSID}) || r.Threshold != 1 {
		t.Errorf("timestamp role %+v, want only the new key", r)
	}

	// The removed key still counts for the old threshold.
	signed, err := tufedit.SignRoot(next, kr.signers[ids[0]], v1)
	if err != nil {
		t.Fatalf("the old root's removed key signs the rotation: %v", err)
	}
	if _, err := tufedit.SignRoot(next, kr.signers[ids[0]]); !errors.Is(err, tufedit.ErrNotRootKey) {
		t.Errorf("removed key without the previous root: %v, want ErrNotRootKey", err)
	}
	for _, id := range []string{ids[1], addedID} {
		if signed, err = tufedit.SignRoot(signed, kr.signers[id], v1); err != nil {
			t.Fatal(err)
		}
	}
	rep, err := tufedit.VerifyRoot(signed, v1)
	if err != nil || !rep.SelfOK || !rep.PreviousOK || len(rep.Errors) != 0 {
		t.Errorf("rotation signed to both thresholds: %+v, %v", rep, err)
	}
	other, err := tufedit.NewRoot(context.Background(), tufedit.RootPlan{Keys: 1, Threshold: 1, Timestamp: ts, Snapshot: snap, Expires: exp}, newKeyring(t).gen)
	if err != nil {
		t.Fatal(err)
	}
	if rep, _ := tufedit.VerifyRoot(signed, other); rep == nil || rep.PreviousOK || !rep.SelfOK {
		t.Errorf("rotation checked against a root of other keys: %+v, want its own threshold met and the previous one not", rep)
	}

	for name, ch := range map[string]tufedit.RootChange{
		"threshold above keys": {Threshold: 3},
		"remove unknown key":   {RemoveKeys: []string{"abc"}},
		"replace root":         {Replace: map[string][]*metadata.Key{metadata.ROOT: {added}}},
		"replace with nothing": {Replace: map[string][]*metadata.Key{metadata.TARGETS: nil}},
	} {
		ch.Expires = exp
		if _, err := tufedit.NextRoot(v1, ch); err == nil || !strings.HasPrefix(err.Error(), "tufedit: ") {
			t.Errorf("%s: %v, want a tufedit error", name, err)
		}
	}
	skip, err := tufedit.NextRoot(signed, tufedit.RootChange{Expires: exp})
	if err != nil {
		t.Fatal(err)
	}
	if rep, _ := tufedit.VerifyRoot(skip, v1); rep == nil || !slices.ContainsFunc(rep.Errors, func(e string) bool { return strings.Contains(e, "version 3 does not follow 1") }) {
		t.Errorf("v3 against v1: %+v, want the version step reported", rep)
	}
}

func sorted(ids ...string) []string {
	ids = slices.Clone(ids)
	slices.Sort(ids)
	return ids
}
