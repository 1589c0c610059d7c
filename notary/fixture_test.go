package notary

import (
	"context"
	"testing"
	"time"
)

var fixedNow = func() time.Time { return time.Date(2026, 12, 1, 20, 0, 0, 0, time.UTC) }

func TestQuick(t *testing.T) {
	for _, gun := range []string{"example.com/demo/app", "example.com/demo/feat", "registry.example.com/acme/old"} {
		r, err := Verify(context.Background(), ServerDir{"testdata"}, gun, Options{Anchor: Anchor{TOFU: true}, Now: fixedNow})
		if err != nil {
			t.Fatal(err)
		}
		for _, x := range r.Roles {
			t.Logf("%s %s %d tags %v", gun, x.Name, len(x.Targets), r.RootChain)
		}
	}
}

func TestQuickKeys(t *testing.T) {
	keys, err := ReadPrivateKeys("testdata/docker-trust-dir")
	if err != nil {
		t.Fatal(err)
	}
	pass := map[string]string{"root": "fixture-root-passphrase", "targets": "fixture-targets-passphrase", "snapshot": "fixture-snapshot-passphrase"}
	for _, k := range keys {
		s, err := k.Decrypt([]byte(pass[k.Role]))
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s %s %s %T", k.ID, k.Role, k.GUN, s.Public())
	}
}
