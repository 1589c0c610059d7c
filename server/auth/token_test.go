package auth_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"io"
	"mime/multipart"
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

	"github.com/signetdev/signet/server"
	"github.com/signetdev/signet/server/auth"
	"github.com/signetdev/signet/server/store/memstore"
	"github.com/signetdev/signet/signer/keystore"
)

func TestScopes(t *testing.T) {
	t.Parallel()
	for _, bad := range []string{"push", "write:x/*", "pull:", ""} {
		if _, err := auth.ParseScope(bad); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
}

func TestTokens(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "tokens.json")
	_, pusher, err := auth.CreateToken(path, []string{"push:registry.example.com/team/*"}, time.Now(), time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	_, admin, err := auth.CreateToken(path, []string{"admin:*"}, time.Now(), time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	_, reader, err := auth.CreateToken(path, []string{"pull:registry.example.com/*"}, time.Now(), time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(path)
	for _, tok := range []string{pusher, admin, reader} {
		if bytes.Contains(data, []byte(tok)) || bytes.Contains(data, []byte(strings.TrimPrefix(tok, "sgt_"))) {
			t.Fatal("token stored in the clear")
		}
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Fatalf("token file mode %v", fi.Mode())
	}

	for _, authReads := range []bool{false, true} {
		tokens, err := auth.LoadTokens(path, authReads)
		if err != nil {
			t.Fatal(err)
		}
		srv := server.New(memstore.New(), keystore.NewMemory(), server.WithSweepInterval(0), server.WithAuthorizer(tokens))
		hs := httptest.NewServer(srv.Handler())
		do := func(method, path, token string, body []byte, ct string) (int, http.Header) {
			req, _ := http.NewRequest(method, hs.URL+path, bytes.NewReader(body))
			if token != "" {
				req.Header.Set("Authorization", "Bearer "+token)
			}
			if ct != "" {
				req.Header.Set("Content-Type", ct)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			return resp.StatusCode, resp.Header
		}
		var buf bytes.Buffer
		mw := multipart.NewWriter(&buf)
		w, _ := mw.CreateFormFile("files", "targets")
		w.Write([]byte("{}"))
		mw.Close()
		upload := buf.Bytes()
		team := "/v2/registry.example.com/team/app/_trust/tuf/"
		other := "/v2/registry.example.com/other/app/_trust/tuf/"
		readStatus := http.StatusNotFound // nothing published: the read itself is allowed
		if authReads {
			readStatus = http.StatusUnauthorized
		}
		for _, tc := range []struct {
			name, method, path, token string
			want                      int
		}{
			{"anonymous publish", http.MethodPost, team, "", http.StatusUnauthorized},
			{"unknown token", http.MethodPost, team, "sgt_nope", http.StatusUnauthorized},
			{"token for another GUN", http.MethodPost, other, pusher, http.StatusForbidden},
			{"reader publishes", http.MethodPost, team, reader, http.StatusForbidden},
			{"pusher publishes (reaches validation)", http.MethodPost, team, pusher, http.StatusBadRequest},
			{"pusher deletes", http.MethodDelete, team, pusher, http.StatusForbidden},
			{"admin deletes (nothing there)", http.MethodDelete, team, admin, http.StatusNotFound},
			// Creating a server key needs push: the answer says so (401
			// with the challenge, 403), never 404 "no such key".
			{"anonymous creates a key", http.MethodGet, team + "timestamp.key", "", http.StatusUnauthorized},
			{"unknown token creates a key", http.MethodGet, team + "timestamp.key", "sgt_nope", http.StatusUnauthorized},
			{"reader creates a key", http.MethodGet, team + "timestamp.key", reader, http.StatusForbidden},
			{"out-of-scope pusher creates a key", http.MethodGet, other + "snapshot.key", pusher, http.StatusForbidden},
			{"pusher creates a key", http.MethodGet, team + "timestamp.key", pusher, http.StatusOK},
			{"anonymous reads the existing key", http.MethodGet, team + "timestamp.key", "", map[bool]int{false: 200, true: 401}[authReads]},
			{"reader reads the existing key", http.MethodGet, team + "timestamp.key", reader, http.StatusOK},
			{"unknown token reads", http.MethodGet, team + "root.json", "sgt_nope", http.StatusUnauthorized},
			{"anonymous stages", http.MethodPost, "/v2/registry.example.com/team/app/_trust/staged/", "", http.StatusUnauthorized},
			{"reader stages", http.MethodPost, "/v2/registry.example.com/team/app/_trust/staged/", reader, http.StatusForbidden},
			{"anonymous approves", http.MethodPost, "/v2/registry.example.com/team/app/_trust/staged/abcd", "", http.StatusUnauthorized},
			{"reader withdraws", http.MethodDelete, "/v2/registry.example.com/team/app/_trust/staged/abcd", reader, http.StatusForbidden},
			{"anonymous rotates", http.MethodPost, team + "timestamp.key", "", http.StatusUnauthorized},
			{"pusher rotates", http.MethodPost, team + "timestamp.key", pusher, http.StatusForbidden},
			{"anonymous lists staged", http.MethodGet, "/v2/registry.example.com/team/app/_trust/staged/", "", map[bool]int{false: 200, true: 401}[authReads]},
			{"anonymous change feed", http.MethodGet, "/v2/_trust/changefeed", "", http.StatusUnauthorized},
			{"pusher change feed", http.MethodGet, "/v2/_trust/changefeed", pusher, http.StatusForbidden},
			{"admin change feed", http.MethodGet, "/v2/_trust/changefeed", admin, http.StatusOK},
			{"anonymous read", http.MethodGet, team + "timestamp.json", "", readStatus},
			{"reader reads", http.MethodGet, team + "root.json", reader, http.StatusNotFound},
		} {
			var body []byte
			var ct string
			if tc.method == http.MethodPost {
				body, ct = upload, mw.FormDataContentType()
			}
			code, hdr := do(tc.method, tc.path, tc.token, body, ct)
			if code != tc.want {
				t.Errorf("authReads=%v %s: %d, want %d", authReads, tc.name, code, tc.want)
			}
			if code == http.StatusUnauthorized && hdr.Get("WWW-Authenticate") != `Bearer realm="signet"` {
				t.Errorf("%s: challenge %q", tc.name, hdr.Get("WWW-Authenticate"))
			}
		}
		hs.Close()
	}
}

func TestScopeMatching(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "tokens.json")
	for _, tc := range []struct {
		scope, gun string
		ok         bool
	}{
		{"pull:registry.example.com/team/*", "registry.example.com/team/app", true},
		{"pull:registry.example.com/team/*", "registry.example.com/team/sub/app", true},
		{"pull:registry.example.com/team/*", "registry.example.com/teams/app", false},
		{"pull:registry.example.com/team/app", "registry.example.com/team/app", true},
		{"pull:registry.example.com/team/app", "registry.example.com/team/app2", false},
		{"pull:*/app", "registry.example.com/team/app", true},
		{"pull:r*m/*p", "registry.example.com/team/app", true},
		{"pull:r*x/*", "registry.example.com/team/app", false},
	} {
		_, tok, err := auth.CreateToken(path, []string{tc.scope}, time.Now(), time.Time{})
		if err != nil {
			t.Fatal(err)
		}
		tokens, err := auth.LoadTokens(path, true)
		if err != nil {
			t.Fatal(err)
		}
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.Header.Set("Authorization", "Bearer "+tok)
		err = tokens.Authorize(r.Context(), r, tc.gun, auth.ActionPull)
		if (err == nil) != tc.ok {
			t.Errorf("%s on %s: %v", tc.scope, tc.gun, err)
		}
	}
}

func TestRegistryTokens(t *testing.T) {
	t.Parallel()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	jwk := jose.JSONWebKey{Key: key.Public(), KeyID: "k1", Algorithm: string(jose.ES256)}
	set, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{jwk}})
	keysFile := filepath.Join(t.TempDir(), "jwks.json")
	if err := os.WriteFile(keysFile, set, 0o600); err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	reg, err := auth.NewRegistry(auth.RegistryConfig{Realm: "https://auth.example.com/token", Service: "notary.example.com", Issuer: "auth.example.com", Keys: keysFile, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	mint := func(signKey *ecdsa.PrivateKey, iss, aud string, exp time.Time, access []map[string]any) string {
		sig, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: signKey, KeyID: "k1"}}, nil)
		if err != nil {
			t.Fatal(err)
		}
		cl := josejwt.Claims{Issuer: iss, Audience: josejwt.Audience{aud}, IssuedAt: josejwt.NewNumericDate(now.Add(-time.Minute))}
		if !exp.IsZero() {
			cl.Expiry = josejwt.NewNumericDate(exp)
		}
		tok, err := josejwt.Signed(sig).Claims(cl).
			Claims(map[string]any{"access": access}).Serialize()
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	gun := "registry.example.com/team/app"
	push := []map[string]any{{"type": "repository", "name": gun, "actions": []string{"push", "pull"}}}
	for _, tc := range []struct {
		name   string
		token  string
		gun    string
		action auth.Action
		want   int
	}{
		{"no token", "", gun, auth.ActionPush, 401},
		{"right scope", mint(key, "auth.example.com", "notary.example.com", now.Add(30*time.Minute), push), gun, auth.ActionPush, 0},
		{"another GUN", mint(key, "auth.example.com", "notary.example.com", now.Add(30*time.Minute), push), "registry.example.com/other", auth.ActionPush, 403},
		{"push is not delete", mint(key, "auth.example.com", "notary.example.com", now.Add(30*time.Minute), push), gun, auth.ActionAdmin, 403},
		{"no expiry", mint(key, "auth.example.com", "notary.example.com", time.Time{}, push), gun, auth.ActionPush, 401},
		{"valid for a day", mint(key, "auth.example.com", "notary.example.com", now.Add(24*time.Hour), push), gun, auth.ActionPush, 401},
		{"expired", mint(key, "auth.example.com", "notary.example.com", now.Add(-time.Hour), push), gun, auth.ActionPush, 401},
		{"wrong issuer", mint(key, "evil.example.com", "notary.example.com", now.Add(30*time.Minute), push), gun, auth.ActionPush, 401},
		{"wrong audience", mint(key, "auth.example.com", "other.example.com", now.Add(time.Hour), push), gun, auth.ActionPush, 401},
		{"bad signature", mint(other, "auth.example.com", "notary.example.com", now.Add(30*time.Minute), push), gun, auth.ActionPush, 401},
		{"catalog for the change feed", mint(key, "auth.example.com", "notary.example.com", now.Add(30*time.Minute), []map[string]any{{"type": "registry", "name": "catalog", "actions": []string{"*"}}}), "", auth.ActionAdmin, 0},
		{"anonymous read", "", gun, auth.ActionPull, 0},
		{"read with an expired token", mint(key, "auth.example.com", "notary.example.com", now.Add(-time.Hour), push), gun, auth.ActionPull, 401},
		{"read with a push token", mint(key, "auth.example.com", "notary.example.com", now.Add(30*time.Minute), push), gun, auth.ActionPull, 0},
	} {
		r := httptest.NewRequest(http.MethodPost, "/", nil)
		if tc.token != "" {
			r.Header.Set("Authorization", "Bearer "+tc.token)
		}
		err := reg.Authorize(r.Context(), r, tc.gun, tc.action)
		got := 0
		var ae *auth.AuthError
		if errors.As(err, &ae) {
			got = ae.Status
		} else if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if got != tc.want {
			t.Errorf("%s: status %d (%v), want %d", tc.name, got, err, tc.want)
		}
		if got == 401 && tc.action == auth.ActionPush && ae.Challenge != `Bearer realm="https://auth.example.com/token",service="notary.example.com",scope="repository:`+gun+`:push,pull"` {
			t.Errorf("%s: challenge %s", tc.name, ae.Challenge)
		}
	}
	// The principal staged changes record: the token's subject.
	sig, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: key, KeyID: "k1"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for sub, want := range map[string]string{"ci-bot": "registry:ci-bot", "": ""} {
		tok, err := josejwt.Signed(sig).Claims(josejwt.Claims{Issuer: "auth.example.com", Subject: sub, Audience: josejwt.Audience{"notary.example.com"},
			Expiry: josejwt.NewNumericDate(now.Add(10 * time.Minute)), IssuedAt: josejwt.NewNumericDate(now)}).Serialize()
		if err != nil {
			t.Fatal(err)
		}
		r := httptest.NewRequest(http.MethodPost, "/", nil)
		r.Header.Set("Authorization", "Bearer "+tok)
		if got := reg.Principal(r); got != want {
			t.Errorf("subject %q: principal %q, want %q", sub, got, want)
		}
	}
	if got := reg.Principal(httptest.NewRequest(http.MethodPost, "/", nil)); got != "" {
		t.Errorf("anonymous principal %q", got)
	}
}

// TestTokenExpiryAndRevocation over HTTP: a token works until its expiry,
// and a revoked token stops working in the running server without a
// restart; a token file broken after start refuses every token.
func TestTokenExpiryAndRevocation(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "tokens.json")
	now := time.Now()
	var mu sync.Mutex
	lockedClock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	shortID, short, err := auth.CreateToken(path, []string{"admin:*"}, now, now.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	keepID, keep, err := auth.CreateToken(path, []string{"admin:*"}, now, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	revokeID, revoked, err := auth.CreateToken(path, []string{"admin:*"}, now, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := auth.CreateToken(path, []string{"admin:*"}, now, now.Add(-time.Minute)); err == nil {
		t.Fatal("created an already expired token")
	}
	tokens, err := auth.LoadTokens(path, false, auth.WithTokenClock(lockedClock))
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(server.New(memstore.New(), keystore.NewMemory(), server.WithSweepInterval(0), server.WithAuthorizer(tokens)).Handler())
	defer hs.Close()
	feed := func(token string) (int, string) {
		req, _ := http.NewRequest(http.MethodGet, hs.URL+"/v2/_trust/changefeed", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	for _, tok := range []string{short, keep, revoked} {
		if code, body := feed(tok); code != 200 {
			t.Fatalf("fresh token: %d %s", code, body)
		}
	}
	mu.Lock()
	now = now.Add(time.Hour)
	mu.Unlock()
	if code, body := feed(short); code != http.StatusUnauthorized || !strings.Contains(body, "token "+shortID+" expired") {
		t.Fatalf("expired token: %d %s", code, body)
	}
	if err := auth.RevokeTokens(path, []string{revokeID, "nosuchid"}); err == nil {
		t.Fatal("revoked with an unknown ID")
	}
	if list, _ := auth.ListTokens(path); len(list) != 3 {
		t.Fatalf("a failed revoke changed the file: %d tokens", len(list))
	}
	if err := auth.RevokeTokens(path, []string{revokeID}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1100 * time.Millisecond) // the file is re-read at most once a second
	if code, _ := feed(revoked); code != http.StatusUnauthorized {
		t.Fatalf("revoked token: %d", code)
	}
	if code, _ := feed(keep); code != 200 {
		t.Fatalf("kept token %s: %d", keepID, code)
	}
	// A token file that no longer parses refuses everything.
	if err := os.WriteFile(path, []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1100 * time.Millisecond)
	if code, _ := feed(keep); code != http.StatusInternalServerError {
		t.Fatalf("broken token file: %d", code)
	}
}
