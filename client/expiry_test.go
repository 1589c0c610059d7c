package client_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/signetdev/signet/client"
	"github.com/signetdev/signet/internal/testserver"
	"github.com/signetdev/signet/internal/tuftest"
	"github.com/signetdev/signet/tufedit"
)

// later is a clock that can be moved forward, shared by a client and the
// test server's skew.
type later struct{ skew atomic.Int64 }

func (l *later) now() time.Time { return time.Now().Add(time.Duration(l.skew.Load())) }

// TestExpiredTargetsReSigned: the targets role expires (the owner signed
// nothing for longer than its lifetime). Resolves fail closed; the owner's
// next sign re-signs targets and the repository resolves again; Renew does
// the same without a change of tags.
func TestExpiredTargetsReSigned(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srv := testserver.Start(t)
	var clock later
	owner := newClient(t, srv.URL, t.TempDir(), func(o *client.Options) { o.Now = clock.now })
	if _, err := owner.Init(ctx, gun); err != nil {
		t.Fatal(err)
	}
	if _, err := owner.Publish(ctx, gun, []client.Change{{Tag: "1.0", Digest: d10, Size: 1}}); err != nil {
		t.Fatal(err)
	}
	skew := client.TargetsLifetime + 24*time.Hour
	clock.skew.Store(int64(skew))
	srv.SetClockSkew(skew)
	if _, err := owner.Resolve(ctx, gun+":1.0"); !errors.Is(err, client.ErrExpired) {
		t.Fatalf("resolve with targets expired: %v, want ErrExpired", err)
	}

	d11 := digest.FromString("manifest 1.1")
	out, err := owner.Publish(ctx, gun, []client.Change{{Tag: "1.1", Digest: d11, Size: 1}})
	if err != nil {
		t.Fatalf("sign with targets expired: %v", err)
	}
	if !slices.Contains(out.Roles, metadata.TARGETS) || len(out.Expired) != 0 {
		t.Fatalf("outcome %+v: want targets re-signed and nothing left expired", out)
	}
	for tag, want := range map[string]digest.Digest{"1.0": d10, "1.1": d11} {
		if got, err := owner.Resolve(ctx, gun+":"+tag); err != nil || got.Digest != want {
			t.Fatalf("resolve %s after the re-sign: %+v %v", tag, got, err)
		}
	}

	skew += client.TargetsLifetime + 24*time.Hour
	clock.skew.Store(int64(skew))
	srv.SetClockSkew(skew)
	if _, err := owner.Resolve(ctx, gun+":1.0"); !errors.Is(err, client.ErrExpired) {
		t.Fatalf("resolve with targets expired again: %v, want ErrExpired", err)
	}
	if out, err := owner.Renew(ctx, gun, []string{metadata.TARGETS}); err != nil || out.Published == nil {
		t.Fatalf("renew targets: %+v %v", out, err)
	}
	if got, err := owner.Resolve(ctx, gun+":1.1"); err != nil || got.Digest != d11 {
		t.Fatalf("resolve after renew: %+v %v", got, err)
	}
	if _, err := owner.Renew(ctx, gun, []string{metadata.TIMESTAMP}); err == nil || !strings.Contains(err.Error(), "the server") {
		t.Fatalf("renew timestamp: %v, want a refusal that names who renews it", err)
	}
}

// TestDelegateSignsUnderExpiredTargets: a delegate may still publish its
// own role while targets has expired; the outcome says that targets stays
// expired (resolves keep failing until its owner re-signs it).
func TestDelegateSignsUnderExpiredTargets(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srv := testserver.Start(t)
	var clock later
	now := func(o *client.Options) { o.Now = clock.now }
	owner := newClient(t, srv.URL, t.TempDir(), now)
	root, err := owner.Init(ctx, gun)
	if err != nil {
		t.Fatal(err)
	}
	dev := newClient(t, srv.URL, t.TempDir(), now)
	if err := dev.PinRoot(gun, root); err != nil {
		t.Fatal(err)
	}
	k, err := dev.Keys().Generate(ctx, "targets/releases")
	if err != nil {
		t.Fatal(err)
	}
	delegateTo(t, owner, func(tt *metadata.TargetsType) error {
		return tufedit.AddDelegation(tt, tufedit.DelegationSpec{Name: "targets/releases", Keys: []*metadata.Key{k.Public}})
	}, &delegate{c: dev, key: k})
	skew := client.TargetsLifetime + 24*time.Hour
	clock.skew.Store(int64(skew))
	srv.SetClockSkew(skew)

	out, err := dev.PublishAs(ctx, gun, "targets/releases", []client.Change{{Tag: "2.0", Digest: d10, Size: 1}})
	if err != nil {
		t.Fatalf("delegate signs under expired targets: %v", err)
	}
	if !slices.Equal(out.Expired, []string{metadata.TARGETS}) {
		t.Fatalf("outcome.Expired = %v, want [targets]", out.Expired)
	}
	if _, err := dev.Resolve(ctx, gun+":2.0"); !errors.Is(err, client.ErrExpired) {
		t.Fatalf("resolve under expired targets: %v, want ErrExpired", err)
	}
	if _, err := owner.Renew(ctx, gun, []string{metadata.TARGETS}); err != nil {
		t.Fatal(err)
	}
	if got, err := dev.Resolve(ctx, gun+":2.0"); err != nil || got.Role != "targets/releases" {
		t.Fatalf("resolve after targets renewed: %+v %v", got, err)
	}
}

