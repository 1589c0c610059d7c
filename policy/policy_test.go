package policy_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/signetdev/signet/client"
	"github.com/signetdev/signet/internal/testserver"
	"github.com/signetdev/signet/policy"
)

const app = "registry.example.com/team/app"

// newPolicy builds a policy over srv from rules, with a fresh trust
// directory.
func newPolicy(t *testing.T, srv *testserver.Server, f policy.File, opts ...policy.Option) *policy.Policy {
	t.Helper()
	if srv != nil {
		f.Server.URL = srv.URL
	}
	if f.TrustDir == "" {
		f.TrustDir = t.TempDir()
	}
	p, err := policy.New(&f, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func writeRoot(t *testing.T, root []byte) string {
	t.Helper()
	f := filepath.Join(t.TempDir(), "root.json")
	if err := os.WriteFile(f, root, 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

// want checks a decision's verdict and that its reason contains each of
// parts.
func want(t *testing.T, d policy.Decision, v policy.Verdict, parts ...string) {
	t.Helper()
	if d.Verdict != v {
		t.Fatalf("%s: got %s (%s), want %s", d.Ref, d.Verdict, d.Reason, v)
	}
	if (v == policy.Allow) != d.Allowed() {
		t.Fatalf("%s: Allowed() = %v for %s", d.Ref, d.Allowed(), v)
	}
	for _, p := range parts {
		if !strings.Contains(d.Reason, p) {
			t.Fatalf("%s: reason %q does not say %q", d.Ref, d.Reason, p)
		}
	}
	if strings.Contains(d.Reason, "\n") {
		t.Fatalf("%s: reason is not one line: %q", d.Ref, d.Reason)
	}
}

func check(p *policy.Policy, ref string) policy.Decision {
	return p.Check(context.Background(), policy.Request{Ref: ref})
}

// TestSignedTags, as a long-lived webhook checks (warm views) and as the
// containerd verifier does, one image per process (WithOneShot).
func TestSignedTags(t *testing.T) {
	t.Parallel()
	for _, mode := range []struct {
		name string
		opts []policy.Option
	}{{"warm", nil}, {"one-shot", []policy.Option{policy.WithOneShot()}}} {
		t.Run(mode.name, func(t *testing.T) {
			t.Parallel()
			testSignedTags(t, mode.opts...)
		})
	}
}

func testSignedTags(t *testing.T, opts ...policy.Option) {
	srv := testserver.Start(t)
	repo := srv.Init(t, app)
	repo.Sign("1.0", "1.1")
	p := newPolicy(t, srv, policy.File{Rules: []policy.Rule{
		{Match: app, Require: "signed", Root: writeRoot(t, repo.Root)},
		{Match: "registry.example.com/team/*", Require: "signed"},
	}}, opts...)
	ctx := context.Background()
	d10, d11 := testserver.Digest("1.0"), testserver.Digest("1.1")

	d := check(p, app+":1.0")
	want(t, d, policy.Allow, app+":1.0 is signed by targets as "+d10.String())
	if d.Digest != d10 || d.Tag != "1.0" || d.Role != "targets" || d.Name != app || d.Rule != "rules[0] "+app {
		t.Fatalf("allow: %+v", d)
	}
	// The digest being pulled must be the signed one.
	want(t, p.Check(ctx, policy.Request{Ref: app + ":1.0", Digest: d10}), policy.Allow)
	want(t, p.Check(ctx, policy.Request{Ref: app + ":1.0", Digest: d11}), policy.Deny,
		app+":1.0 resolves to "+d10.String()+", not the digest being pulled "+d11.String())
	want(t, check(p, app+":1.0@"+d10.String()), policy.Allow)
	want(t, check(p, app+":1.0@"+d11.String()), policy.Deny, "resolves to "+d10.String())
	want(t, p.Check(ctx, policy.Request{Ref: app + ":1.0@" + d10.String(), Digest: d11}), policy.Deny, "pins "+d10.String()+", not the digest being pulled "+d11.String())
	// Unsigned, revoked.
	want(t, check(p, app+":2.0"), policy.Deny, app+":2.0 is not signed")
	want(t, check(p, app), policy.Deny, app+":latest is not signed")
	repo.Unsign("1.1")
	want(t, check(p, app+":1.1"), policy.Deny, app+":1.1 is not signed")
	// A repository the server has no trust data for.
	want(t, check(p, "registry.example.com/team/other:1.0"), policy.Deny, "no trusted root for registry.example.com/team/other")
	// Not a reference.
	want(t, check(p, "app:bad tag"), policy.Deny, "not an image reference")
	want(t, check(p, "REGISTRY.example.com/team/app:1.0"), policy.Deny, "must be lower case")
	want(t, p.Check(ctx, policy.Request{Ref: app + ":1.0", Digest: "sha256:abc"}), policy.Deny, "is not a digest")
}

func TestDigestOnlyReferences(t *testing.T) {
	t.Parallel()
	srv := testserver.Start(t)
	repo := srv.Init(t, app)
	repo.Delegate("targets/releases")
	repo.SignAs("targets", "1.0")
	repo.SignAs("targets/releases", "2.0")
	root := writeRoot(t, repo.Root)
	p := newPolicy(t, srv, policy.File{Rules: []policy.Rule{{Match: app, Require: "signed", Root: root}}})

	d := check(p, app+"@"+testserver.Digest("1.0").String())
	want(t, d, policy.Allow)
	if d.Tag != "1.0" || d.Role != "targets" {
		t.Fatalf("digest-only: %+v", d)
	}
	// Found through the delegation walk.
	d = check(p, app+"@"+testserver.Digest("2.0").String())
	want(t, d, policy.Allow)
	if d.Tag != "2.0" || d.Role != "targets/releases" {
		t.Fatalf("digest-only in a delegation: %+v", d)
	}
	other := digest.FromString("never signed")
	want(t, check(p, app+"@"+other.String()), policy.Deny, "no signed tag of "+app+" vouches for "+other.String())
	// The request's digest alone (containerd pulling by digest).
	want(t, p.Check(context.Background(), policy.Request{Ref: app, Digest: testserver.Digest("1.0")}), policy.Allow)

	// Only targets/releases accepted: 1.0 (in targets) no longer counts.
	strict := newPolicy(t, srv, policy.File{Rules: []policy.Rule{{Match: app, Require: "signed", Root: root, Roles: []string{"targets/releases"}}}})
	want(t, check(strict, app+"@"+testserver.Digest("1.0").String()), policy.Deny, "signed by targets, which rules[0] "+app+" does not accept (accepted: targets/releases)")
	want(t, check(strict, app+"@"+testserver.Digest("2.0").String()), policy.Allow)
}

func TestDigestOnlyInHashedBinsIsRefused(t *testing.T) {
	t.Parallel()
	srv := testserver.Start(t)
	repo := srv.Init(t, app)
	if _, err := repo.Dev.Shard(context.Background(), app, 16); err != nil {
		t.Fatal(err)
	}
	repo.Sign("1.0")
	p := newPolicy(t, srv, policy.File{Rules: []policy.Rule{{Match: app, Require: "signed", Root: writeRoot(t, repo.Root)}}})
	want(t, check(p, app+":1.0"), policy.Allow)
	want(t, check(p, app+"@"+testserver.Digest("1.0").String()), policy.Deny, "too large to search", "pull it by tag")
}

func TestRoles(t *testing.T) {
	t.Parallel()
	srv := testserver.Start(t)
	repo := srv.Init(t, app)
	repo.Delegate("targets/releases")
	repo.Delegate("targets/ci")
	repo.SignAs("targets/releases", "1.0")
	repo.SignAs("targets/ci", "nightly")
	repo.SignAs("targets", "2.0")
	p := newPolicy(t, srv, policy.File{Rules: []policy.Rule{{Match: app, Require: "signed", Root: writeRoot(t, repo.Root), Roles: []string{"targets/releases"}}}})
	d := check(p, app+":1.0")
	want(t, d, policy.Allow, "signed by targets/releases")
	if d.Role != "targets/releases" {
		t.Fatalf("role: %+v", d)
	}
	// The TUF expiry it was decided under (the timestamp's day here).
	if left := time.Until(d.TrustExpires); left <= 23*time.Hour || left > 25*time.Hour {
		t.Fatalf("trust expires in %s, want the timestamp's day", left)
	}
	want(t, check(p, app+":nightly"), policy.Deny, app+":nightly is signed by targets/ci, which rules[0] "+app+" does not accept (accepted: targets/releases)")
	want(t, check(p, app+":2.0"), policy.Deny, "signed by targets, which")
}

func TestTrustAnchors(t *testing.T) {
	t.Parallel()
	srv := testserver.Start(t)
	repo := srv.Init(t, app)
	repo.Sign("1.0")
	// A second repository: its root is not app's.
	other := srv.Init(t, "registry.example.com/team/other")
	other.Sign("1.0")

	t.Run("pinned root of another repository", func(t *testing.T) {
		t.Parallel()
		p := newPolicy(t, srv, policy.File{Rules: []policy.Rule{{Match: app, Require: "signed", Root: writeRoot(t, other.Root)}}})
		d := check(p, app+":1.0")
		want(t, d, policy.Deny, "the trust data of "+app+" is not signed by enough trusted keys")
	})
	t.Run("root keys", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		p := newPolicy(t, srv, policy.File{TrustDir: dir, Rules: []policy.Rule{{Match: "registry.example.com/team/**", Require: "signed", RootKeys: repo.RootKeyIDs()}}})
		want(t, check(p, app+":1.0"), policy.Allow)
		// other's root is not signed by app's root keys.
		want(t, check(p, "registry.example.com/team/other:1.0"), policy.Deny,
			"the root "+srv.URL+" serves for registry.example.com/team/other has 0 of the policy's root_keys")
		want(t, check(p, "registry.example.com/team/none:1.0"), policy.Deny, "registry.example.com/team/none:1.0 is not signed: registry.example.com/team/none has no trust data")
		// A new Policy over the same trust directory checks the pinned
		// root against its keys again.
		q := newPolicy(t, srv, policy.File{TrustDir: dir, Rules: []policy.Rule{{Match: "registry.example.com/team/**", Require: "signed", RootKeys: other.RootKeyIDs()}}})
		want(t, check(q, app+":1.0"), policy.Deny, "the root pinned for "+app+" in "+dir+" has 0 of the policy's root_keys")
	})
	t.Run("pinned in the trust directory", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		p := newPolicy(t, srv, policy.File{TrustDir: dir, Rules: []policy.Rule{{Match: "registry.example.com/**", Require: "signed"}}})
		want(t, check(p, app+":1.0"), policy.Deny, "no trusted root for "+app, "trust pin "+app)
		if err := srv.NewClient(t, func(o *client.Options) { o.TrustDir = dir }).PinRoot(app, repo.Root); err != nil {
			t.Fatal(err)
		}
		want(t, check(p, app+":1.0"), policy.Allow)
	})
}

func TestExpiredAndUnreachable(t *testing.T) {
	t.Parallel()
	srv := testserver.Start(t)
	repo := srv.Init(t, app)
	repo.Sign("1.0")
	root := writeRoot(t, repo.Root)
	rules := []policy.Rule{{Match: app, Require: "signed", Root: root}}

	// The node's clock is two days ahead: the one-day timestamp expired.
	later := func() time.Time { return time.Now().Add(48 * time.Hour) }
	want(t, check(newPolicy(t, srv, policy.File{Rules: rules}, policy.WithClock(later)), app+":1.0"), policy.Deny, "trust data for "+app+" expired on ")

	// The server signs an already expired timestamp.
	expiring := testserver.Start(t)
	er := expiring.Init(t, app)
	er.Sign("1.0")
	ep := newPolicy(t, expiring, policy.File{Rules: []policy.Rule{{Match: app, Require: "signed", Root: writeRoot(t, er.Root)}}})
	want(t, check(ep, app+":1.0"), policy.Allow)
	expiring.SetClockSkew(-48 * time.Hour)
	er.Sign("1.1")
	want(t, check(ep, app+":1.0"), policy.Deny, "trust data for "+app+" expired")

	// Within max_staleness a warm node answers without the server; past
	// it (or with 0) an unreachable server denies.
	online := newPolicy(t, srv, policy.File{Rules: rules})
	offline := newPolicy(t, srv, policy.File{Rules: []policy.Rule{{Match: app, Require: "signed", Root: root, MaxStaleness: time.Hour}}})
	want(t, check(online, app+":1.0"), policy.Allow)
	want(t, check(offline, app+":1.0"), policy.Allow)
	srv.SetDown(true)
	want(t, check(offline, app+":1.0"), policy.Allow)
	want(t, check(offline, app+":2.0"), policy.Deny, "is not signed")
	d := check(online, app+":1.0")
	want(t, d, policy.Error, "cannot verify "+app+":1.0", "max_staleness (0s)")
	if d.Err == nil {
		t.Fatal("an error decision without its cause")
	}
	srv.Close()
	want(t, check(online, app+":1.0"), policy.Error, "cannot verify")
	want(t, check(newPolicy(t, srv, policy.File{Rules: rules}), app+":1.0"), policy.Error, "cannot verify")
}

func TestSlowServerIsBounded(t *testing.T) {
	t.Parallel()
	srv := testserver.Start(t)
	repo := srv.Init(t, app)
	repo.Sign("1.0")
	srv.SetStalled(true)
	p := newPolicy(t, srv, policy.File{Server: policy.Server{Timeout: 300 * time.Millisecond}, Rules: []policy.Rule{{Match: app, Require: "signed", Root: writeRoot(t, repo.Root)}}})
	start := time.Now()
	want(t, check(p, app+":1.0"), policy.Error, "cannot verify")
	if el := time.Since(start); el > 3*time.Second {
		t.Fatalf("a hanging server held the check for %s", el)
	}
}

func TestRuleOrderDefaultsAndNamespaces(t *testing.T) {
	t.Parallel()
	none := []string{}
	for _, tc := range []struct {
		name      string
		f         policy.File
		req       policy.Request
		v         policy.Verdict
		reason    string
		rule      string
		digestOut digest.Digest
	}{
		{name: "default deny", req: policy.Request{Ref: "nginx:1.27"}, v: policy.Deny, reason: "no rule matches docker.io/library/nginx and the default is deny", rule: "default"},
		{name: "default allow", f: policy.File{Default: "allow"}, req: policy.Request{Ref: "nginx@" + testserver.Digest("x").String()}, v: policy.Allow, reason: "no rule matches docker.io/library/nginx and the default is allow", rule: "default", digestOut: testserver.Digest("x")},
		{name: "unsigned allow-list", f: policy.File{Rules: []policy.Rule{{Match: "docker.io/library/*", Require: "none"}}}, req: policy.Request{Ref: "alpine:3.20"}, v: policy.Allow, reason: "docker.io/library/alpine is allowed unsigned by rules[0] docker.io/library/*", rule: "rules[0] docker.io/library/*"},
		{name: "short name in match", f: policy.File{Rules: []policy.Rule{{Match: "alpine", Require: "none"}}}, req: policy.Request{Ref: "docker.io/library/alpine"}, v: policy.Allow, rule: "rules[0] alpine"},
		{name: "first rule wins", f: policy.File{Server: policy.Server{URL: "https://signet.invalid"}, Rules: []policy.Rule{{Match: "docker.io/library/alpine", Require: "none"}, {Match: "docker.io/**", Require: "signed"}}}, req: policy.Request{Ref: "alpine"}, v: policy.Allow, rule: "rules[0] docker.io/library/alpine"},
		{name: "star is one component", f: policy.File{Rules: []policy.Rule{{Match: "docker.io/*", Require: "none"}}}, req: policy.Request{Ref: "alpine"}, v: policy.Deny, rule: "default"},
		{name: "double star", f: policy.File{Rules: []policy.Rule{{Match: "docker.io/**", Require: "none"}}}, req: policy.Request{Ref: "user/app"}, v: policy.Allow, rule: "rules[0] docker.io/**"},
		{name: "double star in the middle", f: policy.File{Rules: []policy.Rule{{Match: "registry.example.com/**/base", Require: "none"}}}, req: policy.Request{Ref: "registry.example.com/a/b/base:1"}, v: policy.Allow},
		{name: "double star matches zero components", f: policy.File{Rules: []policy.Rule{{Match: "registry.example.com/**/base", Require: "none"}}}, req: policy.Request{Ref: "registry.example.com/base:1"}, v: policy.Allow},
		{name: "no prefix match", f: policy.File{Rules: []policy.Rule{{Match: "registry.example.com/team", Require: "none"}}}, req: policy.Request{Ref: "registry.example.com/team/app:1"}, v: policy.Deny},
		{name: "kube-system exempt by default", req: policy.Request{Ref: "registry.k8s.io/pause:3.10", Namespace: "kube-system"}, v: policy.Allow, reason: "namespace kube-system is exempt from the pull policy", rule: "exempt_namespaces"},
		{name: "no exemption when none listed", f: policy.File{ExemptNamespaces: &none}, req: policy.Request{Ref: "registry.k8s.io/pause:3.10", Namespace: "kube-system"}, v: policy.Deny},
		{name: "namespace rule", f: policy.File{Rules: []policy.Rule{{Match: "docker.io/**", Namespaces: []string{"dev-*"}, Require: "none"}}}, req: policy.Request{Ref: "alpine", Namespace: "dev-alice"}, v: policy.Allow},
		{name: "namespace rule, other namespace", f: policy.File{Rules: []policy.Rule{{Match: "docker.io/**", Namespaces: []string{"dev-*"}, Require: "none"}}}, req: policy.Request{Ref: "alpine", Namespace: "prod"}, v: policy.Deny},
		{name: "namespace rule, no namespace", f: policy.File{Rules: []policy.Rule{{Match: "docker.io/**", Namespaces: []string{"dev-*"}, Require: "none"}}}, req: policy.Request{Ref: "alpine"}, v: policy.Deny},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := newPolicy(t, nil, tc.f)
			d := p.Check(context.Background(), tc.req)
			want(t, d, tc.v, tc.reason)
			if tc.rule != "" && d.Rule != tc.rule {
				t.Fatalf("decided by %q, want %q", d.Rule, tc.rule)
			}
			if d.Digest != tc.digestOut {
				t.Fatalf("digest %q, want %q", d.Digest, tc.digestOut)
			}
		})
	}
	if (policy.Decision{}).Allowed() {
		t.Fatal("the zero Decision allows")
	}
}

