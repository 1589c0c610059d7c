package client_test

import (
	"context"
	"errors"
	"net/http"
	"path/filepath"
	"testing"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/signetdev/signet/client"
	"github.com/signetdev/signet/tufedit"
)

// TestRootCeremony: a 2-of-3 root made offline, published later, resolved
// by a client pinned to it; a root signed by 1 of 3 is refused; a rotation
// that removes a key and raises the threshold is accepted only with both
// thresholds, an old client follows it, and one signed only by new keys is
// refused.
func TestRootCeremony(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := newServer(t, nil)
	online := newClient(t, url, t.TempDir())
	ts, err := online.ServerKey(ctx, gun, metadata.TIMESTAMP) // signet key fetch
	if err != nil {
		t.Fatal(err)
	}
	snap, err := online.ServerKey(ctx, gun, metadata.SNAPSHOT)
	if err != nil {
		t.Fatal(err)
	}
	targetsKey, err := online.Keys().Generate(ctx, metadata.TARGETS)
	if err != nil {
		t.Fatal(err)
	}

	// Offline: no server reachable from the ceremony machine.
	ceremonyDir := t.TempDir()
	ceremony := newClient(t, "http://127.0.0.1:1", ceremonyDir)
	unsigned, err := tufedit.NewRoot(ctx, tufedit.RootPlan{Keys: 3, Threshold: 2, TargetsKeys: []*metadata.Key{targetsKey.Public}, Timestamp: ts, Snapshot: snap, Expires: ceremony.Now().Add(client.RootLifetime)}, client.KeyGen(ceremony.Keys()))
	if err != nil {
		t.Fatal(err)
	}
	keys, _ := ceremony.Keys().List(ctx)
	var rootKeys []string
	for _, k := range keys {
		if k.Role == metadata.ROOT {
			rootKeys = append(rootKeys, filepath.Join(ceremonyDir, "private", k.ID+".key"))
		}
	}
	if len(rootKeys) != 3 {
		t.Fatalf("%d root key files", len(rootKeys))
	}
	sign := func(root []byte, files ...string) []byte {
		t.Helper()
		for _, f := range files {
			var err error
			if root, err = signRootFile(root, f); err != nil {
				t.Fatal(err)
			}
		}
		return root
	}
	oneOfThree := sign(unsigned, rootKeys[0])
	if rep, _ := tufedit.VerifyRoot(oneOfThree, nil); rep.SelfOK || !rep.Keys[0].Signed && !rep.Keys[1].Signed && !rep.Keys[2].Signed {
		t.Fatalf("1 of 3: %+v", rep)
	}
	var se *client.ServerError
	if err := online.RootPublish(ctx, gun, oneOfThree); !errors.As(err, &se) || se.Status != http.StatusBadRequest || se.Code != "INVALID_SIGNATURE" {
		t.Fatalf("publish of a root signed by 1 of 3: %v", err)
	}
	v1 := sign(unsigned, rootKeys[0], rootKeys[1])
	if rep, _ := tufedit.VerifyRoot(v1, nil); !rep.SelfOK {
		t.Fatalf("2 of 3: %+v", rep)
	}

	// Online: publish, sign a tag, resolve from a client pinned to the root.
	if err := online.RootPublish(ctx, gun, v1); err != nil {
		t.Fatal(err)
	}
	if _, err := online.Publish(ctx, gun, []client.Change{{Tag: "1.0", Digest: d10, Size: 1}}); err != nil {
		t.Fatal(err)
	}
	engine := newClient(t, url, t.TempDir())
	if err := engine.PinRoot(gun, v1); err != nil {
		t.Fatal(err)
	}
	if got, err := engine.Resolve(ctx, gun+":1.0"); err != nil || got.Digest != d10 {
		t.Fatalf("resolve: %v %v", got, err)
	}

	// Rotation: replace key 3 by a new key 4 and raise the threshold to 3.
	k4, err := ceremony.Keys().Generate(ctx, metadata.ROOT)
	if err != nil {
		t.Fatal(err)
	}
	key4 := filepath.Join(ceremonyDir, "private", k4.ID+".key")
	m1, _ := metadata.Root().FromBytes(v1)
	removed := m1.Signed.Roles[metadata.ROOT].KeyIDs[2]
	var removedFile string
	for _, f := range rootKeys {
		if filepath.Base(f) == removed+".key" {
			removedFile = f
		}
	}
	var kept []string
	for _, f := range rootKeys {
		if f != removedFile {
			kept = append(kept, f)
		}
	}
	next, err := tufedit.NextRoot(v1, tufedit.RootChange{AddKeys: []*metadata.Key{k4.Public}, RemoveKeys: []string{removed}, Threshold: 3, Expires: ceremony.Now().Add(client.RootLifetime)})
	if err != nil {
		t.Fatal(err)
	}
	onlyOld := sign(next, kept...) // old threshold met, new one (3) not
	if rep, _ := tufedit.VerifyRoot(onlyOld, v1); rep.SelfOK || !rep.PreviousOK {
		t.Fatalf("old keys only: %+v", rep)
	}
	if err := online.RootPublish(ctx, gun, onlyOld); err == nil {
		t.Fatal("a rotation without the new threshold was accepted")
	}
	// Only new keys: a root of two fresh keys signed by them.
	n1, _ := ceremony.Keys().Generate(ctx, metadata.ROOT)
	n2, _ := ceremony.Keys().Generate(ctx, metadata.ROOT)
	fresh, err := tufedit.NextRoot(v1, tufedit.RootChange{AddKeys: []*metadata.Key{n1.Public, n2.Public}, RemoveKeys: m1.Signed.Roles[metadata.ROOT].KeyIDs, Threshold: 2, Expires: ceremony.Now().Add(client.RootLifetime)})
	if err != nil {
		t.Fatal(err)
	}
	freshSigned := sign(fresh, filepath.Join(ceremonyDir, "private", n1.ID+".key"), filepath.Join(ceremonyDir, "private", n2.ID+".key"))
	if err := online.RootPublish(ctx, gun, freshSigned); err == nil {
		t.Fatal("a rotation signed only by new keys was accepted")
	}
	v2 := sign(next, append(kept, key4)...)
	if rep, _ := tufedit.VerifyRoot(v2, v1); !rep.SelfOK || !rep.PreviousOK {
		t.Fatalf("both thresholds: %+v", rep)
	}
	if err := online.RootPublish(ctx, gun, v2); err != nil {
		t.Fatalf("rotation with both thresholds: %v", err)
	}
	// The old client follows the chain to root v2.
	tm, err := engine.Update(ctx, gun)
	if err != nil || tm.Root.Signed.Version != 2 {
		t.Fatalf("old client after rotation: %v", err)
	}
	if _, err := engine.Resolve(ctx, gun+":1.0"); err != nil {
		t.Fatal(err)
	}
	st, err := online.Status(ctx, gun)
	if err != nil || len(st) < 4 {
		t.Fatalf("status: %v %v", st, err)
	}
	for _, r := range st {
		if r.Soon {
			t.Errorf("%s expires soon: %v", r.Role, r.Expires)
		}
	}
}

