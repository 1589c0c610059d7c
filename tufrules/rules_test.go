package tufrules

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"
)

func key(t *testing.T) (*metadata.Key, string) {
	t.Helper()
	_, k, id, err := GenerateKey(Ed25519)
	if err != nil {
		t.Fatal(err)
	}
	return k, id
}

func TestValidateRoleName(t *testing.T) {
	for _, ok := range []string{"targets/releases", "targets/alice", "bins-0f", "a/b/c", "x.y"} {
		if err := ValidateRoleName(ok); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	for _, bad := range []string{"", "root", "Root", "TARGETS", "Snapshot", "timestamp", "1.x", "12.x", "a//b", "a/./b", "../x", "a b", strings.Repeat("a", 256)} {
		if err := ValidateRoleName(bad); !errors.Is(err, ErrRule) {
			t.Errorf("%q accepted (err %v)", bad, err)
		}
	}
}

func TestFingerprintKeyTypes(t *testing.T) {
	k, _ := key(t)
	if _, err := Fingerprint(k); err != nil {
		t.Fatal(err)
	}
	_, ek, _, err := GenerateKey(ECDSAP256)
	if err != nil {
		t.Fatal(err)
	}
	fp1, err := Fingerprint(ek)
	if err != nil {
		t.Fatal(err)
	}
	// The specification's keytype name for the same key: same fingerprint.
	spec := *ek
	spec.Type = metadata.KeyTypeECDSA_SHA2_P256_COMPAT
	fp2, err := Fingerprint(&spec)
	if err != nil || fp1 != fp2 {
		t.Fatalf("ecdsa-sha2-nistp256: %v, fingerprints %s %s", err, fp1, fp2)
	}
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	rk, err := metadata.KeyFromPublicKey(small.Public())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Fingerprint(rk); err == nil || !strings.Contains(err.Error(), "too small") {
		t.Fatalf("RSA-1024 accepted: %v", err)
	}
	bad := *k
	bad.Scheme = "rsassa-pss-sha256"
	if _, err := Fingerprint(&bad); err == nil {
		t.Fatal("ed25519 key with an RSA scheme accepted")
	}
}

func TestDuplicateKeyIDsRefused(t *testing.T) {
	k, id := key(t)
	keys := map[string]*metadata.Key{id: k}
	ids := slices.Repeat([]string{id}, 200)
	err := CheckRoleKeys("targets/x", keys, ids, 1)
	if !errors.Is(err, ErrRule) {
		t.Fatalf("200 copies of one key ID accepted: %v", err)
	}
	if err := CheckRoleKeys("targets/x", keys, []string{id, id}, 1); err == nil || !strings.Contains(err.Error(), "more than once") {
		t.Fatalf("duplicate key ID: %v", err)
	}
	d := &metadata.Delegations{Keys: keys, Roles: []metadata.DelegatedRole{{Name: "targets/x", KeyIDs: []string{id, id}, Threshold: 1, Paths: []string{"*"}}}}
	if err := CheckDelegations(d); err == nil {
		t.Fatal("delegation with a duplicate key ID accepted")
	}
	root := metadata.Root(time.Now().Add(time.Hour))
	for _, r := range metadata.TOP_LEVEL_ROLE_NAMES {
		if err := root.Signed.AddKey(k, r); err != nil {
			t.Fatal(err)
		}
	}
	if err := CheckRoot(&root.Signed); err != nil {
		t.Fatal(err)
	}
	root.Signed.Roles[metadata.TARGETS].KeyIDs = []string{id, id}
	if err := CheckRoot(&root.Signed); err == nil {
		t.Fatal("root with duplicate targets key IDs accepted")
	}
}

func TestCheckRoleKeysThreshold(t *testing.T) {
	k, id := key(t)
	// The same public key under a second key ID counts once.
	alias := "alias"
	keys := map[string]*metadata.Key{id: k, alias: k}
	if err := CheckRoleKeys("r", keys, []string{id, alias}, 2); err == nil {
		t.Fatal("threshold 2 over one distinct key accepted")
	}
	if err := CheckRoleKeys("r", keys, []string{id, "missing"}, 1); err == nil {
		t.Fatal("undefined key ID accepted")
	}
	if err := CheckRoleKeys("r", keys, []string{id}, 0); err == nil {
		t.Fatal("threshold 0 accepted")
	}
	many := make([]string, MaxKeysPerRole+1)
	for i := range many {
		many[i] = fmt.Sprint(i)
	}
	if err := CheckRoleKeys("r", keys, many, 1); err == nil || !strings.Contains(err.Error(), "at most") {
		t.Fatalf("too many key IDs: %v", err)
	}
}

// tree builds targets → {a (paths a-*), b (*, terminating)}, a → {a/x}.
func tree(t *testing.T) map[string]*metadata.Metadata[metadata.TargetsType] {
	k, id := key(t)
	exp := time.Now().Add(time.Hour)
	mk := func(roles ...metadata.DelegatedRole) *metadata.Metadata[metadata.TargetsType] {
		m := metadata.Targets(exp)
		if len(roles) > 0 {
			m.Signed.Delegations = &metadata.Delegations{Keys: map[string]*metadata.Key{id: k}, Roles: roles}
		}
		return m
	}
	role := func(name string, term bool, paths ...string) metadata.DelegatedRole {
		return metadata.DelegatedRole{Name: name, KeyIDs: []string{id}, Threshold: 1, Paths: paths, Terminating: term}
	}
	return map[string]*metadata.Metadata[metadata.TargetsType]{
		"targets": mk(role("a", false, "a-*"), role("b", true, "*"), role("c", false, "*")),
		"a":       mk(role("a/x", false, "a-x*")),
		"a/x":     mk(),
		"b":       mk(),
		"c":       mk(),
	}
}

func TestWalkPreOrder(t *testing.T) {
	roles := tree(t)
	var loads []string
	load := func(role, parent string, _ *metadata.Metadata[metadata.TargetsType]) (*metadata.Metadata[metadata.TargetsType], error) {
		loads = append(loads, parent+">"+role)
		m, ok := roles[role]
		if !ok {
			return nil, fmt.Errorf("no %s", role)
		}
		return m, nil
	}
	walk := func(target string) []string {
		loads = nil
		if err := Walk(context.Background(), target, 0, load, func(string, string, *metadata.Metadata[metadata.TargetsType]) (bool, error) { return false, nil }); err != nil {
			t.Fatal(err)
		}
		return loads
	}
	// a-x1: targets, a, a/x, then b (terminating: c never visited).
	if got, want := walk("a-x1"), []string{"root>targets", "targets>a", "a>a/x", "targets>b"}; !slices.Equal(got, want) {
		t.Errorf("a-x1: %v, want %v", got, want)
	}
	if got, want := walk("z"), []string{"root>targets", "targets>b"}; !slices.Equal(got, want) {
		t.Errorf("z: %v, want %v", got, want)
	}
	if got := walk(""); len(got) != 5 {
		t.Errorf("all roles: %v", got)
	}
	// A load error aborts the walk: never a fall-through to the next role.
	delete(roles, "a")
	loads = nil
	err := Walk(context.Background(), "a-1", 0, load, func(string, string, *metadata.Metadata[metadata.TargetsType]) (bool, error) { return false, nil })
	if err == nil || slices.Contains(loads, "targets>b") {
		t.Fatalf("walk went on after a failed load: %v %v", err, loads)
	}
}

func TestWalkLimit(t *testing.T) {
	k, id := key(t)
	// A chain targets → r0 → r1 → … deeper than the limit.
	load := func(role, parent string, _ *metadata.Metadata[metadata.TargetsType]) (*metadata.Metadata[metadata.TargetsType], error) {
		m := metadata.Targets(time.Now().Add(time.Hour))
		m.Signed.Delegations = &metadata.Delegations{Keys: map[string]*metadata.Key{id: k}, Roles: []metadata.DelegatedRole{{Name: role + "x", KeyIDs: []string{id}, Threshold: 1, Paths: []string{"*"}}}}
		return m, nil
	}
	n := 0
	err := Walk(context.Background(), "t", 5, load, func(string, string, *metadata.Metadata[metadata.TargetsType]) (bool, error) { n++; return false, nil })
	var le *WalkLimitError
	if !errors.As(err, &le) || n != 6 {
		t.Fatalf("err %v after %d roles", err, n)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := Walk(ctx, "t", 5, load, func(string, string, *metadata.Metadata[metadata.TargetsType]) (bool, error) { return false, nil }); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled walk: %v", err)
	}
}
