package client

import (
	"context"
	"fmt"

	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// The online end of the offline root ceremony (package tufedit makes, signs
// and checks roots with no network): publishing a signed root.

// RootPublish uploads a signed root from an online machine that holds no
// root key. For a new repository it also publishes an empty targets v1,
// signed by the targets keys this key store holds.
func (c *Client) RootPublish(ctx context.Context, gun string, root []byte) error {
	ctx, cancel := context.WithTimeout(ctx, c.opts.Timeout)
	defer cancel()
	m, err := metadata.Root().FromBytes(root)
	if err != nil {
		return fmt.Errorf("client: %w", err)
	}
	files := map[string][]byte{metadata.ROOT: root}
	if m.Signed.Version == 1 {
		held, err := c.heldKeys(ctx, m.Signed.Roles[metadata.TARGETS].KeyIDs)
		if err != nil {
			return err
		}
		if th := m.Signed.Roles[metadata.TARGETS].Threshold; len(held) < th {
			// Staging needs a published root: the first targets must be
			// complete. Later changes are staged for k-of-n signing.
			return fmt.Errorf("client: the first publish of %s needs targets v1 signed by %d targets keys: %w: this trust directory holds %d (signet key import the others for this publish)", gun, th, ErrNoKey, len(held))
		}
		targets := metadata.Targets(c.opts.Now().Add(TargetsLifetime))
		data, err := c.sign(ctx, targets, held...)
		if err != nil {
			return err
		}
		files[metadata.TARGETS] = data
	} else {
		// A root that gives targets new keys (signet key rotate GUN
		// targets) leaves the stored targets unverifiable: publish its
		// next version, signed by the new keys this directory holds, in
		// the same upload.
		err := c.withEditState(ctx, gun, func(s *roleState) error {
			cur, err := s.load(metadata.TARGETS)
			if err != nil || cur == nil || m.VerifyDelegate(metadata.TARGETS, cur) == nil {
				return err
			}
			if d := cur.Signed.Delegations; d != nil && d.SuccinctRoles != nil {
				// The bins are signed by the targets keys too; re-signing
				// every bin in this publish is not built yet.
				return fmt.Errorf("client: root v%d gives targets new keys, but %s keeps its tags in hashed bins signed by the old ones: rotating the targets key of a hashed-bin repository is not supported yet", m.Signed.Version, gun)
			}
			r := m.Signed.Roles[metadata.TARGETS]
			held, err := c.heldKeys(ctx, r.KeyIDs)
			if err != nil {
				return err
			}
			if len(held) < r.Threshold {
				return fmt.Errorf("client: root v%d gives targets new keys, so targets must be re-signed by %d of them in the same publish: %w: this trust directory holds %d", m.Signed.Version, r.Threshold, ErrNoKey, len(held))
			}
			next, err := s.next(metadata.TARGETS)
			if err != nil {
				return err
			}
			next.ClearSignatures()
			files[metadata.TARGETS], err = c.sign(ctx, next, held...)
			return err
		})
		if err != nil {
			return err
		}
	}
	if _, err := c.post(ctx, gun, files); err != nil {
		return err
	}
	if m.Signed.Version == 1 {
		return c.PinRoot(gun, root)
	}
	return nil
}
