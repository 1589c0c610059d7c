// Package signerclient is signet-server's client of signet-signer: a
// signer.Service that calls the signer's HTTPS API over mutual TLS. Every
// call has a deadline; transport failures (refused, reset, timed out) wrap
// signer.ErrUnavailable so the server can answer 503 and recover by itself
// when the signer returns.
//
// It must not import server packages. A Client is safe for concurrent use.
package signerclient

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/signetdev/signet/internal/reqid"
	"github.com/signetdev/signet/signer"
	"github.com/signetdev/signet/signer/api"
)

// DefaultTimeout bounds each call.
const DefaultTimeout = 5 * time.Second

// Client calls a remote signer.
type Client struct {
	base    string
	http    *http.Client
	timeout time.Duration
	co      coalescer
}

var _ signer.Service = (*Client)(nil)

// Option configures a Client.
type Option func(*Client)

// WithTimeout sets the deadline of each call.
func WithTimeout(d time.Duration) Option { return func(c *Client) { c.timeout = d } }

// NewTransport returns the transport to reach the signer with: mutual TLS
// from tc (tlsutil.ClientConfig), HTTP/1.1 and up to 64 kept-alive
// connections, so that concurrent publishes each reuse one. HTTP/1.1, not
// HTTP/2 (which a transport cloned from http.DefaultTransport negotiates):
// a publish makes one small request, and with 16 concurrent callers Go's
// HTTP/2 client and server spend about 10% more CPU per request
// (BenchmarkSignBatch).
func NewTransport(tc *tls.Config) *http.Transport {
	return &http.Transport{
		TLSClientConfig:     tc,
		TLSHandshakeTimeout: 10 * time.Second,
		MaxIdleConns:        64,
		MaxIdleConnsPerHost: 64,
		IdleConnTimeout:     90 * time.Second,
		ForceAttemptHTTP2:   false,
		// A non-nil, empty map keeps HTTP/2 off even if the caller's TLS
		// configuration offers h2.
		TLSNextProto: map[string]func(string, *tls.Conn) http.RoundTripper{},
	}
}

// New returns a client of the signer at baseURL (https://host:port). hc
// must carry the mTLS configuration (tlsutil.ClientConfig; NewTransport).
func New(baseURL string, hc *http.Client, opts ...Option) *Client {
	c := &Client{base: strings.TrimSuffix(baseURL, "/"), http: hc, timeout: DefaultTimeout, co: coalescer{max: DefaultMaxInFlight}}
	for _, o := range opts {
		o(c)
	}
	return c
}

// EnsureKey implements signer.Service.
func (c *Client) EnsureKey(ctx context.Context, gun, role string, alg signer.Algorithm) (*signer.KeyInfo, error) {
	return c.key(ctx, api.PathEnsureKey, api.KeyRequest{GUN: gun, Role: role, Algorithm: alg})
}

// RotateKey implements signer.Service.
func (c *Client) RotateKey(ctx context.Context, gun, role string, alg signer.Algorithm) (*signer.KeyInfo, error) {
	return c.key(ctx, api.PathRotateKey, api.KeyRequest{GUN: gun, Role: role, Algorithm: alg})
}

// PublicKey implements signer.Service.
func (c *Client) PublicKey(ctx context.Context, gun, role string) (*signer.KeyInfo, error) {
	return c.key(ctx, api.PathPublicKey, api.KeyRequest{GUN: gun, Role: role})
}

func (c *Client) key(ctx context.Context, path string, req api.KeyRequest) (*signer.KeyInfo, error) {
	var k api.Key
	if err := c.call(ctx, path, req, &k); err != nil {
		return nil, fmt.Errorf("signerclient: %s %s/%s: %w", path, req.GUN, req.Role, err)
	}
	info, err := api.FromWire(k)
	if err != nil {
		return nil, fmt.Errorf("signerclient: %s %s/%s: %w", path, req.GUN, req.Role, err)
	}
	return info, nil
}

// ListKeys implements signer.Service.
func (c *Client) ListKeys(ctx context.Context, gun string) ([]signer.KeyInfo, error) {
	var list api.KeyList
	if err := c.call(ctx, api.PathListKeys, api.KeyRequest{GUN: gun}, &list); err != nil {
		return nil, fmt.Errorf("signerclient: list keys of %s: %w", gun, err)
	}
	out := make([]signer.KeyInfo, 0, len(list.Keys))
	for _, k := range list.Keys {
		info, err := api.FromWire(k)
		if err != nil {
			return nil, fmt.Errorf("signerclient: list keys of %s: %w", gun, err)
		}
		out = append(out, *info)
	}
	return out, nil
}

// Sign implements signer.Service.
func (c *Client) Sign(ctx context.Context, gun, role, keyID string, payload []byte) ([]byte, error) {
	var resp api.SignResponse
	if err := c.call(ctx, api.PathSign, api.SignRequest{GUN: gun, Role: role, KeyID: keyID, Payload: payload}, &resp); err != nil {
		return nil, fmt.Errorf("signerclient: sign %s/%s with %s: %w", gun, role, keyID, err)
	}
	return resp.Signature, nil
}

// SignBatch implements signer.Service: all payloads are signed, or none.
// A refusal comes back as a *signer.BatchError naming the refused payload.
// Concurrent calls beyond the client's in-flight requests go to the signer
// together (WithMaxInFlight), each batch still signed or refused on its
// own. The signer must know /v1/sign/batch: upgrade signet-signer before
// the servers that call it.
func (c *Client) SignBatch(ctx context.Context, reqs []signer.SignRequest) ([][]byte, error) {
	if c.co.max > 0 && len(reqs) > 0 && len(reqs) <= signer.MaxBatch {
		return c.coalesced(ctx, reqs)
	}
	// Batches the signer refuses for their size go alone, as they always
	// did, to be refused (and audited) as such.
	return c.signBatch(ctx, reqs)
}

