package tufrules

import (
	"context"
	"fmt"
	"slices"

	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// Loader returns the verified metadata of role as its delegator parent
// delegates it: parent is "root" (and delegator nil) for "targets", else
// the delegated role whose loaded metadata, delegator, names role. A role
// that cannot be loaded or verified is an error, never an empty role: TUF
// §5.6 aborts the lookup.
type Loader func(role, parent string, delegator *metadata.Metadata[metadata.TargetsType]) (*metadata.Metadata[metadata.TargetsType], error)

// Visitor sees each role the walk loads, with its delegator; it returns
// true to end the walk.
type Visitor func(role, parent string, m *metadata.Metadata[metadata.TargetsType]) (stop bool, err error)

// WalkLimitError: a walk visited maxRoles roles without an answer.
type WalkLimitError struct{ Max int }

func (e *WalkLimitError) Error() string {
	return fmt.Sprintf("gave up after visiting %d delegated roles (the limit); the delegation tree is too deep or too wide", e.Max)
}

// Is makes errors.Is(err, ErrRule) true.
func (e *WalkLimitError) Is(t error) bool { return t == ErrRule }

// Walk visits, in TUF's pre-order (specification §5.6.7, as go-tuf's and
// python-tuf's updaters do), the roles a client looking up target visits:
// targets first, then depth first each delegation whose paths or hash bin
// match target, in the order listed; a terminating delegation ends
// backtracking; each role is visited once; at most maxRoles roles after
// targets (go-tuf's MaxDelegations; <= 0 means DefaultMaxRolesVisited).
// Every role is loaded through load under the delegator the walk reached it
// through, so a role is always verified against that delegator.
//
// With target "" the walk visits every delegated role (every bin) with no
// path filter and no terminating stop, for listings; maxRoles still bounds
// it.
func Walk(ctx context.Context, target string, maxRoles int, load Loader, visit Visitor) error {
	if maxRoles <= 0 {
		maxRoles = DefaultMaxRolesVisited
	}
	type edge struct {
		role, parent string
		delegator    *metadata.Metadata[metadata.TargetsType]
	}
	stack := []edge{{metadata.TARGETS, metadata.ROOT, nil}}
	visited := map[string]bool{}
	for len(stack) > 0 {
		if err := ctx.Err(); err != nil {
			return err
		}
		if len(visited) > maxRoles {
			return &WalkLimitError{Max: maxRoles}
		}
		e := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if visited[e.role] {
			continue
		}
		m, err := load(e.role, e.parent, e.delegator)
		if err != nil {
			return err
		}
		if stop, err := visit(e.role, e.parent, m); stop || err != nil {
			return err
		}
		visited[e.role] = true
		d := m.Signed.Delegations
		if d == nil {
			continue
		}
		var children []edge
		if target == "" {
			names := roleNames(d)
			for _, n := range names {
				children = append(children, edge{n, e.role, m})
			}
		} else {
			for _, r := range d.GetRolesForTarget(target) {
				children = append(children, edge{r.Name, e.role, m})
				if r.Terminating {
					stack = stack[:0]
					break
				}
			}
		}
		slices.Reverse(children)
		stack = append(stack, children...)
	}
	return nil
}

// roleNames lists the roles d delegates to, in order (every bin for
// hashed bins).
func roleNames(d *metadata.Delegations) []string {
	if d.SuccinctRoles != nil {
		return d.SuccinctRoles.GetRoles()
	}
	out := make([]string, len(d.Roles))
	for i := range d.Roles {
		out[i] = d.Roles[i].Name
	}
	return out
}
