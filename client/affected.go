package client

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"

	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// What resolves: every tag of a repository that a resolving client finds,
// with the role that vouches for it, and what an edit of delegations would
// take away. Both walk the delegation tree as Resolve does (TUF's pre-order,
// path patterns and terminating delegations honoured), over roles verified
// with go-tuf.
// TODO(lead): re-point at the shared walk of the TUF-rules package.

// Targets returns every tag of gun that resolves, with the role whose
// metadata decides it (Target.Role), sorted by tag. A tag that some role
// lists but that resolution never reaches there (outside the role's paths,
// behind a terminating delegation, or shadowed by an earlier role) appears
// once, with the role that wins.
func (c *Client) Targets(ctx context.Context, gun string) ([]Target, error) {
	var out []Target
	err := c.withLockedState(ctx, gun, func(s *roleState) error {
		var err error
		out, err = s.resolving(s.fetchGet())
		return err
	})
	return out, err
}

// Unresolved returns the tags of gun that resolve now but would not after
// edit changed the delegations of delegator (as EditDelegations applies
// it), and the tags that would resolve to another digest. Nothing is
// published.
func (c *Client) Unresolved(ctx context.Context, gun, delegator string, edit func(*metadata.TargetsType) error) (lost []Target, err error) {
	err = c.withLockedState(ctx, gun, func(s *roleState) error {
		before, err := s.resolving(s.fetchGet())
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
		// Edit a deep copy: the state's metadata stays as verified.
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
		fetch := s.fetchGet()
		after, err := s.resolving(func(name string) (*metadata.Metadata[metadata.TargetsType], error) {
			if name == delegator {
				return next, nil
			}
			return fetch(name)
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

// fetchGet loads a role the walk reaches: verified by go-tuf against the
// role that delegates to it; nil for a role delegated but never published.
func (s *roleState) fetchGet() func(string) (*metadata.Metadata[metadata.TargetsType], error) {
	return func(name string) (*metadata.Metadata[metadata.TargetsType], error) {
		if name == metadata.TARGETS {
			return s.load(name)
		}
		return s.fetch(name, s.delegator[name])
	}
}

// resolving returns every tag that resolves through the roles get gives,
// with its deciding role.
func (s *roleState) resolving(get func(string) (*metadata.Metadata[metadata.TargetsType], error)) ([]Target, error) {
	// Every tag listed anywhere reachable, then each tag's own walk.
	seen := map[string]bool{}
	var tags []string
	err := s.preorder(get, func(_ string, m *metadata.Metadata[metadata.TargetsType]) (bool, error) {
		if m != nil {
			for tag := range m.Signed.Targets {
				if !seen[tag] {
					seen[tag] = true
					tags = append(tags, tag)
				}
			}
		}
		return false, nil
	}, func(m *metadata.Metadata[metadata.TargetsType]) ([]string, bool) {
		var names []string
		if sr := m.Signed.Delegations.SuccinctRoles; sr != nil {
			names = sr.GetRoles()
		}
		return append(names, roleNames(m.Signed.Delegations.Roles)...), false
	})
	if err != nil {
		return nil, err
	}
	sort.Strings(tags)
	var out []Target
	for _, tag := range tags {
		var found *Target
		err := s.preorder(get, func(role string, m *metadata.Metadata[metadata.TargetsType]) (bool, error) {
			if m == nil {
				return false, nil
			}
			tf, ok := m.Signed.Targets[tag]
			if !ok {
				return false, nil
			}
			found = target(s.gun, tag, role, tf)
			return true, nil
		}, func(m *metadata.Metadata[metadata.TargetsType]) ([]string, bool) {
			d := m.Signed.Delegations
			var names []string
			if d.SuccinctRoles != nil {
				for _, r := range d.SuccinctRoles.GetRolesForTarget(tag) {
					names = append(names, r.Name)
				}
			}
			for _, r := range d.GetRolesForTarget(tag) {
				names = append(names, r.Name)
				if r.Terminating {
					return names, true
				}
			}
			return names, false
		})
		if err != nil {
			return nil, err
		}
		if found != nil && found.Digest != "" {
			out = append(out, *found)
		}
	}
	return out, nil
}
