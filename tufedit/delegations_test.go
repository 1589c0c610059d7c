package tufedit

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// dgSigner generates a private key of kind "ed25519", "p256", "p384",
// "rsa2048" or "rsa1024".
func dgSigner(t *testing.T, kind string) crypto.Signer {
	t.Helper()
	var (
		s   crypto.Signer
		err error
	)
	switch kind {
	case "ed25519":
		_, s, err = ed25519.GenerateKey(rand.Reader)
	case "p256":
		s, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case "p384":
		s, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	case "rsa2048":
		s, err = rsa.GenerateKey(rand.Reader, 2048)
	case "rsa1024":
		s, err = rsa.GenerateKey(rand.Reader, 1024)
	default:
		t.Fatalf("unknown key kind %s", kind)
	}
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// dgKey returns a fresh TUF public key (ed25519 or "p256").
func dgKey(t *testing.T, kind string) *metadata.Key {
	t.Helper()
	k, err := metadata.KeyFromPublicKey(dgSigner(t, kind).Public())
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func dgID(t *testing.T, k *metadata.Key) string {
	t.Helper()
	id, err := k.ID()
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func dgPKIXPEM(t *testing.T, pub crypto.PublicKey) []byte {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

func dgCertPEM(t *testing.T, s crypto.Signer) []byte {
	t.Helper()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "alice"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, s.Public(), s)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

func dgJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestParsePublicKey(t *testing.T) {
	ed := dgSigner(t, "ed25519")
	p256 := dgSigner(t, "p256")
	rsaKey := dgSigner(t, "rsa2048")
	tufJSON := func(s crypto.Signer) []byte {
		k, err := metadata.KeyFromPublicKey(s.Public())
		if err != nil {
			t.Fatal(err)
		}
		return []byte(dgJSON(t, k))
	}
	for _, tc := range []struct {
		name     string
		data     []byte
		pub      crypto.PublicKey
		wantType string
	}{
		{"ed25519 PEM", dgPKIXPEM(t, ed.Public()), ed.Public(), metadata.KeyTypeEd25519},
		{"P-256 PEM", dgPKIXPEM(t, p256.Public()), p256.Public(), metadata.KeyTypeECDSA_SHA2_P256},
		{"RSA PEM", dgPKIXPEM(t, rsaKey.Public()), rsaKey.Public(), metadata.KeyTypeRSASSA_PSS_SHA256},
		{"P-256 certificate", dgCertPEM(t, p256), p256.Public(), metadata.KeyTypeECDSA_SHA2_P256},
		{"ed25519 certificate", dgCertPEM(t, ed), ed.Public(), metadata.KeyTypeEd25519},
		{"RSA certificate", dgCertPEM(t, rsaKey), rsaKey.Public(), metadata.KeyTypeRSASSA_PSS_SHA256},
		{"ed25519 TUF JSON", tufJSON(ed), ed.Public(), metadata.KeyTypeEd25519},
		{"P-256 TUF JSON", tufJSON(p256), p256.Public(), metadata.KeyTypeECDSA_SHA2_P256},
		{"RSA TUF JSON", tufJSON(rsaKey), rsaKey.Public(), metadata.KeyTypeRSASSA_PSS_SHA256},
		{"PEM after text and whitespace", append([]byte("  openssl says:\n"), dgPKIXPEM(t, ed.Public())...), ed.Public(), metadata.KeyTypeEd25519},
		{"TUF JSON with whitespace", append(append([]byte("\n  "), tufJSON(p256)...), '\n'), p256.Public(), metadata.KeyTypeECDSA_SHA2_P256},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParsePublicKey(tc.data)
			if err != nil {
				t.Fatal(err)
			}
			want, err := metadata.KeyFromPublicKey(tc.pub)
			if err != nil {
				t.Fatal(err)
			}
			if got.Type != tc.wantType {
				t.Errorf("keytype %q, want %q", got.Type, tc.wantType)
			}
			if dgID(t, got) != dgID(t, want) {
				t.Errorf("key ID %s, want %s", dgID(t, got), dgID(t, want))
			}
			pub, err := got.ToPublicKey()
			if err != nil {
				t.Fatal(err)
			}
			if eq, ok := pub.(interface{ Equal(crypto.PublicKey) bool }); !ok || !eq.Equal(tc.pub) {
				t.Errorf("public key differs from the one given")
			}
		})
	}
}

func TestParsePublicKeyRefuses(t *testing.T) {
	p256 := dgSigner(t, "p256")
	p384 := dgSigner(t, "p384")
	pkcs8, err := x509.MarshalPKCS8PrivateKey(p256)
	if err != nil {
		t.Fatal(err)
	}
	sec1, err := x509.MarshalECPrivateKey(p256.(*ecdsa.PrivateKey))
	if err != nil {
		t.Fatal(err)
	}
	good, err := metadata.KeyFromPublicKey(p256.Public())
	if err != nil {
		t.Fatal(err)
	}
	edGood := dgKey(t, "ed25519")
	tufJSON := func(mod func(k *metadata.Key)) []byte {
		c := *good
		mod(&c)
		return []byte(dgJSON(t, &c))
	}
	for _, tc := range []struct {
		name string
		data []byte
		want string
	}{
		{"nil", nil, "empty input"},
		{"whitespace", []byte(" \n\t"), "empty input"},
		{"garbage", []byte("hello world"), "neither TUF key JSON nor PEM"},
		{"PKCS#8 private key", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8}), "private key"},
		{"EC private key", pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: sec1}), "private key"},
		{"encrypted private key", pem.EncodeToMemory(&pem.Block{Type: "ENCRYPTED PRIVATE KEY", Bytes: []byte{1}}), "private key"},
		{"P-384 public key", dgPKIXPEM(t, p384.Public()), "P-384"},
		{"P-384 certificate", dgCertPEM(t, p384), "P-384"},
		{"RSA 1024", dgPKIXPEM(t, dgSigner(t, "rsa1024").Public()), "too small"},
		{"public key PEM of garbage", pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: []byte("junk")}), "PUBLIC KEY"},
		{"certificate PEM of garbage", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte("junk")}), "CERTIFICATE"},
		{"other PEM type", pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Bytes: []byte("junk")}), "not supported"},
		{"two PEM blocks", append(dgPKIXPEM(t, p256.Public()), dgPKIXPEM(t, p256.Public())...), "more than one PEM block"},
		{"truncated PEM", []byte("-----BEGIN PUBLIC KEY-----\nMFkw"), "neither TUF key JSON nor PEM"},
		{"broken JSON", []byte(`{"keytype":`), "TUF key JSON"},
		{"JSON not a key", []byte(`{"signed":{},"signatures":[]}`), "no keytype"},
		{"JSON public does not parse", tufJSON(func(k *metadata.Key) { k.Value.PublicKey = "not a key" }), "does not parse"},
		{"JSON ed25519 not hex", []byte(`{"keytype":"ed25519","scheme":"ed25519","keyval":{"public":"zz"}}`), "does not parse"},
		{"JSON ed25519 short", []byte(`{"keytype":"ed25519","scheme":"ed25519","keyval":{"public":"abcd"}}`), "ed25519 public key has 2 bytes"},
		{"JSON unknown keytype", tufJSON(func(k *metadata.Key) { k.Type = "dsa" }), "not supported"},
		{"JSON wrong scheme", tufJSON(func(k *metadata.Key) { k.Scheme = metadata.KeySchemeECDSA_SHA2_P384 }), "scheme"},
		{"JSON P-384 labelled P-256", tufJSON(func(k *metadata.Key) { k.Value.PublicKey = string(dgPKIXPEM(t, p384.Public())) }), "P-384"},
		{"JSON ed25519 value in ecdsa key", tufJSON(func(k *metadata.Key) { k.Value.PublicKey = edGood.Value.PublicKey }), "does not parse"},
		{"JSON with private part", []byte(`{"keytype":"ed25519","scheme":"ed25519","keyval":{"public":"` + edGood.Value.PublicKey + `","private":"00"}}`), "private key"},
		{"JSON trailing data", append([]byte(dgJSON(t, good)), []byte(" {}")...), "TUF key JSON"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k, err := ParsePublicKey(tc.data)
			if err == nil {
				t.Fatalf("accepted: %+v", k)
			}
			if !strings.HasPrefix(err.Error(), "tufedit: public key: ") || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q, want prefix %q and %q in it", err, "tufedit: public key: ", tc.want)
			}
		})
	}
}

