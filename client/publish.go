package client

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"mime/multipart"
	"net/http"
	"slices"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/signetdev/signet/api"

	"github.com/signetdev/signet/tufrules"
)

// Freshness defaults of developer-signed metadata (DESIGN.md).
const (
	RootLifetime    = 365 * 24 * time.Hour
	TargetsLifetime = 90 * 24 * time.Hour
	maxAttempts     = 8
)

// ErrConflict: the server kept refusing a publish as stale (409).
var ErrConflict = errors.New("publish conflicted with concurrent publishes")

// ServerError is a refusal by signet-server: its HTTP status and the
// first error of its envelope (api.ErrorBody).
type ServerError struct {
	Status  int
	Code    api.Code
	Message string
}

func (e *ServerError) Error() string {
	return fmt.Sprintf("server refused (%d %s): %s", e.Status, e.Code, e.Message)
}

// ErrVersionConflict matches (errors.Is) a refusal because another
// publish landed first (409 VERSION_CONFLICT): worth retrying on the new
// state. ErrStaleStaged matches a staged change that a later publish made
// stale.
var (
	ErrVersionConflict = errors.New("the server holds a newer version (a concurrent publish)")
	ErrStaleStaged     = errors.New("the staged change is stale")
)

// Is maps the server's codes to the client's sentinels.
func (e *ServerError) Is(target error) bool {
	switch target {
	case ErrVersionConflict:
		return e.Code == api.CodeVersionConflict
	case ErrStaleStaged:
		return e.Code == api.CodeStaleStaged
	}
	return false
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
	if err := ValidateGUN(gun); err != nil {
		return nil, err // before any key is made
	}
	ctx, cancel := context.WithTimeout(ctx, c.opts.Timeout)
	defer cancel()
	// The server first: an unreachable or refusing server leaves no keys.
	ts, err := c.ServerKey(ctx, gun, metadata.TIMESTAMP)
	if err != nil {
		return nil, err
	}
	snap, err := c.ServerKey(ctx, gun, metadata.SNAPSHOT)
	if err != nil {
		return nil, err
	}
	rootKey, err := c.keys.Generate(ctx, metadata.ROOT)
	if err != nil {
		return nil, err
	}
	targetsKey, err := c.keys.Generate(ctx, metadata.TARGETS)
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
	if _, err := c.post(ctx, gun, map[string][]byte{metadata.ROOT: rootBytes, metadata.TARGETS: targetsBytes}); err != nil {
		return nil, err
	}
	return rootBytes, c.PinRoot(gun, rootBytes)
}

// ServerKey fetches the server's public key of role (timestamp or
// snapshot) for gun, creating it on first ask.
func (c *Client) ServerKey(ctx context.Context, gun, role string) (*metadata.Key, error) {
	var k metadata.Key
	if err := c.getJSON(ctx, gun, "push,pull", c.opts.Server+api.KeyPath(gun, role), &k); err != nil {
		return nil, fmt.Errorf("client: %s key of %s: %w", role, gun, err)
	}
	return &k, nil
}

// Outcome is the result of a publish.
type Outcome struct {
	// Roles are the roles this change signed, sorted.
	Roles []string
	// Published maps every stored role to its new version when the change
	// was published.
	Published map[string]int64
	// Staged is set instead when some role is signed by fewer keys than its
	// threshold: the change waits on the server for other key holders to
	// approve it (Approve, signet approve).
	Staged *StagedChange
	// Expired lists the roles that had expired and that this change does
	// not re-sign: resolves through them keep failing until their key
	// holders publish their next versions (Renew).
	Expired []string
	// Shadowed lists the tags this change signs that a resolve finds
	// elsewhere once it is published, as that resolve will find them (Role
	// and Digest of the role earlier in resolution order that lists them;
	// Role "" if no role a resolve visits lists them): their new signature
	// does not take effect. Predicted from the verified state plus the
	// change, so no second update is needed.
	Shadowed []Target
}

// Publish signs changes with the keys of the role each tag belongs to and
// publishes them in one upload (see PublishAs).
func (c *Client) Publish(ctx context.Context, gun string, changes []Change) (*Outcome, error) {
	return c.PublishAs(ctx, gun, "", changes)
}

