// Package client is signet's library for developers and engines: Resolve
// turns "registry.example.com/team/app:1.2" into the one sha256 digest that
// a threshold of the repository's trusted keys vouched for, after a full
// TUF update with go-tuf's updater (root chain, timestamp, snapshot, targets
// and delegations; thresholds, expiry, rollback and freeze checks). Init and
// Publish create repositories and sign tags.
//
// Trusted metadata is cached per repository under Options.TrustDir, guarded
// by a lock file so that several processes can share one trust directory.
// It takes Go values only (no environment, no flags) and imports no server
// package. A Client is safe for concurrent use: resolutions of one
// repository serialise, resolutions of different repositories run in
// parallel.
package client

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/signetdev/signet/api"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// Options configure a Client.
type Options struct {
	// Server is the signet-server base URL, e.g. https://notary.example.com.
	Server string
	// TrustDir holds pinned roots, the metadata cache and (with the default
	// key store) private keys. Required.
	TrustDir string
	// HTTPClient is used for every request; default: http.DefaultClient's
	// transport with no overall timeout (Timeout bounds each call).
	HTTPClient *http.Client
	// Token, if set, is sent as "Authorization: Bearer Token".
	Token string
	// Keychain, if set, supplies registry credentials: when the server
	// challenges for registry tokens (Docker's token auth), the client gets
	// one from the token service with the credentials of the GUN's
	// registry. authn.DefaultKeychain reads ~/.docker/config.json and its
	// credential helpers.
	Keychain authn.Keychain
	// RegistryAuthHosts are hosts (host or host:port) of token services
	// that may receive the registry's credentials besides the registry's
	// own host, e.g. "auth.example.com". The realm must be https either
	// way; the credentials never go to any other host (challenge.go).
	RegistryAuthHosts []string
	// TOFU trusts the server's first root of a repository that has no
	// pinned root. Off by default: pin roots (PinRoot) instead.
	TOFU bool
	// MaxStaleness lets Resolve answer from the cache without asking the
	// server while the last update is younger than it. 0 (default) checks
	// the timestamp on every resolve.
	MaxStaleness time.Duration
	// MaxRolesVisited bounds how many delegated roles one lookup visits
	// before it gives up with a trust error; default 32, as go-tuf's
	// updater (tufrules.DefaultMaxRolesVisited).
	MaxRolesVisited int
	// Timeout bounds each Resolve or Publish; default 30 s.
	Timeout time.Duration
	// Now is the clock for expiry checks; default time.Now.
	Now func() time.Time
	// Logger; default discards.
	Logger *slog.Logger
	// Keys holds signing keys; default: a FileKeyStore in TrustDir/private
	// using Passphrase.
	Keys KeyStore
	// Passphrase supplies passphrases of the default key store.
	Passphrase PassphraseFunc
}

// Client resolves and publishes. Safe for concurrent use.
type Client struct {
	opts Options
	hc   *http.Client
	log  *slog.Logger
	keys KeyStore

	mu    sync.Mutex
	locks map[string]*sync.Mutex
	warm  map[string]*repoState // last verified view per GUN, used under the GUN's lock

	tokens tokenClients
}

