package client

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// Registry tokens (Docker's token flow). A server behind a registry's token
// service answers GET /v2/ with 401 and
// `WWW-Authenticate: Bearer realm="…",service="…"`. The client then asks
// the realm for a token, paying with the credentials of the GUN's registry
// (Options.Keychain), and sends the token, and only the token, to the trust
// server.
//
// The realm is named by the trust server, which is not the registry: a
// server that could name any realm could collect the registry's passwords.
// So the registry's credentials go only to a realm that is https and on the
// registry's own host or a host in Options.RegistryAuthHosts; any other
// realm is asked anonymously (public reads still work, and an error says
// why the credentials were held back). A Basic challenge is never answered
// with the registry's credentials either: they are not the trust server's.

// tokenClients caches, per GUN and scope, an HTTP client that holds a
// registry token, and when the server last answered the probe without a
// challenge (open).
type tokenClients struct {
	mu      sync.Mutex
	clients map[string]*http.Client
	open    time.Time
}

// openFor is how long a probe answered without a challenge stands for
// every GUN and scope: a command that pulls and then pushes (sign) probes
// once, and a long-lived engine still notices, a minute later at most,
// a server that has begun to ask for tokens (until then its requests get
// the server's 401, never less checking).
const openFor = time.Minute

// errRealmRefused: the realm may not receive the registry's credentials.
var errRealmRefused = errors.New("registry credentials are sent only to an https token service on the registry's host or one configured (Options.RegistryAuthHosts, SIGNET_REGISTRY_AUTH_HOSTS)")

// httpFor returns the HTTP client for requests about gun needing actions
// ("pull", or "push,pull"). Without a Keychain, with a static Token, or
// when the server does not ask for a registry token, it is the plain
// client.
func (c *Client) httpFor(ctx context.Context, gun, actions string) (*http.Client, error) {
	if c.opts.Keychain == nil || c.opts.Token != "" {
		return c.hc, nil
	}
	key := gun + " " + actions
	c.tokens.mu.Lock()
	hc, ok := c.tokens.clients[key]
	open := time.Since(c.tokens.open) < openFor
	c.tokens.mu.Unlock()
	if ok {
		return hc, nil
	}
	if open {
		return c.hc, nil
	}
	hc, err := RegistryTokenClient(ctx, c.hc, c.opts.Server, gun, actions, c.opts.Keychain, c.opts.RegistryAuthHosts...)
	if err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	c.tokens.mu.Lock()
	defer c.tokens.mu.Unlock()
	if hc == c.hc {
		c.tokens.open = time.Now() // no challenge: ask again after openFor
		return hc, nil
	}
	c.tokens.clients[key] = hc
	return hc, nil
}

// RegistryTokenClient returns an HTTP client for requests to server (a
// signet-server, or a notary-server such as Docker Hub's) about gun that
// need actions ("pull", or "push,pull"). When server challenges for
// registry tokens (GET /v2/ answers 401 Bearer), the client gets one from
// the token service, paid with kc's credentials for the GUN's registry, as
// Docker's content trust did; otherwise it is base itself. The credentials
// go only to an https realm on the registry's host, on one of authHosts,
// or on a well-known token service of the registry (auth.docker.io for
// Docker Hub); any other realm is asked anonymously. The token goes to
// server's host only.
func RegistryTokenClient(ctx context.Context, base *http.Client, server, gun, actions string, kc authn.Keychain, authHosts ...string) (*http.Client, error) {
	if base == nil {
		base = http.DefaultClient
	}
	if kc == nil {
		return base, nil
	}
	su, err := url.Parse(strings.TrimSuffix(server, "/"))
	if err != nil {
		return nil, fmt.Errorf("server URL: %w", err)
	}
	ch, err := challenge(ctx, base, su.String())
	if err != nil {
		return nil, err
	}
	if ch == nil {
		return base, nil
	}
	// An http trust server may name an http realm, asked anonymously only.
	ch.Insecure = su.Scheme == "http"
	var ropts []name.Option
	if su.Scheme == "http" {
		ropts = append(ropts, name.Insecure)
	}
	serverReg, err := name.NewRegistry(su.Host, ropts...)
	if err != nil {
		return nil, fmt.Errorf("server %s: %w", server, err)
	}
	domain, _, _ := strings.Cut(gun, "/")
	gunReg, err := name.NewRegistry(domain)
	if err != nil {
		return nil, fmt.Errorf("registry of %s: %w", gun, err)
	}
	var auth authn.Authenticator = authn.Anonymous
	realm := ch.Parameters["realm"]
	refused := realmAllowed(realm, gunReg, authHosts)
	if refused == nil {
		if auth, err = kc.Resolve(gunReg); err != nil {
			return nil, fmt.Errorf("credentials for %s: %w", domain, err)
		}
	}
	rt := base.Transport
	if rt == nil {
		rt = http.DefaultTransport
	}
	bt := &bearerTransport{base: rt, host: su.Host, fetch: func(ctx context.Context) (*transport.Token, error) {
		return transport.Exchange(ctx, serverReg, auth, rt, []string{"repository:" + gun + ":" + actions}, ch)
	}}
	if err := bt.refresh(ctx); err != nil {
		if refused != nil {
			return nil, fmt.Errorf("log in to %s for %s: its token service %s got no credentials (%w): %w", server, gun, realm, refused, err)
		}
		return nil, fmt.Errorf("log in to %s for %s (token service %s): %w", server, gun, realm, err)
	}
	return &http.Client{Transport: bt, Timeout: base.Timeout}, nil
}

