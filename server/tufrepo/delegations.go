package tufrepo

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"
	"github.com/theupdateframework/go-tuf/v2/metadata/trustedmetadata"

	"github.com/signetdev/signet/tufjson"
	"github.com/signetdev/signet/tufrules"
)

// rule is one delegation on the way from targets to a role: every target the
// role lists must be allowed by every rule on its chain, as a TUF client's
// pre-order walk would require.
type rule interface {
	allows(path string) bool
	String() string
}

type pathRule struct{ role *metadata.DelegatedRole }

func (p pathRule) allows(path string) bool {
	ok, err := p.role.IsDelegatedPath(path)
	return err == nil && ok
}

func (p pathRule) String() string {
	if len(p.role.Paths) > 0 {
		return fmt.Sprintf("paths %q of %s", p.role.Paths, p.role.Name)
	}
	return fmt.Sprintf("path hash prefixes %q of %s", p.role.PathHashPrefixes, p.role.Name)
}

type binRule struct {
	bins *metadata.SuccinctRoles
	name string
}

func (b binRule) allows(path string) bool {
	r := b.bins.GetRolesForTarget(path)
	return len(r) == 1 && r[0].Name == b.name
}

func (b binRule) String() string { return "hashed bin " + b.name }

// node is a targets-type role to verify, with its delegator and the chain of
// delegations leading to it.
type node struct {
	name      string
	delegator string
	chain     []rule
}

func (n *node) child(name string, r rule) *node {
	return &node{name: name, delegator: n.name, chain: append(slices.Clip(n.chain), r)}
}

// planTargets checks versions, expiry and delegations of every uploaded
// targets-type role, finds every delegation that names it, checks delegated
// paths, and returns the (role, delegator) pairs to verify: every uploaded
// role under every role that delegates to it, plus stored roles whose
// delegation (keys, threshold or paths) this publish changes, so that no
// change of keys can leave a stored role unverifiable and no delegate can
// take over a role that another delegator also names.
func (r *Repo) planTargets(s *state, root *metadata.Metadata[metadata.RootType]) ([]*node, error) {
	for name, m := range s.up.targets {
		if err := s.ctx.Err(); err != nil {
			return nil, err
		}
		stored, err := s.storedVersion(name)
		if err != nil {
			return nil, err
		}
		if m.Signed.Version <= stored {
			return nil, refuse(CodeVersionConflict, name, "version %d is not newer than the stored version %d", m.Signed.Version, stored)
		}
		if m.Signed.IsExpired(r.now()) {
			return nil, refuse(CodeExpired, name, "expired on %s", m.Signed.Expires.UTC().Format("2006-01-02T15:04:05Z"))
		}
		if err := tufrules.CheckDelegations(m.Signed.Delegations); err != nil {
			return nil, refuse(CodeInvalid, name, "%v", err)
		}
	}
	g, err := s.graph()
	if err != nil {
		return nil, err
	}
	var out []*node
	for name := range s.up.targets {
		if name == metadata.TARGETS {
			out = append(out, &node{name: metadata.TARGETS, delegator: metadata.ROOT})
			continue
		}
		if len(g.delegators[name]) == 0 {
			return nil, refuse(CodeUnknownRole, name, "no role delegates to %s: add it to the delegations of targets (or of a delegated role) first", name)
		}
		out = append(out, g.delegators[name]...)
	}
	changed, err := s.changedDelegations(root, g)
	if err != nil {
		return nil, err
	}
	out = append(out, changed...)
	for _, n := range out {
		m, err := s.effective(n.name)
		if err != nil {
			return nil, err
		}
		for path := range m.Signed.Targets {
			for _, rl := range n.chain {
				if !rl.allows(path) {
					return nil, refuse(CodePathNotDelegated, n.name, "target %q is outside the %s", path, rl)
				}
			}
		}
	}
	sortByDepth(out)
	return out, nil
}

