package tufrules

import (
	"path"

	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// Bounds on what one repository's metadata may hold. They keep the work of
// verifying a role linear in its size and small: go-tuf re-verifies a role
// once per key ID its delegator lists, so unbounded (or repeated) key IDs
// would let one upload cost minutes of CPU on the server and on every
// engine that resolves through it.
const (
	// MaxKeysPerRole bounds the key IDs one role (or delegation) lists.
	MaxKeysPerRole = 64
	// MaxKeys bounds the keys one root or one delegations object defines.
	MaxKeys = 1024
	// MaxDelegationsPerRole bounds the roles one targets-type role
	// delegates to by name.
	MaxDelegationsPerRole = 1024
	// MaxBinBits bounds hashed bins (TAP 15 succinct_roles) to 4,096 bins:
	// the snapshot lists every bin.
	MaxBinBits = 12
	// MaxDelegationDepth bounds the chain of delegations from targets to a
	// role (targets → a → a/b is depth 2).
	MaxDelegationDepth = 16
	// MaxRolesPerRepository bounds the targets-type roles one repository's
	// snapshot lists.
	MaxRolesPerRepository = 1<<MaxBinBits + MaxDelegationsPerRole
	// DefaultMaxRolesVisited is how many roles one lookup visits before
	// giving up, as go-tuf's updater (MaxDelegations = 32).
	DefaultMaxRolesVisited = 32
)

// CheckRoleKeys checks the key IDs and threshold of one role: at most
// MaxKeysPerRole key IDs, none listed twice, each defined in keys and
// accepted (Fingerprint), and a threshold between 1 and the number of
// distinct public keys (one key under two key IDs counts once). role names
// the role in the message.
func CheckRoleKeys(role string, keys map[string]*metadata.Key, ids []string, threshold int) error {
	if len(ids) > MaxKeysPerRole {
		return broken("role %s lists %d key IDs (at most %d)", role, len(ids), MaxKeysPerRole)
	}
	seen := make(map[string]bool, len(ids))
	distinct := make(map[string]bool, len(ids))
	for _, id := range ids {
		if seen[id] {
			return broken("role %s lists key ID %s more than once", role, id)
		}
		seen[id] = true
		k, ok := keys[id]
		if !ok || k == nil {
			return broken("role %s names key %s, which is not defined", role, id)
		}
		fp, err := Fingerprint(k)
		if err != nil {
			return broken("role %s: key %s: %v", role, id, err)
		}
		distinct[fp] = true
	}
	if threshold < 1 {
		return broken("role %s: threshold %d is below 1", role, threshold)
	}
	if threshold > len(distinct) {
		return broken("role %s: threshold %d is above its %d distinct key(s)", role, threshold, len(distinct))
	}
	return nil
}

// CheckKeys checks a key map: at most MaxKeys keys, each accepted.
func CheckKeys(keys map[string]*metadata.Key) error {
	if len(keys) > MaxKeys {
		return broken("%d keys are defined (at most %d)", len(keys), MaxKeys)
	}
	for id, k := range keys {
		if _, err := Fingerprint(k); err != nil {
			return broken("key %s: %v", id, err)
		}
	}
	return nil
}

// CheckRoot checks a root beyond what go-tuf verifies: accepted keys, every
// top-level role defined with CheckRoleKeys.
func CheckRoot(root *metadata.RootType) error {
	if err := CheckKeys(root.Keys); err != nil {
		return err
	}
	for _, name := range metadata.TOP_LEVEL_ROLE_NAMES {
		r, ok := root.Roles[name]
		if !ok || r == nil {
			return broken("root does not define the %s role", name)
		}
		if err := CheckRoleKeys(name, root.Keys, r.KeyIDs, r.Threshold); err != nil {
			return err
		}
	}
	return nil
}

// CheckDelegations checks the delegations one targets-type role makes (nil
// is none): accepted keys; either named roles or hashed bins; for bins a
// bit length of 1–MaxBinBits and a valid name prefix; for named roles at
// most MaxDelegationsPerRole, valid names, none twice, exactly one of
// paths or path_hash_prefixes, path patterns that parse; CheckRoleKeys for
// each.
func CheckDelegations(d *metadata.Delegations) error {
	if d == nil {
		return nil
	}
	if err := CheckKeys(d.Keys); err != nil {
		return err
	}
	if sr := d.SuccinctRoles; sr != nil {
		if len(d.Roles) > 0 {
			return broken("delegations hold roles or succinct_roles, not both")
		}
		if sr.BitLength < 1 || sr.BitLength > MaxBinBits {
			return broken("succinct_roles bit_length %d is not between 1 and %d", sr.BitLength, MaxBinBits)
		}
		if err := ValidateRoleName(sr.NamePrefix); err != nil {
			return broken("succinct_roles name_prefix: %v", err)
		}
		return CheckRoleKeys(sr.NamePrefix+"-*", d.Keys, sr.KeyIDs, sr.Threshold)
	}
	if len(d.Roles) > MaxDelegationsPerRole {
		return broken("delegates to %d roles (at most %d)", len(d.Roles), MaxDelegationsPerRole)
	}
	seen := make(map[string]bool, len(d.Roles))
	for i := range d.Roles {
		r := &d.Roles[i]
		if err := ValidateRoleName(r.Name); err != nil {
			return err
		}
		if seen[r.Name] {
			return broken("delegates to %s twice", r.Name)
		}
		seen[r.Name] = true
		if (len(r.Paths) == 0) == (len(r.PathHashPrefixes) == 0) {
			return broken("delegation to %s must give exactly one of paths or path_hash_prefixes", r.Name)
		}
		for _, p := range r.Paths {
			if _, err := path.Match(p, ""); p == "" || err != nil {
				return broken("delegation to %s: path pattern %q does not parse", r.Name, p)
			}
		}
		if err := CheckRoleKeys(r.Name, d.Keys, r.KeyIDs, r.Threshold); err != nil {
			return err
		}
	}
	return nil
}

// Delegates reports whether d (a delegator's delegations) delegates to
// role, by name or as one of its hashed bins.
func Delegates(d *metadata.Delegations, role string) bool {
	_, _, ok := Delegation(d, role)
	return ok
}

// Delegation returns the key IDs and threshold d gives role (by name, or
// as one of its hashed bins), and whether d delegates to role at all.
func Delegation(d *metadata.Delegations, role string) (ids []string, threshold int, ok bool) {
	if d == nil {
		return nil, 0, false
	}
	if sr := d.SuccinctRoles; sr != nil {
		if sr.IsDelegatedRole(role) {
			return sr.KeyIDs, sr.Threshold, true
		}
		return nil, 0, false
	}
	for i := range d.Roles {
		if d.Roles[i].Name == role {
			return d.Roles[i].KeyIDs, d.Roles[i].Threshold, true
		}
	}
	return nil, 0, false
}

// Allows reports whether d lets role list target: role is one of d's named
// roles whose paths (or path hash prefixes) match target, or the hashed bin
// target falls into.
func Allows(d *metadata.Delegations, role, target string) bool {
	if d == nil {
		return false
	}
	for _, r := range d.GetRolesForTarget(target) {
		if r.Name == role {
			return true
		}
	}
	return false
}
