package policy

import (
	"bytes"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"
	"github.com/theupdateframework/go-tuf/v2/metadata/trustedmetadata"
	"go.yaml.in/yaml/v3"

	"github.com/signetdev/signet/imageref"
)

// File is a policy file as written (deploy/policy.sample.yaml documents
// every key). Parse and Load validate it; relative paths in it are
// relative to the file's directory.
type File struct {
	Server Server `yaml:"server"`
	// TrustDir caches verified metadata and holds pinned roots (the
	// layout of `signet --trust-dir`). Required.
	TrustDir string `yaml:"trust_dir"`
	// Default decides names no rule matches: "deny" (when empty) or
	// "allow".
	Default string `yaml:"default"`
	// ExemptNamespaces are Kubernetes namespaces whose pulls are allowed
	// without a check (admission only; a request without a namespace is
	// never exempt). Absent: [kube-system]; [] exempts none.
	ExemptNamespaces *[]string `yaml:"exempt_namespaces"`
	// Rules are tried in order; the first that matches decides.
	Rules []Rule `yaml:"rules"`
}

// Server says how to reach signet-server.
type Server struct {
	URL string `yaml:"url"`
	// CAFile is a PEM bundle of CAs to trust for the server's
	// certificate instead of the system's.
	CAFile string `yaml:"ca_file"`
	// ClientCertFile and ClientKeyFile: a client certificate to present
	// (mutual TLS); re-read when the files change.
	ClientCertFile string `yaml:"client_cert_file"`
	ClientKeyFile  string `yaml:"client_key_file"`
	// TokenFile holds a bearer token sent to the server (read once).
	TokenFile string `yaml:"token_file"`
	// DockerCredentials: answer a server's registry-token challenge with
	// the credentials of ~/.docker/config.json and its helpers.
	DockerCredentials bool `yaml:"docker_credentials"`
	// Timeout bounds one Check, every network call included; default 5s.
	Timeout time.Duration `yaml:"timeout"`
}

// Rule is one entry of rules:.
type Rule struct {
	// Match is a pattern over the normalised name's "/"-separated
	// components: "*" (and "?", "[a-z]") match within one component, a
	// component "**" matches any number of components (zero too). A
	// pattern without wildcards may be written as Docker would accept it
	// ("alpine"); a pattern with wildcards must start with the registry
	// host ("docker.io/library/*").
	Match string `yaml:"match"`
	// Namespaces, if set, limit the rule to requests from these
	// Kubernetes namespaces (globs); a request without a namespace (a
	// containerd pull) skips such a rule.
	Namespaces []string `yaml:"namespaces"`
	// Require is "signed" or "none" (an explicit allow-list for unsigned
	// images). Required.
	Require string `yaml:"require"`
	// Root is a pinned root.json, for a rule that matches one repository.
	Root string `yaml:"root"`
	// RootKeys are pinned root key IDs: a repository first seen under
	// this rule is trusted only if its root is signed by a threshold of
	// these keys.
	RootKeys []string `yaml:"root_keys"`
	// Roles, if set, are the only roles whose signature is accepted
	// (e.g. [targets/releases]).
	Roles []string `yaml:"roles"`
	// MaxStaleness lets a check answer from verified state this young
	// without asking the server (offline operation); 0 asks every time.
	MaxStaleness time.Duration `yaml:"max_staleness"`
}

const (
	requireSigned = "signed"
	requireNone   = "none"
	defaultDeny   = "deny"
	defaultAllow  = "allow"
	// defaultTimeout bounds a Check when the file does not say; well
	// inside containerd's 10 s per-verifier budget.
	defaultTimeout = 5 * time.Second
)

var keyIDPattern = regexp.MustCompile(`^[0-9a-f]{64}$`)

// Load reads, parses and validates the policy file at file.
func Load(file string) (*File, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("policy: %w", err)
	}
	f, err := Parse(data, filepath.Dir(file))
	if err != nil {
		return nil, fmt.Errorf("policy: %s: %w", file, errors.Unwrap(err))
	}
	return f, nil
}

// Parse parses and validates a policy file; dir is the directory relative
// paths in it are taken from. Unknown keys are an error.
func Parse(data []byte, dir string) (*File, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var f File
	if err := dec.Decode(&f); err != nil {
		var te *yaml.TypeError
		if errors.As(err, &te) {
			// One line: hooks print the reason on one line.
			err = &yaml.TypeError{Errors: []string{strings.Join(te.Errors, "; ")}}
		}
		return nil, fmt.Errorf("policy: %w", err)
	}
	var extra any
	if err := dec.Decode(&extra); err == nil {
		return nil, fmt.Errorf("policy: %w", errors.New("more than one YAML document"))
	}
	f.resolvePaths(dir)
	if err := f.Validate(); err != nil {
		return nil, fmt.Errorf("policy: %w", err)
	}
	return &f, nil
}

func (f *File) resolvePaths(dir string) {
	abs := func(p *string) {
		if *p != "" && !filepath.IsAbs(*p) {
			*p = filepath.Join(dir, *p)
		}
	}
	abs(&f.TrustDir)
	abs(&f.Server.CAFile)
	abs(&f.Server.ClientCertFile)
	abs(&f.Server.ClientKeyFile)
	abs(&f.Server.TokenFile)
	for i := range f.Rules {
		abs(&f.Rules[i].Root)
	}
}

