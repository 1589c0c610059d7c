package client

import (
	"context"
	"fmt"
	"math/bits"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/signetdev/signet/tufrules"
)

// Hashed bins (TAP 15, go-tuf's SuccinctRoles) keep large repositories
// cheap: targets delegates each tag, by the sha256 of its name, to one of N
// bins, so a resolve downloads one bin and a publish of one tag re-signs
// one bin (plus the server's snapshot and timestamp), whatever the number
// of tags.

// BinsPrefix names the bins: bins-00 … bins-ff for 256 bins.
const BinsPrefix = "bins"

// MaxBins bounds the number of bins: the snapshot lists every bin, so its
// size grows with N.
const MaxBins = 1 << tufrules.MaxBinBits

// binBits returns log2(n) for a power of two between 2 and MaxBins.
func binBits(n int) (int, error) {
	if n < 2 || n > MaxBins || n&(n-1) != 0 {
		return 0, fmt.Errorf("client: --bins must be a power of two between 2 and %d, not %d", MaxBins, n)
	}
	return bits.TrailingZeros(uint(n)), nil
}

// Shard converts gun to n hashed bins: targets delegates all tags to the
// bins (succinct_roles, named BinsPrefix-XX) under the targets keys and
// threshold, every tag moves from targets into its bin, and every bin is
// published, empty ones too, so that the snapshot lists each of them. A
// repository that already delegates is refused.
func (c *Client) Shard(ctx context.Context, gun string, n int) (*Outcome, error) {
	bitLen, err := binBits(n)
	if err != nil {
		return nil, err
	}
	return c.retry(ctx, gun, func(s *roleState) error {
		t, err := s.next(metadata.TARGETS)
		if err != nil {
			return err
		}
		if d := t.Signed.Delegations; d != nil && (len(d.Roles) > 0 || d.SuccinctRoles != nil) {
			return fmt.Errorf("client: %s already delegates; hashed bins replace all delegations, so shard a repository without any", gun)
		}
		role := s.trusted.Root.Signed.Roles[metadata.TARGETS]
		keys := map[string]*metadata.Key{}
		for _, id := range role.KeyIDs {
			keys[id] = s.trusted.Root.Signed.Keys[id]
		}
		sr := &metadata.SuccinctRoles{KeyIDs: role.KeyIDs, Threshold: role.Threshold, BitLength: bitLen, NamePrefix: BinsPrefix}
		t.Signed.Delegations = &metadata.Delegations{Keys: keys, SuccinctRoles: sr}
		tags := t.Signed.Targets
		t.Signed.Targets = map[string]*metadata.TargetFiles{}
		for _, bin := range sr.GetRoles() {
			if _, err := s.next(bin); err != nil {
				return err
			}
		}
		for tag, tf := range tags {
			s.pending[sr.GetRolesForTarget(tag)[0].Name].Signed.Targets[tag] = tf
		}
		return nil
	})
}