// PublishAs applies changes to role ("targets" or a delegated role) and
// publishes them in one upload. With role "", each added tag goes to the
// first delegated role, in TUF's pre-order walk, that may list it and whose
// key this trust directory holds, else to targets; a removed tag is removed
// from the role that lists it. When a role's threshold needs more keys
// than this trust directory holds, the change is staged on the server for
// the other holders. On a conflict (someone published meanwhile) it
// updates, re-applies the changes and retries, a bounded number of times.
func (c *Client) PublishAs(ctx context.Context, gun, role string, changes []Change) (*Outcome, error) {
	if len(changes) == 0 {
		return nil, errors.New("client: nothing to publish")
	}
	return c.retry(ctx, gun, func(s *roleState) error {
		for _, ch := range changes {
			if err := s.apply(role, ch); err != nil {
				return err
			}
			if !ch.Remove {
				s.signed = append(s.signed, ch)
			}
		}
		return nil
	})
}

// Renew publishes the next version of each of roles ("targets" or
// delegated roles), unchanged but for a new expiry, signed by the keys this
// trust directory holds of it (staged when they are below its threshold).
// It is how an expired role is re-signed: its current version is verified
// in every respect but its expiry first. Each role must have been published.
func (c *Client) Renew(ctx context.Context, gun string, roles []string) (*Outcome, error) {
	if len(roles) == 0 {
		return nil, errors.New("client: no role to renew")
	}
	return c.retry(ctx, gun, func(s *roleState) error {
		for _, role := range roles {
			if tufrules.IsTopLevel(role) && role != metadata.TARGETS {
				return fmt.Errorf("client: %s: only targets and delegated roles are renewed by their key holders (root: signet root resign; timestamp, snapshot: the server)", role)
			}
			cur, err := s.load(role)
			if err != nil {
				return err
			}
			if cur == nil {
				return fmt.Errorf("client: %s of %s was never published: %w", role, s.gun, ErrNotSigned)
			}
			if _, err := s.next(role); err != nil {
				return err
			}
		}
		return nil
	})
}

// retry builds the pending roles with build on the latest verified state
// and submits them, again on each 409.
func (c *Client) retry(ctx context.Context, gun string, build func(*roleState) error) (*Outcome, error) {
	ctx, cancel := context.WithTimeout(ctx, c.opts.Timeout)
	defer cancel()
	c.prefetchKeys(ctx, gun) // the key unlock overlaps the update (keystore.go)
	var last error
	for attempt := range maxAttempts {
		out, err := c.submitOnce(ctx, gun, build)
		if !errors.Is(err, ErrVersionConflict) {
			// Only a lost race is worth retrying; a stale staged change or a full
			// staging area is not.
			return out, err
		}
		last = err
		c.log.InfoContext(ctx, "publish conflicted; retrying on the new state", "gun", gun, "attempt", attempt+1)
		// Jittered backoff, so that racing publishers spread out.
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("client: publish %s: %w", gun, ctx.Err())
		case <-time.After(time.Duration(attempt+1) * time.Duration(rand.Int64N(int64(20*time.Millisecond)))):
		}
	}
	return nil, fmt.Errorf("client: publish %s: %w: %w", gun, ErrConflict, last)
}

func (c *Client) submitOnce(ctx context.Context, gun string, build func(*roleState) error) (*Outcome, error) {
	var out *Outcome
	err := c.withEditState(ctx, gun, func(s *roleState) error {
		if err := build(s); err != nil {
			return err
		}
		var err error
		out, err = c.submit(ctx, s)
		return err
	})
	return out, err
}

// apply puts one change into the pending next version of its role.
func (s *roleState) apply(role string, ch Change) error {
	if ch.Remove {
		if role == "" {
			t, err := s.listing(ch.Tag)
			if err != nil {
				return err
			}
			role = t
		}
		m, err := s.next(role)
		if err != nil {
			return err
		}
		if _, ok := m.Signed.Targets[ch.Tag]; !ok {
			return fmt.Errorf("client: %s: %s does not list %s: %w", s.gun, role, ch.Tag, ErrNotSigned)
		}
		delete(m.Signed.Targets, ch.Tag)
		return nil
	}
	if err := ch.Digest.Validate(); err != nil || ch.Digest.Algorithm() != digest.SHA256 {
		return fmt.Errorf("client: %s: digest %q is not a sha256 digest", ch.Tag, ch.Digest)
	}
	sum, err := hex.DecodeString(ch.Digest.Encoded())
	if err != nil {
		return fmt.Errorf("client: %s: %w", ch.Tag, err)
	}
	if role == "" {
		if role, err = s.pick(ch.Tag); err != nil {
			return err
		}
	}
	m, err := s.next(role)
	if err != nil {
		return err
	}
	m.Signed.Targets[ch.Tag] = &metadata.TargetFiles{Length: ch.Size, Hashes: metadata.Hashes{"sha256": sum}}
	return nil
}

