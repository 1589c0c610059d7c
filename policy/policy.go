// Package policy answers, for every hook that verifies on pull (the
// containerd image verifier, the Kubernetes admission webhook, the Docker
// CLI plugin and `signet policy check`), one question: may this image
// reference be pulled, and as which digest?
//
// A hook builds a Policy once from a policy file and asks it per pull:
//
//	f, err := policy.Load("/etc/signet/policy.yaml") // YAML, unknown keys refused
//	if err != nil { … }                             // a bad file decides nothing
//	p, err := policy.New(f, policy.WithLogger(log))
//	if err != nil { … }
//	d := p.Check(ctx, policy.Request{Ref: "registry.example.com/team/app:1.2", Digest: pulled, Namespace: ns})
//	if !d.Allowed() { refuse(d.Reason) }            // pull d.Digest otherwise
//
// The file names the signet-server (URL, TLS, token), the trust directory
// that caches verified metadata, ordered rules and a default
// (deploy/policy.sample.yaml documents every key). Rules match Docker's
// normalised names (imageref: "alpine" is docker.io/library/alpine) with
// globs over path components, optionally only for some Kubernetes
// namespaces; the first matching rule decides: "require: none" allows
// the reference as given, "require: signed" resolves its tag through the
// client library (a full TUF update with go-tuf, or verified state younger
// than the rule's max_staleness) against the rule's trust anchor, and
// optionally accepts only the listed signing roles.
//
// A Decision is one of:
//   - Allow: pull Digest, the digest the signed Tag resolves to (Role is
//     the role that vouched); for require: none or an exempt namespace,
//     the reference's own digest, if any.
//   - Deny, with a one-line Reason a person can act on ("… is not
//     signed", "… resolves to sha256:aa…, not the digest being pulled
//     sha256:bb…", "trust data for … expired on …", "no rule matches … and
//     the default is deny").
//   - Error: the policy could not decide (trust server unreachable and no
//     verified state young enough, a local file unreadable); Err holds the
//     cause. Error denies too: only Allow allows, and the zero Decision
//     denies (fail closed).
//
// Check never takes longer than the file's server.timeout (default 5 s)
// or the caller's context, whichever ends first. A Policy is safe for
// concurrent use by many goroutines; checks of one repository serialise
// in the client (and, through a lock file, across processes sharing the
// trust directory). The package imports the client library and imageref,
// never the server, and reads only the files the policy names.
package policy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/opencontainers/go-digest"

	"github.com/signetdev/signet/client"
	"github.com/signetdev/signet/imageref"
	"github.com/signetdev/signet/internal/tlsutil"
)

// Verdict is the kind of a Decision.
type Verdict string

// Verdicts. The zero Verdict ("") is not Allow.
const (
	Allow Verdict = "allow"
	Deny  Verdict = "deny"
	Error Verdict = "error"
)

// Request is one pull to judge.
type Request struct {
	// Ref is the image reference as pulled: NAME[:TAG][@DIGEST]; with
	// neither tag nor digest, the tag is "latest", as Docker pulls it.
	Ref string
	// Digest, if set, is the digest being pulled (containerd's -digest,
	// the manifest a registry served): it must be the one the tag vouches
	// for, and the one Ref pins, if any.
	Digest digest.Digest
	// Namespace is the Kubernetes namespace of the pod (admission only).
	Namespace string
}

// Decision is the answer to a Request.
type Decision struct {
	Verdict Verdict `json:"decision"`
	// Ref is the reference as asked.
	Ref string `json:"ref"`
	// Name is the normalised repository name (empty if Ref did not parse).
	Name string `json:"name,omitempty"`
	// Tag is the signed tag that vouched (or the reference's tag).
	Tag string `json:"tag,omitempty"`
	// Digest is what to pull, when allowed: the signed digest, or for
	// unsigned allows the digest pinned by the reference, if any.
	Digest digest.Digest `json:"digest,omitempty"`
	// Role is the role whose signature vouched (require: signed).
	Role string `json:"role,omitempty"`
	// TrustExpires is, for an allow that a signature vouched for, the
	// earliest expiry of the TUF metadata the check relied on
	// (client.Target.Expires): the decision must not be reused after it.
	TrustExpires time.Time `json:"trust_expires,omitzero"`
	// Rule says what decided: "rules[N] PATTERN", "default" or
	// "exempt_namespaces".
	Rule string `json:"rule,omitempty"`
	// Reason is one line for a person.
	Reason string `json:"reason"`
	// Err is the cause of a Deny or Error that came from an error.
	Err error `json:"-"`
}