// delegationGraph is the delegation tree of the state a publish would
// leave, as far as uploads need it.
type delegationGraph struct {
	// delegators maps a role to one node per role that delegates to it
	// (in pre-order of the delegators), each with the chain of the
	// delegator's first path from targets.
	delegators map[string][]*node
}

// graph walks the delegation tree of the resulting state (uploads over
// stored roles) in TUF's pre-order (tufrules.Walk, each role once) and
// records every delegation to a role, with the chain of its delegator's
// first path from targets. Hashed bins are leaves: the walk records the
// bins that are uploaded without loading the others, and refuses an
// uploaded bin that delegates further.
func (s *state) graph() (*delegationGraph, error) {
	g := &delegationGraph{delegators: map[string][]*node{}}
	first := map[string]*node{metadata.TARGETS: {name: metadata.TARGETS, delegator: metadata.ROOT}}
	leaf := metadata.Targets(time.Time{})
	load := func(role, parent string, d *metadata.Metadata[metadata.TargetsType]) (*metadata.Metadata[metadata.TargetsType], error) {
		if n := first[role]; n == nil || len(n.chain) > tufrules.MaxDelegationDepth ||
			d != nil && d.Signed.Delegations.SuccinctRoles != nil {
			return leaf, nil // too deep to follow, or a bin: not loaded
		}
		m, err := s.effective(role)
		if m == nil || err != nil {
			return leaf, err
		}
		return m, nil
	}
	visit := func(role, _ string, m *metadata.Metadata[metadata.TargetsType]) (bool, error) {
		n, d := first[role], m.Signed.Delegations
		if d == nil {
			return false, nil
		}
		if d.SuccinctRoles != nil {
			for name, um := range s.up.targets {
				if !d.SuccinctRoles.IsDelegatedRole(name) {
					continue
				}
				if um.Signed.Delegations != nil {
					return true, refuse(CodeInvalid, name, "a hashed bin may not delegate further")
				}
				g.delegators[name] = append(g.delegators[name], n.child(name, binRule{bins: d.SuccinctRoles, name: name}))
			}
			return false, nil
		}
		for i := range d.Roles {
			c := n.child(d.Roles[i].Name, pathRule{role: &d.Roles[i]})
			if _, up := s.up.targets[c.name]; up && len(c.chain) > tufrules.MaxDelegationDepth {
				return true, refuse(CodeInvalid, c.name, "is delegated %d levels below targets (at most %d)", len(c.chain), tufrules.MaxDelegationDepth)
			}
			g.delegators[c.name] = append(g.delegators[c.name], c)
			if first[c.name] == nil {
				first[c.name] = c
			}
		}
		return false, nil
	}
	err := tufrules.Walk(s.ctx, "", tufrules.MaxRolesPerRepository, load, visit)
	var le *tufrules.WalkLimitError
	if errors.As(err, &le) {
		return nil, refuse(CodeInvalid, "", "the delegation tree has more than %d roles", tufrules.MaxRolesPerRepository)
	}
	if err != nil {
		return nil, err
	}
	return g, nil
}