// Validate checks the file without touching the network: every rule is
// well-formed and its files load.
func (f *File) Validate() error {
	signed := false
	for i := range f.Rules {
		if err := f.Rules[i].validate(); err != nil {
			return fmt.Errorf("rules[%d] (match %q): %w", i, f.Rules[i].Match, err)
		}
		signed = signed || f.Rules[i].Require == requireSigned
	}
	switch f.Default {
	case "", defaultDeny, defaultAllow:
	default:
		return fmt.Errorf("default must be %q or %q, not %q", defaultDeny, defaultAllow, f.Default)
	}
	if f.ExemptNamespaces != nil {
		for _, ns := range *f.ExemptNamespaces {
			if _, err := path.Match(ns, ""); err != nil || ns == "" {
				return fmt.Errorf("exempt_namespaces: %q is not a namespace pattern", ns)
			}
		}
	}
	if f.TrustDir == "" {
		return errors.New("trust_dir is required (the directory where verified trust data is cached)")
	}
	if f.Server.Timeout < 0 {
		return errors.New("server.timeout must not be negative")
	}
	if (f.Server.ClientCertFile == "") != (f.Server.ClientKeyFile == "") {
		return errors.New("server.client_cert_file and server.client_key_file go together")
	}
	if f.Server.URL == "" {
		if signed {
			return errors.New("server.url is required by the rules that require signed images")
		}
		return nil
	}
	u, err := url.Parse(f.Server.URL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return fmt.Errorf("server.url %q is not an http(s) URL", f.Server.URL)
	}
	return nil
}

func (r *Rule) validate() error {
	if _, err := compilePattern(r.Match); err != nil {
		return err
	}
	for _, ns := range r.Namespaces {
		if _, err := path.Match(ns, ""); err != nil || ns == "" {
			return fmt.Errorf("namespaces: %q is not a namespace pattern", ns)
		}
	}
	switch r.Require {
	case requireNone:
		if r.Root != "" || len(r.RootKeys) > 0 || len(r.Roles) > 0 || r.MaxStaleness != 0 {
			return errors.New("require: none takes no root, root_keys, roles or max_staleness (nothing is verified)")
		}
		return nil
	case requireSigned:
	case "":
		return errors.New(`require is required: "signed" or "none"`)
	default:
		return fmt.Errorf(`require must be "signed" or "none", not %q`, r.Require)
	}
	if r.Root != "" && len(r.RootKeys) > 0 {
		return errors.New("give root or root_keys, not both")
	}
	if r.Root != "" {
		if strings.ContainsAny(r.Match, `*?[\`) {
			return errors.New("a pinned root.json belongs to one repository: match must name it without wildcards (use root_keys for a name pattern)")
		}
		if _, err := loadRoot(r.Root); err != nil {
			return err
		}
	}
	for _, id := range r.RootKeys {
		if !keyIDPattern.MatchString(id) {
			return fmt.Errorf("root_keys: %q is not a key ID (64 lower-case hex digits, as `signet key list` and `signet root verify` print)", id)
		}
	}
	for _, role := range r.Roles {
		if role != metadata.TARGETS && !strings.HasPrefix(role, metadata.TARGETS+"/") {
			return fmt.Errorf("roles: %q is not a targets role (targets or targets/NAME)", role)
		}
	}
	if r.MaxStaleness < 0 {
		return errors.New("max_staleness must not be negative")
	}
	return nil
}

// loadRoot reads a root.json that must verify by itself.
func loadRoot(file string) ([]byte, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("root: %w", err)
	}
	if _, err := trustedmetadata.New(data); err != nil {
		return nil, fmt.Errorf("root: %s is not a root.json that verifies by itself: %w", file, err)
	}
	return data, nil
}

// pattern is a compiled Match.
type pattern []string

// compilePattern normalises and checks a Match pattern.
func compilePattern(p string) (pattern, error) {
	if p == "" {
		return nil, errors.New("match is required")
	}
	if !strings.ContainsAny(p, `*?[\`) {
		r, err := imageref.Parse(p)
		if err != nil {
			return nil, fmt.Errorf("match: %w", err)
		}
		if r.Tag != "" || r.Digest != "" {
			return nil, errors.New("match is a repository name, without tag or digest")
		}
		return strings.Split(r.Name, "/"), nil
	}
	parts := strings.Split(p, "/")
	for _, c := range parts {
		if c == "" {
			return nil, errors.New("match has an empty path component")
		}
		if c != "**" && strings.Contains(c, "**") {
			return nil, errors.New(`"**" must be a whole path component`)
		}
		if _, err := path.Match(c, ""); err != nil {
			return nil, fmt.Errorf("match: component %q: %w", c, err)
		}
	}
	if host := parts[0]; host != "*" && host != "**" && !strings.ContainsAny(host, ".:") && host != "localhost" {
		return nil, fmt.Errorf("a pattern with wildcards must start with the registry host, as names are matched after Docker's normalisation (e.g. docker.io/%s)", p)
	}
	return parts, nil
}

// matches reports whether the normalised name matches.
func (p pattern) matches(name string) bool { return matchParts(p, strings.Split(name, "/")) }

func matchParts(p, n []string) bool {
	for len(p) > 0 {
		if p[0] == "**" {
			for i := 0; i <= len(n); i++ {
				if matchParts(p[1:], n[i:]) {
					return true
				}
			}
			return false
		}
		if len(n) == 0 {
			return false
		}
		if ok, _ := path.Match(p[0], n[0]); !ok {
			return false
		}
		p, n = p[1:], n[1:]
	}
	return len(n) == 0
}

func matchAny(globs []string, s string) bool {
	for _, g := range globs {
		if ok, _ := path.Match(g, s); ok {
			return true
		}
	}
	return false
}