// New returns a Client.
func New(opts Options) (*Client, error) {
	if opts.TrustDir == "" {
		return nil, errors.New("client: TrustDir is required")
	}
	if opts.Server == "" {
		return nil, errors.New("client: Server is required")
	}
	if _, err := url.Parse(opts.Server); err != nil {
		return nil, fmt.Errorf("client: server URL: %w", err)
	}
	opts.Server = strings.TrimSuffix(opts.Server, "/")
	if opts.Timeout == 0 {
		opts.Timeout = 30 * time.Second
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	c := &Client{opts: opts, hc: opts.HTTPClient, log: opts.Logger, keys: opts.Keys, locks: map[string]*sync.Mutex{}, warm: map[string]*repoState{}, tokens: tokenClients{clients: map[string]*http.Client{}}}
	if c.hc == nil {
		c.hc = &http.Client{}
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	if c.keys == nil {
		c.keys = NewFileKeyStore(filepath.Join(opts.TrustDir, "private"), opts.Passphrase, 0)
	}
	return c, nil
}

// Keys returns the client's key store.
func (c *Client) Keys() KeyStore { return c.keys }

// Now reads the client's clock (Options.Now).
func (c *Client) Now() time.Time { return c.opts.Now() }

// escape makes a GUN one path element.
func escape(gun string) string { return url.PathEscape(gun) }

func (c *Client) cacheDir(gun string) string {
	return filepath.Join(c.opts.TrustDir, "tuf", escape(gun))
}

func (c *Client) pinFile(gun string) string {
	return filepath.Join(c.opts.TrustDir, "trust", escape(gun), "root.json")
}

func (c *Client) tufURL(gun string) string {
	return c.opts.Server + api.TUFPath(gun)
}

// lock serialises work on gun in this process and, through a lock on a
// lock file (flock on Unix, LockFileEx on Windows: lock_*.go), across
// processes sharing the trust directory.
func (c *Client) lock(gun string) (unlock func(), err error) {
	c.mu.Lock()
	m, ok := c.locks[gun]
	if !ok {
		m = &sync.Mutex{}
		c.locks[gun] = m
	}
	c.mu.Unlock()
	m.Lock()
	dir := c.cacheDir(gun)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		m.Unlock()
		return nil, fmt.Errorf("client: %w", err)
	}
	f, err := os.OpenFile(filepath.Join(dir, ".lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		m.Unlock()
		return nil, fmt.Errorf("client: %w", err)
	}
	if err := lockFile(f); err != nil {
		f.Close()
		m.Unlock()
		return nil, fmt.Errorf("client: lock %s: %w", dir, err)
	}
	return func() {
		_ = unlockFile(f)
		f.Close()
		m.Unlock()
	}, nil
}

// fetcher is go-tuf's Fetcher bound to the current call's context (set
// under the GUN's lock before each use). It remembers the ETag of the last
// timestamp.json it fetched.
type fetcher struct {
	ctx   context.Context
	hc    *http.Client
	token string
	etag  string
	// ahead is a timestamp.json already fetched (by unchanged), which the
	// next DownloadFile of its URL returns instead of fetching it again.
	ahead *fetched
}

// fetched is one downloaded file and its ETag.
type fetched struct {
	url, etag string
	data      []byte
}

// DownloadFile implements fetcher.Fetcher.
func (f *fetcher) DownloadFile(u string, maxLength int64, _ time.Duration) ([]byte, error) {
	if a := f.ahead; a != nil && a.url == u {
		f.ahead = nil
		if int64(len(a.data)) > maxLength {
			return nil, &metadata.ErrDownloadLengthMismatch{Msg: fmt.Sprintf("%s is larger than %d bytes", u, maxLength)}
		}
		f.etag = a.etag
		return a.data, nil
	}
	req, err := http.NewRequestWithContext(f.ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	if f.token != "" {
		req.Header.Set("Authorization", "Bearer "+f.token)
	}
	resp, err := f.hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("client: %w", err) // a *url.Error names the method and URL
	}
	if resp.StatusCode != http.StatusOK {
		discard(resp.Body)
		return nil, &metadata.ErrDownloadHTTP{StatusCode: resp.StatusCode, URL: u}
	}
	defer resp.Body.Close()
	// One allocation when the server says the length (a 10 MB role read
	// with io.ReadAll's doubling allocates three times that).
	var buf bytes.Buffer
	if n := resp.ContentLength; n > 0 && n <= maxLength {
		buf.Grow(int(n) + bytes.MinRead)
	}
	if _, err := buf.ReadFrom(io.LimitReader(resp.Body, maxLength+1)); err != nil {
		return nil, fmt.Errorf("client: GET %s: %w", u, err)
	}
	data := buf.Bytes()
	if int64(len(data)) > maxLength {
		return nil, &metadata.ErrDownloadLengthMismatch{Msg: fmt.Sprintf("%s is larger than %d bytes", u, maxLength)}
	}
	if strings.HasSuffix(u, "/timestamp.json") {
		f.etag = resp.Header.Get("ETag")
	}
	return data, nil
}

// discard reads what is left of an answer's body that will not be used (a
// 404's error, a 304) and closes it, so that the connection serves the
// next request instead of being closed: the root probe of every update
// ends in a 404. Bodies longer than 64 KiB close the connection.
func discard(body io.ReadCloser) {
	_, _ = io.Copy(io.Discard, io.LimitReader(body, 64<<10))
	body.Close()
}

// unchanged asks, with a conditional GET, whether the server's
// timestamp.json is still the one with etag. When it is not, the new one
// the server sent comes back (unverified, as any download) for the update
// that follows, so that it is not fetched twice.
func (f *fetcher) unchanged(u, etag string) (bool, *fetched) {
	if etag == "" {
		return false, nil
	}
	req, err := http.NewRequestWithContext(f.ctx, http.MethodGet, u, nil)
	if err != nil {
		return false, nil
	}
	req.Header.Set("If-None-Match", etag)
	if f.token != "" {
		req.Header.Set("Authorization", "Bearer "+f.token)
	}
	resp, err := f.hc.Do(req)
	if err != nil {
		return false, nil
	}
	if resp.StatusCode != http.StatusOK {
		discard(resp.Body)
		return resp.StatusCode == http.StatusNotModified, nil
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, timestampMaxLength+1))
	if err != nil || len(data) > timestampMaxLength {
		return false, nil
	}
	return false, &fetched{url: u, etag: resp.Header.Get("ETag"), data: data}
}