// wellKnownAuthHosts are token services known to belong to a registry.
var wellKnownAuthHosts = map[string][]string{"index.docker.io": {"auth.docker.io"}}

// realmAllowed reports (nil) whether realm may receive the credentials of
// reg: it must be https, on reg's host, a well-known token service of reg
// or one of authHosts.
func realmAllowed(realm string, reg name.Registry, authHosts []string) error {
	u, err := url.Parse(realm)
	if err != nil || u.Host == "" {
		return fmt.Errorf("realm %q is not a URL: %w", realm, errRealmRefused)
	}
	if u.Scheme != "https" {
		return fmt.Errorf("realm %s is not https: %w", realm, errRealmRefused)
	}
	host := strings.ToLower(u.Host)
	allowed := []string{strings.ToLower(reg.RegistryStr()), strings.ToLower(reg.Name())}
	allowed = append(allowed, wellKnownAuthHosts[reg.RegistryStr()]...)
	for _, h := range authHosts {
		allowed = append(allowed, strings.ToLower(h))
	}
	if slices.Contains(allowed, host) || slices.Contains(allowed, strings.ToLower(u.Hostname())) {
		return nil
	}
	return fmt.Errorf("realm %s is not on %s: %w", realm, reg.RegistryStr(), errRealmRefused)
}

// challenge asks the server's /v2/ whether it wants a registry token: it
// returns the Bearer challenge, or nil when the server does not challenge
// (or challenges with another scheme, which registry credentials do not
// answer).
func challenge(ctx context.Context, hc *http.Client, server string) (*transport.Challenge, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, server+"/v2/", nil)
	if err != nil {
		return nil, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		// Let the request itself report the network error.
		return nil, nil
	}
	discard(resp.Body)
	if resp.StatusCode != http.StatusUnauthorized {
		return nil, nil
	}
	for _, h := range resp.Header.Values("WWW-Authenticate") {
		scheme, params := parseChallenge(h)
		if strings.EqualFold(scheme, "bearer") && params["realm"] != "" {
			return &transport.Challenge{Scheme: "bearer", Parameters: params}, nil
		}
	}
	return nil, nil
}

// parseChallenge splits `Bearer realm="…",service="…"` (RFC 7235) into the
// scheme and its parameters.
func parseChallenge(h string) (string, map[string]string) {
	scheme, rest, _ := strings.Cut(strings.TrimSpace(h), " ")
	params := map[string]string{}
	for rest = strings.TrimSpace(rest); rest != ""; {
		k, after, ok := strings.Cut(rest, "=")
		if !ok {
			break
		}
		k = strings.ToLower(strings.TrimSpace(k))
		var v string
		if strings.HasPrefix(after, `"`) {
			var b strings.Builder
			i := 1
			for ; i < len(after) && after[i] != '"'; i++ {
				if after[i] == '\\' && i+1 < len(after) {
					i++
				}
				b.WriteByte(after[i])
			}
			v, after = b.String(), after[min(i+1, len(after)):]
		} else {
			v, after, _ = strings.Cut(after, ",")
			after = "," + after
		}
		params[k] = strings.TrimSpace(v)
		_, after, _ = strings.Cut(after, ",")
		rest = strings.TrimSpace(after)
	}
	return scheme, params
}

// bearerTransport sends the registry token to the trust server's host, and
// to no other host (a redirect elsewhere goes without it). It fetches a new
// token when the old one expires.
type bearerTransport struct {
	base  http.RoundTripper
	host  string
	fetch func(context.Context) (*transport.Token, error)

	mu      sync.Mutex
	token   string
	expires time.Time
}

func (t *bearerTransport) refresh(ctx context.Context) error {
	tok, err := t.fetch(ctx)
	if err != nil {
		return err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.token = tok.Token
	if t.token == "" {
		t.token = tok.AccessToken
	}
	if t.token == "" {
		return errors.New("the token service answered without a token")
	}
	// Docker's token spec: 60 s when expires_in is absent; renew 10 s early.
	life := time.Duration(max(tok.ExpiresIn, 60)) * time.Second
	t.expires = time.Now().Add(life - 10*time.Second)
	return nil
}

// RoundTrip implements http.RoundTripper.
func (t *bearerTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if !strings.EqualFold(req.URL.Host, t.host) {
		return t.base.RoundTrip(req)
	}
	t.mu.Lock()
	stale := time.Now().After(t.expires)
	t.mu.Unlock()
	if stale {
		if err := t.refresh(req.Context()); err != nil {
			return nil, fmt.Errorf("client: renew the registry token: %w", err)
		}
	}
	t.mu.Lock()
	tok := t.token
	t.mu.Unlock()
	r := req.Clone(req.Context())
	r.Header.Set("Authorization", "Bearer "+tok)
	return t.base.RoundTrip(r)
}
