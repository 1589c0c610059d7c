package client

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"

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
	if !c.challenges(ctx) {
		return c.hc, nil
	}
	u, err := url.Parse(c.opts.Server)
	if err != nil {
		return nil, err
	}
	var opts []name.Option
	if u.Scheme == "http" {
		opts = append(opts, name.Insecure)
	}
	reg, err := name.NewRegistry(u.Host, opts...)
	if err != nil {
		return nil, fmt.Errorf("client: server %s: %w", c.opts.Server, err)
	}
	// The registry's own credentials pay for the token, as Docker's
	// content trust did.
	domain, _, _ := strings.Cut(gun, "/")
	gunReg, err := name.NewRegistry(domain)
	if err != nil {
		return nil, fmt.Errorf("client: registry of %s: %w", gun, err)
	}
	auth, err := c.opts.Keychain.Resolve(gunReg)
	if err != nil {
		return nil, fmt.Errorf("client: credentials for %s: %w", domain, err)
	}
	base := c.hc.Transport
	if base == nil {
		base = http.DefaultTransport
	}
	rt, err := transport.NewWithContext(ctx, reg, auth, base, []string{"repository:" + gun + ":" + actions})
	if err != nil {
		return nil, fmt.Errorf("client: log in to %s for %s: %w", c.opts.Server, gun, err)
	}
	hc = &http.Client{Transport: rt, Timeout: c.hc.Timeout}
	c.tokens.mu.Lock()
	c.tokens.clients[key] = hc
	c.tokens.mu.Unlock()
	return hc, nil
}

// challenges reports whether the server asks for registry tokens.
func (c *Client) challenges(ctx context.Context) bool {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.opts.Server+"/v2/", nil)
	if err != nil {
		return false
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusUnauthorized && strings.HasPrefix(strings.ToLower(resp.Header.Get("WWW-Authenticate")), "bearer ")
}
