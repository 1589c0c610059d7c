package policy

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"os"
	"slices"
	"sync"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/signetdev/signet/client"
)

// errAnchor marks a repository whose root does not match the policy's
// trust anchor.
var errAnchor = errors.New("root does not match the policy's trust anchor")

// anchor makes sure gun's trust starts from the rule's anchor:
//   - root: the pinned root.json is the file's (pinned in the trust
//     directory if it is not yet);
//   - root_keys: the pinned root is signed by a threshold of the pinned
//     keys; a repository with no pinned root is bootstrapped from the
//     server's root chain, verified by go-tuf from its version 1, and its
//     newest root is pinned only if a threshold of the pinned keys signed
//     it;
//   - neither: whatever `signet trust pin` pinned in the trust directory.
//
// As with `signet trust pin`, the anchor is where the root chain starts:
// later root rotations are followed by TUF's rules (each new root signed
// by a threshold of the old one's keys and of its own). The check is done
// once per repository and anchor per Policy.
func (p *Policy) anchor(ctx context.Context, c *client.Client, r *rule, gun string) error {
	var want string
	switch {
	case r.root != nil:
		sum := sha256.Sum256(r.root)
		want = "root " + hex.EncodeToString(sum[:])
	case len(r.RootKeys) > 0:
		want = fmt.Sprintf("keys %v", r.RootKeys)
	default:
		return nil
	}
	unlock := p.lock(gun)
	defer unlock()
	p.mu.Lock()
	done := p.checked[gun] == want
	p.mu.Unlock()
	if done {
		return nil
	}
	if err := p.anchorLocked(ctx, c, r, gun); err != nil {
		return err
	}
	p.mu.Lock()
	p.checked[gun] = want
	p.mu.Unlock()
	return nil
}

func (p *Policy) anchorLocked(ctx context.Context, c *client.Client, r *rule, gun string) error {
	pinned, err := c.PinnedRoot(gun)
	if err != nil && !errors.Is(err, client.ErrNoTrust) {
		return fmt.Errorf("policy: %w", err)
	}
	if r.root != nil {
		if bytes.Equal(pinned, r.root) {
			return nil
		}
		if err := c.PinRoot(gun, r.root); err != nil {
			return fmt.Errorf("policy: %w", err)
		}
		p.log.Info("pinned the policy's root", "gun", gun, "file", r.Root)
		return nil
	}
	if pinned != nil {
		if err := signedByKeys(pinned, r.RootKeys); err != nil {
			return fmt.Errorf("policy: the root pinned for %s in %s %w: %w", gun, p.base.TrustDir, err, errAnchor)
		}
		return nil
	}
	root, err := p.bootstrap(ctx, gun)
	if err != nil {
		return err
	}
	if err := signedByKeys(root, r.RootKeys); err != nil {
		return fmt.Errorf("policy: the root %s serves for %s %w: %w", p.base.Server, gun, err, errAnchor)
	}
	if err := c.PinRoot(gun, root); err != nil {
		return fmt.Errorf("policy: %w", err)
	}
	p.log.Info("pinned a root signed by the policy's root keys", "gun", gun)
	return nil
}

// bootstrap fetches gun's root chain with a throw-away client that
// trusts the server's first root, and returns the newest root go-tuf
// verified along the chain. Only signedByKeys makes it trusted.
func (p *Policy) bootstrap(ctx context.Context, gun string) ([]byte, error) {
	dir, err := os.MkdirTemp(p.base.TrustDir, ".bootstrap-")
	if err != nil {
		return nil, fmt.Errorf("policy: %w", err)
	}
	defer os.RemoveAll(dir)
	o := p.base
	o.TrustDir, o.TOFU, o.MaxStaleness = dir, true, 0
	tofu, err := client.New(o)
	if err != nil {
		return nil, fmt.Errorf("policy: %w", err)
	}
	trusted, err := tofu.Update(ctx, gun)
	var he *metadata.ErrDownloadHTTP
	if errors.As(err, &he) && he.StatusCode == http.StatusNotFound {
		return nil, fmt.Errorf("policy: %s has no trust data on %s: %w", gun, p.base.Server, client.ErrNotSigned)
	}
	if err != nil {
		return nil, err
	}
	root, err := trusted.Root.ToBytes(false)
	if err != nil {
		return nil, fmt.Errorf("policy: %w", err)
	}
	return root, nil
}

// signedByKeys checks that root is signed by a threshold (the root's own)
// of keys among ids.
func signedByKeys(root []byte, ids []string) error {
	m, err := metadata.Root().FromBytes(root)
	if err != nil {
		return fmt.Errorf("is not a root.json: %w", err)
	}
	role := m.Signed.Roles[metadata.ROOT]
	if role == nil {
		return errors.New("has no root role")
	}
	var have []string
	for _, id := range role.KeyIDs {
		if slices.Contains(ids, id) {
			have = append(have, id)
		}
	}
	if len(have) < role.Threshold {
		return fmt.Errorf("has %d of the policy's root_keys among its root keys, fewer than its threshold %d", len(have), role.Threshold)
	}
	probe := metadata.Root(m.Signed.Expires)
	probe.Signed.Keys = m.Signed.Keys
	probe.Signed.Roles[metadata.ROOT] = &metadata.Role{KeyIDs: have, Threshold: role.Threshold}
	if err := probe.VerifyDelegate(metadata.ROOT, m); err != nil {
		return fmt.Errorf("is not signed by %d of the policy's root_keys: %w", role.Threshold, err)
	}
	return nil
}

func (p *Policy) lock(gun string) func() {
	p.mu.Lock()
	m, ok := p.locks[gun]
	if !ok {
		m = new(sync.Mutex)
		p.locks[gun] = m
	}
	p.mu.Unlock()
	m.Lock()
	return m.Unlock
}