// walk visits, in TUF's pre-order, the roles a client resolving tag would
// visit (tufrules.Walk over the state being built), until visit returns
// true.
func (s *roleState) walk(tag string, visit func(role string, m *metadata.Metadata[metadata.TargetsType]) (bool, error)) error {
	err := tufrules.Walk(s.ctx, tag, s.c.opts.MaxRolesVisited, s.walkLoader, func(role, _ string, m *metadata.Metadata[metadata.TargetsType]) (bool, error) {
		return visit(role, m)
	})
	if err != nil {
		return s.trustErr(err)
	}
	return nil
}

// pick chooses the role to sign tag with: the first delegated role in
// pre-order that may list it and whose key this trust directory holds,
// else targets if its key is held.
func (s *roleState) pick(tag string) (string, error) {
	var picked string
	err := s.walk(tag, func(role string, _ *metadata.Metadata[metadata.TargetsType]) (bool, error) {
		if role == metadata.TARGETS {
			return false, nil
		}
		d, err := s.delegationOf(role)
		if err != nil {
			return false, err
		}
		held, err := s.heldKeys(d.keyIDs)
		if err != nil || len(held) == 0 {
			return false, err
		}
		picked = role
		return true, nil
	})
	if err != nil || picked != "" {
		return picked, err
	}
	d, err := s.delegationOf(metadata.TARGETS)
	if err != nil {
		return "", err
	}
	if held, err := s.heldKeys(d.keyIDs); err != nil || len(held) > 0 {
		return metadata.TARGETS, err
	}
	return "", fmt.Errorf("client: %s:%s: %w: this trust directory holds no key of targets or of a delegation that may sign %s", s.gun, tag, ErrNoKey, tag)
}

// listing returns the role that lists tag, as a resolving client finds it.
func (s *roleState) listing(tag string) (string, error) {
	var found string
	err := s.walk(tag, func(role string, m *metadata.Metadata[metadata.TargetsType]) (bool, error) {
		if m != nil {
			if _, ok := m.Signed.Targets[tag]; ok {
				found = role
				return true, nil
			}
		}
		return false, nil
	})
	if err == nil && found == "" {
		err = &NotSignedError{GUN: s.gun, Tag: tag}
	}
	return found, err
}

// submit signs every pending role with the keys this trust directory holds
// of it and publishes them together, or stages them when a role is below
// its threshold.
func (c *Client) submit(ctx context.Context, s *roleState) (*Outcome, error) {
	s.bearDelegations()
	out := &Outcome{}
	var err error
	files := map[string][]byte{}
	complete, signed := true, 0
	for role, m := range s.pending {
		d, err := s.delegationOf(role)
		if err != nil {
			return nil, err
		}
		for path := range m.Signed.Targets {
			if !d.allows(path) {
				return nil, fmt.Errorf("client: %s may not sign %s: it is outside the paths delegated to it", role, path)
			}
		}
		held, err := s.heldKeys(d.keyIDs)
		if err != nil {
			return nil, err
		}
		m.ClearSignatures()
		if files[role], err = c.sign(ctx, m, held...); err != nil {
			return nil, err
		}
		signed += len(held)
		complete = complete && len(held) >= d.threshold
		out.Roles = append(out.Roles, role)
	}
	slices.Sort(out.Roles)
	for role := range s.stale {
		if _, ok := s.pending[role]; !ok {
			out.Expired = append(out.Expired, role)
		}
	}
	slices.Sort(out.Expired)
	if out.Shadowed, err = s.shadowed(); err != nil {
		return nil, err
	}
	if signed == 0 {
		return nil, fmt.Errorf("client: %s: %w: this trust directory holds no key of %v", s.gun, ErrNoKey, out.Roles)
	}
	if complete {
		versions, err := c.post(ctx, s.gun, files)
		out.Published = versions
		return out, err
	}
	st, err := c.postStaged(ctx, s.gun, "", files)
	if err != nil {
		return nil, err
	}
	if st.Published != nil {
		out.Published = st.Published
	} else {
		out.Staged = st
	}
	return out, nil
}

