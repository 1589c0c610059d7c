package client

import (
	"context"
	"errors"

	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// ChangeSet is a change to several roles of one repository that is
// published (or staged) as one upload, so that it lands whole or not at
// all: delegation edits first, then tag changes per role. A migration
// (signet migrate notary) mirrors a repository's delegations and their
// tags in one ChangeSet.
type ChangeSet struct {
	// Delegations edit, in order, the delegations that each Delegator
	// ("targets" or a delegated role, possibly one created earlier in this
	// change set) makes.
	Delegations []DelegationEdit
	// Roles are tag changes per role ("targets" or a delegated role). A
	// role listed with no changes is still published: a delegation created
	// here gets its first, empty version in the same upload.
	Roles []RoleChanges
}

// DelegationEdit changes the delegations one role makes (tufedit's
// AddDelegation, AddSigner, …). Edit may run more than once, on fresh state, when the
// publish races another one.
type DelegationEdit struct {
	Delegator string
	Edit      func(*metadata.TargetsType) error
}

// RoleChanges are tag changes to one role.
type RoleChanges struct {
	Role    string
	Changes []Change
}

// PublishChangeSet applies cs to the latest verified state of gun and
// publishes every role it touches in one upload, signed with the keys this
// trust directory holds. As with Publish, when some role is signed by fewer
// keys than its threshold the whole change set is staged for the other key
// holders instead (Outcome.Staged); a refused upload changes nothing. Roles
// whose signatures an edit would invalidate are re-signed in the same
// upload, as EditDelegations does.
func (c *Client) PublishChangeSet(ctx context.Context, gun string, cs ChangeSet) (*Outcome, error) {
	if len(cs.Delegations) == 0 && len(cs.Roles) == 0 {
		return nil, errors.New("client: nothing to publish")
	}
	return c.retry(ctx, gun, func(s *roleState) error {
		for _, e := range cs.Delegations {
			cur, err := s.load(e.Delegator)
			if err != nil {
				return err
			}
			m, err := s.next(e.Delegator)
			if err != nil {
				return err
			}
			if err := e.Edit(&m.Signed); err != nil {
				return err
			}
			if cur != nil {
				if err := s.resignInvalidated(e.Delegator, cur, m); err != nil {
					return err
				}
			}
		}
		for _, r := range cs.Roles {
			if _, err := s.next(r.Role); err != nil {
				return err
			}
			for _, ch := range r.Changes {
				if err := s.apply(r.Role, ch); err != nil {
					return err
				}
			}
		}
		return nil
	})
}
