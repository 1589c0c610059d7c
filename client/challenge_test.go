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
	"sync"
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
	// refuses loopback realms on other hosts); it is https, as a realm that
	// receives registry credentials must be, and configured as the
	// registry's token service (RegistryAuthHosts).
	mux := http.NewServeMux()
	hs := httptest.NewTLSServer(mux)
	defer hs.Close()
	tlsClient := func(o *client.Options) {
		o.HTTPClient = hs.Client()
		o.RegistryAuthHosts = []string{strings.TrimPrefix(hs.URL, "https://")}
	}
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
	dev := newClient(t, hs.URL, t.TempDir(), tlsClient, func(o *client.Options) { o.Keychain = staticKeychain{"dev", "secret"} })
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
	intruder := newClient(t, hs.URL, t.TempDir(), tlsClient, func(o *client.Options) { o.Keychain = staticKeychain{"dev", "wrong"} })
	if err := intruder.PinRoot(gun, root); err != nil {
		t.Fatal(err)
	}
	if _, err := intruder.Resolve(ctx, gun+":1.0"); err == nil {
		t.Fatal("resolved with wrong registry credentials")
	}
	anonymous := newClient(t, hs.URL, t.TempDir(), tlsClient)
	if err := anonymous.PinRoot(gun, root); err != nil {
		t.Fatal(err)
	}
	if _, err := anonymous.Resolve(ctx, gun+":1.0"); err == nil || errors.Is(err, client.ErrNotSigned) {
		t.Fatalf("anonymous resolve against --auth-reads: %v", err)
	}
}

// TestRegistryCredentialsStayWithTheRegistry: a trust server names the
// token realm, so a hostile one could name itself (over http, or over https
// on its own host) or ask for Basic credentials, and collect the registry's
// password. The client sends the registry's credentials only to an https
// realm on the registry's host or a configured one.
func TestRegistryCredentialsStayWithTheRegistry(t *testing.T) {
	t.Parallel()
	type seen struct {
		mu    sync.Mutex
		basic []string
	}
	hostile := func(tls bool, challenge func(base string) string) (*httptest.Server, *seen) {
		s := &seen{}
		mux := http.NewServeMux()
		var hs *httptest.Server
		record := func(r *http.Request) {
			if u, p, ok := r.BasicAuth(); ok {
				s.mu.Lock()
				s.basic = append(s.basic, r.URL.Path+" "+u+":"+p)
				s.mu.Unlock()
			}
		}
		mux.HandleFunc("/token", func(w http.ResponseWriter, r *http.Request) {
			record(r)
			if _, _, ok := r.BasicAuth(); !ok {
				http.Error(w, "credentials required", http.StatusUnauthorized)
				return
			}
			json.NewEncoder(w).Encode(map[string]any{"token": "tok", "expires_in": 3600})
		})
		mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
			record(r)
			if r.Header.Get("Authorization") == "" || strings.HasPrefix(r.Header.Get("Authorization"), "Basic ") {
				w.Header().Set("WWW-Authenticate", challenge(hs.URL))
				http.Error(w, "log in", http.StatusUnauthorized)
				return
			}
			json.NewEncoder(w).Encode(map[string]string{"keytype": "ed25519"})
		})
		if tls {
			hs = httptest.NewTLSServer(mux)
		} else {
			hs = httptest.NewServer(mux)
		}
		t.Cleanup(hs.Close)
		return hs, s
	}
	bearer := func(base string) string { return `Bearer realm="` + base + `/token",service="signet"` }
	for _, tc := range []struct {
		name      string
		tls       bool
		challenge func(string) string
		configure bool // the realm's host is configured as the registry's token service
		wantSent  bool
	}{
		{name: "http realm on the trust server", challenge: bearer},
		{name: "https realm on the trust server", tls: true, challenge: bearer},
		{name: "basic challenge", tls: true, challenge: func(string) string { return `Basic realm="signet"` }},
		{name: "http realm even if configured", challenge: bearer, configure: true},
		{name: "configured https realm", tls: true, challenge: bearer, configure: true, wantSent: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			hs, s := hostile(tc.tls, tc.challenge)
			c := newClient(t, hs.URL, t.TempDir(), func(o *client.Options) {
				o.HTTPClient = hs.Client()
				o.Keychain = staticKeychain{"dev", "registry-password"}
				if tc.configure {
					o.RegistryAuthHosts = []string{strings.TrimPrefix(strings.TrimPrefix(hs.URL, "https://"), "http://")}
				}
			})
			_, err := c.ServerKey(context.Background(), gun, "timestamp")
			s.mu.Lock()
			defer s.mu.Unlock()
			if tc.wantSent {
				if len(s.basic) != 1 || s.basic[0] != "/token dev:registry-password" {
					t.Fatalf("credentials to the configured realm: %v (err %v)", s.basic, err)
				}
				return
			}
			if len(s.basic) > 0 {
				t.Fatalf("registry credentials were sent: %v", s.basic)
			}
			if err == nil {
				t.Fatal("no error although the token service got no credentials")
			}
			if tc.name != "basic challenge" && !strings.Contains(err.Error(), "registry credentials are sent only to an https token service") {
				t.Fatalf("the error does not say why no credentials were sent: %v", err)
			}
		})
	}
}

// TestRegistryTokenStaysWithTheServer: the token the realm hands out goes
// to the trust server's host only, not to a host it redirects to.
func TestRegistryTokenStaysWithTheServer(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var leaked []string
	other := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		leaked = append(leaked, r.Header.Get("Authorization"))
		mu.Unlock()
		json.NewEncoder(w).Encode(map[string]string{"keytype": "ed25519"})
	}))
	t.Cleanup(other.Close)
	mux := http.NewServeMux()
	hs := httptest.NewTLSServer(mux)
	t.Cleanup(hs.Close)
	mux.HandleFunc("/token", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(map[string]any{"token": "server-token", "expires_in": 3600})
	})
	var sawToken bool
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer server-token" {
			w.Header().Set("WWW-Authenticate", `Bearer realm="`+hs.URL+`/token",service="signet"`)
			http.Error(w, "log in", http.StatusUnauthorized)
			return
		}
		mu.Lock()
		sawToken = true
		mu.Unlock()
		http.Redirect(w, r, other.URL+r.URL.Path, http.StatusFound)
	})
	c := newClient(t, hs.URL, t.TempDir(), func(o *client.Options) {
		o.HTTPClient = hs.Client()
		o.Keychain = staticKeychain{"dev", "pw"}
		o.RegistryAuthHosts = []string{strings.TrimPrefix(hs.URL, "https://")}
	})
	if _, err := c.ServerKey(context.Background(), gun, "timestamp"); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if !sawToken || len(leaked) != 1 || leaked[0] != "" {
		t.Fatalf("token to the server: %v; Authorization at the other host: %q", sawToken, leaked)
	}
}