// Allowed reports whether the pull may go ahead. Only Allow allows.
func (d Decision) Allowed() bool { return d.Verdict == Allow }

// String is "allow: REASON", "deny: REASON" or "error: REASON".
func (d Decision) String() string {
	v := d.Verdict
	if v == "" {
		v = Deny
	}
	return string(v) + ": " + d.Reason
}

// Option configures New.
type Option func(*options)

type options struct {
	log        *slog.Logger
	now        func() time.Time
	trustDir   string
	httpClient *http.Client
	oneShot    bool
}

// WithLogger logs trust bootstraps and failures (never tokens or keys).
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.log = l } }

// WithClock sets the clock used for expiry checks (tests).
func WithClock(now func() time.Time) Option { return func(o *options) { o.now = now } }

// WithTrustDir overrides the file's trust_dir (signet policy check
// --trust-dir, to try a policy without the node's directory).
func WithTrustDir(dir string) Option { return func(o *options) { o.trustDir = dir } }

// WithHTTPClient replaces the HTTP client built from the file's TLS
// settings.
func WithHTTPClient(hc *http.Client) Option { return func(o *options) { o.httpClient = hc } }

// WithOneShot is for a process that checks one image and exits
// (signet-containerd-verifier): a tag is resolved
// with client.ResolveOnce, verified in full but keeping only its own entry
// of each role, instead of a warm view that nothing would use again (a
// 100,000-tag flat repository would cost the verifier about 50 MB more).
func WithOneShot() Option { return func(o *options) { o.oneShot = true } }

// Policy is a loaded policy. Safe for concurrent use.
type Policy struct {
	file    *File
	rules   []rule
	exempt  []string
	timeout time.Duration
	log     *slog.Logger
	oneShot bool
	base    client.Options
	// clients holds one client per distinct max_staleness, sharing the
	// trust directory.
	clients map[time.Duration]*client.Client

	mu      sync.Mutex
	locks   map[string]*sync.Mutex // per GUN, around anchoring
	checked map[string]string      // GUN → the anchor it was checked against
}

type rule struct {
	Rule
	idx  int
	pat  pattern
	root []byte
}

// New builds a Policy from a validated file. It reads the files the
// policy names (roots, token, certificates) and creates the trust
// directory; it does not touch the network.
func New(f *File, opts ...Option) (*Policy, error) {
	o := options{}
	for _, fn := range opts {
		fn(&o)
	}
	if o.log == nil {
		o.log = slog.New(slog.DiscardHandler)
	}
	if err := f.Validate(); err != nil {
		return nil, fmt.Errorf("policy: %w", err)
	}
	p := &Policy{file: f, timeout: f.Server.Timeout, log: o.log, oneShot: o.oneShot, clients: map[time.Duration]*client.Client{}, locks: map[string]*sync.Mutex{}, checked: map[string]string{}}
	if p.timeout == 0 {
		p.timeout = defaultTimeout
	}
	p.exempt = []string{"kube-system"}
	if f.ExemptNamespaces != nil {
		p.exempt = *f.ExemptNamespaces
	}
	for i, r := range f.Rules {
		pat, err := compilePattern(r.Match)
		if err != nil {
			return nil, fmt.Errorf("policy: rules[%d]: %w", i, err)
		}
		cr := rule{Rule: r, idx: i, pat: pat}
		if r.Root != "" {
			if cr.root, err = loadRoot(r.Root); err != nil {
				return nil, fmt.Errorf("policy: rules[%d]: %w", i, err)
			}
		}
		p.rules = append(p.rules, cr)
	}
	trustDir := f.TrustDir
	if o.trustDir != "" {
		trustDir = o.trustDir
	}
	if err := os.MkdirAll(trustDir, 0o700); err != nil {
		return nil, fmt.Errorf("policy: trust_dir: %w", err)
	}
	hc := o.httpClient
	if hc == nil {
		var err error
		if hc, err = httpClient(f.Server, p.timeout); err != nil {
			return nil, err
		}
	}
	p.base = client.Options{Server: f.Server.URL, TrustDir: trustDir, HTTPClient: hc, Timeout: p.timeout, Now: o.now, Logger: o.log}
	if p.base.Server == "" {
		p.base.Server = "http://signet.invalid" // no rule verifies (Validate)
	}
	if f.Server.TokenFile != "" {
		tok, err := os.ReadFile(f.Server.TokenFile)
		if err != nil {
			return nil, fmt.Errorf("policy: server.token_file: %w", err)
		}
		p.base.Token = strings.TrimSpace(string(tok))
	}
	if f.Server.DockerCredentials {
		p.base.Keychain = authn.DefaultKeychain
	}
	for _, r := range p.rules {
		if r.Require != requireSigned || p.clients[r.MaxStaleness] != nil {
			continue
		}
		co := p.base
		co.MaxStaleness = r.MaxStaleness
		c, err := client.New(co)
		if err != nil {
			return nil, fmt.Errorf("policy: %w", err)
		}
		p.clients[r.MaxStaleness] = c
	}
	return p, nil
}

