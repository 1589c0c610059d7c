package keystore_test

import (
	"context"
	"errors"
	"testing"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/signetdev/signet/signer"
	"github.com/signetdev/signet/signer/keystore"
	"github.com/signetdev/signet/signer/keystore/keystoretest"
)

const gun = "registry.example.com/app"

func wrapped(t *testing.T, primary string, pp map[string]string) keystore.Backend {
	return keystore.NewWrapped(keystoretest.Keyring(t, primary, pp))
}

func TestSignaturesVerifyWithGoTUF(t *testing.T) {
	t.Parallel()
	for _, alg := range []signer.Algorithm{signer.Ed25519, signer.ECDSAP256} {
		s := keystore.NewMemory()
		k, err := s.EnsureKey(context.Background(), gun, metadata.TIMESTAMP, alg)
		if err != nil {
			t.Fatal(err)
		}
		if err := keystoretest.SignTimestamp(t, s, gun, k); err != nil {
			t.Errorf("%s: %v", alg, err)
		}
	}
}

func TestRoleBinding(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := keystore.NewMemory()
	ts, err := s.EnsureKey(ctx, gun, metadata.TIMESTAMP, signer.Ed25519)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.EnsureKey(ctx, "other.example.com/app", metadata.TIMESTAMP, signer.Ed25519); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, gun, role, payload string
		want                     error
	}{
		{"targets payload", gun, metadata.TIMESTAMP, `{"_type":"targets","version":9}`, signer.ErrRoleMismatch},
		{"root payload", gun, metadata.TIMESTAMP, `{"_type":"root"}`, signer.ErrRoleMismatch},
		{"snapshot payload", gun, metadata.TIMESTAMP, `{"_type":"snapshot"}`, signer.ErrRoleMismatch},
		{"asked as snapshot key", gun, metadata.SNAPSHOT, `{"_type":"snapshot"}`, signer.ErrKeyNotFound},
		{"asked as targets key", gun, metadata.TARGETS, `{"_type":"targets"}`, signer.ErrUnsupportedRole},
		{"another GUN's timestamp", "other.example.com/app", metadata.TIMESTAMP, `{"_type":"timestamp"}`, signer.ErrKeyNotFound},
	} {
		if _, err := s.Sign(ctx, tc.gun, tc.role, ts.ID, []byte(tc.payload)); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
	if _, err := s.EnsureKey(ctx, gun, metadata.TARGETS, signer.Ed25519); !errors.Is(err, signer.ErrUnsupportedRole) {
		t.Errorf("targets key created: %v", err)
	}
}

// TestMemoryStore: the memory store passes the conformance suite that the
// SQL stores run (keystore/sqlite, keystore/postgres).
func TestMemoryStore(t *testing.T) {
	t.Parallel()
	keystoretest.Run(t, func(t *testing.T) keystoretest.Opener {
		st := keystore.NewMemoryStore()
		return func(*testing.T) keystore.Store { return st }
	})
}
