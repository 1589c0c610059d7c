package client

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"mime/multipart"
	"net/http"
	"time"

	"github.com/opencontainers/go-digest"
	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// Freshness defaults of developer-signed metadata (DESIGN.md).
const (
	RootLifetime    = 365 * 24 * time.Hour
	TargetsLifetime = 90 * 24 * time.Hour
	maxAttempts     = 8
)

// ErrConflict: the server kept refusing a publish as stale (409).
var ErrConflict = errors.New("publish conflicted with concurrent publishes")

// ServerError is a refusal by signet-server.
type ServerError struct {
	Status  int
	Code    string
	Message string
}

func (e *ServerError) Error() string {
	return fmt.Sprintf("server refused (%d %s): %s", e.Status, e.Code, e.Message)
}

// Change adds (or, with Remove, removes) one tag.
type Change struct {
	Tag    string
	Digest digest.Digest
	Size   int64
	Remove bool
}

// Init creates gun's trust data: a root key and a targets key in the key
// store, root v1 naming them and the server's timestamp and snapshot keys,
// and an empty targets v1. It publishes both and pins the root here.
func (c *Client) Init(ctx context.Context, gun string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, c.opts.Timeout)
	defer cancel()
	rootKey, err := c.keys.Generate(ctx, metadata.ROOT)
	if err != nil {
		return nil, err
	}
	targetsKey, err := c.keys.Generate(ctx, metadata.TARGETS)
	if err != nil {
		return nil, err
	}
	ts, err := c.ServerKey(ctx, gun, metadata.TIMESTAMP)
	if err != nil {
		return nil, err
	}
	snap, err := c.ServerKey(ctx, gun, metadata.SNAPSHOT)
	if err != nil {
		return nil, err
	}
	now := c.opts.Now()
	root := metadata.Root(now.Add(RootLifetime))
	root.Signed.ConsistentSnapshot = true
	for role, k := range map[string]*metadata.Key{metadata.ROOT: rootKey.Public, metadata.TARGETS: targetsKey.Public, metadata.TIMESTAMP: ts, metadata.SNAPSHOT: snap} {
		if err := root.Signed.AddKey(k, role); err != nil {
			return nil, fmt.Errorf("client: %w", err)
		}
	}
	rootBytes, err := c.sign(ctx, root, rootKey.ID)
	if err != nil {
		return nil, err
	}
	targets := metadata.Targets(now.Add(TargetsLifetime))
	targetsBytes, err := c.sign(ctx, targets, targetsKey.ID)
	if err != nil {
		return nil, err
	}
	if err := c.post(ctx, gun, map[string][]byte{metadata.ROOT: rootBytes, metadata.TARGETS: targetsBytes}); err != nil {
		return nil, err
	}
	return rootBytes, c.PinRoot(gun, rootBytes)
}

// ServerKey fetches the server's public key of role (timestamp or
// snapshot) for gun, creating it on first ask.
func (c *Client) ServerKey(ctx context.Context, gun, role string) (*metadata.Key, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.tufURL(gun)+role+".key", nil)
	if err != nil {
		return nil, err
	}
	body, err := c.do(ctx, gun, "push,pull", req)
	if err != nil {
		return nil, fmt.Errorf("client: %s key of %s: %w", role, gun, err)
	}
	var k metadata.Key
	if err := json.Unmarshal(body, &k); err != nil {
		return nil, fmt.Errorf("client: %s key of %s: %w", role, gun, err)
	}
	return &k, nil
}

// Publish applies changes to gun's targets, signs and publishes them. On a
// conflict (someone published meanwhile) it updates, re-applies the changes
// and retries, a bounded number of times.
func (c *Client) Publish(ctx context.Context, gun string, changes []Change) error {
	ctx, cancel := context.WithTimeout(ctx, c.opts.Timeout)
	defer cancel()
	var last error
	for attempt := range maxAttempts {
		err := c.publishOnce(ctx, gun, changes)
		var se *ServerError
		if !errors.As(err, &se) || se.Status != http.StatusConflict {
			return err
		}
		last = err
		c.log.InfoContext(ctx, "publish conflicted; retrying on the new state", "gun", gun, "attempt", attempt+1)
		// Jittered backoff, so that racing publishers spread out.
		select {
		case <-ctx.Done():
			return fmt.Errorf("client: publish %s: %w", gun, ctx.Err())
		case <-time.After(time.Duration(attempt+1) * time.Duration(rand.Int64N(int64(20*time.Millisecond)))):
		}
	}
	return fmt.Errorf("client: publish %s: %w: %w", gun, ErrConflict, last)
}