// dgTargets returns an empty top-level targets signed part.
func dgTargets() *metadata.TargetsType {
	return &metadata.Targets(time.Now().Add(time.Hour)).Signed
}

func dgSnapshot(t *testing.T, tt *metadata.TargetsType) string {
	t.Helper()
	return dgJSON(t, tt)
}

func dgRole(t *testing.T, tt *metadata.TargetsType, name string) metadata.DelegatedRole {
	t.Helper()
	if tt.Delegations == nil {
		t.Fatalf("no delegations, want role %s", name)
	}
	for _, r := range tt.Delegations.Roles {
		if r.Name == name {
			return r
		}
	}
	t.Fatalf("no role %s", name)
	return metadata.DelegatedRole{}
}

func dgNames(tt *metadata.TargetsType) []string {
	var names []string
	for _, di := range ListDelegations(tt) {
		names = append(names, di.Name)
	}
	return names
}

func dgSorted(ids ...string) []string {
	ids = slices.Clone(ids)
	slices.Sort(ids)
	return slices.Compact(ids)
}

// dgCompat returns k's public key under another key ID: the P-256 keytype
// spelled "ecdsa-sha2-nistp256".
func dgCompat(t *testing.T, k *metadata.Key) *metadata.Key {
	t.Helper()
	c := &metadata.Key{Type: metadata.KeyTypeECDSA_SHA2_P256_COMPAT, Scheme: k.Scheme, Value: metadata.KeyVal{PublicKey: k.Value.PublicKey}}
	if dgID(t, c) == dgID(t, k) {
		t.Fatal("compat key has the same ID")
	}
	return c
}