// httpClient dials with bounded connect and handshake times and the
// file's TLS settings.
func httpClient(s Server, timeout time.Duration) (*http.Client, error) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.DialContext = (&net.Dialer{Timeout: min(timeout, 3*time.Second), KeepAlive: 30 * time.Second}).DialContext
	tr.TLSHandshakeTimeout = min(timeout, 3*time.Second)
	tr.ResponseHeaderTimeout = timeout
	if s.CAFile != "" || s.ClientCertFile != "" {
		cfg := tr.TLSClientConfig.Clone()
		if s.CAFile != "" {
			pool, err := tlsutil.LoadPool(s.CAFile)
			if err != nil {
				return nil, fmt.Errorf("policy: server.ca_file: %w", err)
			}
			cfg.RootCAs = pool
		}
		if s.ClientCertFile != "" {
			rl, err := tlsutil.NewReloader(s.ClientCertFile, s.ClientKeyFile)
			if err != nil {
				return nil, fmt.Errorf("policy: server.client_cert_file: %w", err)
			}
			cfg.GetClientCertificate = rl.GetClientCertificate
		}
		tr.TLSClientConfig = cfg
	}
	return &http.Client{Transport: tr}, nil
}

// Check decides req. It never returns a Decision that allows by mistake:
// anything it cannot establish denies.
func (p *Policy) Check(ctx context.Context, req Request) Decision {
	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	d := Decision{Ref: req.Ref, Verdict: Deny}
	ref, err := imageref.Parse(req.Ref)
	if err != nil {
		d.Reason, d.Err = oneLine(strings.TrimPrefix(err.Error(), "imageref: ")), err
		return d
	}
	d.Name, d.Tag = ref.Name, ref.Tag
	want := ref.Digest
	if req.Digest != "" {
		if err := req.Digest.Validate(); err != nil {
			d.Reason, d.Err = fmt.Sprintf("the digest being pulled %q is not a digest: %v", req.Digest, err), err
			return d
		}
		if want != "" && want != req.Digest {
			d.Reason = fmt.Sprintf("%s pins %s, not the digest being pulled %s", req.Ref, want, req.Digest)
			return d
		}
		want = req.Digest
	}
	if req.Namespace != "" && matchAny(p.exempt, req.Namespace) {
		d.Verdict, d.Digest, d.Rule = Allow, want, "exempt_namespaces"
		d.Reason = fmt.Sprintf("namespace %s is exempt from the pull policy", req.Namespace)
		return d
	}
	r := p.match(ref.Name, req.Namespace)
	if r == nil {
		d.Rule = "default"
		if p.file.Default == defaultAllow {
			d.Verdict, d.Digest = Allow, want
			d.Reason = fmt.Sprintf("no rule matches %s and the default is allow", ref.Name)
			return d
		}
		d.Reason = fmt.Sprintf("no rule matches %s and the default is deny", ref.Name)
		return d
	}
	d.Rule = fmt.Sprintf("rules[%d] %s", r.idx, r.Match)
	if r.Require == requireNone {
		d.Verdict, d.Digest = Allow, want
		d.Reason = fmt.Sprintf("%s is allowed unsigned by %s", ref.Name, d.Rule)
		return d
	}
	c := p.clients[r.MaxStaleness]
	if err := p.anchor(ctx, c, r, ref.Name); err != nil {
		return p.failed(d, r, err)
	}
	tag := ref.Tag
	if tag == "" && want == "" {
		tag, d.Tag = "latest", "latest"
	}
	if tag == "" {
		return p.checkDigestOnly(ctx, c, r, d, want)
	}
	resolve := c.Resolve
	if p.oneShot {
		resolve = c.ResolveOnce
	}
	t, err := resolve(ctx, ref.Name+":"+tag)
	if err != nil {
		return p.failed(d, r, err)
	}
	return p.judge(d, r, t, want)
}

