package auth

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// RegistryConfig configures Docker registry token auth, as Notary server
// used it: clients get a JWT from the registry's token service (realm) and
// send it as a bearer token.
type RegistryConfig struct {
	Realm   string // token service URL, sent in the challenge
	Service string // this server's name: the challenge's service and the token's audience
	Issuer  string // the token service's issuer claim
	Keys    string // JWKS file, or a PEM bundle of certificates, holding the token service's public keys
	// AuthReads requires a pull grant for reads too.
	AuthReads bool
	// MaxLifetime bounds how long a token may be valid (exp - iat, or exp -
	// now when it has no iat); default DefaultMaxTokenLifetime. Docker's
	// token servers issue tokens of minutes.
	MaxLifetime time.Duration
	Now         func() time.Time
}

// DefaultMaxTokenLifetime is RegistryConfig.MaxLifetime's default.
const DefaultMaxTokenLifetime = time.Hour

// Registry authorises requests by registry tokens. Safe for concurrent use.
type Registry struct {
	cfg  RegistryConfig
	keys []jose.JSONWebKey
}

var _ Authorizer = (*Registry)(nil)

// NewRegistry loads the token service's keys.
func NewRegistry(cfg RegistryConfig) (*Registry, error) {
	if cfg.Realm == "" || cfg.Service == "" || cfg.Issuer == "" || cfg.Keys == "" {
		return nil, errors.New("auth: registry tokens need a realm, a service, an issuer and the token service's keys")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.MaxLifetime <= 0 {
		cfg.MaxLifetime = DefaultMaxTokenLifetime
	}
	data, err := os.ReadFile(cfg.Keys)
	if err != nil {
		return nil, fmt.Errorf("auth: %w", err)
	}
	r := &Registry{cfg: cfg}
	var set jose.JSONWebKeySet
	if json.Unmarshal(data, &set) == nil && len(set.Keys) > 0 {
		r.keys = set.Keys
		return r, nil
	}
	for rest := data; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		cert, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("auth: %s: %w", cfg.Keys, err)
		}
		r.keys = append(r.keys, jose.JSONWebKey{Key: cert.PublicKey})
	}
	if len(r.keys) == 0 {
		return nil, fmt.Errorf("auth: %s holds neither a JWKS nor PEM certificates", cfg.Keys)
	}
	return r, nil
}

// access is one grant of a registry token.
type access struct {
	Type    string   `json:"type"`
	Name    string   `json:"name"`
	Actions []string `json:"actions"`
}

type claims struct {
	jwt.Claims
	Access []access `json:"access"`
}

// need names what a request needs, as Notary asked for it: pull to read,
// push and pull to publish, * to delete or rotate, registry:catalog:* for the
// global change feed.
func need(gun string, action Action) access {
	if gun == "" {
		return access{Type: "registry", Name: "catalog", Actions: []string{"*"}}
	}
	switch action {
	case ActionPush:
		return access{Type: "repository", Name: gun, Actions: []string{"push", "pull"}}
	case ActionAdmin:
		return access{Type: "repository", Name: gun, Actions: []string{"*"}}
	}
	return access{Type: "repository", Name: gun, Actions: []string{"pull"}}
}

func (a access) scope() string { return a.Type + ":" + a.Name + ":" + strings.Join(a.Actions, ",") }

// Ping implements Challenger: any valid token of this service passes.
func (r *Registry) Ping(req *http.Request) error {
	if _, err := r.verify(req); err != nil {
		return &AuthError{Status: http.StatusUnauthorized, Challenge: fmt.Sprintf(`Bearer realm=%q,service=%q`, r.cfg.Realm, r.cfg.Service), Msg: err.Error()}
	}
	return nil
}

// verify checks a request's bearer token and returns its claims.
func (r *Registry) verify(req *http.Request) (*claims, error) {
	raw, ok := strings.CutPrefix(req.Header.Get("Authorization"), "Bearer ")
	if !ok || raw == "" {
		return nil, errors.New("this needs a registry token")
	}
	tok, err := jwt.ParseSigned(raw, []jose.SignatureAlgorithm{jose.RS256, jose.RS384, jose.RS512, jose.ES256, jose.ES384, jose.ES512, jose.PS256, jose.EdDSA})
	if err != nil {
		return nil, errors.New("malformed token")
	}
	var c claims
	verified := false
	for _, k := range r.keys {
		if len(tok.Headers) > 0 && tok.Headers[0].KeyID != "" && k.KeyID != "" && tok.Headers[0].KeyID != k.KeyID {
			continue
		}
		if tok.Claims(k.Key, &c) == nil {
			verified = true
			break
		}
	}
	if !verified {
		return nil, errors.New("token signature does not verify with the token service's keys")
	}
	const leeway = 30 * time.Second
	now := r.cfg.Now()
	if err := c.Claims.ValidateWithLeeway(jwt.Expected{Issuer: r.cfg.Issuer, AnyAudience: jwt.Audience{r.cfg.Service}, Time: now}, leeway); err != nil {
		return nil, errors.New("token rejected: " + err.Error())
	}
	// A token without an expiry would be valid forever.
	if c.Expiry == nil {
		return nil, errors.New("token rejected: it has no expiry (exp claim)")
	}
	from := now
	if c.IssuedAt != nil {
		from = c.IssuedAt.Time()
	}
	if life := c.Expiry.Time().Sub(from); life > r.cfg.MaxLifetime+leeway {
		return nil, fmt.Errorf("token rejected: valid for %s, longer than the %s this server accepts", life.Round(time.Second), r.cfg.MaxLifetime)
	}
	return &c, nil
}

// Authorize implements Authorizer.
func (r *Registry) Authorize(_ context.Context, req *http.Request, gun string, action Action) error {
	// Reads are anonymous unless AuthReads, but a token that is presented
	// and does not verify is refused even then (401, so the client fetches
	// a fresh one).
	anonymousRead := action == ActionPull && gun != "" && !r.cfg.AuthReads
	if anonymousRead && req.Header.Get("Authorization") == "" {
		return nil
	}
	want := need(gun, action)
	challenge := fmt.Sprintf(`Bearer realm=%q,service=%q,scope=%q`, r.cfg.Realm, r.cfg.Service, want.scope())
	unauthorized := func(msg string) error {
		return &AuthError{Status: http.StatusUnauthorized, Challenge: challenge, Msg: msg}
	}
	c, err := r.verify(req)
	if err != nil {
		return unauthorized(err.Error() + " (" + want.scope() + ")")
	}
	if anonymousRead {
		return nil
	}
	for _, a := range c.Access {
		if a.Type == want.Type && a.Name == want.Name && (slices.Contains(a.Actions, "*") || containsAll(a.Actions, want.Actions)) {
			return nil
		}
	}
	return &AuthError{Status: http.StatusForbidden, Msg: "the token does not grant " + want.scope()}
}

// Principal implements Identifier: "registry:SUBJECT" for a valid
// token with a subject.
func (r *Registry) Principal(req *http.Request) string {
	c, err := r.verify(req)
	if err != nil || c.Subject == "" {
		return ""
	}
	return "registry:" + c.Subject
}

func containsAll(have, want []string) bool {
	for _, w := range want {
		if !slices.Contains(have, w) {
			return false
		}
	}
	return true
}
