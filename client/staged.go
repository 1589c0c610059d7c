package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"

	"github.com/signetdev/signet/api"
	"github.com/signetdev/signet/tufedit"

	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// K-of-n signing: when a role's threshold needs keys held by several
// people, the first signer's change is staged on the server (Publish does
// that by itself); the others review it and add their signatures with
// Approve. The approval that completes every threshold publishes it.

// StagedRole is one role of a staged change and its signatures so far.
type StagedRole = api.StagedRole

// StagedChange is a change waiting on the server for signatures
// (Pending says how many more each role needs). Published is set when the
// change met every threshold and was published; only GetStaged fills
// Files.
type StagedChange = api.StagedChange

func (c *Client) stagedURL(gun, id string) string {
	return c.opts.Server + api.StagedPath(gun, id)
}

func (c *Client) postStaged(ctx context.Context, gun, id string, files map[string][]byte) (*StagedChange, error) {
	body, err := c.upload(ctx, gun, c.stagedURL(gun, id), files)
	if err != nil {
		return nil, fmt.Errorf("client: stage %s: %w", gun, err)
	}
	var st StagedChange
	if err := json.Unmarshal(body, &st); err != nil {
		return nil, fmt.Errorf("client: stage %s: answer: %w", gun, err)
	}
	return &st, nil
}

// ListStaged returns gun's staged changes, oldest first.
func (c *Client) ListStaged(ctx context.Context, gun string) ([]StagedChange, error) {
	ctx, cancel := context.WithTimeout(ctx, c.opts.Timeout)
	defer cancel()
	var res api.StagedList
	if err := c.getJSON(ctx, gun, "pull", c.stagedURL(gun, ""), &res); err != nil {
		return nil, fmt.Errorf("client: staged changes of %s: %w", gun, err)
	}
	return res.Staged, nil
}

// GetStaged returns one staged change with its files.
func (c *Client) GetStaged(ctx context.Context, gun, id string) (*StagedChange, error) {
	var st StagedChange
	if err := c.getJSON(ctx, gun, "pull", c.stagedURL(gun, id), &st); err != nil {
		return nil, fmt.Errorf("client: staged change %s of %s: %w", id, gun, err)
	}
	return &st, nil
}

// Withdraw removes a staged change.
func (c *Client) Withdraw(ctx context.Context, gun, id string) error {
	ctx, cancel := context.WithTimeout(ctx, c.opts.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodDelete, c.stagedURL(gun, id), nil)
	if err != nil {
		return err
	}
	if _, err := c.do(ctx, gun, "push,pull", req); err != nil {
		return fmt.Errorf("client: withdraw %s of %s: %w", id, gun, err)
	}
	return nil
}

// TagChange is one tag a staged change adds, changes or removes. Old is
// nil for an added tag, New for a removed one.
type TagChange struct {
	Role string
	Tag  string
	Old  *Target
	New  *Target
}

// Review is what a staged change would change, compared with the verified
// current state.
type Review struct {
	Change *StagedChange
	Tags   []TagChange
	// Delegations describes changed delegations ("targets/releases: keys
	// [a b] → [b]"), one line each.
	Delegations []string
	// roles are the parsed staged roles, for Approve.
	roles map[string]*metadata.Metadata[metadata.TargetsType]
}

