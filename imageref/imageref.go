// Package imageref parses container image references the way Docker does,
// so that every part of Signet (the CLI, the client library, the pull
// policy and its hooks) names a repository identically: "alpine" is
// docker.io/library/alpine, "user/app" is docker.io/user/app, and a name
// whose first component holds a dot or a colon, or is "localhost", is a
// registry host. It owns that one normalisation and nothing else; it is a
// thin layer over github.com/distribution/reference's ParseNormalizedNamed
// and imports no other Signet package. Values are immutable and safe for
// concurrent use.
package imageref

import (
	"fmt"
	"strings"

	"github.com/distribution/reference"
	"github.com/opencontainers/go-digest"
)

// Ref is a parsed, normalised image reference.
type Ref struct {
	// Name is the normalised repository name (the TUF GUN), e.g.
	// docker.io/library/alpine.
	Name string
	// Tag is the tag, or "" when the reference names none.
	Tag string
	// Digest is the digest the reference pins ("repo@sha256:…" or
	// "repo:tag@sha256:…"), or "" when it names none.
	Digest digest.Digest
}

// Parse parses s ("alpine", "alpine:3.19", "registry.example.com/team/app:1.2",
// "repo@sha256:…", "repo:tag@sha256:…") and normalises its name. It does not
// add a default tag: a reference with neither tag nor digest has both empty.
// Names with upper-case letters (in the registry host too), bad tags and digests that are not
// well-formed are errors.
func Parse(s string) (Ref, error) {
	n, err := reference.ParseNormalizedNamed(s)
	if err != nil {
		return Ref{}, fmt.Errorf("imageref: %q is not an image reference: %w", s, err)
	}
	// Docker accepts an upper-case registry host, which names the same
	// registry as its lower-case form; one registry must have one name here
	// (a policy rule for registry.example.com must not be bypassed by
	// REGISTRY.example.com), so such names are refused.
	if d := reference.Domain(n); strings.ToLower(d) != d {
		return Ref{}, fmt.Errorf("imageref: %q: the registry host %q must be lower case", s, d)
	}
	r := Ref{Name: n.Name()}
	if t, ok := n.(reference.Tagged); ok {
		r.Tag = t.Tag()
	}
	if d, ok := n.(reference.Digested); ok {
		r.Digest = d.Digest()
		if err := r.Digest.Validate(); err != nil {
			return Ref{}, fmt.Errorf("imageref: %q: %w", s, err)
		}
	}
	return r, nil
}

// String is the normalised reference: Name[:Tag][@Digest].
func (r Ref) String() string {
	s := r.Name
	if r.Tag != "" {
		s += ":" + r.Tag
	}
	if r.Digest != "" {
		s += "@" + r.Digest.String()
	}
	return s
}

// Familiar is the short form Docker prints ("alpine:3.19" for
// docker.io/library/alpine:3.19); other registries' names are unchanged.
func (r Ref) Familiar() string {
	n, err := reference.ParseNormalizedNamed(r.String())
	if err != nil {
		return r.String()
	}
	return reference.FamiliarString(n)
}