func TestAddDelegation(t *testing.T) {
	k1, k2 := dgKey(t, "ed25519"), dgKey(t, "p256")
	k2compat := dgCompat(t, k2)
	for _, tc := range []struct {
		name    string
		spec    DelegationSpec
		wantErr string
		want    DelegationInfo
	}{
		{
			name: "defaults",
			spec: DelegationSpec{Name: "targets/ci", Keys: []*metadata.Key{k1}},
			want: DelegationInfo{Name: "targets/ci", KeyIDs: []string{dgID(t, k1)}, Threshold: 1, Paths: []string{"*"}},
		},
		{
			name: "explicit, keys sorted and deduplicated",
			spec: DelegationSpec{Name: "qa", Keys: []*metadata.Key{k2, k1, k2}, Paths: []string{"v1.*", "latest"}, Threshold: 2, Terminating: true},
			want: DelegationInfo{Name: "qa", KeyIDs: dgSorted(dgID(t, k1), dgID(t, k2)), Threshold: 2, Paths: []string{"v1.*", "latest"}, Terminating: true},
		},
		{name: "threshold above keys", spec: DelegationSpec{Name: "qa", Keys: []*metadata.Key{k1}, Threshold: 2}, wantErr: "threshold 2 is above its 1 distinct key"},
		{name: "same public key twice counts once", spec: DelegationSpec{Name: "qa", Keys: []*metadata.Key{k2, k2compat}, Threshold: 2}, wantErr: "threshold 2 is above its 1 distinct key"},
		{name: "negative threshold", spec: DelegationSpec{Name: "qa", Keys: []*metadata.Key{k1}, Threshold: -1}, wantErr: "below 1"},
		{name: "no keys", spec: DelegationSpec{Name: "qa"}, wantErr: "at least one key"},
		{name: "nil key", spec: DelegationSpec{Name: "qa", Keys: []*metadata.Key{nil}}, wantErr: "no key"},
		{name: "unusable key", spec: DelegationSpec{Name: "qa", Keys: []*metadata.Key{{Type: "ed25519", Scheme: "ed25519", Value: metadata.KeyVal{PublicKey: "zz"}}}}, wantErr: "does not parse"},
		{name: "bad path pattern", spec: DelegationSpec{Name: "qa", Keys: []*metadata.Key{k1}, Paths: []string{"v1.["}}, wantErr: "path pattern"},
		{name: "empty path", spec: DelegationSpec{Name: "qa", Keys: []*metadata.Key{k1}, Paths: []string{""}}, wantErr: "empty path pattern"},
		{name: "exists", spec: DelegationSpec{Name: "existing", Keys: []*metadata.Key{k1}}, wantErr: "delegation existing exists; change it with signet delegation edit"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tt := dgTargets()
			if err := AddDelegation(tt, DelegationSpec{Name: "existing", Keys: []*metadata.Key{k2}}); err != nil {
				t.Fatal(err)
			}
			before := dgSnapshot(t, tt)
			err := AddDelegation(tt, tc.spec)
			if tc.wantErr != "" {
				if err == nil || !strings.HasPrefix(err.Error(), "tufedit: ") || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one with %q", err, tc.wantErr)
				}
				if after := dgSnapshot(t, tt); after != before {
					t.Errorf("failed add changed targets:\n%s\n%s", before, after)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			list := ListDelegations(tt)
			if len(list) != 2 || list[0].Name != "existing" {
				t.Fatalf("delegations %+v, want existing then %s", list, tc.spec.Name)
			}
			got := list[1]
			if got.Name != tc.want.Name || !slices.Equal(got.KeyIDs, tc.want.KeyIDs) || got.Threshold != tc.want.Threshold ||
				!slices.Equal(got.Paths, tc.want.Paths) || got.Terminating != tc.want.Terminating || got.PathHashPrefixes != nil {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
			for _, id := range got.KeyIDs {
				if tt.Delegations.Keys[id] == nil {
					t.Errorf("key %s missing from delegations keys", id)
				}
			}
		})
	}
}

func TestAddDelegationNames(t *testing.T) {
	k := dgKey(t, "ed25519")
	for _, tc := range []struct {
		name string
		ok   bool
	}{
		{"targets/releases", true},
		{"targets/a.b_c-D9", true},
		{"a/b/c", true},
		{strings.Repeat("a", 255), true},
		{"", false},
		{strings.Repeat("a", 256), false},
		{"targets", false},
		{"root", false},
		{"snapshot", false},
		{"timestamp", false},
		{"Targets", false},
		{"targets/", false},
		{"/targets/x", false},
		{"targets//x", false},
		{"targets/./x", false},
		{"targets/..", false},
		{"targets/a b", false},
		{"targets/a*", false},
		{"targets/ä", false},
		{`targets\x`, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tt := dgTargets()
			err := AddDelegation(tt, DelegationSpec{Name: tc.name, Keys: []*metadata.Key{k}})
			if tc.ok && err != nil {
				t.Fatalf("refused: %v", err)
			}
			if !tc.ok {
				if err == nil {
					t.Fatal("accepted")
				}
				if !strings.HasPrefix(err.Error(), "tufedit: ") {
					t.Errorf("error %q lacks the tufedit: prefix", err)
				}
				if tt.Delegations != nil {
					t.Errorf("refused add created delegations")
				}
			}
		})
	}
}