// changedDelegations returns the stored, not uploaded roles whose
// delegation this publish changes without re-signing them, under the
// delegator that changes it.
func (s *state) changedDelegations(root *metadata.Metadata[metadata.RootType], g *delegationGraph) ([]*node, error) {
	var out []*node
	if s.up.root != nil {
		if _, up := s.up.targets[metadata.TARGETS]; !up {
			old, err := s.current(metadata.ROOT)
			if err != nil {
				return nil, err
			}
			if old != nil {
				prev, err := metadata.Root().FromBytes(old.Data)
				if err != nil {
					return nil, fmt.Errorf("tufrepo: stored root does not parse: %w", err)
				}
				if roleEntry(prev.Signed.Keys, prev.Signed.Roles[metadata.TARGETS]) != roleEntry(root.Signed.Keys, root.Signed.Roles[metadata.TARGETS]) {
					out = append(out, &node{name: metadata.TARGETS, delegator: metadata.ROOT})
				}
			}
		}
	}
	for name, m := range s.up.targets {
		if m.Signed.Delegations == nil {
			continue
		}
		old, err := s.storedTargets(name)
		if err != nil {
			return nil, err
		}
		if old == nil {
			continue
		}
		nd, od := m.Signed.Delegations, old.Signed.Delegations
		var oldEntries map[string]string
		if od != nil {
			oldEntries = map[string]string{}
			for i := range od.Roles {
				oldEntries[od.Roles[i].Name] = delegationEntry(od.Keys, &od.Roles[i])
			}
		}
		var candidates []string
		for i := range nd.Roles {
			if oldEntries[nd.Roles[i].Name] != delegationEntry(nd.Keys, &nd.Roles[i]) {
				candidates = append(candidates, nd.Roles[i].Name)
			}
		}
		if nd.SuccinctRoles != nil && (od == nil || succinctEntry(od) != succinctEntry(nd)) {
			candidates = append(candidates, nd.SuccinctRoles.GetRoles()...)
		}
		for _, c := range candidates {
			if _, up := s.up.targets[c]; up {
				continue // verified under every delegator as an upload
			}
			v, err := s.storedVersion(c)
			if err != nil {
				return nil, err
			}
			if v == 0 {
				continue
			}
			n := delegationNode(g, c, name)
			if n == nil {
				// A bin, or a role the walk did not reach through name.
				from := &node{name: name}
				if ds := g.delegators[name]; len(ds) > 0 {
					from = ds[0]
				}
				if nd.SuccinctRoles != nil {
					n = from.child(c, binRule{bins: nd.SuccinctRoles, name: c})
				} else {
					for i := range nd.Roles {
						if nd.Roles[i].Name == c {
							n = from.child(c, pathRule{role: &nd.Roles[i]})
						}
					}
				}
			}
			out = append(out, n)
		}
	}
	return out, nil
}

// delegationNode returns the node of role as delegated by delegator.
func delegationNode(g *delegationGraph, role, delegator string) *node {
	for _, n := range g.delegators[role] {
		if n.delegator == delegator {
			return n
		}
	}
	return nil
}

// checkDelegatedPublished refuses uploaded roles that delegate to a role
// the resulting snapshot does not list: a TUF client that reaches such a
// delegation stops with an error (§5.6), so every delegation is born
// published (its first, possibly empty, version in the same publish).
func checkDelegatedPublished(up *uploads, meta map[string]*metadata.MetaFiles) error {
	for name, m := range up.targets {
		d := m.Signed.Delegations
		if d == nil {
			continue
		}
		var children []string
		if d.SuccinctRoles != nil {
			children = d.SuccinctRoles.GetRoles()
		}
		for i := range d.Roles {
			children = append(children, d.Roles[i].Name)
		}
		for _, c := range children {
			if _, ok := meta[metaName(c)]; !ok {
				return refuse(CodeNotPublished, name, "delegates to %s, which is not published: publish its first version (signed by its own keys, even with no targets) in the same upload, or stage the change for its key holders to approve", c)
			}
		}
	}
	return nil
}

// verifyTargets checks, with go-tuf, signatures, versions against the new
// snapshot and expiry of every planned (role, delegator) pair, delegators
// first. In partial mode (staged changes), an uploaded role below its
// threshold is checked signature by signature under its first delegator
// and reported in p.roles; its other delegations are checked when the
// change completes.
func (s *state) verifyTargets(trusted *trustedmetadata.TrustedMetadata, nodes []*node, partial bool, p *prepared) error {
	staged := map[string]bool{} // roles reported in p.roles
	for _, n := range nodes {
		if err := s.ctx.Err(); err != nil {
			return err
		}
		if n.delegator != metadata.ROOT {
			m, err := s.effective(n.delegator)
			if err != nil {
				return err
			}
			if m == nil {
				return refuse(CodeUnknownRole, n.name, "its delegator %s is not published", n.delegator)
			}
			trusted.Targets[n.delegator] = m
		}
		data, ok := s.up.raw[n.name]
		if ok && partial {
			if staged[n.name] {
				continue
			}
			staged[n.name] = true
			done, err := s.verifyPartial(trusted, n, data, p)
			if err != nil {
				return err
			}
			if !done {
				continue
			}
		}
		t := s.up.decoded[n.name]
		if !ok {
			cur, err := s.current(n.name)
			if err != nil {
				return err
			}
			if t, err = s.storedDecoded(n.name); err != nil {
				return err
			}
			data = cur.Data
		}
		if err := verifyRole(trusted, n.name, n.delegator, t, data); err != nil {
			e := fromTUF(n.name, err)
			switch {
			case !ok:
				e.Msg = "the stored version no longer verifies after this change (" + e.Msg + "); re-sign it in the same publish"
			case n.delegator != metadata.ROOT:
				e.Msg = "does not verify under the delegation of " + n.delegator + " (every role that delegates to it must accept it): " + e.Msg
			}
			return e
		}
	}
	return nil
}

