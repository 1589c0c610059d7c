package client_test

import (
	"context"
	"errors"
	"reflect"
	"testing"

	"github.com/opencontainers/go-digest"
	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/signetdev/signet/client"
	"github.com/signetdev/signet/tufedit"
)

// TestResolveOnceIsResolve: ResolveOnce, whose view keeps only the entry
// of its tag, answers every reference as Resolve does (the target, its
// role and expiry, or the same error), in targets and in a delegated role,
// and leaves no partial view behind: the same client then resolves other
// tags, and answers from a warm view when Resolve left one.
func TestResolveOnceIsResolve(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := newServer(t, nil)
	owner, root := owned(t, url)
	d := newDelegate(t, url, root)
	delegateTo(t, owner, func(tt *metadata.TargetsType) error {
		return tufedit.AddDelegation(tt, tufedit.DelegationSpec{Name: "targets/first", Keys: []*metadata.Key{d.key.Public}, Paths: []string{"app-*"}})
	}, d)
	if _, err := owner.Publish(ctx, gun, []client.Change{
		{Tag: "1.0", Digest: digest.FromString("1.0"), Size: 1},
		{Tag: "2.0", Digest: digest.FromString("2.0"), Size: 2},
	}); err != nil {
		t.Fatal(err)
	}
	sign(t, d.c, "targets/first", "app-1")
	sign(t, d.c, "targets/first", "app-2")
	fresh := func() *client.Client {
		c := newClient(t, url, t.TempDir())
		if err := c.PinRoot(gun, root); err != nil {
			t.Fatal(err)
		}
		return c
	}

	for _, tag := range []string{"1.0", "2.0", "app-1", "app-2", "3.0", "app-3"} {
		want, wantErr := fresh().Resolve(ctx, gun+":"+tag)
		got, err := fresh().ResolveOnce(ctx, gun+":"+tag)
		if (err == nil) != (wantErr == nil) || err != nil && (err.Error() != wantErr.Error() || !errors.Is(err, client.ErrNotSigned)) {
			t.Fatalf("%s: ResolveOnce error %v, Resolve's %v", tag, err, wantErr)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%s: ResolveOnce %+v, Resolve %+v", tag, got, want)
		}
	}

	// One client, one call after the other.
	c := fresh()
	for _, step := range []struct {
		once     bool
		tag      string
		fromRole string
	}{
		{true, "1.0", "targets"},
		{false, "2.0", "targets"}, // not from 1.0's view: it would not list 2.0
		{true, "app-1", "targets/first"},
		{true, "2.0", "targets"}, // from the warm view Resolve left
		{false, "app-2", "targets/first"},
		{true, "1.0", "targets"},
	} {
		resolve := c.Resolve
		if step.once {
			resolve = c.ResolveOnce
		}
		got, err := resolve(ctx, gun+":"+step.tag)
		if err != nil {
			t.Fatalf("%s (once %v): %v", step.tag, step.once, err)
		}
		if got.Digest != digest.FromString(step.tag) || got.Role != step.fromRole {
			t.Fatalf("%s (once %v): %s from %s", step.tag, step.once, got.Digest, got.Role)
		}
	}
}
