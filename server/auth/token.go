// Package auth holds signet-server's authorisers: static API tokens with
// scopes by GUN pattern, stored hashed in a file (Tokens), and Docker
// registry token auth with JWTs from the registry's token service, as
// Notary server did (Registry). It imports server only for the Authorizer
// contract. Safe for concurrent use.
package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/signetdev/signet/server"
)

// Scope is ACTION:PATTERN, e.g. push:registry.example.com/team/*. Actions:
// pull (read), push (publish, create server keys; implies pull), admin
// (delete trust data, rotate server keys; implies push). In a pattern, "*"
// matches any run of characters, "/" included. The global change feed
// needs an admin scope whose pattern matches every GUN ("admin:*").
type Scope struct {
	Action  server.Action
	Pattern string
}

// ParseScope parses ACTION:PATTERN.
func ParseScope(s string) (Scope, error) {
	action, pattern, ok := strings.Cut(s, ":")
	if !ok || pattern == "" {
		return Scope{}, fmt.Errorf("auth: scope %q: want ACTION:PATTERN (pull, push or admin)", s)
	}
	switch action {
	case "pull":
		return Scope{server.ActionPull, pattern}, nil
	case "push":
		return Scope{server.ActionPush, pattern}, nil
	case "admin":
		return Scope{server.ActionAdmin, pattern}, nil
	}
	return Scope{}, fmt.Errorf("auth: scope %q: unknown action %q (pull, push or admin)", s, action)
}

func (s Scope) String() string {
	name := map[server.Action]string{server.ActionPull: "pull", server.ActionPush: "push", server.ActionAdmin: "admin"}[s.Action]
	return name + ":" + s.Pattern
}

func rank(a server.Action) int {
	switch a {
	case server.ActionPull:
		return 1
	case server.ActionPush:
		return 2
	case server.ActionAdmin:
		return 3
	}
	return 0
}

// allows reports whether s grants action on gun ("" for global resources).
func (s Scope) allows(gun string, action server.Action) bool {
	if rank(s.Action) < rank(action) {
		return false
	}
	if gun == "" {
		return s.Pattern == "*"
	}
	return match(s.Pattern, gun)
}

// match is a glob where "*" matches any run of characters.
func match(pattern, s string) bool {
	i := strings.IndexByte(pattern, '*')
	if i < 0 {
		return pattern == s
	}
	if !strings.HasPrefix(s, pattern[:i]) {
		return false
	}
	rest := pattern[i+1:]
	for j := i; j <= len(s); j++ {
		if match(rest, s[j:]) {
			return true
		}
	}
	return false
}

// entry is one token in the file: only its sha256 is stored. Tokens are 32
// random bytes, so a fast hash suffices.
type entry struct {
	ID        string    `json:"id"`
	SHA256    string    `json:"sha256"`
	Scopes    []string  `json:"scopes"`
	CreatedAt time.Time `json:"created_at"`
}

type file struct {
	Tokens []entry `json:"tokens"`
}

// Tokens authorises requests by bearer token.
type Tokens struct {
	entries   []parsed
	authReads bool
}

type parsed struct {
	id     string
	sum    []byte
	scopes []Scope
}

var _ server.Authorizer = (*Tokens)(nil)

// LoadTokens reads a token file. With authReads, reads need a pull scope
// too; otherwise they are anonymous.
func LoadTokens(path string, authReads bool) (*Tokens, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("auth: %w", err)
	}
	var f file
	if err := json.Unmarshal(data, &f); err != nil {
		return nil, fmt.Errorf("auth: %s: %w", path, err)
	}
	t := &Tokens{authReads: authReads}
	for _, e := range f.Tokens {
		sum, err := hex.DecodeString(e.SHA256)
		if err != nil || len(sum) != sha256.Size {
			return nil, fmt.Errorf("auth: %s: token %s has no valid sha256", path, e.ID)
		}
		p := parsed{id: e.ID, sum: sum}
		for _, s := range e.Scopes {
			sc, err := ParseScope(s)
			if err != nil {
				return nil, fmt.Errorf("auth: %s: token %s: %w", path, e.ID, err)
			}
			p.scopes = append(p.scopes, sc)
		}
		t.entries = append(t.entries, p)
	}
	return t, nil
}

const challenge = `Bearer realm="signet"`

// Authorize implements server.Authorizer.
//
// Reads are anonymous unless authReads, but a request that presents a
// token which is not valid is refused with 401 even then: a mistyped or
// revoked token is reported at the first request, not at the first push.
func (t *Tokens) Authorize(_ context.Context, r *http.Request, gun string, action server.Action) error {
	anonymousRead := action == server.ActionPull && gun != "" && !t.authReads
	header := r.Header.Get("Authorization")
	if anonymousRead && header == "" {
		return nil
	}
	raw, ok := strings.CutPrefix(header, "Bearer ")
	if !ok || raw == "" {
		if header != "" {
			return &server.AuthError{Status: http.StatusUnauthorized, Challenge: challenge, Msg: "the Authorization header is not a bearer token: send Authorization: Bearer TOKEN"}
		}
		return &server.AuthError{Status: http.StatusUnauthorized, Challenge: challenge, Msg: "this needs a token: send Authorization: Bearer TOKEN (the signet CLI reads SIGNET_TOKEN)"}
	}
	sum := sha256.Sum256([]byte(raw))
	for _, e := range t.entries {
		if subtle.ConstantTimeCompare(e.sum, sum[:]) != 1 {
			continue
		}
		if anonymousRead {
			return nil
		}
		for _, s := range e.scopes {
			if s.allows(gun, action) {
				return nil
			}
		}
		return &server.AuthError{Status: http.StatusForbidden, Msg: fmt.Sprintf("token %s may not %s %s", e.id, action, orGlobal(gun))}
	}
	return &server.AuthError{Status: http.StatusUnauthorized, Challenge: challenge, Msg: "unknown token"}
}

func orGlobal(gun string) string {
	if gun == "" {
		return "the global change feed"
	}
	return gun
}

// CreateToken makes a token with scopes, stores its hash in path (creating
// the file, mode 0600) and returns the token: it is shown only this once.
func CreateToken(path string, scopes []string, now time.Time) (id, token string, err error) {
	if len(scopes) == 0 {
		return "", "", errors.New("auth: a token needs at least one --scope")
	}
	for _, s := range scopes {
		if _, err := ParseScope(s); err != nil {
			return "", "", err
		}
	}
	var f file
	data, err := os.ReadFile(path)
	switch {
	case err == nil:
		if err := json.Unmarshal(data, &f); err != nil {
			return "", "", fmt.Errorf("auth: %s: %w", path, err)
		}
	case !errors.Is(err, os.ErrNotExist):
		return "", "", fmt.Errorf("auth: %w", err)
	}
	var secret, idb [32]byte
	if _, err := rand.Read(secret[:]); err != nil {
		return "", "", err
	}
	if _, err := rand.Read(idb[:6]); err != nil {
		return "", "", err
	}
	token = "sgt_" + hex.EncodeToString(secret[:])
	sum := sha256.Sum256([]byte(token))
	id = hex.EncodeToString(idb[:6])
	f.Tokens = append(f.Tokens, entry{ID: id, SHA256: hex.EncodeToString(sum[:]), Scopes: scopes, CreatedAt: now.UTC()})
	out, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return "", "", err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return "", "", fmt.Errorf("auth: %w", err)
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, out, 0o600); err != nil {
		return "", "", fmt.Errorf("auth: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return "", "", fmt.Errorf("auth: %w", err)
	}
	return id, token, nil
}