// signBatch sends one batch in a request of its own.
func (c *Client) signBatch(ctx context.Context, reqs []signer.SignRequest) ([][]byte, error) {
	in := api.SignBatchRequest{Requests: wireRequests(reqs)}
	var resp api.SignBatchResponse
	if err := c.call(ctx, api.PathSignBatch, in, &resp); err != nil {
		var ie *indexedError
		if errors.As(err, &ie) && ie.index >= 0 && ie.index < len(reqs) {
			err = &signer.BatchError{Index: ie.index, Role: reqs[ie.index].Role, Err: ie.err}
		}
		return nil, fmt.Errorf("signerclient: sign batch of %d: %w", len(reqs), err)
	}
	if len(resp.Signatures) != len(reqs) {
		return nil, fmt.Errorf("signerclient: sign batch: %d signatures for %d payloads", len(resp.Signatures), len(reqs))
	}
	return resp.Signatures, nil
}

func wireRequests(reqs []signer.SignRequest) []api.SignRequest {
	out := make([]api.SignRequest, len(reqs))
	for i, r := range reqs {
		out[i] = api.SignRequest{GUN: r.GUN, Role: r.Role, KeyID: r.KeyID, Payload: r.Payload}
	}
	return out
}

// DeleteKeys implements signer.Service.
func (c *Client) DeleteKeys(ctx context.Context, gun string) error {
	if err := c.call(ctx, api.PathDeleteKeys, api.KeyRequest{GUN: gun}, nil); err != nil {
		return fmt.Errorf("signerclient: delete keys of %s: %w", gun, err)
	}
	return nil
}

// Ping implements signer.Service: it asks the signer's readiness endpoint.
func (c *Client) Ping(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+api.PathReady, nil)
	if err != nil {
		return fmt.Errorf("signerclient: ping: %w", err)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("signerclient: ping: %w: %w", signer.ErrUnavailable, err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("signerclient: ping: %w: status %d", signer.ErrUnavailable, resp.StatusCode)
	}
	return nil
}

// call POSTs in as JSON and decodes a 200 answer into out.
func (c *Client) call(ctx context.Context, path string, in, out any) error {
	var body []byte
	var err error
	if a, ok := in.(interface{ AppendJSON([]byte) []byte }); ok {
		body = a.AppendJSON(nil) // the signing calls' hand-written encoding
	} else if body, err = json.Marshal(in); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	if id := reqid.From(ctx); id != "" {
		req.Header.Set(reqid.Header, id) // the signer logs it
	}
	resp, err := c.http.Do(req)
	if err != nil {
		if errors.Is(err, context.Canceled) {
			return err // our caller gave up; the signer is not to blame
		}
		return fmt.Errorf("%w: %w", signer.ErrUnavailable, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return fmt.Errorf("%w: %w", signer.ErrUnavailable, err)
	}
	if resp.StatusCode != http.StatusOK {
		return remoteError(resp.StatusCode, data)
	}
	if out == nil {
		return nil
	}
	if u, ok := out.(json.Unmarshaler); ok {
		// The signing calls' decoders (api/codec.go) are strict on their
		// own: no need for encoding/json to scan the answer first.
		err = u.UnmarshalJSON(data)
	} else {
		err = json.Unmarshal(data, out)
	}
	if err != nil {
		return fmt.Errorf("malformed answer: %w", err)
	}
	return nil
}

// indexedError is a refusal of one payload of a batch, before SignBatch
// names it as a signer.BatchError.
type indexedError struct {
	index int
	err   error
}

func (e *indexedError) Error() string { return e.err.Error() }
func (e *indexedError) Unwrap() error { return e.err }

// statusError is a non-200 answer: its status, the envelope's code ("" if
// the body was none of the signer's envelopes) and the error it means.
type statusError struct {
	status int
	code   string
	err    error
}

func (e *statusError) Error() string { return e.err.Error() }
func (e *statusError) Unwrap() error { return e.err }

// remoteError turns the signer's error envelope back into signer errors.
func remoteError(status int, data []byte) error {
	var eb api.ErrorBody
	_ = json.Unmarshal(data, &eb)
	code := ""
	if len(eb.Errors) > 0 {
		code = eb.Errors[0].Code
	}
	return &statusError{status: status, code: code, err: envelopeError(status, eb)}
}

func envelopeError(status int, eb api.ErrorBody) error {
	msg := fmt.Sprintf("status %d", status)
	code := ""
	if len(eb.Errors) > 0 {
		code, msg = eb.Errors[0].Code, eb.Errors[0].Message
	}
	err := codeError(status, code, msg)
	if len(eb.Errors) > 0 && eb.Errors[0].Index != nil {
		return &indexedError{index: *eb.Errors[0].Index, err: err}
	}
	return err
}

func codeError(status int, code, msg string) error {
	switch {
	case code == api.CodeKeyNotFound:
		return fmt.Errorf("%w: %s", signer.ErrKeyNotFound, msg)
	case code == api.CodeRoleMismatch:
		return fmt.Errorf("%w: %s", signer.ErrRoleMismatch, msg)
	case code == api.CodeUnsupportedRole:
		return fmt.Errorf("%w: %s", signer.ErrUnsupportedRole, msg)
	case status >= 500:
		return fmt.Errorf("%w: %s", signer.ErrUnavailable, msg)
	}
	return fmt.Errorf("signer refused: %s", msg)
}