// verifyRole checks t (the bytes data, decoded once) as go-tuf's
// trustedmetadata.UpdateDelegatedTargets does: the snapshot's entry for
// the role (version; length and hashes where given), signatures to the
// threshold delegator gives it (go-tuf's VerifyDelegate, over the role's
// canonical form computed once: tufjson), expiry. It then trusts the role
// for the roles it delegates to.
func verifyRole(trusted *trustedmetadata.TrustedMetadata, role, delegator string, t *tufjson.Targets, data []byte) error {
	m := t.Meta
	mf, ok := trusted.Snapshot.Signed.Meta[metaName(role)]
	if !ok {
		return &metadata.ErrRepository{Msg: fmt.Sprintf("snapshot does not contain information for %s", role)}
	}
	if err := mf.VerifyLengthHashes(data); err != nil {
		return err
	}
	if m.Signed.Type != metadata.TARGETS {
		return &metadata.ErrRepository{Msg: fmt.Sprintf("expected %s, got %s", metadata.TARGETS, m.Signed.Type)}
	}
	var err error
	if delegator == metadata.ROOT {
		err = tufjson.VerifyDelegate(trusted.Root, role, t)
	} else {
		err = tufjson.VerifyDelegate(trusted.Targets[delegator], role, t)
	}
	if err != nil {
		return err
	}
	if m.Signed.Version != mf.Version {
		return &metadata.ErrBadVersionNumber{Msg: fmt.Sprintf("expected %s version %d, got %d", role, mf.Version, m.Signed.Version)}
	}
	if m.Signed.IsExpired(trusted.RefTime) {
		return &metadata.ErrExpiredMetadata{Msg: fmt.Sprintf("new %s is expired", role)}
	}
	trusted.Targets[role] = m
	return nil
}

// roleEntry describes what verifying a top-level role depends on.
func roleEntry(keys map[string]*metadata.Key, r *metadata.Role) string {
	if r == nil {
		return ""
	}
	return entry(keys, r.KeyIDs, r.Threshold, nil)
}

// delegationEntry describes what verifying a delegated role depends on:
// keys, threshold and paths.
func delegationEntry(keys map[string]*metadata.Key, r *metadata.DelegatedRole) string {
	return entry(keys, r.KeyIDs, r.Threshold, []any{r.Paths, r.PathHashPrefixes})
}

func succinctEntry(d *metadata.Delegations) string {
	if d.SuccinctRoles == nil {
		return ""
	}
	sr := d.SuccinctRoles
	return entry(d.Keys, sr.KeyIDs, sr.Threshold, []any{sr.BitLength, sr.NamePrefix})
}

func entry(keys map[string]*metadata.Key, ids []string, threshold int, extra []any) string {
	ids = slices.Sorted(slices.Values(ids))
	vals := make([]string, 0, len(ids))
	for _, id := range ids {
		if k := keys[id]; k != nil {
			vals = append(vals, k.Type+":"+k.Value.PublicKey)
		}
	}
	b, _ := json.Marshal([]any{ids, vals, threshold, extra}) // plain values: cannot fail
	return strings.TrimSpace(string(b))
}