func TestConcurrentChecks(t *testing.T) {
	t.Parallel()
	srv := testserver.Start(t)
	repo := srv.Init(t, app)
	repo.Sign("1.0")
	second := srv.Init(t, "registry.example.com/team/second")
	second.Sign("1.0")
	p := newPolicy(t, srv, policy.File{Rules: []policy.Rule{{Match: "registry.example.com/team/*", Require: "signed", RootKeys: append(repo.RootKeyIDs(), second.RootKeyIDs()...)}}})
	var wg sync.WaitGroup
	errs := make(chan string, 64)
	for i := range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ref := app + ":1.0"
			if i%2 == 1 {
				ref = "registry.example.com/team/second:1.0"
			}
			if d := check(p, ref); !d.Allowed() {
				errs <- d.String()
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}

// BenchmarkCheckWarm is a warm decision: verified state in memory, one
// conditional GET of timestamp.json to the in-process server.
func BenchmarkCheckWarm(b *testing.B) {
	srv := testserver.Start(b)
	repo := srv.Init(b, app)
	repo.Sign("1.0")
	f := filepath.Join(b.TempDir(), "root.json")
	if err := os.WriteFile(f, repo.Root, 0o600); err != nil {
		b.Fatal(err)
	}
	for _, staleness := range []time.Duration{0, time.Hour} {
		b.Run(fmt.Sprintf("max_staleness=%s", staleness), func(b *testing.B) {
			p, err := policy.New(&policy.File{Server: policy.Server{URL: srv.URL}, TrustDir: b.TempDir(), Rules: []policy.Rule{{Match: app, Require: "signed", Root: f, MaxStaleness: staleness}}})
			if err != nil {
				b.Fatal(err)
			}
			if d := check(p, app+":1.0"); !d.Allowed() {
				b.Fatal(d)
			}
			for b.Loop() {
				if d := check(p, app+":1.0"); !d.Allowed() {
					b.Fatal(d)
				}
			}
		})
	}
}
