package tufrepo

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/theupdateframework/go-tuf/v2/metadata"
	"github.com/theupdateframework/go-tuf/v2/metadata/trustedmetadata"
)

// maxBinBits bounds succinct hashed bins (TAP 15) to 65,536 bins.
const maxBinBits = 16

// maxWalk bounds how many roles the server loads while looking for the
// delegator of an uploaded role.
const maxWalk = 4096

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

// planTargets finds the delegator of every uploaded targets-type role, checks
// versions, delegations and delegated paths, and returns the roles to verify
// top-down: every uploaded one, plus stored ones whose delegation (keys,
// threshold or paths) this publish changes, so that no change of keys can
// leave a stored role unverifiable.
func (r *Repo) planTargets(s *state, root *metadata.Metadata[metadata.RootType]) ([]*node, error) {
	for name, m := range s.up.targets {
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
		if err := checkDelegations(name, m.Signed.Delegations); err != nil {
			return nil, err
		}
	}
	found, err := s.locate()
	if err != nil {
		return nil, err
	}
	if err := s.changedDelegations(root, found); err != nil {
		return nil, err
	}
	out := make([]*node, 0, len(found))
	for _, n := range found {
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
		out = append(out, n)
	}
	sortByDepth(out)
	return out, nil
}

// locate walks the delegation tree of the resulting state in TUF's
// pre-order, loading only what it must, until every uploaded role is found.
func (s *state) locate() (map[string]*node, error) {
	found := map[string]*node{}
	want := len(s.up.targets)
	top := &node{name: metadata.TARGETS, delegator: metadata.ROOT}
	if _, ok := s.up.targets[metadata.TARGETS]; ok {
		found[metadata.TARGETS] = top
	}
	stack := []*node{top}
	visited := map[string]bool{}
	for len(stack) > 0 && len(found) < want && len(visited) < maxWalk {
		n := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if visited[n.name] {
			continue
		}
		visited[n.name] = true
		m, err := s.effective(n.name)
		if err != nil {
			return nil, err
		}
		if m == nil || m.Signed.Delegations == nil {
			continue
		}
		d := m.Signed.Delegations
		if d.SuccinctRoles != nil {
			for name := range s.up.targets {
				if _, ok := found[name]; !ok && d.SuccinctRoles.IsDelegatedRole(name) {
					found[name] = n.child(name, binRule{bins: d.SuccinctRoles, name: name})
				}
			}
		}
		children := make([]*node, 0, len(d.Roles))
		for i := range d.Roles {
			c := n.child(d.Roles[i].Name, pathRule{role: &d.Roles[i]})
			if _, up := s.up.targets[c.name]; up {
				if _, ok := found[c.name]; !ok {
					found[c.name] = c
				}
			}
			children = append(children, c)
		}
		for i := len(children) - 1; i >= 0; i-- {
			stack = append(stack, children[i])
		}
	}
	for name := range s.up.targets {
		if _, ok := found[name]; !ok {
			return nil, refuse(CodeUnknownRole, name, "no role delegates to %s: add it to the delegations of targets (or of a delegated role) first", name)
		}
	}
	return found, nil
}

