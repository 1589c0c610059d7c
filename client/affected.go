package client

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/signetdev/signet/tufrules"
)

// What resolves: every tag of a repository that a resolving client finds,
// with the role that vouches for it, and what an edit of delegations would
// take away. Both walk the delegation tree as Resolve does (TUF's pre-order,
// path patterns and terminating delegations honoured), over roles verified
// with go-tuf.

// Targets returns every tag of gun that resolves, with the role that
// decides it (Target.Role), sorted by tag. A tag that several roles list
// appears once, with the role a resolve finds first.
func (c *Client) Targets(ctx context.Context, gun string) ([]Target, error) {
	var out []Target
	err := c.withLockedState(ctx, gun, func(s *roleState) error {
		var err error
		out, err = s.resolving(s.repoState.load)
		return err
	})
	return out, err
}

// Unresolved returns the tags of gun that resolve now but would not, or
// would resolve to another digest, after edit changed the delegations of
// delegator (as EditDelegations applies it). Roles under delegator keep
// their content in this prediction: EditDelegations re-signs or stages the
// ones the edit invalidates. Nothing is published.
func (c *Client) Unresolved(ctx context.Context, gun, delegator string, edit func(*metadata.TargetsType) error) (lost []Target, err error) {
	err = c.withLockedState(ctx, gun, func(s *roleState) error {
		before, err := s.resolving(s.repoState.load)
		if err != nil {
			return err
		}
		cur, err := s.load(delegator)
		if err != nil {
			return err
		}
		if cur == nil {
			return fmt.Errorf("client: %s of %s is not published yet", delegator, gun)
		}
		// Edit a deep copy: the view's metadata stays as verified.
		b, err := json.Marshal(cur)
		if err != nil {
			return fmt.Errorf("client: copy %s: %w", delegator, err)
		}
		next, err := metadata.Targets().FromBytes(b)
		if err != nil {
			return fmt.Errorf("client: copy %s: %w", delegator, err)
		}
		if err := edit(&next.Signed); err != nil {
			return err
		}
		after, err := s.resolving(func(role, parent string, pm *metadata.Metadata[metadata.TargetsType]) (*metadata.Metadata[metadata.TargetsType], error) {
			switch {
			case role == delegator:
				return next, nil
			case parent == delegator:
				if !tufrules.Delegates(cur.Signed.Delegations, role) {
					return metadata.Targets(time.Time{}), nil // created by the edit: empty
				}
				return s.repoState.load(role, parent, cur)
			}
			return s.repoState.load(role, parent, pm)
		})
		if err != nil {
			return err
		}
		now := map[string]Target{}
		for _, t := range after {
			now[t.Tag] = t
		}
		for _, t := range before {
			if n, ok := now[t.Tag]; !ok || n.Digest != t.Digest {
				lost = append(lost, t)
			}
		}
		return nil
	})
	return lost, err
}

// resolving returns every tag that resolves through the roles load gives,
// with its deciding role: every tag any role lists, each looked up by its
// own walk (paths, hash bins and terminating delegations honoured).
func (s *roleState) resolving(load tufrules.Loader) ([]Target, error) {
	seen := map[string]bool{}
	var tags []string
	err := tufrules.Walk(s.ctx, "", tufrules.MaxRolesPerRepository, load, func(_, _ string, m *metadata.Metadata[metadata.TargetsType]) (bool, error) {
		for tag := range m.Signed.Targets {
			if !seen[tag] {
				seen[tag] = true
				tags = append(tags, tag)
			}
		}
		return false, nil
	})
	if err != nil {
		return nil, s.trustErr(err)
	}
	sort.Strings(tags)
	var out []Target
	for _, tag := range tags {
		role, tf, err := s.lookup(tag, load)
		if err != nil {
			return nil, err
		}
		if tf != nil {
			if t := target(s.gun, tag, role, tf); t.Digest != "" {
				out = append(out, *t)
			}
		}
	}
	return out, nil
}