// judge turns a resolved target into the decision for want ("" = any).
func (p *Policy) judge(d Decision, r *rule, t *client.Target, want digest.Digest) Decision {
	named := t.GUN + ":" + t.Tag
	d.Tag, d.Role = t.Tag, t.Role
	if len(r.Roles) > 0 && !slices.Contains(r.Roles, t.Role) {
		d.Reason = fmt.Sprintf("%s is signed by %s, which %s does not accept (accepted: %s)", named, t.Role, d.Rule, strings.Join(r.Roles, ", "))
		return d
	}
	if want != "" && t.Digest != want {
		d.Reason = fmt.Sprintf("%s resolves to %s, not the digest being pulled %s", named, t.Digest, want)
		return d
	}
	d.Verdict, d.Digest, d.TrustExpires = Allow, t.Digest, t.Expires
	d.Reason = fmt.Sprintf("%s is signed by %s as %s", named, t.Role, t.Digest)
	return d
}

// match returns the first rule for name and namespace, or nil.
func (p *Policy) match(name, namespace string) *rule {
	for i := range p.rules {
		r := &p.rules[i]
		if len(r.Namespaces) > 0 && (namespace == "" || !matchAny(r.Namespaces, namespace)) {
			continue
		}
		if r.pat.matches(name) {
			return r
		}
	}
	return nil
}

// failed turns a client error into a Deny (the trust data decided) or an
// Error (nothing could be decided).
func (p *Policy) failed(d Decision, r *rule, err error) Decision {
	d.Err = err
	named := d.Name
	if d.Tag != "" {
		named += ":" + d.Tag
	}
	var ns *client.NotSignedError
	var te *client.TrustError
	switch {
	case errors.As(err, &ns):
		d.Reason = fmt.Sprintf("%s:%s is not signed", ns.GUN, ns.Tag)
	case errors.Is(err, client.ErrNotSigned):
		d.Reason = fmt.Sprintf("%s is not signed: %s has no trust data on %s", named, d.Name, p.base.Server)
	case errors.As(err, &te) && te.Kind == client.ErrExpired:
		if te.Expires.IsZero() {
			d.Reason = fmt.Sprintf("trust data for %s expired (%v)", te.GUN, te.Err)
		} else {
			d.Reason = fmt.Sprintf("trust data for %s expired on %s", te.GUN, te.Expires.UTC().Format(time.RFC3339))
		}
	case errors.As(err, &te):
		d.Reason = te.Error()
	case errors.Is(err, client.ErrNoTrust):
		d.Reason = fmt.Sprintf("no trusted root for %s: give %s a root or root_keys, or pin it in the trust directory (signet --trust-dir %s trust pin %s --root root.json)", d.Name, d.Rule, p.base.TrustDir, d.Name)
	case errors.Is(err, errAnchor):
		d.Reason = strings.TrimPrefix(err.Error(), "policy: ")
	default:
		d.Verdict = Error
		d.Reason = fmt.Sprintf("cannot verify %s: the trust server %s did not answer in time or failed (%v), and there is no verified state younger than max_staleness (%s)", named, p.base.Server, err, r.MaxStaleness)
		p.log.Warn("policy check could not decide", "name", d.Name, "tag", d.Tag, "err", err)
	}
	d.Reason = oneLine(d.Reason)
	return d
}

// oneLine keeps a reason on one line.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}
