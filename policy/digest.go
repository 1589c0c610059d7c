package policy

import (
	"context"
	"encoding/hex"
	"fmt"
	"slices"

	"github.com/opencontainers/go-digest"
	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/signetdev/signet/client"
)

// Bounds of the search behind a digest-only reference.
const (
	// maxSearchRoles is how many delegated roles a digest-only check
	// reads before it gives up (and denies).
	maxSearchRoles = 64
	// maxCandidates is how many tags listing the digest it resolves.
	maxCandidates = 16
)

// checkDigestOnly decides NAME@DIGEST: allowed only when a signed tag
// resolves (through TUF's pre-order walk, as a pull by that tag would) to
// exactly want. It reads the top-level targets and up to maxSearchRoles
// delegated roles for tags listing want, then resolves each candidate.
// A repository sharded into hashed bins (or with more delegated roles) is
// too large to list on a pull: such references are denied with advice to
// pull by tag.
func (p *Policy) checkDigestOnly(ctx context.Context, c *client.Client, r *rule, d Decision, want digest.Digest) Decision {
	trusted, err := c.Update(ctx, d.Name)
	if err != nil {
		return p.failed(d, r, err)
	}
	top := trusted.Targets[metadata.TARGETS]
	if top == nil {
		return p.failed(d, r, fmt.Errorf("policy: %s: no trusted targets", d.Name))
	}
	var candidates []string
	collect := func(m *metadata.Metadata[metadata.TargetsType]) {
		for tag, tf := range m.Signed.Targets {
			if sum, ok := tf.Hashes["sha256"]; ok && want.Algorithm() == digest.SHA256 && hex.EncodeToString(sum) == want.Encoded() && !slices.Contains(candidates, tag) {
				candidates = append(candidates, tag)
			}
		}
	}
	collect(top)
	tooLarge := fmt.Sprintf("%s@%s names no tag, and %s is too large to search for the tags that vouch for a digest on a pull; pull it by tag (NAME:TAG or NAME:TAG@DIGEST)", d.Name, want, d.Name)
	if top.Signed.Delegations != nil && top.Signed.Delegations.SuccinctRoles != nil {
		d.Reason = tooLarge
		return d
	}
	// Pre-order walk of the delegations, bounded.
	queue := delegations(top)
	for seen := 0; len(queue) > 0; seen++ {
		if seen == maxSearchRoles {
			d.Reason = tooLarge
			return d
		}
		name := queue[0]
		queue = queue[1:]
		m, err := c.Role(ctx, d.Name, name)
		if err != nil {
			// A role that cannot be read lists nothing here; the
			// resolution below decides on its own.
			continue
		}
		if m.Signed.Delegations != nil && m.Signed.Delegations.SuccinctRoles != nil {
			d.Reason = tooLarge
			return d
		}
		collect(m)
		queue = append(delegations(m), queue...)
	}
	slices.Sort(candidates)
	if len(candidates) > maxCandidates {
		candidates = candidates[:maxCandidates]
	}
	var refused *Decision // a tag that vouches for want, by a role the rule refuses
	for _, tag := range candidates {
		t, err := c.Resolve(ctx, d.Name+":"+tag)
		if err != nil || t.Digest != want {
			continue
		}
		got := p.judge(d, r, t, want)
		if got.Allowed() {
			return got
		}
		if refused == nil {
			refused = &got
		}
	}
	if refused != nil {
		return *refused
	}
	d.Reason = fmt.Sprintf("no signed tag of %s vouches for %s", d.Name, want)
	return d
}

func delegations(m *metadata.Metadata[metadata.TargetsType]) []string {
	if m.Signed.Delegations == nil {
		return nil
	}
	var names []string
	for _, r := range m.Signed.Delegations.Roles {
		names = append(names, r.Name)
	}
	return names
}
