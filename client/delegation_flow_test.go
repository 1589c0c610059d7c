package client_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/signetdev/signet/client"
	"github.com/signetdev/signet/tufedit"
)

// delegate is a developer with their own trust directory and key.
type delegate struct {
	c   *client.Client
	key *client.KeyInfo
}

func newDelegate(t *testing.T, url string, root []byte) *delegate {
	t.Helper()
	c := newClient(t, url, t.TempDir())
	if err := c.PinRoot(gun, root); err != nil {
		t.Fatal(err)
	}
	k, err := c.Keys().Generate(context.Background(), "targets/delegate")
	if err != nil {
		t.Fatal(err)
	}
	return &delegate{c: c, key: k}
}

// owned makes a repository whose owner holds only the root and targets
// keys; it returns the owner and the pinned root.
func owned(t *testing.T, url string) (*client.Client, []byte) {
	t.Helper()
	owner := newClient(t, url, t.TempDir())
	root, err := owner.Init(context.Background(), gun)
	if err != nil {
		t.Fatal(err)
	}
	return owner, root
}

// delegateTo makes an edit of targets' delegations that creates
// delegations. A delegation is born published, signed by its own keys: the
// owner holds none of them, so the edit is staged, and each approver (a
// new delegate) approves it until it is published.
func delegateTo(t *testing.T, owner *client.Client, edit func(*metadata.TargetsType) error, approvers ...*delegate) {
	t.Helper()
	ctx := context.Background()
	out, err := owner.EditDelegations(ctx, gun, metadata.TARGETS, edit)
	if err != nil {
		t.Fatal(err)
	}
	if out.Published != nil {
		return
	}
	if out.Staged == nil {
		t.Fatalf("delegation edit: %+v, want published or staged", out)
	}
	for _, d := range approvers {
		rv, err := d.c.ReviewStaged(ctx, gun, out.Staged.ID)
		if err != nil {
			t.Fatal(err)
		}
		done, err := d.c.Approve(ctx, gun, rv)
		if err != nil {
			t.Fatal(err)
		}
		if done.Published != nil {
			return
		}
	}
	t.Fatalf("staged delegation %s still waits after %d approvals", out.Staged.ID, len(approvers))
}

func sign(t *testing.T, c *client.Client, role, tag string) *client.Outcome {
	t.Helper()
	out, err := c.PublishAs(context.Background(), gun, role, []client.Change{{Tag: tag, Digest: digest.FromString(tag), Size: 1}})
	if err != nil {
		t.Fatalf("sign %s as %q: %v", tag, role, err)
	}
	return out
}

func resolvesTo(t *testing.T, c *client.Client, tag, role string) {
	t.Helper()
	got, err := c.Resolve(context.Background(), gun+":"+tag)
	if err != nil {
		t.Fatalf("resolve %s: %v", tag, err)
	}
	if got.Digest != digest.FromString(tag) || (role != "" && got.Role != role) {
		t.Fatalf("resolve %s = %s from %s, want %s from %s", tag, got.Digest, got.Role, digest.FromString(tag), role)
	}
}

