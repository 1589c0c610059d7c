package keywrap_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
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
	aad := []byte("keyid\x00ed25519\x00gun\x00timestamp")
	k := ring(t, "default", map[string]string{"default": "correct horse"})
	w, err := k.Wrap(secret, aad)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(w.Ciphertext, secret) {
		t.Fatal("plaintext in ciphertext")
	}
	// Records go through storage as JSON.
	raw, err := json.Marshal(w)
	if err != nil {
		t.Fatal(err)
	}
	var stored keywrap.Wrapped
	if err := json.Unmarshal(raw, &stored); err != nil {
		t.Fatal(err)
	}
	got, err := k.Unwrap(&stored, aad)
	if err != nil || !bytes.Equal(got, secret) {
		t.Fatalf("round trip: %q %v", got, err)
	}

	edit := func(f func(*keywrap.Wrapped)) *keywrap.Wrapped {
		c := *w
		c.Ciphertext = bytes.Clone(w.Ciphertext)
		f(&c)
		return &c
	}
	for _, tc := range []struct {
		name string
		ring *keywrap.Keyring
		w    *keywrap.Wrapped
		aad  []byte
		want error
	}{
		{"wrong passphrase", ring(t, "default", map[string]string{"default": "wrong"}), w, aad, keywrap.ErrDecrypt},
		{"swapped row", k, w, []byte("other\x00ed25519\x00gun\x00timestamp"), keywrap.ErrDecrypt},
		{"no aad", k, w, nil, keywrap.ErrDecrypt},
		{"tampered ciphertext", k, edit(func(c *keywrap.Wrapped) { c.Ciphertext[0] ^= 1 }), aad, keywrap.ErrDecrypt},
		{"truncated ciphertext", k, edit(func(c *keywrap.Wrapped) { c.Ciphertext = c.Ciphertext[:3] }), aad, keywrap.ErrDecrypt},
		{"other salt", k, edit(func(c *keywrap.Wrapped) { c.Salt = bytes.Repeat([]byte{1}, 16) }), aad, keywrap.ErrDecrypt},
		{"short nonce", k, edit(func(c *keywrap.Wrapped) { c.Nonce = c.Nonce[:4] }), aad, keywrap.ErrDecrypt},
		{"other KDF", k, edit(func(c *keywrap.Wrapped) { c.KDF = "scrypt" }), aad, keywrap.ErrDecrypt},
		{"costly params", k, edit(func(c *keywrap.Wrapped) { c.Params.MemoryKiB = 1 << 30 }), aad, keywrap.ErrDecrypt},
		{"nil record", k, nil, aad, keywrap.ErrDecrypt},
		{"unknown alias", ring(t, "new", map[string]string{"new": "x"}), w, aad, keywrap.ErrUnknownAlias},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if pt, err := tc.ring.Unwrap(tc.w, tc.aad); !errors.Is(err, tc.want) || pt != nil {
				t.Fatalf("got %q, %v; want %v", pt, err, tc.want)
			}
		})
	}
}

// TestRotatePassphrase: a keyring that knows both aliases reads the old
// record and wraps new ones under the new alias, which the new passphrase
// alone then reads.
func TestRotatePassphrase(t *testing.T) {
	t.Parallel()
	aad := []byte("row")
	w, err := ring(t, "default", map[string]string{"default": "correct horse"}).Wrap([]byte("secret"), aad)
	if err != nil {
		t.Fatal(err)
	}
	both := ring(t, "new", map[string]string{"default": "correct horse", "new": "battery staple"})
	pt, err := both.Unwrap(w, aad)
	if err != nil {
		t.Fatal(err)
	}
	w2, err := both.Wrap(pt, aad)
	if err != nil || w2.Alias != "new" {
		t.Fatalf("rewrap: %+v %v", w2, err)
	}
	if _, err := ring(t, "new", map[string]string{"new": "battery staple"}).Unwrap(w2, aad); err != nil {
		t.Fatal(err)
	}
}

func TestNewKeyring(t *testing.T) {
	t.Parallel()
	pp := map[string][]byte{"default": []byte("pw")}
	for _, tc := range []struct {
		name    string
		primary string
		p       keywrap.Params
		ok      bool
	}{
		{"default params", "default", keywrap.DefaultParams(), true},
		{"cheap params", "default", cheap, true},
		{"no primary passphrase", "other", cheap, false},
		{"zero time", "default", keywrap.Params{MemoryKiB: 64, Threads: 1}, false},
		{"tiny memory", "default", keywrap.Params{Time: 1, MemoryKiB: 4, Threads: 1}, false},
		{"zero threads", "default", keywrap.Params{Time: 1, MemoryKiB: 64}, false},
		{"more than Unwrap accepts", "default", keywrap.Params{Time: 101, MemoryKiB: 64, Threads: 1}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if _, err := keywrap.NewKeyring(tc.primary, pp, tc.p); (err == nil) != tc.ok {
				t.Fatalf("err = %v, want ok=%v", err, tc.ok)
			}
		})
	}
}

func TestKeyringPrintsNoSecret(t *testing.T) {
	t.Parallel()
	const pass = "hunter2-passphrase"
	k := ring(t, "default", map[string]string{"default": pass})
	if _, err := k.Wrap([]byte("x"), nil); err != nil { // derives and caches a KEK
		t.Fatal(err)
	}
	var buf bytes.Buffer
	slog.New(slog.NewTextHandler(&buf, nil)).Info("ring", "kr", k)
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("ring", "kr", k)
	for _, s := range []string{fmt.Sprint(k), fmt.Sprintf("%+v", k), fmt.Sprintf("%#v", k), buf.String()} {
		if strings.Contains(s, pass) || strings.Contains(s, fmt.Sprint([]byte(pass))) || strings.Contains(s, fmt.Sprintf("%#v", []byte(pass))) {
			t.Errorf("secret printed: %s", s)
		}
	}
}

// FuzzUnwrap feeds Unwrap records as they come out of storage (JSON), which
// is untrusted: it must never panic nor return plaintext with an error.
func FuzzUnwrap(f *testing.F) {
	k := ring(f, "default", map[string]string{"default": "pw"})
	w, err := k.Wrap([]byte("secret"), []byte("row"))
	if err != nil {
		f.Fatal(err)
	}
	good, err := json.Marshal(w)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good, []byte("row"))
	f.Add(good, []byte("other row"))
	f.Add([]byte(`{"alias":"default","kdf":"argon2id","params":{"t":1,"m":8,"p":1},"salt":"AAAAAAAAAAA=","nonce":"","ciphertext":""}`), []byte(nil))
	f.Fuzz(func(t *testing.T, rec, aad []byte) {
		var w keywrap.Wrapped
		if json.Unmarshal(rec, &w) != nil {
			return
		}
		if w.Params.MemoryKiB > 1024 || w.Params.Time > 2 || w.Params.Threads > 4 {
			return // valid but too slow for a fuzz loop
		}
		pt, err := k.Unwrap(&w, aad)
		if err != nil && pt != nil {
			t.Fatalf("plaintext with error %v", err)
		}
		if err == nil && !bytes.Equal(pt, []byte("secret")) {
			t.Fatalf("decrypted %q", pt)
		}
	})
}