func (c *Client) publishOnce(ctx context.Context, gun string, changes []Change) error {
	unlock, err := c.lock(gun)
	if err != nil {
		return err
	}
	up, err := c.current(ctx, gun)
	unlock()
	if err != nil {
		return err
	}
	trusted := up.GetTrustedMetadataSet()
	cur := trusted.Targets[metadata.TARGETS]
	next := metadata.Targets(c.opts.Now().Add(TargetsLifetime))
	next.Signed.Version = cur.Signed.Version + 1
	next.Signed.Delegations = cur.Signed.Delegations
	for path, tf := range cur.Signed.Targets {
		next.Signed.Targets[path] = tf
	}
	for _, ch := range changes {
		if ch.Remove {
			delete(next.Signed.Targets, ch.Tag)
			continue
		}
		if err := ch.Digest.Validate(); err != nil || ch.Digest.Algorithm() != digest.SHA256 {
			return fmt.Errorf("client: %s: digest %q is not a sha256 digest", ch.Tag, ch.Digest)
		}
		sum, err := hex.DecodeString(ch.Digest.Encoded())
		if err != nil {
			return fmt.Errorf("client: %s: %w", ch.Tag, err)
		}
		next.Signed.Targets[ch.Tag] = &metadata.TargetFiles{Length: ch.Size, Hashes: metadata.Hashes{"sha256": sum}}
	}
	ids := trusted.Root.Signed.Roles[metadata.TARGETS].KeyIDs
	held, err := c.heldKeys(ctx, ids)
	if err != nil {
		return err
	}
	if len(held) == 0 {
		return fmt.Errorf("client: %s: %w: none of the targets keys %v is in this trust directory", gun, ErrNoKey, ids)
	}
	data, err := c.sign(ctx, next, held...)
	if err != nil {
		return err
	}
	return c.post(ctx, gun, map[string][]byte{metadata.TARGETS: data})
}

func (c *Client) heldKeys(ctx context.Context, ids []string) ([]string, error) {
	keys, err := c.keys.List(ctx)
	if err != nil {
		return nil, err
	}
	var held []string
	for _, k := range keys {
		for _, id := range ids {
			if k.ID == id {
				held = append(held, id)
			}
		}
	}
	return held, nil
}

// sign signs m with the held keys. It does not use metadata.Sign's error,
// which drops the signer's cause: the signer is loaded (and its passphrase
// checked) first.
func (c *Client) sign(ctx context.Context, m interface {
	Sign(signature.Signer) (*metadata.Signature, error)
	ToBytes(bool) ([]byte, error)
}, keyIDs ...string) ([]byte, error) {
	for _, id := range keyIDs {
		s, err := c.keys.Signer(ctx, id)
		if err != nil {
			return nil, err
		}
		if _, err := m.Sign(s); err != nil {
			return nil, fmt.Errorf("client: sign with %s: %w", id, err)
		}
	}
	return m.ToBytes(false)
}

func (c *Client) post(ctx context.Context, gun string, files map[string][]byte) error {
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	for role, data := range files {
		w, err := mw.CreateFormFile("files", role)
		if err != nil {
			return err
		}
		if _, err := w.Write(data); err != nil {
			return err
		}
	}
	if err := mw.Close(); err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.tufURL(gun), &buf)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", mw.FormDataContentType())
	if _, err := c.do(ctx, gun, "push,pull", req); err != nil {
		return fmt.Errorf("client: publish %s: %w", gun, err)
	}
	return nil
}

// do sends req about gun, needing actions, and returns the body of a 2xx
// answer, or a *ServerError.
func (c *Client) do(ctx context.Context, gun, actions string, req *http.Request) ([]byte, error) {
	if c.opts.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.opts.Token)
	}
	hc, err := c.httpFor(ctx, gun, actions)
	if err != nil {
		return nil, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode/100 != 2 {
		se := &ServerError{Status: resp.StatusCode, Message: http.StatusText(resp.StatusCode)}
		var eb struct {
			Errors []struct{ Code, Message string }
		}
		if json.Unmarshal(body, &eb) == nil && len(eb.Errors) > 0 {
			se.Code, se.Message = eb.Errors[0].Code, eb.Errors[0].Message
		}
		return nil, se
	}
	return body, nil
}
