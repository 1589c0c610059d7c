// Package auth holds signet-server's authorisers: static API tokens with
// scopes by GUN pattern, stored hashed in a file (Tokens), and Docker
// registry token auth with JWTs from the registry's token service, as
// Notary server did (Registry). It also owns the authorisation contract
// (Action, Authorizer, AuthError) that signet-server imports; it must never
// import the server. Safe for concurrent use.
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
	"slices"
	"strings"
	"sync"
	"time"
)

// Scope is ACTION:PATTERN, e.g. push:registry.example.com/team/*. Actions:
// pull (read), push (publish, create server keys; implies pull), admin
// (delete trust data, rotate server keys; implies push). In a pattern, "*"
// matches any run of characters, "/" included. The global change feed
// needs an admin scope whose pattern matches every GUN ("admin:*").
type Scope struct {
	Action  Action
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
		return Scope{ActionPull, pattern}, nil
	case "push":
		return Scope{ActionPush, pattern}, nil
	case "admin":
		return Scope{ActionAdmin, pattern}, nil
	}
	return Scope{}, fmt.Errorf("auth: scope %q: unknown action %q (pull, push or admin)", s, action)
}

func (s Scope) String() string {
	name := map[Action]string{ActionPull: "pull", ActionPush: "push", ActionAdmin: "admin"}[s.Action]
	return name + ":" + s.Pattern
}

func rank(a Action) int {
	switch a {
	case ActionPull:
		return 1
	case ActionPush:
		return 2
	case ActionAdmin:
		return 3
	}
	return 0
}

// allows reports whether s grants action on gun ("" for global resources).
func (s Scope) allows(gun string, action Action) bool {
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
	// ExpiresAt, if set, is when the token stops working.
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
}

type file struct {
	Tokens []entry `json:"tokens"`
}

// Tokens authorises requests by bearer token. It re-reads the token file
// when the file changes (checked at most once per reloadEvery), so that
// `signet-server token create|revoke` takes effect without a restart; if
// the changed file cannot be read, every token is refused until it can
// (fail closed: a revocation must not be lost to a typo).
type Tokens struct {
	path      string
	authReads bool
	now       func() time.Time

	mu      sync.Mutex
	entries []parsed
	stamp   fileStamp
	checked time.Time
	loadErr error
}

type parsed struct {
	id      string
	sum     []byte
	scopes  []Scope
	expires time.Time // zero: never
}

type fileStamp struct {
	mod  time.Time
	size int64
}

// reloadEvery bounds how often Authorize looks at the token file.
const reloadEvery = time.Second

var _ Authorizer = (*Tokens)(nil)

// TokensOption configures Tokens.
type TokensOption func(*Tokens)

// WithTokenClock sets the clock tokens' expiry is checked against.
func WithTokenClock(now func() time.Time) TokensOption { return func(t *Tokens) { t.now = now } }

// LoadTokens reads a token file. With authReads, reads need a pull scope
// too; otherwise they are anonymous.
func LoadTokens(path string, authReads bool, opts ...TokensOption) (*Tokens, error) {
	t := &Tokens{path: path, authReads: authReads, now: time.Now}
	for _, o := range opts {
		o(t)
	}
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("auth: %w", err)
	}
	entries, err := parseFile(path)
	if err != nil {
		return nil, err
	}
	t.entries, t.stamp, t.checked = entries, fileStamp{fi.ModTime(), fi.Size()}, time.Now()
	return t, nil
}

func parseFile(path string) ([]parsed, error) {
	f, err := readFile(path)
	if err != nil {
		return nil, err
	}
	var out []parsed
	for _, e := range f.Tokens {
		sum, err := hex.DecodeString(e.SHA256)
		if err != nil || len(sum) != sha256.Size {
			return nil, fmt.Errorf("auth: %s: token %s has no valid sha256", path, e.ID)
		}
		p := parsed{id: e.ID, sum: sum}
		if e.ExpiresAt != nil {
			p.expires = *e.ExpiresAt
		}
		for _, s := range e.Scopes {
			sc, err := ParseScope(s)
			if err != nil {
				return nil, fmt.Errorf("auth: %s: token %s: %w", path, e.ID, err)
			}
			p.scopes = append(p.scopes, sc)
		}
		out = append(out, p)
	}
	return out, nil
}

func readFile(path string) (*file, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("auth: %w", err)
	}
	var f file
	if err := json.Unmarshal(data, &f); err != nil {
		return nil, fmt.Errorf("auth: %s: %w", path, err)
	}
	return &f, nil
}

// current returns the tokens, re-reading the file if it changed.
func (t *Tokens) current() ([]parsed, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if time.Since(t.checked) < reloadEvery {
		return t.entries, t.loadErr
	}
	t.checked = time.Now()
	fi, err := os.Stat(t.path)
	if err != nil {
		t.loadErr = fmt.Errorf("auth: token file: %w", err)
		return nil, t.loadErr
	}
	stamp := fileStamp{fi.ModTime(), fi.Size()}
	if stamp == t.stamp && t.loadErr == nil {
		return t.entries, nil
	}
	entries, err := parseFile(t.path)
	if err != nil {
		t.loadErr = err
		return nil, err
	}
	t.entries, t.stamp, t.loadErr = entries, stamp, nil
	return entries, nil
}

const challenge = `Bearer realm="signet"`

