// Package keystoretest is the conformance suite every keystore.Store
// passes: the memory store, sqlite and postgres run the same tests, at the
// store's contract and through a keystore.Signer over it. Only tests
// import it.
package keystoretest

import (
	"bytes"
	"context"
	"crypto"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/secure-systems-lab/go-securesystemslib/cjson"
	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/signetdev/signet/signer"
	"github.com/signetdev/signet/signer/keystore"
	"github.com/signetdev/signet/signer/keywrap"
)

// Opener returns a new handle on one key database (a restart, or another
// replica sharing it), closed when t ends. A store that cannot be shared
// (memory) returns the same one each time.
type Opener func(t *testing.T) keystore.Store

// Run runs the suite; newDB makes a fresh, empty key database for one test.
func Run(t *testing.T, newDB func(t *testing.T) Opener) {
	for _, tc := range []struct {
		name string
		fn   func(t *testing.T, open Opener)
	}{
		{"Records", testRecords},
		{"InsertFirst", testInsertFirst},
		{"InsertFirstRace", testInsertFirstRace},
		{"UpdatePrivate", testUpdatePrivate},
		{"DeleteGUN", testDeleteGUN},
		{"AtRest", testAtRest},
		{"EnsureKeyOnce", testEnsureKeyOnce},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(t, newDB(t))
		})
	}
}

const gun, other = "registry.example.com/app", "registry.example.com/other"

// cheap are KDF parameters for tests.
var cheap = keywrap.Params{Time: 1, MemoryKiB: 64, Threads: 1}

// Keyring returns a keyring of the passphrases pp (by alias) with primary
// as the alias new keys are wrapped under, at KDF costs for tests.
func Keyring(t *testing.T, primary string, pp map[string]string) *keywrap.Keyring {
	t.Helper()
	m := map[string][]byte{}
	for a, p := range pp {
		m[a] = []byte(p)
	}
	kr, err := keywrap.NewKeyring(primary, m, cheap)
	if err != nil {
		t.Fatal(err)
	}
	return kr
}

