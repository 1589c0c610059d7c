package client

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"
	"github.com/theupdateframework/go-tuf/v2/metadata/trustedmetadata"

	"github.com/signetdev/signet/internal/tuftest"
)

// TestUpdateDelegatedIsGoTUFs holds updateDelegated to go-tuf's
// trustedmetadata.UpdateDelegatedTargets: on honest and on broken roles
// (wrong key, too few signatures, wrong version, expired, wrong type,
// altered bytes, a role nobody delegates, a delegator not loaded), both
// accept the same metadata or refuse with the same error. With only (a
// resolve's view), the same but for the entries left out.
func TestUpdateDelegatedIsGoTUFs(t *testing.T) {
	now := time.Now()
	exp := now.Add(24 * time.Hour)
	rootKey, targetsKey, online, ciKey, other := tuftest.NewKey(t), tuftest.NewKey(t), tuftest.NewKey(t), tuftest.NewKey(t), tuftest.NewKey(t)
	root := metadata.Root(exp)
	for role, k := range map[string]*tuftest.Key{metadata.ROOT: rootKey, metadata.TARGETS: targetsKey, metadata.SNAPSHOT: online, metadata.TIMESTAMP: online} {
		if err := root.Signed.AddKey(k.Public, role); err != nil {
			t.Fatal(err)
		}
	}
	rootBytes := tuftest.Sign(t, root, rootKey)

	targets := metadata.Targets(exp)
	targets.Signed.Version = 3
	targets.Signed.Targets["1.0"] = tuftest.Target("one")
	targets.Signed.Targets["2.0"] = tuftest.Target("two")
	targets.Signed.Delegations = &metadata.Delegations{Keys: map[string]*metadata.Key{},
		Roles: []metadata.DelegatedRole{{Name: "targets/ci", Threshold: 1, Paths: []string{"*"}}}}
	if err := targets.Signed.AddKey(ciKey.Public, "targets/ci"); err != nil {
		t.Fatal(err)
	}
	ci := metadata.Targets(exp)
	ci.Signed.Version = 2
	ci.Signed.Targets["nightly"] = tuftest.Target("nightly")
	ci.Signed.Targets["weekly"] = tuftest.Target("weekly")

	type tcase struct {
		name, role, parent string
		data               []byte
		listed             []byte // what the snapshot lists for role (nil: data)
		version            int64  // the snapshot's version for role (0: the role's)
	}
	sign := func(m *metadata.Metadata[metadata.TargetsType], keys ...*tuftest.Key) []byte {
		return tuftest.Sign(t, tuftest.Clone(t, m), keys...)
	}
	with := func(edit func(m *metadata.Metadata[metadata.TargetsType])) *metadata.Metadata[metadata.TargetsType] {
		m := tuftest.Clone(t, targets)
		edit(m)
		return m
	}
	good := sign(targets, targetsKey)
	altered := append([]byte{}, good...)
	altered[len(altered)/2] ^= 1
	cases := []tcase{
		{name: "honest targets", role: metadata.TARGETS, parent: metadata.ROOT, data: good},
		{name: "wrong key", role: metadata.TARGETS, parent: metadata.ROOT, data: sign(targets, other)},
		{name: "unsigned", role: metadata.TARGETS, parent: metadata.ROOT, data: sign(targets)},
		{name: "version below the snapshot's", role: metadata.TARGETS, parent: metadata.ROOT, data: good, version: 4},
		{name: "expired", role: metadata.TARGETS, parent: metadata.ROOT, data: sign(with(func(m *metadata.Metadata[metadata.TargetsType]) { m.Signed.Expires = now.Add(-time.Hour) }), targetsKey)},
		{name: "wrong type", role: metadata.TARGETS, parent: metadata.ROOT, data: sign(with(func(m *metadata.Metadata[metadata.TargetsType]) { m.Signed.Type = metadata.SNAPSHOT }), targetsKey)},
		{name: "altered bytes", role: metadata.TARGETS, parent: metadata.ROOT, data: altered, listed: good},
		{name: "not JSON", role: metadata.TARGETS, parent: metadata.ROOT, data: []byte("{")},
		{name: "honest delegated role", role: "targets/ci", parent: metadata.TARGETS, data: sign(ci, ciKey)},
		{name: "delegated role, wrong key", role: "targets/ci", parent: metadata.TARGETS, data: sign(ci, targetsKey)},
		{name: "role nobody delegates", role: "targets/qa", parent: metadata.TARGETS, data: sign(ci, ciKey)},
		{name: "delegator not loaded", role: "targets/ci", parent: "targets/other", data: sign(ci, ciKey)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			listed := tc.listed
			if listed == nil {
				listed = tc.data
			}
			version := tc.version
			if version == 0 {
				var probe struct {
					Signed struct{ Version int64 } `json:"signed"`
				}
				_ = json.Unmarshal(listed, &probe)
				version = probe.Signed.Version
			}
			trusted := func() *trustedmetadata.TrustedMetadata {
				tm, err := trustedmetadata.New(rootBytes)
				if err != nil {
					t.Fatal(err)
				}
				tm.RefTime = now
				snap := metadata.Snapshot(exp)
				sum := sha256.Sum256(listed)
				snap.Signed.Meta[tc.role+".json"] = &metadata.MetaFiles{Version: version, Length: int64(len(listed)), Hashes: metadata.Hashes{"sha256": sum[:]}}
				snap.Signed.Meta["targets.json"] = &metadata.MetaFiles{Version: targets.Signed.Version}
				if tc.role == metadata.TARGETS {
					snap.Signed.Meta["targets.json"] = snap.Signed.Meta[tc.role+".json"]
				}
				ts := metadata.Timestamp(exp)
				ts.Signed.Meta["snapshot.json"] = &metadata.MetaFiles{Version: snap.Signed.Version}
				if _, err := tm.UpdateTimestamp(tuftest.Sign(t, ts, online)); err != nil {
					t.Fatal(err)
				}
				if _, err := tm.UpdateSnapshot(tuftest.Sign(t, snap, online), false); err != nil {
					t.Fatal(err)
				}
				if tc.parent == metadata.TARGETS {
					tm.Targets[metadata.TARGETS] = tuftest.Clone(t, targets)
				}
				return tm
			}
			a, b, c := trusted(), trusted(), trusted()
			want, wantErr := a.UpdateDelegatedTargets(tc.data, tc.role, tc.parent)
			got, gotErr := updateDelegated(b, tc.data, tc.role, tc.parent, nil)
			only := []string{"1.0", "nightly", "absent"}
			gotOnly, gotOnlyErr := updateDelegated(c, tc.data, tc.role, tc.parent, only)
			if fmt.Sprint(gotErr) != fmt.Sprint(wantErr) || fmt.Sprint(gotOnlyErr) != fmt.Sprint(wantErr) {
				t.Fatalf("error %v (only %v), go-tuf's %v", gotErr, gotOnlyErr, wantErr)
			}
			if wantErr != nil {
				return
			}
			w, _ := json.Marshal(want)
			g, _ := json.Marshal(got)
			if string(g) != string(w) || b.Targets[tc.role] != got {
				t.Fatalf("loaded %s, go-tuf %s", g, w)
			}
			if len(want.Signed.Targets) != 2 {
				t.Fatalf("go-tuf loaded %d entries: the case shows nothing of only", len(want.Signed.Targets))
			}
			maps.DeleteFunc(want.Signed.Targets, func(name string, _ *metadata.TargetFiles) bool { return !slices.Contains(only, name) })
			w, _ = json.Marshal(want)
			g, _ = json.Marshal(gotOnly)
			if string(g) != string(w) || c.Targets[tc.role] != gotOnly {
				t.Fatalf("loaded for %q %s, go-tuf %s", only, g, w)
			}
		})
	}
}
