package keywrap_test

import (
	"bytes"
	"errors"
	"testing"

	"github.com/signetdev/signet/signer/keywrap"
)

var cheap = keywrap.Params{Time: 1, MemoryKiB: 64, Threads: 1}

func ring(t testing.TB, primary string, pp map[string]string) *keywrap.Keyring {
	t.Helper()
	m := map[string][]byte{}
	for a, p := range pp {
		m[a] = []byte(p)
	}
	k, err := keywrap.NewKeyring(primary, m, cheap)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestWrapUnwrap(t *testing.T) {
	t.Parallel()
	secret := []byte("private key bytes")
	aad := []byte("keyid|ed25519|gun|timestamp")
	k := ring(t, "default", map[string]string{"default": "correct horse"})
	w, err := k.Wrap(secret, aad)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(w.Ciphertext, secret) {
		t.Fatal("plaintext in ciphertext")
	}
	got, err := k.Unwrap(w, aad)
	if err != nil || !bytes.Equal(got, secret) {
		t.Fatalf("round trip: %q %v", got, err)
	}

	for _, tc := range []struct {
		name string
		ring *keywrap.Keyring
		w    func() *keywrap.Wrapped
		aad  []byte
		want error
	}{
		{"wrong passphrase", ring(t, "default", map[string]string{"default": "wrong"}), func() *keywrap.Wrapped { return w }, aad, keywrap.ErrDecrypt},
		{"swapped row", k, func() *keywrap.Wrapped { return w }, []byte("other|ed25519|gun|timestamp"), keywrap.ErrDecrypt},
		{"tampered", k, func() *keywrap.Wrapped {
			c := *w
			c.Ciphertext = append([]byte{c.Ciphertext[0] ^ 1}, c.Ciphertext[1:]...)
			return &c
		}, aad, keywrap.ErrDecrypt},
		{"unknown alias", ring(t, "new", map[string]string{"new": "x"}), func() *keywrap.Wrapped { return w }, aad, keywrap.ErrUnknownAlias},
	} {
		if _, err := tc.ring.Unwrap(tc.w(), tc.aad); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}

	// Passphrase rotation: a keyring that knows both aliases reads the old
	// record and wraps new ones under the new alias.
	both := ring(t, "new", map[string]string{"default": "correct horse", "new": "battery staple"})
	pt, err := both.Unwrap(w, aad)
	if err != nil {
		t.Fatal(err)
	}
	w2, err := both.Wrap(pt, aad)
	if err != nil || w2.Alias != "new" {
		t.Fatalf("rewrap: %v %v", w2, err)
	}
	if _, err := ring(t, "new", map[string]string{"new": "battery staple"}).Unwrap(w2, aad); err != nil {
		t.Fatal(err)
	}
}

func FuzzUnwrap(f *testing.F) {
	k := ring(f, "default", map[string]string{"default": "pw"})
	w, err := k.Wrap([]byte("secret"), nil)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(w.Salt, w.Nonce, w.Ciphertext, uint32(1), uint32(64))
	f.Fuzz(func(t *testing.T, salt, nonce, ct []byte, time, mem uint32) {
		rec := &keywrap.Wrapped{Alias: "default", KDF: keywrap.KDFArgon2id, Params: keywrap.Params{Time: time % 3, MemoryKiB: mem % 256, Threads: 1}, Salt: salt, Nonce: nonce, Ciphertext: ct}
		_, _ = k.Unwrap(rec, nil) // must not panic
	})
}
