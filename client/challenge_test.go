package client_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	josejwt "github.com/go-jose/go-jose/v4/jwt"
	"github.com/google/go-containerregistry/pkg/authn"

	"github.com/signetdev/signet/client"
	"github.com/signetdev/signet/server"
	"github.com/signetdev/signet/server/auth"
	"github.com/signetdev/signet/server/store/memstore"
	"github.com/signetdev/signet/signer/keystore"
)

type staticKeychain struct{ user, pass string }

func (k staticKeychain) Resolve(authn.Resource) (authn.Authenticator, error) {
	return authn.FromConfig(authn.AuthConfig{Username: k.user, Password: k.pass}), nil
}

// TestFollowsRegistryChallenge runs a token service and a server that
// demands its tokens: the client follows the challenge with the registry's
// credentials and signs and resolves; with wrong credentials it cannot.
func TestFollowsRegistryChallenge(t *testing.T) {
	t.Parallel()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	// The token service shares the server's host (go-containerregistry
	// refuses loopback realms on other hosts).
	mux := http.NewServeMux()
	hs := httptest.NewServer(mux)
	defer hs.Close()
	mux.HandleFunc("/token", func(w http.ResponseWriter, r *http.Request) {
		user, pass, ok := r.BasicAuth()
		if !ok || user != "dev" || pass != "secret" {
			http.Error(w, "bad credentials", http.StatusUnauthorized)
			return
		}
		var access []map[string]any
		for _, sc := range r.URL.Query()["scope"] {
			parts := strings.SplitN(sc, ":", 3)
			access = append(access, map[string]any{"type": parts[0], "name": parts[1], "actions": strings.Split(parts[2], ",")})
		}
		sig, _ := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: key}, nil)
		tok, _ := josejwt.Signed(sig).Claims(josejwt.Claims{Issuer: "auth.test", Audience: josejwt.Audience{r.URL.Query().Get("service")},
			Expiry: josejwt.NewNumericDate(time.Now().Add(time.Hour))}).Claims(map[string]any{"access": access}).Serialize()
		json.NewEncoder(w).Encode(map[string]any{"token": tok, "expires_in": 3600})
	})
	jwks, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: key.Public()}}})
	keysFile := filepath.Join(t.TempDir(), "jwks.json")
	if err := os.WriteFile(keysFile, jwks, 0o600); err != nil {
		t.Fatal(err)
	}
	reg, err := auth.NewRegistry(auth.RegistryConfig{Realm: hs.URL + "/token", Service: "signet.test", Issuer: "auth.test", Keys: keysFile, AuthReads: true})
	if err != nil {
		t.Fatal(err)
	}
	mux.Handle("/", server.New(memstore.New(), keystore.NewMemory(), server.WithSweepInterval(0), server.WithAuthorizer(reg)).Handler())

	ctx := context.Background()
	dev := newClient(t, hs.URL, t.TempDir(), func(o *client.Options) { o.Keychain = staticKeychain{"dev", "secret"} })
	root, err := dev.Init(ctx, gun)
	if err != nil {
		t.Fatalf("init through the token service: %v", err)
	}
	if _, err := dev.Publish(ctx, gun, []client.Change{{Tag: "1.0", Digest: d10, Size: 1}}); err != nil {
		t.Fatal(err)
	}
	if got, err := dev.Resolve(ctx, gun+":1.0"); err != nil || got.Digest != d10 {
		t.Fatalf("resolve: %v %v", got, err)
	}
	intruder := newClient(t, hs.URL, t.TempDir(), func(o *client.Options) { o.Keychain = staticKeychain{"dev", "wrong"} })
	if err := intruder.PinRoot(gun, root); err != nil {
		t.Fatal(err)
	}
	if _, err := intruder.Resolve(ctx, gun+":1.0"); err == nil {
		t.Fatal("resolved with wrong registry credentials")
	}
	anonymous := newClient(t, hs.URL, t.TempDir())
	if err := anonymous.PinRoot(gun, root); err != nil {
		t.Fatal(err)
	}
	if _, err := anonymous.Resolve(ctx, gun+":1.0"); err == nil || errors.Is(err, client.ErrNotSigned) {
		t.Fatalf("anonymous resolve against --auth-reads: %v", err)
	}
}
