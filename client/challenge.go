package client

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// tokenClients caches, per GUN and scope, an HTTP client that holds a
// registry token (Docker's token flow: the server's challenge sends us to
// its token service, which we pay with the registry's credentials).
type tokenClients struct {
	mu      sync.Mutex
	clients map[string]*http.Client
}

// httpFor returns the HTTP client for requests about gun needing actions
// ("pull", or "push,pull"). Without a Keychain, or when the server does not
// challenge (GET /v2/ answers 200), it is the plain client.
func (c *Client) httpFor(ctx context.Context, gun, actions string) (*http.Client, error) {
	if c.opts.Keychain == nil || c.opts.Token != "" {
		return c.hc, nil
	}
	key := gun + " " + actions
	c.tokens.mu.Lock()
	hc, ok := c.tokens.clients[key]
	c.tokens.mu.Unlock()
	if ok {
		return hc, nil
	}
	hc, err := RegistryTokenClient(ctx, c.hc, c.opts.Server, gun, actions, c.opts.Keychain)
	if err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	if hc == c.hc {
		return hc, nil // no challenge: ask again next time
	}
	c.tokens.mu.Lock()
	c.tokens.clients[key] = hc
	c.tokens.mu.Unlock()
	return hc, nil
}

// RegistryTokenClient returns an HTTP client for requests to server (a
// signet-server, or a notary-server such as Docker Hub's) about gun that
// need actions ("pull", or "push,pull"). When server challenges for
// registry tokens (GET /v2/ answers 401 Bearer), the client gets one from
// the token service, paid with kc's credentials for the GUN's registry, as
// Docker's content trust did; otherwise it is base itself.
func RegistryTokenClient(ctx context.Context, base *http.Client, server, gun, actions string, kc authn.Keychain) (*http.Client, error) {
	if base == nil {
		base = http.DefaultClient
	}
	if kc == nil || !challenges(ctx, base, server) {
		return base, nil
	}
	u, err := url.Parse(server)
	if err != nil {
		return nil, err
	}
	var opts []name.Option
	if u.Scheme == "http" {
		opts = append(opts, name.Insecure)
	}
	reg, err := name.NewRegistry(u.Host, opts...)
	if err != nil {
		return nil, fmt.Errorf("server %s: %w", server, err)
	}
	// The registry's own credentials pay for the token, as Docker's
	// content trust did.
	domain, _, _ := strings.Cut(gun, "/")
	gunReg, err := name.NewRegistry(domain)
	if err != nil {
		return nil, fmt.Errorf("registry of %s: %w", gun, err)
	}
	auth, err := kc.Resolve(gunReg)
	if err != nil {
		return nil, fmt.Errorf("credentials for %s: %w", domain, err)
	}
	rt := base.Transport
	if rt == nil {
		rt = http.DefaultTransport
	}
	tr, err := transport.NewWithContext(ctx, reg, auth, rt, []string{"repository:" + gun + ":" + actions})
	if err != nil {
		return nil, fmt.Errorf("log in to %s for %s: %w", server, gun, err)
	}
	return &http.Client{Transport: tr, Timeout: base.Timeout}, nil
}

// challenges reports whether server asks for registry tokens.
func challenges(ctx context.Context, hc *http.Client, server string) bool {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(server, "/")+"/v2/", nil)
	if err != nil {
		return false
	}
	resp, err := hc.Do(req)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusUnauthorized && strings.HasPrefix(strings.ToLower(resp.Header.Get("WWW-Authenticate")), "bearer ")
}