// record makes a wrapped key record of (g, role), created at.
func record(t *testing.T, be keystore.Backend, g, role string, at time.Time) *keystore.Record {
	t.Helper()
	r := &keystore.Record{GUN: g, Role: role, Algorithm: signer.Ed25519, CreatedAt: at.UTC().Truncate(time.Microsecond)}
	if _, err := be.Create(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	return r
}

// same reports whether a stored record is r, field by field.
func same(t *testing.T, got, want *keystore.Record) bool {
	t.Helper()
	gotID, _ := got.Public.ID()
	wantID, _ := want.Public.ID()
	enc := func(w *keywrap.Wrapped) string {
		b, err := cjson.EncodeCanonical(w)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	return got.ID == want.ID && got.GUN == want.GUN && got.Role == want.Role && got.Algorithm == want.Algorithm &&
		gotID == wantID && got.HSMID == want.HSMID && got.CreatedAt.Equal(want.CreatedAt) && got.CreatedAt.Location() == time.UTC &&
		enc(got.Private) == enc(want.Private)
}

func ids(recs []keystore.Record) []string {
	out := make([]string, len(recs))
	for i, r := range recs {
		out[i] = r.ID
	}
	return out
}

// testRecords: what is inserted is listed back as it was, oldest first,
// per GUN (List) and in all (All); a token's key has no wrapped part.
func testRecords(t *testing.T, open Opener) {
	ctx := context.Background()
	st := open(t)
	if err := st.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	be := keystore.NewWrapped(Keyring(t, "a", map[string]string{"a": "pass"}))
	start := time.Date(2026, 3, 4, 5, 6, 7, 891011000, time.FixedZone("east", 3600))
	a := record(t, be, gun, metadata.TIMESTAMP, start)
	b := record(t, be, other, metadata.TIMESTAMP, start.Add(time.Second))
	c := record(t, be, gun, metadata.SNAPSHOT, start.Add(2*time.Second))
	c.Private, c.HSMID = nil, "0a1b2c"
	for _, r := range []*keystore.Record{a, b, c} {
		if err := st.Insert(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	// Another handle sees the same rows.
	st2 := open(t)
	list, err := st2.List(ctx, gun)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 || !same(t, &list[0], a) || !same(t, &list[1], c) {
		t.Fatalf("List(%s) = %v, want %v as inserted, oldest first", gun, ids(list), []string{a.ID, c.ID})
	}
	if list[1].Private != nil {
		t.Errorf("a token's key came back with a wrapped part %+v", list[1].Private)
	}
	all, err := st2.All(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := ids(all), []string{a.ID, b.ID, c.ID}; !slices.Equal(got, want) {
		t.Fatalf("All = %v, want %v (oldest first)", got, want)
	}
	if none, err := st2.List(ctx, "registry.example.com/none"); err != nil || len(none) != 0 {
		t.Fatalf("List of an unknown GUN: %v, %v", ids(none), err)
	}
}

// testInsertFirst: InsertFirst adds only a slot's first key; afterwards it
// returns the slot's newest key and ErrExists, and adds nothing.
func testInsertFirst(t *testing.T, open Opener) {
	ctx := context.Background()
	st := open(t)
	be := keystore.NewWrapped(Keyring(t, "a", map[string]string{"a": "pass"}))
	now := time.Now()
	first := record(t, be, gun, metadata.TIMESTAMP, now)
	if got, err := st.InsertFirst(ctx, first); err != nil || got.ID != first.ID {
		t.Fatalf("first InsertFirst: %v, %v", got, err)
	}
	rotated := record(t, be, gun, metadata.TIMESTAMP, now.Add(time.Second))
	if err := st.Insert(ctx, rotated); err != nil {
		t.Fatal(err)
	}
	late := record(t, be, gun, metadata.TIMESTAMP, now.Add(2*time.Second))
	got, err := st.InsertFirst(ctx, late)
	if !errors.Is(err, keystore.ErrExists) || got == nil || !same(t, got, rotated) {
		t.Fatalf("InsertFirst of a held slot: %v, %v; want the newest key %s and ErrExists", got, err, rotated.ID)
	}
	snap := record(t, be, gun, metadata.SNAPSHOT, now)
	if _, err := st.InsertFirst(ctx, snap); err != nil {
		t.Fatalf("InsertFirst of another role: %v", err)
	}
	all, err := st.All(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := ids(all), []string{first.ID, rotated.ID, snap.ID}; !slices.Equal(got, want) {
		t.Fatalf("stored %v, want %v", got, want)
	}
}

// testInsertFirstRace: callers on two handles (two replicas) race for one
// slot's first key: one record is stored, and every caller gets it.
func testInsertFirstRace(t *testing.T, open Opener) {
	ctx := context.Background()
	handles := []keystore.Store{open(t), open(t)}
	be := keystore.NewWrapped(Keyring(t, "a", map[string]string{"a": "pass"}))
	recs := make([]*keystore.Record, 10)
	for i := range recs {
		recs[i] = record(t, be, gun, metadata.SNAPSHOT, time.Now())
	}
	got := make([]string, len(recs))
	var wg sync.WaitGroup
	for i, r := range recs {
		wg.Go(func() {
			k, err := handles[i%2].InsertFirst(ctx, r)
			if err != nil && !errors.Is(err, keystore.ErrExists) {
				t.Error(err)
				return
			}
			got[i] = k.ID
		})
	}
	wg.Wait()
	all, err := handles[0].All(ctx)
	if err != nil || len(all) != 1 {
		t.Fatalf("%d records after the race: %v", len(all), err)
	}
	for i, id := range got {
		if id != all[0].ID {
			t.Errorf("caller %d got key %s, the store holds %s", i, id, all[0].ID)
		}
	}
}

// testUpdatePrivate: a record's wrapped key is replaced in place; an
// unknown key ID is signer.ErrKeyNotFound.
func testUpdatePrivate(t *testing.T, open Opener) {
	ctx := context.Background()
	st := open(t)
	be := keystore.NewWrapped(Keyring(t, "a", map[string]string{"a": "pass"}))
	r := record(t, be, gun, metadata.TIMESTAMP, time.Now())
	if err := st.Insert(ctx, r); err != nil {
		t.Fatal(err)
	}
	w := record(t, be, gun, metadata.TIMESTAMP, time.Now()).Private
	if err := st.UpdatePrivate(ctx, r.ID, w); err != nil {
		t.Fatal(err)
	}
	list, err := st.List(ctx, gun)
	if err != nil || len(list) != 1 {
		t.Fatalf("%d records: %v", len(list), err)
	}
	want := *r
	want.Private = w
	if !same(t, &list[0], &want) {
		t.Errorf("after UpdatePrivate: %+v, want the new wrapped key and nothing else changed", list[0])
	}
	if err := st.UpdatePrivate(ctx, "0000", w); !errors.Is(err, signer.ErrKeyNotFound) {
		t.Errorf("UpdatePrivate of an unknown key: %v, want ErrKeyNotFound", err)
	}
}

// testDeleteGUN removes one GUN's keys and nothing else.
func testDeleteGUN(t *testing.T, open Opener) {
	ctx := context.Background()
	st := open(t)
	be := keystore.NewWrapped(Keyring(t, "a", map[string]string{"a": "pass"}))
	keep := record(t, be, other, metadata.TIMESTAMP, time.Now())
	for _, r := range []*keystore.Record{record(t, be, gun, metadata.TIMESTAMP, time.Now()), keep, record(t, be, gun, metadata.SNAPSHOT, time.Now())} {
		if err := st.Insert(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.DeleteGUN(ctx, gun); err != nil {
		t.Fatal(err)
	}
	if err := st.DeleteGUN(ctx, "registry.example.com/none"); err != nil {
		t.Errorf("DeleteGUN of an unknown GUN: %v", err)
	}
	all, err := st.All(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := ids(all); !slices.Equal(got, []string{keep.ID}) {
		t.Errorf("after DeleteGUN(%s): %v, want only %s", gun, got, keep.ID)
	}
}

// capture is a Backend that remembers the private keys it makes, to look
// for them in the stored rows.
type capture struct {
	keystore.Backend
	mu  sync.Mutex
	der map[string][]byte
}

func (c *capture) Create(ctx context.Context, r *keystore.Record) (crypto.Signer, error) {
	k, err := c.Backend.Create(ctx, r)
	if err != nil {
		return nil, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.der[r.ID] = der
	return k, nil
}

// SignTimestamp has s sign a fresh timestamp of g with key k and checks
// the signature with go-tuf against a root that names the key.
func SignTimestamp(t *testing.T, s signer.Service, g string, k *signer.KeyInfo) error {
	t.Helper()
	ts := metadata.Timestamp(time.Now().Add(time.Hour))
	payload, err := cjson.EncodeCanonical(ts.Signed)
	if err != nil {
		t.Fatal(err)
	}
	sig, err := s.Sign(context.Background(), g, metadata.TIMESTAMP, k.ID, payload)
	if err != nil {
		return err
	}
	ts.Signatures = []metadata.Signature{{KeyID: k.ID, Signature: sig}}
	root := metadata.Root(time.Now().Add(time.Hour))
	if err := root.Signed.AddKey(k.Public, metadata.TIMESTAMP); err != nil {
		t.Fatal(err)
	}
	return root.VerifyDelegate(metadata.TIMESTAMP, ts)
}

// testAtRest: the stored rows hold no private key in the clear; a restart
// with the right passphrase signs with the same keys, a wrong or unknown
// one fails at start; a rewrap moves every key to a new passphrase.
func testAtRest(t *testing.T, open Opener) {
	ctx := context.Background()
	be := &capture{Backend: keystore.NewWrapped(Keyring(t, "default", map[string]string{"default": "right"})), der: map[string][]byte{}}
	s, err := keystore.New(ctx, open(t), be)
	if err != nil {
		t.Fatal(err)
	}
	k, err := s.EnsureKey(ctx, gun, metadata.TIMESTAMP, signer.Ed25519)
	if err != nil {
		t.Fatal(err)
	}
	rotated, err := s.RotateKey(ctx, gun, metadata.TIMESTAMP, signer.ECDSAP256)
	if err != nil {
		t.Fatal(err)
	}
	recs, err := open(t).All(ctx)
	if err != nil || len(recs) != 2 {
		t.Fatalf("%d records: %v", len(recs), err)
	}
	for _, r := range recs {
		der := be.der[r.ID]
		if len(der) == 0 {
			t.Fatalf("no key material made for %s", r.ID)
		}
		if bytes.Contains(r.Private.Ciphertext, der) || bytes.Contains([]byte(base64.StdEncoding.EncodeToString(r.Private.Ciphertext)), []byte(base64.StdEncoding.EncodeToString(der))) {
			t.Fatal("private key stored in the clear")
		}
	}

	// A restart with the right passphrase signs with the same keys.
	wrapped := func(primary string, pp map[string]string) keystore.Backend {
		return keystore.NewWrapped(Keyring(t, primary, pp))
	}
	s2, err := keystore.New(ctx, open(t), wrapped("default", map[string]string{"default": "right"}))
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []*signer.KeyInfo{k, rotated} {
		if err := SignTimestamp(t, s2, gun, key); err != nil {
			t.Fatalf("after restart: %v", err)
		}
	}
	if cur, _ := s2.PublicKey(ctx, gun, metadata.TIMESTAMP); cur.ID != rotated.ID {
		t.Fatal("newest key changed across restart")
	}
	// A wrong or unknown passphrase fails start-up clearly.
	if _, err := keystore.New(ctx, open(t), wrapped("default", map[string]string{"default": "wrong"})); !errors.Is(err, keywrap.ErrDecrypt) {
		t.Fatalf("wrong passphrase: %v", err)
	}
	if _, err := keystore.New(ctx, open(t), wrapped("other", map[string]string{"other": "x"})); !errors.Is(err, keywrap.ErrUnknownAlias) {
		t.Fatalf("unknown alias: %v", err)
	}
	// Rewrap under a new passphrase; afterwards only it opens the keys.
	both := Keyring(t, "new", map[string]string{"default": "right", "new": "newer"})
	if n, err := keystore.Rewrap(ctx, open(t), both, both); err != nil || n != 2 {
		t.Fatalf("rewrap %d: %v", n, err)
	}
	s4, err := keystore.New(ctx, open(t), wrapped("new", map[string]string{"new": "newer"}))
	if err != nil {
		t.Fatalf("after rewrap: %v", err)
	}
	if err := SignTimestamp(t, s4, gun, k); err != nil {
		t.Fatal(err)
	}
	if err := s4.DeleteKeys(ctx, gun); err != nil {
		t.Fatal(err)
	}
	if keys, _ := s4.ListKeys(ctx, gun); len(keys) != 0 {
		t.Fatalf("%d keys after delete", len(keys))
	}
}

// testEnsureKeyOnce has many callers, through two handles on one database
// (two replicas), ask for a GUN's first key at once: one key is created.
func testEnsureKeyOnce(t *testing.T, open Opener) {
	kr := Keyring(t, "default", map[string]string{"default": "pw"})
	var signers []*keystore.Signer
	for range 2 {
		s, err := keystore.New(context.Background(), open(t), keystore.NewWrapped(kr))
		if err != nil {
			t.Fatal(err)
		}
		signers = append(signers, s)
	}
	var wg sync.WaitGroup
	got := make([]string, 12)
	for i := range got {
		wg.Go(func() {
			k, err := signers[i%2].EnsureKey(context.Background(), gun, metadata.SNAPSHOT, signer.Ed25519)
			if err != nil {
				t.Error(err)
				return
			}
			got[i] = k.ID
		})
	}
	wg.Wait()
	keys, err := signers[0].ListKeys(context.Background(), gun)
	if err != nil || len(keys) != 1 {
		t.Fatalf("%d keys: %v", len(keys), err)
	}
	for _, id := range got {
		if id != keys[0].ID {
			t.Fatal("callers saw different keys")
		}
	}
}
