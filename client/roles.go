package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/signetdev/signet/tufrules"
)

// errNotDelegated: no published role delegates to the role asked for.
var errNotDelegated = errors.New("not delegated")

// roleState is a verified repository view that publishing works on: the
// view's verified roles plus the next versions being built.
type roleState struct {
	*repoState
	// delegator of every role seen so far ("root" for targets).
	delegator map[string]string
	// pending holds the next versions being built: a pending delegator's
	// delegations decide the keys of the roles it delegates.
	pending map[string]*metadata.Metadata[metadata.TargetsType]
	// held memoises which of a role's keys the key store holds.
	held map[string][]string
	// signed are the tags the change being built signs (PublishAs), for
	// Outcome.Shadowed.
	signed []Change
}

// heldKeys returns the key IDs of ids that this trust directory holds.
func (s *roleState) heldKeys(ids []string) ([]string, error) {
	k := strings.Join(ids, ",")
	if h, ok := s.held[k]; ok {
		return h, nil
	}
	h, err := s.c.heldKeys(s.ctx, ids)
	if err == nil {
		s.held[k] = h
	}
	return h, err
}

func (c *Client) roleState(v *repoState) *roleState {
	return &roleState{repoState: v, delegator: map[string]string{metadata.TARGETS: metadata.ROOT}, pending: map[string]*metadata.Metadata[metadata.TargetsType]{}, held: map[string][]string{}}
}

// load returns the verified current version of role, verifying it (and
// its delegators) if the view has not yet. It returns nil, nil for a role
// that is delegated but was never published (the snapshot does not list
// it: publishing its first version is what the caller is about), and an
// error for a role nobody delegates to.
func (s *roleState) load(role string) (*metadata.Metadata[metadata.TargetsType], error) {
	if role == metadata.TARGETS {
		return s.trusted.Targets[metadata.TARGETS], nil
	}
	parent, err := s.findDelegator(role)
	if err != nil {
		return nil, err
	}
	return s.under(role, parent)
}

// under returns role as verified under the current version of parent, or
// nil if the snapshot does not list role.
func (s *roleState) under(role, parent string) (*metadata.Metadata[metadata.TargetsType], error) {
	var pm *metadata.Metadata[metadata.TargetsType]
	if parent != metadata.ROOT {
		var err error
		if pm, err = s.load(parent); err != nil {
			return nil, err
		}
		if pm == nil || !tufrules.Delegates(pm.Signed.Delegations, role) {
			return nil, nil // a delegation being created
		}
	}
	m, err := s.repoState.load(role, parent, pm)
	if errors.Is(err, errUnpublished) {
		return nil, nil
	}
	return m, err
}

// walkLoader loads roles for a walk over the state being built: a pending
// version wins over the published one; a published role is verified under
// its published delegator; a delegated role never published reads as empty
// (its first version is what is being built).
func (s *roleState) walkLoader(role, parent string, pm *metadata.Metadata[metadata.TargetsType]) (*metadata.Metadata[metadata.TargetsType], error) {
	if _, ok := s.delegator[role]; !ok {
		s.delegator[role] = parent
	}
	if m, ok := s.pending[role]; ok {
		return m, nil
	}
	empty := metadata.Targets(time.Time{})
	if _, ok := s.pending[parent]; ok && parent != metadata.ROOT {
		pub, err := s.load(parent)
		if err != nil {
			return nil, err
		}
		if pub == nil || !tufrules.Delegates(pub.Signed.Delegations, role) {
			return empty, nil
		}
		pm = pub
	}
	m, err := s.repoState.load(role, parent, pm)
	if errors.Is(err, errUnpublished) {
		return empty, nil
	}
	return m, err
}

// findDelegator walks the delegation tree in TUF's pre-order until it
// finds the role that delegates to role. A delegator being changed
// (pending) delegates as changed.
func (s *roleState) findDelegator(role string) (string, error) {
	if p, ok := s.delegator[role]; ok {
		return p, nil
	}
	var found string
	err := tufrules.Walk(s.ctx, "", tufrules.MaxRolesPerRepository, s.walkLoader, func(name, _ string, m *metadata.Metadata[metadata.TargetsType]) (bool, error) {
		if tufrules.Delegates(m.Signed.Delegations, role) {
			found = name
		}
		return found != "", nil
	})
	if err != nil {
		return "", s.trustErr(err)
	}
	if found == "" {
		return "", fmt.Errorf("client: no role of %s delegates to %s: %w", s.gun, role, errNotDelegated)
	}
	s.delegator[role] = found
	return found, nil
}

// delegation is what a role's delegator says about it.
type delegation struct {
	keys      map[string]*metadata.Key
	keyIDs    []string
	threshold int
	// allows reports whether the role may list a target path (through its
	// own delegation only; delegators higher up are checked by the server).
	allows func(path string) bool
}