// Authorize implements Authorizer.
//
// Reads are anonymous unless authReads, but a request that presents a
// token which is not valid is refused with 401 even then: a mistyped or
// revoked token is reported at the first request, not at the first push.
func (t *Tokens) Authorize(_ context.Context, r *http.Request, gun string, action Action) error {
	anonymousRead := action == ActionPull && gun != "" && !t.authReads
	header := r.Header.Get("Authorization")
	if anonymousRead && header == "" {
		return nil
	}
	raw, ok := strings.CutPrefix(header, "Bearer ")
	if !ok || raw == "" {
		if header != "" {
			return &AuthError{Status: http.StatusUnauthorized, Challenge: challenge, Msg: "the Authorization header is not a bearer token: send Authorization: Bearer TOKEN"}
		}
		return &AuthError{Status: http.StatusUnauthorized, Challenge: challenge, Msg: "this needs a token: send Authorization: Bearer TOKEN (the signet CLI reads SIGNET_TOKEN)"}
	}
	entries, err := t.current()
	if err != nil {
		return err // a 500: the cause goes to the server log
	}
	sum := sha256.Sum256([]byte(raw))
	for _, e := range entries {
		if subtle.ConstantTimeCompare(e.sum, sum[:]) != 1 {
			continue
		}
		if !e.expires.IsZero() && !t.now().Before(e.expires) {
			return &AuthError{Status: http.StatusUnauthorized, Challenge: challenge, Msg: fmt.Sprintf("token %s expired at %s", e.id, e.expires.UTC().Format(time.RFC3339))}
		}
		if anonymousRead {
			return nil
		}
		for _, s := range e.scopes {
			if s.allows(gun, action) {
				return nil
			}
		}
		return &AuthError{Status: http.StatusForbidden, Msg: fmt.Sprintf("token %s may not %s %s", e.id, action, orGlobal(gun))}
	}
	return &AuthError{Status: http.StatusUnauthorized, Challenge: challenge, Msg: "unknown token"}
}

// Principal implements Identifier: "token:ID" for a valid,
// unexpired token.
func (t *Tokens) Principal(r *http.Request) string {
	raw, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || raw == "" {
		return ""
	}
	entries, err := t.current()
	if err != nil {
		return ""
	}
	sum := sha256.Sum256([]byte(raw))
	for _, e := range entries {
		if subtle.ConstantTimeCompare(e.sum, sum[:]) == 1 && (e.expires.IsZero() || t.now().Before(e.expires)) {
			return "token:" + e.id
		}
	}
	return ""
}

func orGlobal(gun string) string {
	if gun == "" {
		return "the global change feed"
	}
	return gun
}

// CreateToken makes a token with scopes, valid until expires (zero:
// forever), stores its hash in path (creating the file, mode 0600) and
// returns the token: it is shown only this once.
func CreateToken(path string, scopes []string, now, expires time.Time) (id, token string, err error) {
	if len(scopes) == 0 {
		return "", "", errors.New("auth: a token needs at least one --scope")
	}
	for _, s := range scopes {
		if _, err := ParseScope(s); err != nil {
			return "", "", err
		}
	}
	if !expires.IsZero() && !expires.After(now) {
		return "", "", fmt.Errorf("auth: expiry %s is not in the future", expires.UTC().Format(time.RFC3339))
	}
	f, err := readFile(path)
	if errors.Is(err, os.ErrNotExist) {
		f, err = &file{}, nil
	}
	if err != nil {
		return "", "", err
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
	e := entry{ID: id, SHA256: hex.EncodeToString(sum[:]), Scopes: scopes, CreatedAt: now.UTC()}
	if !expires.IsZero() {
		exp := expires.UTC()
		e.ExpiresAt = &exp
	}
	f.Tokens = append(f.Tokens, e)
	if err := writeFile(path, f); err != nil {
		return "", "", err
	}
	return id, token, nil
}

// TokenInfo describes a token in the file (never its secret or hash).
type TokenInfo struct {
	ID        string
	Scopes    []string
	CreatedAt time.Time
	ExpiresAt time.Time // zero: never
}

// ListTokens returns the tokens in path, in the file's order.
func ListTokens(path string) ([]TokenInfo, error) {
	f, err := readFile(path)
	if err != nil {
		return nil, err
	}
	out := make([]TokenInfo, 0, len(f.Tokens))
	for _, e := range f.Tokens {
		ti := TokenInfo{ID: e.ID, Scopes: e.Scopes, CreatedAt: e.CreatedAt}
		if e.ExpiresAt != nil {
			ti.ExpiresAt = *e.ExpiresAt
		}
		out = append(out, ti)
	}
	return out, nil
}

// RevokeTokens removes the tokens with ids from path. It changes nothing
// and fails if any id is not in the file. A running server stops
// accepting them within a second or so (Tokens re-reads the file).
func RevokeTokens(path string, ids []string) error {
	if len(ids) == 0 {
		return errors.New("auth: name the token IDs to revoke (signet-server token list)")
	}
	f, err := readFile(path)
	if err != nil {
		return err
	}
	drop := map[string]bool{}
	for _, id := range ids {
		drop[id] = true
	}
	kept := f.Tokens[:0:0]
	for _, e := range f.Tokens {
		if drop[e.ID] {
			delete(drop, e.ID)
			continue
		}
		kept = append(kept, e)
	}
	if len(drop) > 0 {
		missing := make([]string, 0, len(drop))
		for id := range drop {
			missing = append(missing, id)
		}
		slices.Sort(missing)
		return fmt.Errorf("auth: %s holds no token %s; nothing revoked", path, strings.Join(missing, ", "))
	}
	f.Tokens = kept
	return writeFile(path, f)
}

// writeFile replaces path atomically (write a temporary file, rename), so
// that a server re-reading it never sees half a file.
func writeFile(path string, f *file) error {
	out, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("auth: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("auth: %w", err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return fmt.Errorf("auth: %w", err)
	}
	if _, err := tmp.Write(append(out, '\n')); err != nil {
		tmp.Close()
		return fmt.Errorf("auth: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("auth: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("auth: %w", err)
	}
	return nil
}
