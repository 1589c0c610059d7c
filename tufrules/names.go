package tufrules

import (
	"strings"

	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// MaxRoleNameLen bounds delegated role names: they become file names in
// clients' caches and path segments in URLs.
const MaxRoleNameLen = 255

// IsTopLevel reports whether name is a top-level role's name, ignoring
// case: on a case-insensitive file system a delegated role "Root" would be
// cached over the trusted root.json.
func IsTopLevel(name string) bool {
	for _, top := range metadata.TOP_LEVEL_ROLE_NAMES {
		if strings.EqualFold(name, top) {
			return true
		}
	}
	return false
}

// ValidateRoleName accepts delegated role names: 1–MaxRoleNameLen bytes of
// "/"-separated segments of [A-Za-z0-9._-], none empty, "." or "..", not a
// top-level role's name in any case, and not starting with digits and a
// dot ("1.x.json" would read as version 1 of role "x").
func ValidateRoleName(name string) error {
	switch {
	case name == "":
		return broken("a delegated role name must not be empty")
	case len(name) > MaxRoleNameLen:
		return broken("delegated role name is %d bytes long (at most %d)", len(name), MaxRoleNameLen)
	case IsTopLevel(name):
		return broken("%q is a top-level role's name (in any case), not a delegated role's", name)
	}
	if head, _, ok := strings.Cut(name, "."); ok && strings.Trim(head, "0123456789") == "" {
		return broken("delegated role name %q starts with a number and a dot (it would read as a version)", name)
	}
	for seg := range strings.SplitSeq(name, "/") {
		if err := ValidateSegment(seg); err != nil {
			return broken("delegated role name %q: %v", name, err)
		}
	}
	return nil
}

// ValidateSegment accepts one segment of a role name: [A-Za-z0-9._-]+,
// other than "." and "..".
func ValidateSegment(seg string) error {
	switch seg {
	case "":
		return broken("empty segment")
	case ".", "..":
		return broken("segment %q", seg)
	}
	for _, c := range seg {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return broken("character %q (want A-Z a-z 0-9 . _ - and / between segments)", c)
		}
	}
	return nil
}