// TestTargetsThresholdTwo: a root made offline names two targets keys with
// threshold 2. The first publish is signed by both; afterwards each holder
// signs from their own trust directory: one signature stages the change
// (clients do not see the tag), the second publishes it.
func TestTargetsThresholdTwo(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := newServer(t, nil)
	online := newClient(t, url, t.TempDir())
	ts, err := online.ServerKey(ctx, gun, metadata.TIMESTAMP)
	if err != nil {
		t.Fatal(err)
	}
	snap, err := online.ServerKey(ctx, gun, metadata.SNAPSHOT)
	if err != nil {
		t.Fatal(err)
	}
	var holders []*client.Client
	var pubs []*metadata.Key
	for range 2 {
		h := newClient(t, url, t.TempDir())
		k, err := h.Keys().Generate(ctx, metadata.TARGETS)
		if err != nil {
			t.Fatal(err)
		}
		pem, err := h.Keys().Export(ctx, k.ID)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := online.Keys().Import(ctx, metadata.TARGETS, pem); err != nil {
			t.Fatal(err)
		}
		holders, pubs = append(holders, h), append(pubs, k.Public)
	}
	dir := t.TempDir()
	ceremony := newClient(t, "http://127.0.0.1:1", dir)
	unsigned, err := tufedit.NewRoot(ctx, tufedit.RootPlan{Keys: 1, Threshold: 1, TargetsKeys: pubs, TargetsThreshold: 2, Timestamp: ts, Snapshot: snap, Expires: ceremony.Now().Add(client.RootLifetime)}, client.KeyGen(ceremony.Keys()))
	if err != nil {
		t.Fatal(err)
	}
	keys, _ := ceremony.Keys().List(ctx)
	root, err := signRootFile(unsigned, filepath.Join(dir, "private", keys[0].ID+".key"))
	if err != nil {
		t.Fatal(err)
	}
	if err := online.RootPublish(ctx, gun, root); err != nil { // holds both targets keys
		t.Fatal(err)
	}
	for _, h := range append(holders, online) {
		if err := h.PinRoot(gun, root); err != nil {
			t.Fatal(err)
		}
	}
	engine := newDelegate(t, url, root).c

	out, err := holders[0].Publish(ctx, gun, []client.Change{{Tag: "1.0", Digest: d10, Size: 1}})
	if err != nil {
		t.Fatal(err)
	}
	if out.Staged == nil || out.Staged.Pending()[metadata.TARGETS] != 1 {
		t.Fatalf("one of two targets signatures: %+v", out)
	}
	if _, err := engine.Resolve(ctx, gun+":1.0"); !errors.Is(err, client.ErrNotSigned) {
		t.Fatalf("staged tag resolves: %v", err)
	}
	rv, err := holders[1].ReviewStaged(ctx, gun, out.Staged.ID)
	if err != nil {
		t.Fatal(err)
	}
	if done, err := holders[1].Approve(ctx, gun, rv); err != nil || done.Published[metadata.TARGETS] != 2 {
		t.Fatalf("second signature: %+v, %v", done, err)
	}
	if got, err := engine.Resolve(ctx, gun+":1.0"); err != nil || got.Digest != d10 || got.Role != metadata.TARGETS {
		t.Fatalf("resolve after approval: %+v, %v", got, err)
	}
}

// signRootFile adds the signature of the root key in file, as signet root
// sign --key FILE does.
func signRootFile(root []byte, file string, previous ...[]byte) ([]byte, error) {
	s, err := client.OpenKeyFile(file, []byte("test passphrase"))
	if err != nil {
		return nil, err
	}
	return tufedit.SignRoot(root, s, previous...)
}