func TestAddDelegationCreatesAndRefusesSuccinct(t *testing.T) {
	k := dgKey(t, "ed25519")
	tt := dgTargets()
	if tt.Delegations != nil {
		t.Fatal("fresh targets already delegate")
	}
	if err := AddDelegation(tt, DelegationSpec{Name: "targets/ci", Keys: []*metadata.Key{k}}); err != nil {
		t.Fatal(err)
	}
	if tt.Delegations == nil || len(tt.Delegations.Roles) != 1 || len(tt.Delegations.Keys) != 1 {
		t.Fatalf("delegations %+v", tt.Delegations)
	}

	bins := dgTargets()
	bins.Delegations = &metadata.Delegations{Keys: map[string]*metadata.Key{dgID(t, k): k}, SuccinctRoles: &metadata.SuccinctRoles{KeyIDs: []string{dgID(t, k)}, Threshold: 1, BitLength: 4, NamePrefix: "bin"}}
	before := dgSnapshot(t, bins)
	for name, edit := range map[string]func() error{
		"AddDelegation":          func() error { return AddDelegation(bins, DelegationSpec{Name: "targets/ci", Keys: []*metadata.Key{k}}) },
		"AddSigner":              func() error { return AddSigner(bins, "alice", k) },
		"RemoveDelegation":       func() error { return RemoveDelegation(bins, "bin-0") },
		"SetDelegationThreshold": func() error { return SetDelegationThreshold(bins, "bin-0", 1) },
	} {
		if err := edit(); err == nil || !strings.Contains(err.Error(), "hashed bins") {
			t.Errorf("%s: error %v, want a hashed bins refusal", name, err)
		}
	}
	if after := dgSnapshot(t, bins); after != before {
		t.Errorf("refused edits changed targets")
	}
}

