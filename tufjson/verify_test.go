package tufjson_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	crand "crypto/rand"
	"crypto/rsa"
	"fmt"
	"math/rand/v2"
	"reflect"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/signetdev/signet/internal/tuftest"
	"github.com/signetdev/signet/tufjson"
)

// testKey is a signing key with one or more key IDs naming it.
type testKey struct {
	signer signature.Signer
	pub    *metadata.Key
	ids    []string
}

func keyOf(t *testing.T, s signature.Signer) *testKey {
	t.Helper()
	pub, err := s.PublicKey()
	if err != nil {
		t.Fatal(err)
	}
	k, err := metadata.KeyFromPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	id, err := k.ID()
	if err != nil {
		t.Fatal(err)
	}
	return &testKey{signer: s, pub: k, ids: []string{id, "alias-" + id[:8]}}
}

func testKeys(t *testing.T) []*testKey {
	t.Helper()
	var out []*testKey
	for range 2 {
		k := tuftest.NewKey(t)
		out = append(out, keyOf(t, k.Signer))
	}
	ec, err := ecdsa.GenerateKey(elliptic.P256(), crand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	es, err := signature.LoadECDSASignerVerifier(ec, crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	out = append(out, keyOf(t, es))
	rk, err := rsa.GenerateKey(crand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	rs, err := signature.LoadRSAPSSSignerVerifier(rk, crypto.SHA256, &rsa.PSSOptions{Hash: crypto.SHA256})
	if err != nil {
		t.Fatal(err)
	}
	out = append(out, keyOf(t, rs))
	return out
}

// TestVerifyDelegateMatchesGoTUF draws delegations (thresholds, key IDs
// defined or not, one key under two IDs, bins, missing roles) and
// signatures (good, corrupted, by keys of no role, under an alias) and
// holds VerifyDelegate to go-tuf's verdict and error on each.
func TestVerifyDelegateMatchesGoTUF(t *testing.T) {
	t.Parallel()
	keys := testKeys(t)
	rng := rand.New(rand.NewPCG(1, 2))
	pick := func() (*testKey, string) {
		k := keys[rng.IntN(len(keys))]
		return k, k.ids[rng.IntN(len(k.ids))]
	}
	const role = "releases"
	accepted, refused := 0, 0
	for trial := range 400 {
		m := metadata.Targets(time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC))
		m.Signed.Version = int64(trial + 1)
		m.Signed.Targets["v1"] = tuftest.Target("v1")

		// The delegation: some key IDs, most of them defined.
		defined := map[string]*metadata.Key{}
		var ids []string
		owner := map[string]*testKey{}
		for range 1 + rng.IntN(4) {
			k, id := pick()
			if slices.Contains(ids, id) {
				continue
			}
			ids = append(ids, id)
			owner[id] = k
			if rng.IntN(8) > 0 {
				defined[id] = k.pub
			}
		}
		threshold := rng.IntN(3)

		// The signatures, over go-tuf's canonical form.
		var sigs []metadata.Signature
		for range rng.IntN(5) {
			k, id := pick()
			if rng.IntN(4) > 0 { // mostly keys the delegation names
				id = ids[rng.IntN(len(ids))]
				k = owner[id]
			}
			if slices.ContainsFunc(sigs, func(s metadata.Signature) bool { return s.KeyID == id }) {
				continue
			}
			m.Signatures = nil
			if _, err := m.Sign(k.signer); err != nil {
				t.Fatal(err)
			}
			sig := m.Signatures[0]
			sig.KeyID = id
			if rng.IntN(5) == 0 {
				sig.Signature = slices.Clone(sig.Signature)
				sig.Signature[rng.IntN(len(sig.Signature))] ^= 1
			}
			sigs = append(sigs, sig)
		}
		m.Signatures = sigs
		data, err := m.ToBytes(false)
		if err != nil {
			t.Fatal(err)
		}
		decoded, err := tufjson.DecodeTargets(data)
		if err != nil {
			t.Fatal(err)
		}
		goTUF, err := metadata.Targets().FromBytes(data)
		if err != nil {
			t.Fatal(err)
		}

		delegators := map[string]any{}
		root := metadata.Root(time.Now().Add(time.Hour))
		root.Signed.Keys = defined
		root.Signed.Roles[role] = &metadata.Role{KeyIDs: ids, Threshold: threshold}
		delegators["root"] = root
		named := metadata.Targets(time.Now().Add(time.Hour))
		named.Signed.Delegations = &metadata.Delegations{Keys: defined, Roles: []metadata.DelegatedRole{
			{Name: "other", KeyIDs: []string{"x"}, Threshold: 1, Paths: []string{"*"}},
			{Name: role, KeyIDs: ids, Threshold: threshold, Paths: []string{"*"}},
		}}
		delegators["targets, named"] = named
		bins := metadata.Targets(time.Now().Add(time.Hour))
		bins.Signed.Delegations = &metadata.Delegations{Keys: defined, SuccinctRoles: &metadata.SuccinctRoles{KeyIDs: ids, Threshold: threshold, BitLength: 1, NamePrefix: "bin"}}
		delegators["targets, bins"] = bins
		elsewhere := metadata.Targets(time.Now().Add(time.Hour))
		elsewhere.Signed.Delegations = &metadata.Delegations{Keys: defined, Roles: []metadata.DelegatedRole{}}
		delegators["targets, no such role"] = elsewhere
		delegators["targets, no delegations"] = metadata.Targets(time.Now().Add(time.Hour))

		for name, d := range delegators {
			var want error
			switch d := d.(type) {
			case *metadata.Metadata[metadata.RootType]:
				want = d.VerifyDelegate(role, goTUF)
			case *metadata.Metadata[metadata.TargetsType]:
				want = d.VerifyDelegate(role, goTUF)
			}
			got := tufjson.VerifyDelegate(d, role, decoded)
			if fmt.Sprint(got) != fmt.Sprint(want) || reflect.TypeOf(got) != reflect.TypeOf(want) {
				t.Fatalf("trial %d, %s: VerifyDelegate says %v (%T), go-tuf %v (%T)", trial, name, got, got, want, want)
			}
			if got == nil {
				accepted++
			} else {
				refused++
			}
		}
	}
	// Both verdicts must have been drawn often, or the test shows little.
	t.Logf("%d accepted, %d refused", accepted, refused)
	if accepted < 100 || refused < 100 {
		t.Fatalf("%d accepted, %d refused: draw more varied cases", accepted, refused)
	}
}

// TestVerifyDelegateDoesNotCopyThePayload: checking an Ed25519 signature
// over a large role allocates far less than the role (sigstore's verifier
// copies the whole payload first; VerifyDelegate runs ed25519.Verify on
// it). Not parallel: it reads the process's allocation count.
func TestVerifyDelegateDoesNotCopyThePayload(t *testing.T) {
	k := tuftest.NewKey(t)
	m := metadata.Targets(time.Now().Add(time.Hour))
	for i := range 5_000 {
		m.Signed.Targets[fmt.Sprintf("tag-%d", i)] = tuftest.Target(fmt.Sprint("manifest ", i))
	}
	decoded, err := tufjson.DecodeTargets(tuftest.Sign(t, m, k))
	if err != nil {
		t.Fatal(err)
	}
	payload, err := decoded.Canonical()
	if err != nil {
		t.Fatal(err)
	}
	root := metadata.Root(time.Now().Add(time.Hour))
	if err := root.Signed.AddKey(k.Public, metadata.TARGETS); err != nil {
		t.Fatal(err)
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	err = tufjson.VerifyDelegate(root, metadata.TARGETS, decoded)
	runtime.ReadMemStats(&after)
	if err != nil {
		t.Fatal(err)
	}
	if n := after.TotalAlloc - before.TotalAlloc; n > uint64(len(payload))/4 {
		t.Fatalf("VerifyDelegate allocated %d bytes for a %d-byte payload", n, len(payload))
	}
}