// delegationOf returns the delegation of role; its delegator must be
// loaded (load(role) does that).
func (s *roleState) delegationOf(role string) (*delegation, error) {
	if role == metadata.TARGETS {
		r := s.trusted.Root.Signed.Roles[metadata.TARGETS]
		return &delegation{keys: s.trusted.Root.Signed.Keys, keyIDs: r.KeyIDs, threshold: r.Threshold, allows: func(string) bool { return true }}, nil
	}
	parent, err := s.findDelegator(role)
	if err != nil {
		return nil, err
	}
	pm, ok := s.pending[parent]
	if !ok {
		if pm, err = s.load(parent); err != nil {
			return nil, err
		}
	}
	if pm == nil || pm.Signed.Delegations == nil {
		return nil, fmt.Errorf("client: %s of %s is not published", parent, s.gun)
	}
	d := pm.Signed.Delegations
	if ids, threshold, ok := tufrules.Delegation(d, role); ok {
		return &delegation{keys: d.Keys, keyIDs: ids, threshold: threshold, allows: func(p string) bool {
			return tufrules.Allows(d, role, p)
		}}, nil
	}
	return nil, fmt.Errorf("client: %s does not delegate to %s", parent, role)
}

// next returns the pending next version of role: the current one's
// targets and delegations (deep-copied) with version + 1 and a fresh
// expiry, or an empty version 1 for a role never published.
func (s *roleState) next(role string) (*metadata.Metadata[metadata.TargetsType], error) {
	if m, ok := s.pending[role]; ok {
		return m, nil
	}
	cur, err := s.load(role)
	if err != nil {
		return nil, err
	}
	m := metadata.Targets(s.c.opts.Now().Add(TargetsLifetime))
	if cur != nil {
		b, err := json.Marshal(cur.Signed)
		if err != nil {
			return nil, fmt.Errorf("client: copy %s: %w", role, err)
		}
		if err := json.Unmarshal(b, &m.Signed); err != nil {
			return nil, fmt.Errorf("client: copy %s: %w", role, err)
		}
		m.Signed.Version = cur.Signed.Version + 1
		m.Signed.Expires = s.c.opts.Now().Add(TargetsLifetime).UTC()
	}
	s.pending[role] = m
	return m, nil
}

// EditDelegations changes, with edit (tufedit.AddDelegation,
// tufedit.RemoveDelegationKeys, tufedit.AddSigner, …), the delegations that
// delegator ("targets" or a delegated role) makes, and publishes its next version. Delegated roles that the
// edit would leave unverifiable (a key revoked, a threshold raised, a
// delegation re-created over old metadata) are re-signed in the same change
// by the keys this trust directory holds; when those are not enough, the
// whole change is staged for the remaining key holders to approve. Either
// way the repository never wedges on a revoked key (Notary issue #1500).
func (c *Client) EditDelegations(ctx context.Context, gun, delegator string, edit func(*metadata.TargetsType) error) (*Outcome, error) {
	return c.retry(ctx, gun, func(s *roleState) error {
		cur, err := s.load(delegator)
		if err != nil {
			return err
		}
		if cur == nil {
			return fmt.Errorf("client: %s of %s is not published yet: sign a tag with it first", delegator, gun)
		}
		m, err := s.next(delegator)
		if err != nil {
			return err
		}
		if err := edit(&m.Signed); err != nil {
			return err
		}
		return s.resignInvalidated(delegator, cur, m)
	})
}

// resignInvalidated adds to the pending roles every published role that
// next (the pending version of delegator) delegates to but whose current
// signatures it would no longer accept.
func (s *roleState) resignInvalidated(delegator string, cur, next *metadata.Metadata[metadata.TargetsType]) error {
	if next.Signed.Delegations == nil {
		return nil
	}
	for _, r := range next.Signed.Delegations.Roles {
		mf, published := s.trusted.Snapshot.Signed.Meta[r.Name+".json"]
		if !published {
			continue
		}
		if !delegates(cur, r.Name) {
			// Re-created over metadata the old delegation signed: start
			// afresh, empty, at a version the snapshot accepts.
			m := metadata.Targets(s.c.opts.Now().Add(TargetsLifetime))
			m.Signed.Version = mf.Version + 1
			s.pending[r.Name] = m
			continue
		}
		old, err := s.under(r.Name, delegator)
		if err != nil {
			return err
		}
		if old == nil {
			continue
		}
		if next.VerifyDelegate(r.Name, old) == nil {
			continue
		}
		if _, err := s.next(r.Name); err != nil {
			return err
		}
	}
	return nil
}

func delegates(m *metadata.Metadata[metadata.TargetsType], role string) bool {
	if m.Signed.Delegations == nil {
		return false
	}
	return slices.ContainsFunc(m.Signed.Delegations.Roles, func(r metadata.DelegatedRole) bool { return r.Name == role })
}

// Role returns the verified current version of a targets-type role of gun
// (after a TUF update), or an error if it was never published.
func (c *Client) Role(ctx context.Context, gun, role string) (*metadata.Metadata[metadata.TargetsType], error) {
	ctx, cancel := context.WithTimeout(ctx, c.opts.Timeout)
	defer cancel()
	var m *metadata.Metadata[metadata.TargetsType]
	err := c.withLockedState(ctx, gun, func(s *roleState) error {
		var err error
		m, err = s.load(role)
		if err == nil && m == nil {
			err = fmt.Errorf("client: %s of %s was never signed", role, gun)
		}
		return err
	})
	return m, err
}

// each calls fn for every published targets-type role, in pre-order,
// each verified under the delegator the walk reached it through.
func (s *roleState) each(fn func(string, *metadata.Metadata[metadata.TargetsType])) error {
	err := tufrules.Walk(s.ctx, "", tufrules.MaxRolesPerRepository, s.repoState.load, func(name, _ string, m *metadata.Metadata[metadata.TargetsType]) (bool, error) {
		fn(name, m)
		return false, nil
	})
	if err != nil {
		return s.trustErr(err)
	}
	return nil
}