// ReviewStaged fetches staged change id and compares each of its roles
// with the role's verified current version.
func (c *Client) ReviewStaged(ctx context.Context, gun, id string) (*Review, error) {
	ctx, cancel := context.WithTimeout(ctx, c.opts.Timeout)
	defer cancel()
	st, err := c.GetStaged(ctx, gun, id)
	if err != nil {
		return nil, err
	}
	rv := &Review{Change: st, roles: map[string]*metadata.Metadata[metadata.TargetsType]{}}
	err = c.withEditState(ctx, gun, func(s *roleState) error {
		for role, data := range st.Files {
			m, err := metadata.Targets().FromBytes(data)
			if err != nil {
				return fmt.Errorf("client: staged %s: %w", role, err)
			}
			cur, err := s.load(role)
			if errors.Is(err, errNotDelegated) {
				cur, err = nil, nil // a delegation the change creates
			}
			if err != nil {
				return err
			}
			var old metadata.TargetsType
			if cur != nil {
				old = cur.Signed
			}
			if m.Signed.Version <= old.Version {
				return fmt.Errorf("client: staged %s version %d is not newer than the current version %d: the change is stale", role, m.Signed.Version, old.Version)
			}
			rv.roles[role] = m
			rv.Tags = append(rv.Tags, diffTargets(gun, role, old.Targets, m.Signed.Targets)...)
			rv.Delegations = append(rv.Delegations, diffDelegations(role, &old, &m.Signed)...)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(rv.Tags, func(a, b TagChange) int { return strings.Compare(a.Role+"\x00"+a.Tag, b.Role+"\x00"+b.Tag) })
	slices.Sort(rv.Delegations)
	return rv, nil
}

// withLockedState runs fn on gun's verified state with the GUN locked.
func (c *Client) withLockedState(ctx context.Context, gun string, fn func(*roleState) error) error {
	return c.withRepo(ctx, gun, func(s *repoState) error {
		return fn(c.roleState(s))
	})
}

// withEditState is withLockedState for building a change to publish: an
// expired targets or delegated role is accepted, verified in every other
// respect, so that the change can re-sign it (withView).
func (c *Client) withEditState(ctx context.Context, gun string, fn func(*roleState) error) error {
	return c.withView(ctx, gun, true, nil, func(s *repoState) error {
		return fn(c.roleState(s))
	})
}

func diffTargets(gun, role string, old, next map[string]*metadata.TargetFiles) []TagChange {
	var out []TagChange
	for tag, tf := range next {
		o, ok := old[tag]
		switch {
		case !ok:
			out = append(out, TagChange{Role: role, Tag: tag, New: target(gun, tag, role, tf)})
		case !tf.Equal(*o):
			out = append(out, TagChange{Role: role, Tag: tag, Old: target(gun, tag, role, o), New: target(gun, tag, role, tf)})
		}
	}
	for tag, o := range old {
		if _, ok := next[tag]; !ok {
			out = append(out, TagChange{Role: role, Tag: tag, Old: target(gun, tag, role, o)})
		}
	}
	return out
}

func diffDelegations(role string, old, next *metadata.TargetsType) []string {
	describe := func(t *metadata.TargetsType) map[string]string {
		out := map[string]string{}
		for _, d := range tufedit.ListDelegations(t) {
			out[d.Name] = fmt.Sprintf("keys %v threshold %d paths %v", d.KeyIDs, d.Threshold, append(d.Paths, d.PathHashPrefixes...))
		}
		if t.Delegations != nil && t.Delegations.SuccinctRoles != nil {
			sr := t.Delegations.SuccinctRoles
			out[sr.NamePrefix+"-*"] = fmt.Sprintf("hashed bins (bit length %d) keys %v threshold %d", sr.BitLength, sr.KeyIDs, sr.Threshold)
		}
		return out
	}
	o, n := describe(old), describe(next)
	var out []string
	for name, d := range n {
		switch od, ok := o[name]; {
		case !ok:
			out = append(out, fmt.Sprintf("%s delegates to %s: %s", role, name, d))
		case od != d:
			out = append(out, fmt.Sprintf("%s changes %s: %s → %s", role, name, od, d))
		}
	}
	for name := range o {
		if _, ok := n[name]; !ok {
			out = append(out, fmt.Sprintf("%s no longer delegates to %s", role, name))
		}
	}
	return out
}

// Approve adds this trust directory's signatures to the staged change a
// review describes: every role of it whose key is held here is signed as
// staged (the "signed" object unchanged). The approval that completes
// every threshold publishes the change (StagedChange.Published).
func (c *Client) Approve(ctx context.Context, gun string, rv *Review) (*StagedChange, error) {
	ctx, cancel := context.WithTimeout(ctx, c.opts.Timeout)
	defer cancel()
	files := map[string][]byte{}
	err := c.withEditState(ctx, gun, func(s *roleState) error {
		// A staged delegator's delegations win over the published ones.
		maps.Copy(s.pending, rv.roles)
		for role, m := range rv.roles {
			d, err := s.delegationOf(role)
			if err != nil {
				return err
			}
			held, err := s.heldKeys(d.keyIDs)
			if err != nil {
				return err
			}
			if len(held) == 0 {
				continue
			}
			m.ClearSignatures()
			if files[role], err = c.sign(ctx, m, held...); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("client: %s: %w: this trust directory holds no key of the roles of staged change %s", gun, ErrNoKey, rv.Change.ID)
	}
	return c.postStaged(ctx, gun, rv.Change.ID, files)
}