// changedDelegations adds to found the stored roles whose delegation this
// publish changes without re-signing them.
func (s *state) changedDelegations(root *metadata.Metadata[metadata.RootType], found map[string]*node) error {
	if s.up.root != nil {
		if _, up := s.up.targets[metadata.TARGETS]; !up {
			old, err := s.current(metadata.ROOT)
			if err != nil {
				return err
			}
			if old != nil {
				prev, err := metadata.Root().FromBytes(old.Data)
				if err != nil {
					return fmt.Errorf("tufrepo: stored root does not parse: %w", err)
				}
				if roleEntry(prev.Signed.Keys, prev.Signed.Roles[metadata.TARGETS]) != roleEntry(root.Signed.Keys, root.Signed.Roles[metadata.TARGETS]) {
					found[metadata.TARGETS] = &node{name: metadata.TARGETS, delegator: metadata.ROOT}
				}
			}
		}
	}
	for name, m := range s.up.targets {
		n := found[name]
		old, err := s.storedTargets(name)
		if err != nil {
			return err
		}
		if old == nil || m.Signed.Delegations == nil {
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
		var candidates []*node
		for i := range nd.Roles {
			if oldEntries[nd.Roles[i].Name] != delegationEntry(nd.Keys, &nd.Roles[i]) {
				candidates = append(candidates, n.child(nd.Roles[i].Name, pathRule{role: &nd.Roles[i]}))
			}
		}
		if nd.SuccinctRoles != nil && (od == nil || succinctEntry(od) != succinctEntry(nd)) {
			for _, bin := range nd.SuccinctRoles.GetRoles() {
				candidates = append(candidates, n.child(bin, binRule{bins: nd.SuccinctRoles, name: bin}))
			}
		}
		for _, c := range candidates {
			if _, ok := found[c.name]; ok {
				continue
			}
			v, err := s.storedVersion(c.name)
			if err != nil {
				return err
			}
			if v > 0 {
				found[c.name] = c
			}
		}
	}
	return nil
}

// verifyTargets checks signatures, versions against the new snapshot and
// expiry of every planned role with go-tuf, delegators first.
func (s *state) verifyTargets(trusted *trustedmetadata.TrustedMetadata, nodes []*node, partial bool, p *prepared) error {
	for _, n := range nodes {
		if n.delegator != metadata.ROOT {
			if _, ok := trusted.Targets[n.delegator]; !ok {
				// Not changed by this publish: stored, validated when published.
				m, err := s.effective(n.delegator)
				if err != nil {
					return err
				}
				trusted.Targets[n.delegator] = m
			}
		}
		data, ok := s.up.raw[n.name]
		if ok && partial {
			done, err := s.verifyPartial(trusted, n, data, p)
			if err != nil {
				return err
			}
			if !done {
				continue
			}
		}
		if !ok {
			cur, err := s.current(n.name)
			if err != nil {
				return err
			}
			data = cur.Data
		}
		if _, err := trusted.UpdateDelegatedTargets(data, n.name, n.delegator); err != nil {
			e := fromTUF(n.name, err)
			if !ok {
				e.Msg = "the stored version no longer verifies after this change (" + e.Msg + "); re-sign it in the same publish"
			}
			return e
		}
	}
	return nil
}

// checkRoot checks a new root beyond what go-tuf verifies: every top-level
// role is present with a threshold between 1 and its number of distinct
// keys, and every key is of an allowed type.
func checkRoot(root *metadata.RootType) error {
	if err := checkKeys(metadata.ROOT, root.Keys); err != nil {
		return err
	}
	for _, name := range metadata.TOP_LEVEL_ROLE_NAMES {
		role, ok := root.Roles[name]
		if !ok || role == nil {
			return refuse(CodeInvalid, metadata.ROOT, "does not define the %s role", name)
		}
		if err := checkThreshold(metadata.ROOT, name, root.Keys, role.KeyIDs, role.Threshold); err != nil {
			return err
		}
	}
	return nil
}

// checkDelegations checks the delegations a targets-type role makes.
func checkDelegations(role string, d *metadata.Delegations) error {
	if d == nil {
		return nil
	}
	if err := checkKeys(role, d.Keys); err != nil {
		return err
	}
	if d.SuccinctRoles != nil {
		if len(d.Roles) > 0 {
			return refuse(CodeInvalid, role, "delegations may hold roles or succinct_roles, not both")
		}
		sr := d.SuccinctRoles
		if sr.BitLength < 1 || sr.BitLength > maxBinBits {
			return refuse(CodeInvalid, role, "succinct_roles bit_length must be between 1 and %d", maxBinBits)
		}
		if err := ValidateRoleName(sr.NamePrefix); err != nil || sr.NamePrefix == metadata.TARGETS {
			return refuse(CodeInvalid, role, "succinct_roles name_prefix %q is not a valid role name", sr.NamePrefix)
		}
		return checkThreshold(role, sr.NamePrefix+"-*", d.Keys, sr.KeyIDs, sr.Threshold)
	}
	seen := map[string]bool{}
	for i := range d.Roles {
		dr := &d.Roles[i]
		if err := ValidateRoleName(dr.Name); err != nil || dr.Name == metadata.TARGETS {
			return refuse(CodeInvalid, role, "delegates to %q, which is not a valid role name", dr.Name)
		}
		if seen[dr.Name] {
			return refuse(CodeInvalid, role, "delegates to %s twice", dr.Name)
		}
		seen[dr.Name] = true
		if (len(dr.Paths) == 0) == (len(dr.PathHashPrefixes) == 0) {
			return refuse(CodeInvalid, role, "delegation to %s must give exactly one of paths or path_hash_prefixes", dr.Name)
		}
		if err := checkThreshold(role, dr.Name, d.Keys, dr.KeyIDs, dr.Threshold); err != nil {
			return err
		}
	}
	return nil
}

func checkKeys(role string, keys map[string]*metadata.Key) error {
	for id, k := range keys {
		if k == nil {
			return refuse(CodeInvalid, role, "key %s is empty", id)
		}
		switch k.Type {
		case metadata.KeyTypeEd25519, metadata.KeyTypeECDSA_SHA2_P256, metadata.KeyTypeRSASSA_PSS_SHA256:
		default:
			return refuse(CodeInvalid, role, "key %s has unsupported type %q (allowed: ed25519, ecdsa-sha2-nistp256, rsa)", id, k.Type)
		}
		if _, err := k.ToPublicKey(); err != nil {
			return refuse(CodeInvalid, role, "key %s does not parse: %v", id, err)
		}
	}
	return nil
}

// checkThreshold counts distinct public keys, so that one key listed under
// two key IDs counts once, as go-tuf counts signatures.
func checkThreshold(in, role string, keys map[string]*metadata.Key, ids []string, threshold int) error {
	distinct := map[[32]byte]bool{}
	for _, id := range ids {
		k, ok := keys[id]
		if !ok || k == nil {
			return refuse(CodeInvalid, in, "role %s names key %s, which is not defined", role, id)
		}
		fp, err := fingerprint(k)
		if err != nil {
			return refuse(CodeInvalid, in, "key %s does not parse: %v", id, err)
		}
		distinct[fp] = true
	}
	if threshold < 1 || threshold > len(distinct) {
		return refuse(CodeInvalid, in, "role %s has threshold %d but %d distinct keys; the threshold must be between 1 and the number of keys", role, threshold, len(distinct))
	}
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
