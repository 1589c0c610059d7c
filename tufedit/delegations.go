package tufedit

import (
	"errors"
	"fmt"
	"maps"
	"path"
	"slices"
	"strings"

	"github.com/signetdev/signet/tufrules"

	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// ReleasesRole is the delegated role that "docker trust signer add" puts
// every signer's keys into: Docker resolves tags through it before any
// per-signer role.
const ReleasesRole = "targets/releases"

// DelegationSpec describes a delegated role for AddDelegation.
type DelegationSpec struct {
	// Name of the role, such as "targets/releases".
	Name string
	// Keys that may sign the role.
	Keys []*metadata.Key
	// Paths are the tags the role may sign, as TUF path patterns; empty
	// means []string{"*"}: all tags.
	Paths []string
	// Threshold is how many distinct keys must sign; 0 means 1.
	Threshold int
	// Terminating stops resolution from trying later delegations for the
	// tags this role matches.
	Terminating bool
}

// DelegationInfo describes one delegated role (see ListDelegations).
type DelegationInfo struct {
	Name             string
	KeyIDs           []string
	Threshold        int
	Paths            []string
	PathHashPrefixes []string
	Terminating      bool
}

// AddDelegation creates the delegated role spec.Name in t (the delegator's
// signed part, usually the top-level targets), with spec's keys, paths
// (default "*": all tags) and threshold (default 1; at most the number of
// distinct keys). The role goes last in delegation order, except that
// ReleasesRole goes before any per-signer role "targets/<signer>". An
// existing role is an error: edit it with AddDelegationKeys,
// RemoveDelegationKeys or SetDelegationThreshold. On error t is unchanged.
func AddDelegation(t *metadata.TargetsType, spec DelegationSpec) error {
	if err := validateRoleName(spec.Name); err != nil {
		return err
	}
	return editDelegations(t, func(d *metadata.Delegations) error {
		if roleIndex(d, spec.Name) >= 0 {
			return fmt.Errorf("tufedit: delegation %s exists; change it with signet delegation edit --add-key/--remove-key/--threshold", spec.Name)
		}
		return addRole(d, spec)
	})
}

// AddDelegationKeys adds keys to the existing delegated role name. A key
// already in the role (by key ID or by public key) is an error naming it.
// On error t is unchanged.
func AddDelegationKeys(t *metadata.TargetsType, name string, keys ...*metadata.Key) error {
	if len(keys) == 0 {
		return fmt.Errorf("tufedit: no keys to add to delegation %s", name)
	}
	return editDelegations(t, func(d *metadata.Delegations) error {
		i, err := existing(d, name)
		if err != nil {
			return err
		}
		have := roleFingerprints(d, d.Roles[i].KeyIDs)
		for _, k := range keys {
			id, fp, err := checkKey(k)
			if err != nil {
				return err
			}
			if slices.Contains(d.Roles[i].KeyIDs, id) {
				return fmt.Errorf("tufedit: key %s is already in delegation %s", id, name)
			}
			if other, ok := have[fp]; ok {
				return fmt.Errorf("tufedit: key %s is already in delegation %s (as key ID %s)", id, name, other)
			}
		}
		return addRoleKeys(d, i, keys)
	})
}

// RemoveDelegationKeys removes key IDs from the delegated role name, and
// from the delegator's keys once no role uses them. It refuses to leave the
// role with fewer distinct keys than its threshold, which would wedge it
// (Notary issue #1500): lower the threshold first or remove the delegation.
// On error t is unchanged.
func RemoveDelegationKeys(t *metadata.TargetsType, name string, keyIDs ...string) error {
	if len(keyIDs) == 0 {
		return fmt.Errorf("tufedit: no keys to remove from delegation %s", name)
	}
	return editDelegations(t, func(d *metadata.Delegations) error {
		i, err := existing(d, name)
		if err != nil {
			return err
		}
		r := &d.Roles[i]
		for _, id := range keyIDs {
			if !slices.Contains(r.KeyIDs, id) {
				return fmt.Errorf("tufedit: key %s is not in delegation %s", id, name)
			}
		}
		remaining := without(r.KeyIDs, keyIDs)
		if n, th := distinctKeys(d, remaining), max(r.Threshold, 1); n < th {
			return fmt.Errorf("tufedit: removing %d key(s) would leave delegation %s with %d distinct key(s), below its threshold %d; lower the threshold first or remove the delegation", len(keyIDs), name, n, th)
		}
		r.KeyIDs = remaining
		pruneKeys(d, keyIDs)
		return nil
	})
}

// RemoveDelegation removes the delegated role name, and the keys that no
// other role uses. On error t is unchanged.
func RemoveDelegation(t *metadata.TargetsType, name string) error {
	return editDelegations(t, func(d *metadata.Delegations) error {
		i, err := existing(d, name)
		if err != nil {
			return err
		}
		ids := d.Roles[i].KeyIDs
		d.Roles = slices.Delete(d.Roles, i, i+1)
		pruneKeys(d, ids)
		return nil
	})
}

// SetDelegationThreshold sets how many distinct keys must sign the
// delegated role name: from 1 to the number of distinct keys it has. On
// error t is unchanged.
func SetDelegationThreshold(t *metadata.TargetsType, name string, k int) error {
	return editDelegations(t, func(d *metadata.Delegations) error {
		i, err := existing(d, name)
		if err != nil {
			return err
		}
		if err := checkThreshold(d, name, d.Roles[i].KeyIDs, k); err != nil {
			return err
		}
		d.Roles[i].Threshold = k
		return nil
	})
}

// ListDelegations describes t's delegated roles in delegation order, the
// order in which TUF resolution (a pre-order walk) tries them. Hashed-bin
// (succinct_roles) delegations are not listed.
func ListDelegations(t *metadata.TargetsType) []DelegationInfo {
	if t == nil || t.Delegations == nil {
		return nil
	}
	var out []DelegationInfo
	for _, r := range t.Delegations.Roles {
		out = append(out, info(r))
	}
	return out
}

// AddSigner does what "docker trust signer add" did: it adds keys to
// ReleasesRole and to the role "targets/<signer>", creating either (paths
// "*", threshold 1, not terminating) when missing. Keys already in a role
// are skipped, so adding a signer twice is harmless. ReleasesRole is
// created before any per-signer role so that resolution prefers it. On
// error t is unchanged.
func AddSigner(t *metadata.TargetsType, signer string, keys ...*metadata.Key) error {
	name, err := signerRole(signer)
	if err != nil {
		return err
	}
	if len(keys) == 0 {
		return fmt.Errorf("tufedit: signer %s needs at least one key", signer)
	}
	for _, k := range keys {
		if _, _, err := checkKey(k); err != nil {
			return err
		}
	}
	return editDelegations(t, func(d *metadata.Delegations) error {
		for _, role := range []string{ReleasesRole, name} {
			i := roleIndex(d, role)
			if i < 0 {
				if err := addRole(d, DelegationSpec{Name: role, Keys: keys, Paths: []string{"*"}, Threshold: 1}); err != nil {
					return err
				}
				continue
			}
			have := roleFingerprints(d, d.Roles[i].KeyIDs)
			var missing []*metadata.Key
			for _, k := range keys {
				id, fp, _ := checkKey(k)
				if _, ok := have[fp]; ok || slices.Contains(d.Roles[i].KeyIDs, id) {
					continue
				}
				have[fp] = id
				missing = append(missing, k)
			}
			if err := addRoleKeys(d, i, missing); err != nil {
				return err
			}
		}
		return nil
	})
}

// RemoveSigner undoes AddSigner: it removes the role "targets/<signer>" and
// takes the signer's keys out of ReleasesRole (keys that another signer's
// role also holds stay). If that empties ReleasesRole, it is removed; if it
// would leave ReleasesRole with fewer distinct keys than its threshold,
// RemoveSigner refuses. Keys no role uses any more are dropped. On error t
// is unchanged.
func RemoveSigner(t *metadata.TargetsType, signer string) error {
	name, err := signerRole(signer)
	if err != nil {
		return err
	}
	return editDelegations(t, func(d *metadata.Delegations) error {
		i := roleIndex(d, name)
		if i < 0 {
			return fmt.Errorf("tufedit: no signer %s (no delegation %s)", signer, name)
		}
		ids := d.Roles[i].KeyIDs
		d.Roles = slices.Delete(d.Roles, i, i+1)
		if r := roleIndex(d, ReleasesRole); r >= 0 {
			rel := &d.Roles[r]
			var drop []string
			for _, id := range ids {
				if slices.Contains(rel.KeyIDs, id) && !signerUses(d, id) {
					drop = append(drop, id)
				}
			}
			remaining := without(rel.KeyIDs, drop)
			switch n, th := distinctKeys(d, remaining), max(rel.Threshold, 1); {
			case len(drop) == 0:
			case len(remaining) == 0:
				d.Roles = slices.Delete(d.Roles, r, r+1)
			case n < th:
				return fmt.Errorf("tufedit: removing signer %s would leave %s with %d distinct key(s), below its threshold %d; lower its threshold first", signer, ReleasesRole, n, th)
			default:
				rel.KeyIDs = remaining
			}
		}
		pruneKeys(d, ids)
		return nil
	})
}

// ListSigners describes the signer roles "targets/<signer>" and
// ReleasesRole, in delegation order.
func ListSigners(t *metadata.TargetsType) []DelegationInfo {
	var out []DelegationInfo
	for _, di := range ListDelegations(t) {
		if isSignerRoleName(di.Name) {
			out = append(out, di)
		}
	}
	return out
}

// validateRoleName applies tufrules' grammar of delegated role names.
func validateRoleName(name string) error {
	if err := tufrules.ValidateRoleName(name); err != nil {
		return fmt.Errorf("tufedit: delegation name: %w", err)
	}
	return nil
}

// signerRole returns the role name of signer: "targets/<signer>".
func signerRole(signer string) (string, error) {
	if err := tufrules.ValidateSegment(signer); err != nil {
		return "", fmt.Errorf("tufedit: signer name %q: %w", signer, err)
	}
	name := metadata.TARGETS + "/" + signer
	if name == ReleasesRole {
		return "", fmt.Errorf("tufedit: signer name %q is reserved for %s", signer, ReleasesRole)
	}
	if err := validateRoleName(name); err != nil {
		return "", err
	}
	return name, nil
}

// isSignerRoleName reports whether name is "targets/<one segment>",
// ReleasesRole included.
func isSignerRoleName(name string) bool {
	rest, ok := strings.CutPrefix(name, metadata.TARGETS+"/")
	return ok && rest != "" && !strings.Contains(rest, "/")
}

// signerUses reports whether a signer role other than ReleasesRole lists id.
func signerUses(d *metadata.Delegations, id string) bool {
	for _, r := range d.Roles {
		if r.Name != ReleasesRole && isSignerRoleName(r.Name) && slices.Contains(r.KeyIDs, id) {
			return true
		}
	}
	return false
}

// editDelegations runs fn on a deep copy of t's delegations (created if
// nil) and stores the copy only if fn succeeds, so that a failed edit
// leaves t as it was.
func editDelegations(t *metadata.TargetsType, fn func(d *metadata.Delegations) error) error {
	if t == nil {
		return errors.New("tufedit: no targets metadata to edit")
	}
	if t.Delegations != nil && t.Delegations.SuccinctRoles != nil {
		return errors.New("tufedit: the targets delegate to hashed bins (succinct_roles); editing those delegations is not supported")
	}
	d := cloneDelegations(t.Delegations)
	if err := fn(d); err != nil {
		return err
	}
	if t.Delegations == nil {
		t.Delegations = d
	} else {
		*t.Delegations = *d
	}
	return nil
}

func cloneDelegations(src *metadata.Delegations) *metadata.Delegations {
	d := &metadata.Delegations{Keys: map[string]*metadata.Key{}}
	if src == nil {
		return d
	}
	maps.Copy(d.Keys, src.Keys)
	if src.Roles != nil {
		d.Roles = make([]metadata.DelegatedRole, len(src.Roles))
		for i, r := range src.Roles {
			r.KeyIDs = slices.Clone(r.KeyIDs)
			r.Paths = slices.Clone(r.Paths)
			r.PathHashPrefixes = slices.Clone(r.PathHashPrefixes)
			d.Roles[i] = r
		}
	}
	d.UnrecognizedFields = src.UnrecognizedFields
	return d
}

func roleIndex(d *metadata.Delegations, name string) int {
	return slices.IndexFunc(d.Roles, func(r metadata.DelegatedRole) bool { return r.Name == name })
}

// existing returns the index of the delegated role name, which must exist.
func existing(d *metadata.Delegations, name string) (int, error) {
	i := roleIndex(d, name)
	if i < 0 {
		return -1, fmt.Errorf("tufedit: no delegation %s", name)
	}
	return i, nil
}

// addRole appends the role spec describes (ReleasesRole goes before the
// first per-signer role instead).
func addRole(d *metadata.Delegations, spec DelegationSpec) error {
	if len(spec.Keys) == 0 {
		return fmt.Errorf("tufedit: delegation %s needs at least one key", spec.Name)
	}
	paths := slices.Clone(spec.Paths)
	if len(paths) == 0 {
		paths = []string{"*"}
	}
	for _, p := range paths {
		if p == "" {
			return fmt.Errorf("tufedit: delegation %s: empty path pattern", spec.Name)
		}
		if _, err := path.Match(p, ""); err != nil {
			return fmt.Errorf("tufedit: delegation %s: path pattern %q: %w", spec.Name, p, err)
		}
	}
	th := spec.Threshold
	if th == 0 {
		th = 1
	}
	role := metadata.DelegatedRole{Name: spec.Name, Threshold: th, Terminating: spec.Terminating, Paths: paths}
	at := len(d.Roles)
	if spec.Name == ReleasesRole {
		if i := slices.IndexFunc(d.Roles, func(r metadata.DelegatedRole) bool { return isSignerRoleName(r.Name) }); i >= 0 {
			at = i
		}
	}
	d.Roles = slices.Insert(d.Roles, at, role)
	if err := addRoleKeys(d, at, spec.Keys); err != nil {
		return err
	}
	return checkThreshold(d, spec.Name, d.Roles[at].KeyIDs, th)
}

// addRoleKeys puts keys into d.Keys and their IDs into role i's key IDs,
// kept sorted and free of duplicates.
func addRoleKeys(d *metadata.Delegations, i int, keys []*metadata.Key) error {
	r := &d.Roles[i]
	for _, k := range keys {
		id, _, err := checkKey(k)
		if err != nil {
			return err
		}
		if have, ok := d.Keys[id]; ok {
			if haveID, err := have.ID(); err != nil || haveID != id {
				return fmt.Errorf("tufedit: key ID %s of the delegations names a different key", id)
			}
		} else {
			d.Keys[id] = copyKey(k)
		}
		r.KeyIDs = append(r.KeyIDs, id)
	}
	slices.Sort(r.KeyIDs)
	r.KeyIDs = slices.Compact(r.KeyIDs)
	return nil
}

func checkThreshold(d *metadata.Delegations, name string, ids []string, k int) error {
	if err := tufrules.CheckRoleKeys(name, d.Keys, ids, k); err != nil {
		return fmt.Errorf("tufedit: delegation %s: %w", name, err)
	}
	return nil
}

// checkKey validates k and returns its key ID and fingerprint.
func checkKey(k *metadata.Key) (id, fp string, err error) {
	fp, err = tufrules.Fingerprint(k)
	if err != nil {
		return "", "", fmt.Errorf("tufedit: key: %w", err)
	}
	id, err = k.ID()
	if err != nil {
		return "", "", fmt.Errorf("tufedit: key: %w", err)
	}
	return id, fp, nil
}

func copyKey(k *metadata.Key) *metadata.Key {
	c := *k
	c.UnrecognizedFields = maps.Clone(k.UnrecognizedFields)
	c.Value.UnrecognizedFields = maps.Clone(k.Value.UnrecognizedFields)
	return &c
}

// roleFingerprints maps the fingerprints of the usable keys among ids to
// their key IDs.
func roleFingerprints(d *metadata.Delegations, ids []string) map[string]string {
	fps := map[string]string{}
	for _, id := range ids {
		if k, ok := d.Keys[id]; ok {
			if fp, err := tufrules.Fingerprint(k); err == nil {
				fps[fp] = id
			}
		}
	}
	return fps
}

// distinctKeys counts the distinct public keys among ids, as go-tuf does
// when it checks a threshold. IDs of missing or unusable keys count for
// nothing: they can never contribute a signature.
func distinctKeys(d *metadata.Delegations, ids []string) int {
	return len(roleFingerprints(d, ids))
}

// pruneKeys deletes from d.Keys those of ids that no role lists.
func pruneKeys(d *metadata.Delegations, ids []string) {
	for _, id := range ids {
		if !slices.ContainsFunc(d.Roles, func(r metadata.DelegatedRole) bool { return slices.Contains(r.KeyIDs, id) }) {
			delete(d.Keys, id)
		}
	}
}

// without returns ids minus drop, in a new slice.
func without(ids, drop []string) []string {
	out := []string{}
	for _, id := range ids {
		if !slices.Contains(drop, id) {
			out = append(out, id)
		}
	}
	return out
}

func info(r metadata.DelegatedRole) DelegationInfo {
	return DelegationInfo{
		Name:             r.Name,
		KeyIDs:           slices.Clone(r.KeyIDs),
		Threshold:        r.Threshold,
		Paths:            slices.Clone(r.Paths),
		PathHashPrefixes: slices.Clone(r.PathHashPrefixes),
		Terminating:      r.Terminating,
	}
}