func TestSignerAddThenSignFromOwnTrustDir(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := newServer(t, nil)
	owner, root := owned(t, url)
	alice := newDelegate(t, url, root)
	delegateTo(t, owner, func(tt *metadata.TargetsType) error {
		return tufedit.AddSigner(tt, "alice", alice.key.Public)
	}, alice)
	// Without --role, alice's client picks targets/releases, the first
	// delegation in pre-order whose key she holds.
	out := sign(t, alice.c, "", "1.0")
	if len(out.Roles) != 1 || out.Roles[0] != tufedit.ReleasesRole || out.Published == nil {
		t.Fatalf("outcome %+v, want published to %s", out, tufedit.ReleasesRole)
	}
	engine := newDelegate(t, url, root).c
	resolvesTo(t, engine, "1.0", tufedit.ReleasesRole)

	// Several tags in one publish.
	if _, err := alice.c.Publish(ctx, gun, []client.Change{
		{Tag: "a", Digest: digest.FromString("a"), Size: 1},
		{Tag: "b", Digest: digest.FromString("b"), Size: 1},
	}); err != nil {
		t.Fatal(err)
	}
	resolvesTo(t, engine, "a", tufedit.ReleasesRole)
	resolvesTo(t, engine, "b", tufedit.ReleasesRole)

	// Removing the signer revokes her key: her later signatures are
	// refused, by her own client (no key left) and by the server.
	if _, err := owner.EditDelegations(ctx, gun, metadata.TARGETS, func(tt *metadata.TargetsType) error {
		return tufedit.RemoveSigner(tt, "alice")
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := alice.c.Publish(ctx, gun, []client.Change{{Tag: "late", Digest: digest.FromString("late"), Size: 1}}); !errors.Is(err, client.ErrNoKey) {
		t.Fatalf("revoked signer publishes: %v", err)
	}
	if _, err := engine.Resolve(ctx, gun+":1.0"); !errors.Is(err, client.ErrNotSigned) {
		t.Fatalf("tag of a removed delegation still resolves: %v", err)
	}
	// The owner keeps publishing.
	sign(t, owner, "", "owner-tag")
	resolvesTo(t, engine, "owner-tag", metadata.TARGETS)
}

func TestDelegatedPathsEnforced(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := newServer(t, nil)
	owner, root := owned(t, url)
	ci := newDelegate(t, url, root)
	delegateTo(t, owner, func(tt *metadata.TargetsType) error {
		return tufedit.AddDelegation(tt, tufedit.DelegationSpec{Name: "targets/ci", Keys: []*metadata.Key{ci.key.Public}, Paths: []string{"release-*"}})
	}, ci)
	sign(t, ci.c, "", "release-1")
	engine := newDelegate(t, url, root).c
	resolvesTo(t, engine, "release-1", "targets/ci")
	if _, err := ci.c.PublishAs(ctx, gun, "targets/ci", []client.Change{{Tag: "latest", Digest: digest.FromString("latest"), Size: 1}}); err == nil || !strings.Contains(err.Error(), "outside the paths") {
		t.Fatalf("sign outside the delegated paths: %v", err)
	}
	if _, err := ci.c.Publish(ctx, gun, []client.Change{{Tag: "latest", Digest: digest.FromString("latest"), Size: 1}}); !errors.Is(err, client.ErrNoKey) {
		t.Fatalf("auto-pick for a tag outside every held delegation: %v", err)
	}
}

// TestTerminatingOrder: the first matching delegation in pre-order wins; a
// terminating one stops the walk, so a later delegation's claim on the
// same tag is never seen.
func TestTerminatingOrder(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := newServer(t, nil)
	owner, root := owned(t, url)
	first, second := newDelegate(t, url, root), newDelegate(t, url, root)
	add := func(name string, d *delegate, paths []string, terminating bool) {
		t.Helper()
		delegateTo(t, owner, func(tt *metadata.TargetsType) error {
			return tufedit.AddDelegation(tt, tufedit.DelegationSpec{Name: name, Keys: []*metadata.Key{d.key.Public}, Paths: paths, Terminating: terminating})
		}, d)
	}
	add("targets/first", first, []string{"app-*"}, false)
	add("targets/second", second, []string{"*"}, false)
	engine := newDelegate(t, url, root).c

	// Only the second lists app-1: non-terminating first lets the walk go on.
	sign(t, second.c, "targets/second", "app-1")
	resolvesTo(t, engine, "app-1", "targets/second")
	// Both list app-2: the first in order wins.
	sign(t, second.c, "targets/second", "app-2")
	sign(t, first.c, "targets/first", "app-2")
	out, err := engine.Resolve(ctx, gun+":app-2")
	if err != nil || out.Role != "targets/first" {
		t.Fatalf("app-2 resolved from %v (%v), want targets/first", out, err)
	}

	// Make first terminating: app-1 (listed only by second) is no longer
	// reachable.
	if _, err := owner.EditDelegations(ctx, gun, metadata.TARGETS, func(tt *metadata.TargetsType) error {
		for i := range tt.Delegations.Roles {
			if tt.Delegations.Roles[i].Name == "targets/first" {
				tt.Delegations.Roles[i].Terminating = true
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := engine.Resolve(ctx, gun+":app-1"); !errors.Is(err, client.ErrNotSigned) {
		t.Fatalf("terminating delegation did not stop the walk: %v", err)
	}
	// Tags outside the terminating delegation's paths still reach second.
	sign(t, second.c, "targets/second", "other")
	resolvesTo(t, engine, "other", "targets/second")
}

// TestThresholdTwoDelegationStaged: a delegation needing two of its keys
// is completed by staged signing from two trust directories.
func TestThresholdTwoDelegationStaged(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := newServer(t, nil)
	owner, root := owned(t, url)
	alice, bob := newDelegate(t, url, root), newDelegate(t, url, root)
	// Born published: its empty first version needs both signatures.
	delegateTo(t, owner, func(tt *metadata.TargetsType) error {
		return tufedit.AddDelegation(tt, tufedit.DelegationSpec{Name: "targets/releases", Keys: []*metadata.Key{alice.key.Public, bob.key.Public}, Threshold: 2})
	}, alice, bob)
	out := sign(t, alice.c, "", "2.0")
	if out.Staged == nil || out.Published != nil {
		t.Fatalf("one of two signatures: %+v, want a staged change", out)
	}
	if p := out.Staged.Pending(); p["targets/releases"] != 1 {
		t.Fatalf("pending %v, want one more signature of targets/releases", p)
	}
	engine := newDelegate(t, url, root).c
	if _, err := engine.Resolve(ctx, gun+":2.0"); !errors.Is(err, client.ErrNotSigned) {
		t.Fatalf("staged tag resolves: %v", err)
	}
	list, err := bob.c.ListStaged(ctx, gun)
	if err != nil || len(list) != 1 || list[0].ID != out.Staged.ID {
		t.Fatalf("ListStaged = %+v, %v", list, err)
	}
	rv, err := bob.c.ReviewStaged(ctx, gun, list[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(rv.Tags) != 1 || rv.Tags[0].Tag != "2.0" || rv.Tags[0].Old != nil || rv.Tags[0].New.Digest != digest.FromString("2.0") {
		t.Fatalf("review shows %+v, want 2.0 added", rv.Tags)
	}
	done, err := bob.c.Approve(ctx, gun, rv)
	if err != nil {
		t.Fatal(err)
	}
	if done.Published["targets/releases"] != 2 {
		t.Fatalf("approval: %+v, want targets/releases v2 published", done)
	}
	resolvesTo(t, engine, "2.0", "targets/releases")
}

// TestRevokedKeyDoesNotWedge reproduces Notary issue #1500: the owner
// removes a delegate's key while that delegate's signature is the only one
// on the role. The role is re-signed by the remaining delegate through a
// staged change; the revoked key's signatures are refused afterwards; the
// repository keeps publishing.
func TestRevokedKeyDoesNotWedge(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := newServer(t, nil)
	owner, root := owned(t, url)
	alice, bob := newDelegate(t, url, root), newDelegate(t, url, root)
	delegateTo(t, owner, func(tt *metadata.TargetsType) error {
		return tufedit.AddDelegation(tt, tufedit.DelegationSpec{Name: "targets/releases", Keys: []*metadata.Key{alice.key.Public, bob.key.Public}})
	}, alice)
	sign(t, alice.c, "", "1.0")

	out, err := owner.EditDelegations(ctx, gun, metadata.TARGETS, func(tt *metadata.TargetsType) error {
		return tufedit.RemoveDelegationKeys(tt, "targets/releases", alice.key.ID)
	})
	if err != nil {
		t.Fatal(err)
	}
	if out.Staged == nil {
		t.Fatalf("revocation by an owner without bob's key: %+v, want staged for bob", out)
	}
	// Until bob approves, alice's key is still trusted.
	engine := newDelegate(t, url, root).c
	resolvesTo(t, engine, "1.0", "targets/releases")
	rv, err := bob.c.ReviewStaged(ctx, gun, out.Staged.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(rv.Delegations) != 1 || !strings.Contains(rv.Delegations[0], "changes targets/releases") {
		t.Fatalf("review of the revocation: %q", rv.Delegations)
	}
	if done, err := bob.c.Approve(ctx, gun, rv); err != nil || done.Published == nil {
		t.Fatalf("bob's approval: %+v, %v", done, err)
	}
	resolvesTo(t, engine, "1.0", "targets/releases") // now vouched for by bob

	// Alice's key is gone from the delegation: her client has no key to
	// sign with, and a signature by it is refused by the server.
	if _, err := alice.c.PublishAs(ctx, gun, "targets/releases", []client.Change{{Tag: "evil", Digest: digest.FromString("evil"), Size: 1}}); !errors.Is(err, client.ErrNoKey) {
		t.Fatalf("revoked key: %v", err)
	}
	sign(t, bob.c, "", "1.1")
	resolvesTo(t, engine, "1.1", "targets/releases")
	sign(t, owner, "", "owner")

	// The delegation can be deleted and re-created over the old metadata:
	// the new delegate signs the role afresh (empty) to complete it.
	if _, err := owner.EditDelegations(ctx, gun, metadata.TARGETS, func(tt *metadata.TargetsType) error {
		return tufedit.RemoveDelegation(tt, "targets/releases")
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := engine.Resolve(ctx, gun+":1.1"); !errors.Is(err, client.ErrNotSigned) {
		t.Fatalf("a tag of a deleted delegation resolves: %v", err)
	}
	out, err = owner.EditDelegations(ctx, gun, metadata.TARGETS, func(tt *metadata.TargetsType) error {
		return tufedit.AddDelegation(tt, tufedit.DelegationSpec{Name: "targets/releases", Keys: []*metadata.Key{alice.key.Public}})
	})
	if err != nil || out.Staged == nil {
		t.Fatalf("re-creating the delegation: %+v, %v; want staged for alice", out, err)
	}
	rv, err = alice.c.ReviewStaged(ctx, gun, out.Staged.ID)
	if err != nil {
		t.Fatal(err)
	}
	if done, err := alice.c.Approve(ctx, gun, rv); err != nil || done.Published == nil {
		t.Fatalf("alice's approval: %+v, %v", done, err)
	}
	sign(t, alice.c, "", "2.0")
	resolvesTo(t, engine, "2.0", "targets/releases")
	if _, err := engine.Resolve(ctx, gun+":1.1"); !errors.Is(err, client.ErrNotSigned) {
		t.Fatalf("a tag signed under the deleted delegation survived its re-creation: %v", err)
	}
}
