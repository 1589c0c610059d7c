package policy_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/signetdev/signet/internal/testserver"
	"github.com/signetdev/signet/policy"
)

// The sample in deploy/ loads, and decides as its comments say.
func TestSamplePolicy(t *testing.T) {
	t.Parallel()
	sample, err := os.ReadFile("../deploy/policy.sample.yaml")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	file := filepath.Join(dir, "policy.yaml")
	if err := os.WriteFile(file, sample, 0o600); err != nil {
		t.Fatal(err)
	}
	// The root.json the sample names, relative to the file.
	srv := testserver.Start(t)
	repo := srv.Init(t, "registry.example.com/team/app")
	if err := os.MkdirAll(filepath.Join(dir, "roots"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "roots", "team-app.root.json"), repo.Root, 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := policy.Load(file)
	if err != nil {
		t.Fatal(err)
	}
	if f.Server.Timeout != 5*time.Second || f.Rules[0].MaxStaleness != 10*time.Minute || f.Rules[0].Root != filepath.Join(dir, "roots", "team-app.root.json") {
		t.Fatalf("sample read as %+v", f)
	}
	repo.Delegate("targets/releases")
	repo.SignAs("targets/releases", "1.0")
	repo.SignAs("targets", "1.1")
	f.Server.URL, f.TrustDir = srv.URL, t.TempDir()
	p, err := policy.New(f)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for ref, v := range map[string]policy.Verdict{
		"alpine:3.20":                       policy.Allow, // docker.io/library/* require: none
		"nginx":                             policy.Allow,
		"user/app:1":                        policy.Deny, // no rule, default deny
		"quay.io/org/img:1":                 policy.Deny,
		"registry.example.com/x/y:1":        policy.Deny,
		"registry.example.com/team/app:2.0": policy.Deny, // not signed
	} {
		if d := p.Check(ctx, policy.Request{Ref: ref}); d.Verdict != v {
			t.Errorf("%s: %s, want %s", ref, d, v)
		}
	}
	if d := p.Check(ctx, policy.Request{Ref: "registry.example.com/team/app:1.0"}); !d.Allowed() || d.Role != "targets/releases" {
		t.Errorf("a release: %s", d)
	}
	if d := p.Check(ctx, policy.Request{Ref: "registry.example.com/team/app:1.1"}); d.Allowed() || !strings.Contains(d.Reason, "does not accept") {
		t.Errorf("signed by targets only: %s", d)
	}
	// platform/* applies only in prod-* namespaces; elsewhere no rule
	// matches.
	if d := p.Check(ctx, policy.Request{Ref: "registry.example.com/platform/db:1", Namespace: "prod-eu"}); d.Rule != "rules[2] registry.example.com/platform/*" {
		t.Errorf("platform in prod: %s (%s)", d, d.Rule)
	}
	if d := p.Check(ctx, policy.Request{Ref: "registry.example.com/platform/db:1", Namespace: "kube-system"}); !d.Allowed() {
		t.Errorf("kube-system: %s", d)
	}
}

func TestParseRefuses(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	good := "server: {url: https://signet.example.com}\ntrust_dir: /var/lib/signet\nrules:\n  - {match: registry.example.com/team/app, require: signed}\n"
	if _, err := policy.Parse([]byte(good), dir); err != nil {
		t.Fatalf("the base case must parse: %v", err)
	}
	for _, tc := range []struct{ name, yaml, err string }{
		{"unknown top-level key", good + "defualt: allow\n", "field defualt not found"},
		{"unknown rule key", strings.Replace(good, "require: signed", "require: signed, rolse: [targets]", 1), "field rolse not found"},
		{"require missing", strings.Replace(good, ", require: signed", "", 1), "require is required"},
		{"require misspelt", strings.Replace(good, "require: signed", "require: sigend", 1), `require must be "signed" or "none"`},
		{"default misspelt", good + "default: permit\n", `default must be "deny" or "allow"`},
		{"no trust dir", strings.Replace(good, "trust_dir: /var/lib/signet\n", "", 1), "trust_dir is required"},
		{"no server for signed rules", strings.Replace(good, "server: {url: https://signet.example.com}\n", "", 1), "server.url is required"},
		{"server url", strings.Replace(good, "https://signet.example.com", "ftp://x", 1), "is not an http(s) URL"},
		{"glob without host", strings.Replace(good, "registry.example.com/team/app", "library/*", 1), "must start with the registry host"},
		{"partial double star", strings.Replace(good, "registry.example.com/team/app", "registry.example.com/team**", 1), "whole path component"},
		{"bad glob", strings.Replace(good, "registry.example.com/team/app", "'registry.example.com/['", 1), "syntax error in pattern"},
		{"tag in match", strings.Replace(good, "registry.example.com/team/app", "registry.example.com/team/app:1", 1), "without tag or digest"},
		{"root with a glob", strings.Replace(good, "{match: registry.example.com/team/app, require: signed}", "{match: registry.example.com/team/*, require: signed, root: r.json}", 1), "without wildcards"},
		{"root file missing", strings.Replace(good, "require: signed}", "require: signed, root: missing.json}", 1), "missing.json"},
		{"root and root_keys", strings.Replace(good, "require: signed}", "require: signed, root: r.json, root_keys: [abc]}", 1), "not both"},
		{"short key id", strings.Replace(good, "require: signed}", "require: signed, root_keys: [abc]}", 1), "is not a key ID"},
		{"bad role", strings.Replace(good, "require: signed}", "require: signed, roles: [releases]}", 1), "is not a targets role"},
		{"none with anchors", strings.Replace(good, "require: signed}", "require: none, roles: [targets]}", 1), "require: none takes no"},
		{"negative staleness", strings.Replace(good, "require: signed}", "require: signed, max_staleness: -1m}", 1), "max_staleness must not be negative"},
		{"staleness not a duration", strings.Replace(good, "require: signed}", "require: signed, max_staleness: soon}", 1), "soon"},
		{"half a client certificate", strings.Replace(good, "https://signet.example.com}", "https://signet.example.com, client_cert_file: c.pem}", 1), "go together"},
		{"two documents", good + "---\ndefault: allow\n", "more than one YAML document"},
		{"bad namespace", strings.Replace(good, "require: signed}", "require: signed, namespaces: ['[']}", 1), "not a namespace pattern"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := policy.Parse([]byte(tc.yaml), dir)
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Fatalf("got %v, want an error saying %q", err, tc.err)
			}
		})
	}
}

func FuzzParse(f *testing.F) {
	sample, err := os.ReadFile("../deploy/policy.sample.yaml")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(sample)
	f.Add([]byte("rules: [{match: '**', require: none}]\ntrust_dir: x\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		file, err := policy.Parse(data, t.TempDir())
		if err != nil {
			return
		}
		if err := file.Validate(); err != nil {
			t.Fatalf("Parse accepted a file Validate refuses: %v", err)
		}
	})
}