// shadowed looks up, as a resolve will once the pending roles are
// published, each tag the change signs (Outcome.Shadowed), up to
// maxShadowChecks of them.
func (s *roleState) shadowed() ([]Target, error) {
	var out []Target
	for i, ch := range s.signed {
		if i == maxShadowChecks {
			break
		}
		role, tf, err := s.lookup(ch.Tag, s.walkLoader)
		if err != nil {
			return nil, err
		}
		if tf == nil {
			out = append(out, Target{GUN: s.gun, Tag: ch.Tag})
			continue
		}
		if t := target(s.gun, ch.Tag, role, tf); t.Digest != ch.Digest {
			out = append(out, *t)
		}
	}
	return out, nil
}

// maxShadowChecks bounds the lookups shadowed makes (a sign --from of a
// whole repository).
const maxShadowChecks = 1000

// bearDelegations adds to the pending roles the first (empty) version of
// every role a pending role delegates to that was never published: a
// delegation is born published, signed by its own keys, so that a TUF
// client reaching it finds it in the snapshot (§5.6). Where this trust
// directory lacks the new role's keys, submit stages the change for its
// key holders to approve.
func (s *roleState) bearDelegations() {
	for _, role := range slices.Sorted(maps.Keys(s.pending)) {
		d := s.pending[role].Signed.Delegations
		if d == nil {
			continue
		}
		var children []string
		if d.SuccinctRoles != nil {
			children = d.SuccinctRoles.GetRoles()
		}
		for _, r := range d.Roles {
			children = append(children, r.Name)
		}
		for _, child := range children {
			if _, published := s.trusted.Snapshot.Signed.Meta[metaFile(child)]; published {
				continue
			}
			if _, ok := s.pending[child]; ok {
				continue
			}
			s.pending[child] = metadata.Targets(s.c.opts.Now().Add(TargetsLifetime))
			s.delegator[child] = role
		}
	}
}

func (c *Client) heldKeys(ctx context.Context, ids []string) ([]string, error) {
	keys, err := c.keys.List(ctx)
	if err != nil {
		return nil, err
	}
	var held []string
	for _, k := range keys {
		if slices.Contains(ids, k.ID) && !slices.Contains(held, k.ID) {
			held = append(held, k.ID)
		}
	}
	slices.Sort(held)
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

func (c *Client) post(ctx context.Context, gun string, files map[string][]byte) (map[string]int64, error) {
	body, err := c.upload(ctx, gun, c.tufURL(gun), files)
	if err != nil {
		return nil, fmt.Errorf("client: publish %s: %w", gun, err)
	}
	var res api.PublishResult
	if err := json.Unmarshal(body, &res); err != nil {
		return nil, fmt.Errorf("client: publish %s: answer: %w", gun, err)
	}
	return res.Versions, nil
}

// upload POSTs files as multipart/form-data, one part per role, to u.
func (c *Client) upload(ctx context.Context, gun, u string, files map[string][]byte) ([]byte, error) {
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	for role, data := range files {
		w, err := mw.CreateFormFile("files", role)
		if err != nil {
			return nil, err
		}
		if _, err := w.Write(data); err != nil {
			return nil, err
		}
	}
	if err := mw.Close(); err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, &buf)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", mw.FormDataContentType())
	return c.do(ctx, gun, "push,pull", req)
}

// getJSON GETs u about gun, needing actions, and decodes the answer into v.
func (c *Client) getJSON(ctx context.Context, gun, actions, u string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	body, err := c.do(ctx, gun, actions, req)
	if err != nil {
		return err
	}
	return json.Unmarshal(body, v)
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
		var eb api.ErrorBody
		if json.Unmarshal(body, &eb) == nil && len(eb.Errors) > 0 {
			se.Code, se.Message = eb.Errors[0].Code, eb.Errors[0].Message
		}
		return nil, se
	}
	return body, nil
}