// TestRenewingStillVerifies: a view made to re-sign an expired role skips
// that role's expiry and nothing else. An expired targets signed by a key
// root does not list, or a delegated role under an expired targets signed
// by the wrong key, is refused with a trust error before anything is
// uploaded; an honest expired targets gets as far as the keys (this trust
// directory holds none), and a resolve afterwards still fails closed.
func TestRenewingStillVerifies(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	past := time.Now().Add(-time.Hour)

	honest := newBadRepo(t, true)
	honest.roles[metadata.TARGETS].Signed.Expires = past
	honest.publish()
	c := honest.engine()
	_, err := c.Renew(ctx, gun, []string{metadata.TARGETS})
	if isTrustError(err) || !errors.Is(err, client.ErrNoKey) {
		t.Fatalf("renew of an honest expired targets: %v, want ErrNoKey", err)
	}
	if _, err := c.Resolve(ctx, gun+":1.0"); !errors.Is(err, client.ErrExpired) {
		t.Fatalf("resolve after a renewing view: %v, want ErrExpired", err)
	}

	forged := newBadRepo(t, true)
	forged.roles[metadata.TARGETS].Signed.Expires = past
	forged.signers[metadata.TARGETS] = []*tuftest.Key{tuftest.NewKey(t)}
	forged.publish()
	if _, err := forged.engine().Renew(ctx, gun, []string{metadata.TARGETS}); !isTrustError(err) || errors.Is(err, client.ErrExpired) {
		t.Fatalf("renew of a forged expired targets: %v, want a signature trust error", err)
	}

	bad := newBadRepo(t, true)
	ci := tuftest.NewKey(t)
	bad.delegate(metadata.TARGETS, "targets/ci", []string{"*"}, ci)
	bad.role("targets/ci", tuftest.NewKey(t)) // signed by a key targets does not delegate to
	bad.roles[metadata.TARGETS].Signed.Expires = past
	bad.publish()
	if _, err := bad.engine().Renew(ctx, gun, []string{"targets/ci"}); !isTrustError(err) || !strings.Contains(err.Error(), "targets/ci") {
		t.Fatalf("renew of a forged targets/ci under expired targets: %v, want a trust error naming it", err)
	}
	for _, h := range []*badRepo{honest, forged, bad} {
		for _, r := range h.requests {
			if !strings.HasSuffix(r, ".json") {
				t.Fatalf("request %q: nothing may be uploaded", r)
			}
		}
	}
}

// TestResolveExpiresIsEarliest: Target.Expires is the earliest expiry of
// what the resolve relied on, the delegator on the way included: here
// targets (signed by an owner whose clock runs 89 days behind, so it
// expires in a day) above targets/releases, which vouches, and a timestamp
// that lives a day too.
func TestResolveExpiresIsEarliest(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srv := testserver.Start(t)
	srv.SetClockSkew(time.Hour) // the timestamp expires in 25 h
	behind := func(o *client.Options) {
		o.Now = func() time.Time { return time.Now().Add(-client.TargetsLifetime + 12*time.Hour) }
	}
	owner := newClient(t, srv.URL, t.TempDir(), behind)
	root, err := owner.Init(ctx, gun)
	if err != nil {
		t.Fatal(err)
	}
	rel := newDelegate(t, srv.URL, root)
	delegateTo(t, owner, func(tt *metadata.TargetsType) error {
		return tufedit.AddDelegation(tt, tufedit.DelegationSpec{Name: "targets/delegate", Keys: []*metadata.Key{rel.key.Public}})
	}, rel)
	sign(t, rel.c, "targets/delegate", "1.0")
	got, err := newDelegate(t, srv.URL, root).c.Resolve(ctx, gun+":1.0")
	if err != nil {
		t.Fatal(err)
	}
	if left := time.Until(got.Expires); got.Role != "targets/delegate" || left < 11*time.Hour || left > 13*time.Hour {
		t.Fatalf("resolved by %s, expires in %s: want targets' 12 h", got.Role, left)
	}
}