func TestAddDelegationKeys(t *testing.T) {
	k1, k2, k3 := dgKey(t, "ed25519"), dgKey(t, "p256"), dgKey(t, "ed25519")
	tt := dgTargets()
	if err := AddDelegation(tt, DelegationSpec{Name: "qa", Keys: []*metadata.Key{k1}}); err != nil {
		t.Fatal(err)
	}
	if err := AddDelegationKeys(tt, "qa", k3, k2); err != nil {
		t.Fatal(err)
	}
	if got, want := dgRole(t, tt, "qa").KeyIDs, dgSorted(dgID(t, k1), dgID(t, k2), dgID(t, k3)); !slices.Equal(got, want) {
		t.Errorf("key IDs %v, want %v", got, want)
	}
	before := dgSnapshot(t, tt)
	for _, tc := range []struct {
		name string
		role string
		keys []*metadata.Key
		want string
	}{
		{"already present", "qa", []*metadata.Key{k2}, "key " + dgID(t, k2) + " is already in delegation qa"},
		{"same public key, other ID", "qa", []*metadata.Key{dgCompat(t, k2)}, "as key ID " + dgID(t, k2)},
		{"one of several present", "qa", []*metadata.Key{dgKey(t, "p256"), k1}, dgID(t, k1)},
		{"no role", "nope", []*metadata.Key{dgKey(t, "p256")}, "no delegation nope"},
		{"no keys", "qa", nil, "no keys"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := AddDelegationKeys(tt, tc.role, tc.keys...)
			if err == nil || !strings.HasPrefix(err.Error(), "tufedit: ") || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one with %q", err, tc.want)
			}
			if after := dgSnapshot(t, tt); after != before {
				t.Errorf("refused add changed targets")
			}
		})
	}
}

func TestRemoveDelegationKeysThreshold(t *testing.T) {
	k1, k2, k3 := dgKey(t, "ed25519"), dgKey(t, "p256"), dgKey(t, "ed25519")
	id1, id2, id3 := dgID(t, k1), dgID(t, k2), dgID(t, k3)
	tt := dgTargets()
	if err := AddDelegation(tt, DelegationSpec{Name: "qa", Keys: []*metadata.Key{k1, k2}, Threshold: 2}); err != nil {
		t.Fatal(err)
	}
	// k2 is shared with another role and must survive its removal from qa.
	if err := AddDelegation(tt, DelegationSpec{Name: "ops", Keys: []*metadata.Key{k2, k3}}); err != nil {
		t.Fatal(err)
	}

	before := dgSnapshot(t, tt)
	for _, tc := range []struct {
		name string
		role string
		ids  []string
		want string
	}{
		{"below threshold", "qa", []string{id1}, "lower the threshold first or remove the delegation"},
		{"all keys", "qa", []string{id1, id2}, "lower the threshold first or remove the delegation"},
		{"key not in role", "qa", []string{id3}, "key " + id3 + " is not in delegation qa"},
		{"no role", "nope", []string{id1}, "no delegation nope"},
		{"no IDs", "qa", nil, "no keys"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := RemoveDelegationKeys(tt, tc.role, tc.ids...)
			if err == nil || !strings.HasPrefix(err.Error(), "tufedit: ") || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one with %q", err, tc.want)
			}
			if after := dgSnapshot(t, tt); after != before {
				t.Errorf("refused removal changed targets:\n%s\n%s", before, after)
			}
		})
	}

	// A second ID of an existing public key does not lift the count.
	if err := AddDelegationKeys(tt, "ops", dgCompat(t, k2)); err == nil {
		t.Fatal("added a second ID of a public key already in ops")
	}

	if err := SetDelegationThreshold(tt, "qa", 1); err != nil {
		t.Fatal(err)
	}
	if err := RemoveDelegationKeys(tt, "qa", id2); err != nil {
		t.Fatal(err)
	}
	if got := dgRole(t, tt, "qa").KeyIDs; !slices.Equal(got, []string{id1}) {
		t.Errorf("qa keys %v, want [%s]", got, id1)
	}
	if tt.Delegations.Keys[id2] == nil {
		t.Error("key still used by ops was dropped")
	}
	if err := RemoveDelegationKeys(tt, "ops", id2); err != nil {
		t.Fatal(err)
	}
	if _, ok := tt.Delegations.Keys[id2]; ok {
		t.Error("key no role uses was kept")
	}
	if got := dgSorted(keysOf(tt)...); !slices.Equal(got, dgSorted(id1, id3)) {
		t.Errorf("delegation keys %v, want %v", got, dgSorted(id1, id3))
	}
}

func keysOf(tt *metadata.TargetsType) []string {
	var ids []string
	for id := range tt.Delegations.Keys {
		ids = append(ids, id)
	}
	return ids
}

