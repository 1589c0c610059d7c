package keystore_test

import (
	"context"
	"crypto"
	"errors"
	"io"
	"sync/atomic"
	"testing"
	"time"

	"github.com/secure-systems-lab/go-securesystemslib/cjson"
	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/signetdev/signet/signer"
	"github.com/signetdev/signet/signer/keystore"
)

// countingBackend counts the signatures its keys make.
type countingBackend struct {
	keystore.Backend
	n *atomic.Int64
}

func (b countingBackend) Create(ctx context.Context, r *keystore.Record) (crypto.Signer, error) {
	k, err := b.Backend.Create(ctx, r)
	return countingKey{k, b.n}, err
}

func (b countingBackend) Load(ctx context.Context, r *keystore.Record) (crypto.Signer, error) {
	k, err := b.Backend.Load(ctx, r)
	return countingKey{k, b.n}, err
}

type countingKey struct {
	crypto.Signer
	n *atomic.Int64
}

func (k countingKey) Sign(rand io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	k.n.Add(1)
	return k.Signer.Sign(rand, digest, opts)
}

func canonical(t *testing.T, v any) []byte {
	t.Helper()
	b, err := cjson.EncodeCanonical(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestSignBatch: a publish's snapshot and timestamp signed in one call
// verify with go-tuf; a batch with one bad payload (wrong role, another
// GUN's key, a key of the other role, too many or none) is refused whole:
// no key signs anything, and the error names the payload.
func TestSignBatch(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	var signed atomic.Int64
	s, err := keystore.New(ctx, keystore.NewMemoryStore(), countingBackend{wrapped(t, "a", map[string]string{"a": "pw"}), &signed})
	if err != nil {
		t.Fatal(err)
	}
	ts, err := s.EnsureKey(ctx, gun, metadata.TIMESTAMP, signer.Ed25519)
	if err != nil {
		t.Fatal(err)
	}
	snap, err := s.EnsureKey(ctx, gun, metadata.SNAPSHOT, signer.ECDSAP256)
	if err != nil {
		t.Fatal(err)
	}
	other, err := s.EnsureKey(ctx, "registry.example.com/other", metadata.TIMESTAMP, signer.Ed25519)
	if err != nil {
		t.Fatal(err)
	}
	snapMeta := metadata.Snapshot(time.Now().Add(time.Hour))
	tsMeta := metadata.Timestamp(time.Now().Add(time.Hour))
	snapPayload, tsPayload := canonical(t, snapMeta.Signed), canonical(t, tsMeta.Signed)
	good := []signer.SignRequest{
		{GUN: gun, Role: metadata.SNAPSHOT, KeyID: snap.ID, Payload: snapPayload},
		{GUN: gun, Role: metadata.TIMESTAMP, KeyID: ts.ID, Payload: tsPayload},
	}
	sigs, err := s.SignBatch(ctx, good)
	if err != nil {
		t.Fatal(err)
	}
	if len(sigs) != 2 || signed.Load() != 2 {
		t.Fatalf("%d signatures returned, %d made", len(sigs), signed.Load())
	}
	root := metadata.Root(time.Now().Add(time.Hour))
	for role, k := range map[string]*signer.KeyInfo{metadata.SNAPSHOT: snap, metadata.TIMESTAMP: ts} {
		if err := root.Signed.AddKey(k.Public, role); err != nil {
			t.Fatal(err)
		}
	}
	snapMeta.Signatures = []metadata.Signature{{KeyID: snap.ID, Signature: sigs[0]}}
	tsMeta.Signatures = []metadata.Signature{{KeyID: ts.ID, Signature: sigs[1]}}
	if err := root.VerifyDelegate(metadata.SNAPSHOT, snapMeta); err != nil {
		t.Errorf("snapshot signature: %v", err)
	}
	if err := root.VerifyDelegate(metadata.TIMESTAMP, tsMeta); err != nil {
		t.Errorf("timestamp signature: %v", err)
	}

	targetsPayload := canonical(t, metadata.Targets(time.Now().Add(time.Hour)).Signed)
	with := func(last signer.SignRequest) []signer.SignRequest { return []signer.SignRequest{good[0], last} }
	for name, tc := range map[string]struct {
		reqs  []signer.SignRequest
		want  error
		index int
	}{
		"targets payload for the timestamp key":  {with(signer.SignRequest{GUN: gun, Role: metadata.TIMESTAMP, KeyID: ts.ID, Payload: targetsPayload}), signer.ErrRoleMismatch, 1},
		"snapshot payload for the timestamp key": {with(signer.SignRequest{GUN: gun, Role: metadata.TIMESTAMP, KeyID: ts.ID, Payload: snapPayload}), signer.ErrRoleMismatch, 1},
		"targets role":                           {with(signer.SignRequest{GUN: gun, Role: metadata.TARGETS, KeyID: ts.ID, Payload: targetsPayload}), signer.ErrUnsupportedRole, 1},
		"snapshot key named as timestamp":        {with(signer.SignRequest{GUN: gun, Role: metadata.TIMESTAMP, KeyID: snap.ID, Payload: tsPayload}), signer.ErrKeyNotFound, 1},
		"another repository's key":               {with(signer.SignRequest{GUN: gun, Role: metadata.TIMESTAMP, KeyID: other.ID, Payload: tsPayload}), signer.ErrKeyNotFound, 1},
		"this key for another repository":        {with(signer.SignRequest{GUN: "registry.example.com/other", Role: metadata.TIMESTAMP, KeyID: ts.ID, Payload: tsPayload}), signer.ErrKeyNotFound, 1},
		"unknown key":                            {with(signer.SignRequest{GUN: gun, Role: metadata.TIMESTAMP, KeyID: "00ff", Payload: tsPayload}), signer.ErrKeyNotFound, 1},
		"no key ID":                              {with(signer.SignRequest{GUN: gun, Role: metadata.TIMESTAMP, Payload: tsPayload}), signer.ErrKeyNotFound, 1},
		"empty batch":                            {nil, signer.ErrBatchSize, -1},
		"too many":                               {make([]signer.SignRequest, signer.MaxBatch+1), signer.ErrBatchSize, -1},
	} {
		t.Run(name, func(t *testing.T) {
			before := signed.Load()
			sigs, err := s.SignBatch(ctx, tc.reqs)
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			if sigs != nil {
				t.Errorf("signatures returned with a refusal: %d", len(sigs))
			}
			if n := signed.Load() - before; n != 0 {
				t.Errorf("%d signatures made in a refused batch", n)
			}
			var be *signer.BatchError
			if tc.index >= 0 && (!errors.As(err, &be) || be.Index != tc.index) {
				t.Errorf("err = %v, want a BatchError for payload %d", err, tc.index)
			}
		})
	}
}