func TestSetDelegationThreshold(t *testing.T) {
	k1, k2 := dgKey(t, "ed25519"), dgKey(t, "p256")
	tt := dgTargets()
	if err := AddDelegation(tt, DelegationSpec{Name: "qa", Keys: []*metadata.Key{k1, k2, dgCompat(t, k2)}}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		k    int
		want string
	}{
		{0, "below 1"},
		{-3, "below 1"},
		{3, "above its 2 distinct key"}, // three IDs, two public keys
		{2, ""},
		{1, ""},
	} {
		before := dgSnapshot(t, tt)
		err := SetDelegationThreshold(tt, "qa", tc.k)
		if tc.want == "" {
			if err != nil {
				t.Errorf("threshold %d: %v", tc.k, err)
			} else if got := dgRole(t, tt, "qa").Threshold; got != tc.k {
				t.Errorf("threshold %d, want %d", got, tc.k)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("threshold %d: error %v, want one with %q", tc.k, err, tc.want)
		}
		if dgSnapshot(t, tt) != before {
			t.Errorf("threshold %d: refused change changed targets", tc.k)
		}
	}
	if err := SetDelegationThreshold(tt, "nope", 1); err == nil || !strings.Contains(err.Error(), "no delegation nope") {
		t.Errorf("error %v for a missing role", err)
	}
}

func TestRemoveDelegation(t *testing.T) {
	k1, k2, k3 := dgKey(t, "ed25519"), dgKey(t, "p256"), dgKey(t, "ed25519")
	tt := dgTargets()
	for _, spec := range []DelegationSpec{
		{Name: "a", Keys: []*metadata.Key{k1, k2}},
		{Name: "b", Keys: []*metadata.Key{k2, k3}},
		{Name: "c", Keys: []*metadata.Key{k3}},
	} {
		if err := AddDelegation(tt, spec); err != nil {
			t.Fatal(err)
		}
	}
	if err := RemoveDelegation(tt, "b"); err != nil {
		t.Fatal(err)
	}
	if got := dgNames(tt); !slices.Equal(got, []string{"a", "c"}) {
		t.Errorf("roles %v, want [a c]", got)
	}
	if got, want := dgSorted(keysOf(tt)...), dgSorted(dgID(t, k1), dgID(t, k2), dgID(t, k3)); !slices.Equal(got, want) {
		t.Errorf("keys %v, want %v (all still used)", got, want)
	}
	if err := RemoveDelegation(tt, "a"); err != nil {
		t.Fatal(err)
	}
	if got, want := dgSorted(keysOf(tt)...), []string{dgID(t, k3)}; !slices.Equal(got, want) {
		t.Errorf("keys %v, want %v", got, want)
	}
	before := dgSnapshot(t, tt)
	if err := RemoveDelegation(tt, "a"); err == nil || !strings.Contains(err.Error(), "tufedit: no delegation a") {
		t.Errorf("error %v removing a missing role", err)
	}
	if dgSnapshot(t, tt) != before {
		t.Error("refused removal changed targets")
	}
	if err := RemoveDelegation(dgTargets(), "a"); err == nil {
		t.Error("removed a role from targets without delegations")
	}
}

func TestListDelegationsOrder(t *testing.T) {
	tt := dgTargets()
	if got := ListDelegations(tt); got != nil {
		t.Errorf("no delegations listed as %+v", got)
	}
	k := dgKey(t, "ed25519")
	names := []string{"z", "targets/b", "a", "targets/a/x"}
	for _, n := range names {
		if err := AddDelegation(tt, DelegationSpec{Name: n, Keys: []*metadata.Key{k}}); err != nil {
			t.Fatal(err)
		}
	}
	if got := dgNames(tt); !slices.Equal(got, names) {
		t.Errorf("order %v, want %v", got, names)
	}
	// The listing is a copy.
	list := ListDelegations(tt)
	list[0].KeyIDs[0] = "changed"
	list[0].Paths[0] = "changed"
	if r := dgRole(t, tt, "z"); r.KeyIDs[0] == "changed" || r.Paths[0] == "changed" {
		t.Error("editing the listing edited the targets")
	}
}

func TestSigners(t *testing.T) {
	a1, a2, b1 := dgKey(t, "ed25519"), dgKey(t, "p256"), dgKey(t, "ed25519")
	ida1, ida2, idb1 := dgID(t, a1), dgID(t, a2), dgID(t, b1)
	tt := dgTargets()
	// A pre-existing per-signer style role: releases must still go first.
	if err := AddDelegation(tt, DelegationSpec{Name: "targets/carol", Keys: []*metadata.Key{dgKey(t, "p256")}}); err != nil {
		t.Fatal(err)
	}
	if err := AddSigner(tt, "alice", a1); err != nil {
		t.Fatal(err)
	}
	if err := AddSigner(tt, "bob", b1); err != nil {
		t.Fatal(err)
	}
	before := dgSnapshot(t, tt)
	if err := AddSigner(tt, "alice", a1); err != nil {
		t.Fatalf("adding alice again: %v", err)
	}
	if dgSnapshot(t, tt) != before {
		t.Error("adding alice's key again changed targets")
	}
	if err := AddSigner(tt, "alice", a2, a1); err != nil {
		t.Fatal(err)
	}
	if got, want := dgNames(tt), []string{ReleasesRole, "targets/carol", "targets/alice", "targets/bob"}; !slices.Equal(got, want) {
		t.Fatalf("roles %v, want %v", got, want)
	}
	rel := dgRole(t, tt, ReleasesRole)
	if want := dgSorted(ida1, ida2, idb1); !slices.Equal(rel.KeyIDs, want) || rel.Threshold != 1 || rel.Terminating || !slices.Equal(rel.Paths, []string{"*"}) {
		t.Errorf("releases %+v, want keys %v threshold 1 paths [*]", rel, want)
	}
	if got, want := dgRole(t, tt, "targets/alice").KeyIDs, dgSorted(ida1, ida2); !slices.Equal(got, want) {
		t.Errorf("alice keys %v, want %v", got, want)
	}
	var signers []string
	for _, s := range ListSigners(tt) {
		signers = append(signers, s.Name)
	}
	if want := []string{ReleasesRole, "targets/carol", "targets/alice", "targets/bob"}; !slices.Equal(signers, want) {
		t.Errorf("signers %v, want %v", signers, want)
	}

	// With releases needing two signatures, removing alice would leave one.
	if err := SetDelegationThreshold(tt, ReleasesRole, 2); err != nil {
		t.Fatal(err)
	}
	before = dgSnapshot(t, tt)
	if err := RemoveSigner(tt, "alice"); err == nil || !strings.Contains(err.Error(), "below its threshold 2") {
		t.Fatalf("error %v, want a threshold refusal", err)
	}
	if dgSnapshot(t, tt) != before {
		t.Fatal("refused removal changed targets")
	}
	if err := SetDelegationThreshold(tt, ReleasesRole, 1); err != nil {
		t.Fatal(err)
	}

	if err := RemoveSigner(tt, "alice"); err != nil {
		t.Fatal(err)
	}
	if got, want := dgNames(tt), []string{ReleasesRole, "targets/carol", "targets/bob"}; !slices.Equal(got, want) {
		t.Errorf("roles %v, want %v", got, want)
	}
	if got := dgRole(t, tt, ReleasesRole).KeyIDs; !slices.Equal(got, []string{idb1}) {
		t.Errorf("releases keys %v, want [%s]", got, idb1)
	}
	for _, id := range []string{ida1, ida2} {
		if _, ok := tt.Delegations.Keys[id]; ok {
			t.Errorf("alice's key %s kept", id)
		}
	}
	if err := RemoveSigner(tt, "alice"); err == nil || !strings.Contains(err.Error(), "no signer alice") {
		t.Errorf("error %v removing alice twice", err)
	}

	// bob was releases' last key: releases goes with him.
	if err := RemoveSigner(tt, "bob"); err != nil {
		t.Fatal(err)
	}
	if got := dgNames(tt); !slices.Equal(got, []string{"targets/carol"}) {
		t.Errorf("roles %v, want [targets/carol]", got)
	}
	if len(tt.Delegations.Keys) != 1 {
		t.Errorf("delegation keys %v, want only carol's", keysOf(tt))
	}
}

func TestSignersShareKey(t *testing.T) {
	shared, own := dgKey(t, "p256"), dgKey(t, "ed25519")
	tt := dgTargets()
	if err := AddSigner(tt, "alice", shared, own); err != nil {
		t.Fatal(err)
	}
	if err := AddSigner(tt, "bob", shared); err != nil {
		t.Fatal(err)
	}
	if err := RemoveSigner(tt, "alice"); err != nil {
		t.Fatal(err)
	}
	// bob still signs releases with the shared key.
	if got := dgRole(t, tt, ReleasesRole).KeyIDs; !slices.Equal(got, []string{dgID(t, shared)}) {
		t.Errorf("releases keys %v, want the shared key", got)
	}
	if _, ok := tt.Delegations.Keys[dgID(t, own)]; ok {
		t.Error("alice's own key kept")
	}
}

func TestSignerNames(t *testing.T) {
	k := dgKey(t, "ed25519")
	for _, name := range []string{"", "releases", "a/b", "..", ".", "al ice", strings.Repeat("a", 250)} {
		tt := dgTargets()
		if err := AddSigner(tt, name, k); err == nil || !strings.HasPrefix(err.Error(), "tufedit: ") {
			t.Errorf("AddSigner(%q): error %v", name, err)
		}
		if tt.Delegations != nil {
			t.Errorf("AddSigner(%q) created delegations", name)
		}
		if err := RemoveSigner(tt, name); err == nil {
			t.Errorf("RemoveSigner(%q) succeeded", name)
		}
	}
	if err := AddSigner(dgTargets(), "alice"); err == nil {
		t.Error("AddSigner without keys succeeded")
	}
}

// TestDelegationsRoundTrip checks that go-tuf reads the edited targets back,
// matches tags against the roles' paths and verifies a delegated role's
// metadata against the delegation's keys and threshold.
func TestDelegationsRoundTrip(t *testing.T) {
	alice, bob := dgSigner(t, "ed25519"), dgSigner(t, "p256")
	aliceKey, err := metadata.KeyFromPublicKey(alice.Public())
	if err != nil {
		t.Fatal(err)
	}
	bobKey, err := metadata.KeyFromPublicKey(bob.Public())
	if err != nil {
		t.Fatal(err)
	}
	md := metadata.Targets(time.Now().Add(24 * time.Hour))
	if err := AddSigner(&md.Signed, "alice", aliceKey); err != nil {
		t.Fatal(err)
	}
	if err := AddDelegation(&md.Signed, DelegationSpec{Name: "targets/qa", Keys: []*metadata.Key{aliceKey, bobKey}, Paths: []string{"v1.*"}, Threshold: 2}); err != nil {
		t.Fatal(err)
	}
	data, err := md.ToBytes(false)
	if err != nil {
		t.Fatal(err)
	}
	back, err := metadata.Targets().FromBytes(data)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := ListDelegations(&back.Signed), ListDelegations(&md.Signed); dgJSON(t, got) != dgJSON(t, want) {
		t.Errorf("round trip changed delegations:\n%s\n%s", dgJSON(t, got), dgJSON(t, want))
	}
	roles := map[string]metadata.DelegatedRole{}
	for _, r := range back.Signed.Delegations.Roles {
		roles[r.Name] = r
	}
	for _, tc := range []struct {
		role, tag string
		want      bool
	}{
		{ReleasesRole, "latest", true},
		{"targets/alice", "v2.0", true},
		{"targets/qa", "v1.4", true},
		{"targets/qa", "v2.0", false},
		{"targets/qa", "latest", false},
	} {
		r := roles[tc.role]
		got, err := r.IsDelegatedPath(tc.tag)
		if err != nil || got != tc.want {
			t.Errorf("%s delegated %s: %v, %v; want %v", tc.role, tc.tag, got, err, tc.want)
		}
	}
	if got := back.Signed.Delegations.GetRolesForTarget("latest"); len(got) != 2 || got[0].Name != ReleasesRole {
		t.Errorf("roles for latest %+v, want releases first", got)
	}

	// go-tuf verifies delegated metadata with the delegation's keys and threshold.
	sign := func(s crypto.Signer, m *metadata.Metadata[metadata.TargetsType]) {
		t.Helper()
		var sv signature.Signer
		var err error
		switch p := s.(type) {
		case ed25519.PrivateKey:
			sv, err = signature.LoadED25519Signer(p)
		case *ecdsa.PrivateKey:
			sv, err = signature.LoadECDSASigner(p, crypto.SHA256)
		}
		if err != nil {
			t.Fatal(err)
		}
		if _, err := m.Sign(sv); err != nil {
			t.Fatal(err)
		}
	}
	qa := metadata.Targets(time.Now().Add(time.Hour))
	sign(alice, qa)
	if err := back.VerifyDelegate("targets/qa", qa); err == nil {
		t.Error("targets/qa verified with one of its two required signatures")
	}
	sign(bob, qa)
	if err := back.VerifyDelegate("targets/qa", qa); err != nil {
		t.Errorf("targets/qa: %v", err)
	}
	rel := metadata.Targets(time.Now().Add(time.Hour))
	sign(alice, rel)
	if err := back.VerifyDelegate(ReleasesRole, rel); err != nil {
		t.Errorf("%s: %v", ReleasesRole, err)
	}
}
