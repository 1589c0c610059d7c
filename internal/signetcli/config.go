package signetcli

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"github.com/knadh/koanf/parsers/yaml"
	"github.com/knadh/koanf/providers/file"
	"github.com/knadh/koanf/v2"
	"github.com/spf13/cobra"
)

// settings are the CLI's global settings. Each comes from, in order of
// precedence: its flag, its environment variable, the config file
// (~/.signet/config.yaml, or --config / SIGNET_CONFIG; keys are the flag
// names), then its default: the server's order.
var settings = []struct {
	flag, env, def, usage string
}{
	{"server", "SIGNET_SERVER", "http://127.0.0.1:4443", "signet-server URL"},
	{"trust-dir", "SIGNET_TRUST_DIR", "", "trust directory: pinned roots, cache, keys (default ~/.signet)"},
	{"output", "SIGNET_OUTPUT", "text", "output format: text or json"},
	{"tls-ca", "SIGNET_TLS_CA", "", "PEM file of the CA(s) to trust for the server's certificate, instead of the system's"},
	{"tls-cert", "SIGNET_TLS_CERT", "", "PEM client certificate for the server (mutual TLS), with --tls-key"},
	{"tls-key", "SIGNET_TLS_KEY", "", "PEM private key of --tls-cert"},
}

// envHelp lists every environment variable the CLI reads, for --help.
const envHelp = `
Environment (flags win over the environment, which wins over the config file):
  SIGNET_SERVER, SIGNET_TRUST_DIR, SIGNET_OUTPUT   as --server, --trust-dir, -o
  SIGNET_TLS_CA, SIGNET_TLS_CERT, SIGNET_TLS_KEY   as --tls-ca, --tls-cert, --tls-key
  SIGNET_CONFIG                  config file (default ~/.signet/config.yaml; keys are the flag
                                 names: server, trust-dir, output, tls-ca, tls-cert, tls-key)
  SIGNET_TOKEN                   bearer token for signet-server (sent to it only)
  SIGNET_REGISTRY_AUTH           user:password for the registry's token service, before
                                 ~/.docker/config.json and its credential helpers
  SIGNET_REGISTRY_AUTH_HOSTS     token-service hosts besides the registry's own that may receive
                                 registry credentials (comma-separated; https only)
  SIGNET_ROOT_PASSPHRASE         passphrase of root keys
  SIGNET_TARGETS_PASSPHRASE      passphrase of targets keys
  SIGNET_DELEGATION_PASSPHRASE   passphrase of delegation (signer) keys
  SIGNET_NEW_PASSPHRASE          the new passphrase, for signet key passwd
Without a passphrase variable, signet asks on the terminal.

Exit codes: 0 success, 1 error, 2 usage, 3 not signed or another digest,
4 trust failure (no pinned root, expired, rollback, threshold, tampered),
5 staged: the change waits for more signatures and is not in effect.
`

// addSettings registers the global flags.
func (a *app) addSettings(root *cobra.Command) {
	pf := root.PersistentFlags()
	a.values = map[string]*string{}
	for _, s := range settings {
		v := new(string)
		a.values[s.flag] = v
		usage := s.usage + " (" + s.env + ")"
		if s.flag == "output" {
			pf.StringVarP(v, s.flag, "o", s.def, usage)
			continue
		}
		pf.StringVar(v, s.flag, s.def, usage)
	}
	pf.StringVar(&a.configFile, "config", "", "config file (SIGNET_CONFIG; default ~/.signet/config.yaml if it exists)")
}

// resolveSettings applies the precedence flags > env > file > defaults.
func (a *app) resolveSettings(cmd *cobra.Command) error {
	home, _ := os.UserHomeDir()
	path, explicit := a.configFile, true
	if path == "" {
		path = a.getenv("SIGNET_CONFIG")
	}
	if path == "" {
		path, explicit = filepath.Join(home, ".signet", "config.yaml"), false
	}
	fileValues := map[string]string{}
	if _, err := os.Stat(path); err == nil || explicit {
		k := koanf.New(".")
		if err := k.Load(file.Provider(path), yaml.Parser()); err != nil {
			return usageError{fmt.Errorf("config %s: %w", path, err)}
		}
		for _, key := range k.Keys() {
			if _, ok := a.values[key]; !ok {
				return usageError{fmt.Errorf("config %s: unknown key %q (keys are the global flags' names: server, trust-dir, output, tls-ca, tls-cert, tls-key)", path, key)}
			}
			fileValues[key] = k.String(key)
		}
	}
	for _, s := range settings {
		if cmd.Flags().Changed(s.flag) {
			continue
		}
		switch {
		case a.getenv(s.env) != "":
			*a.values[s.flag] = a.getenv(s.env)
		case fileValues[s.flag] != "":
			*a.values[s.flag] = fileValues[s.flag]
		}
	}
	a.server, a.trustDir, a.output = *a.values["server"], *a.values["trust-dir"], *a.values["output"]
	if a.trustDir == "" {
		a.trustDir = filepath.Join(home, ".signet")
	}
	if a.output != "text" && a.output != "json" {
		return usageError{fmt.Errorf("-o %q: want text or json", a.output)}
	}
	if (*a.values["tls-cert"] == "") != (*a.values["tls-key"] == "") {
		return usageError{errors.New("--tls-cert and --tls-key go together")}
	}
	return nil
}

// httpClient returns the HTTP client for the trust server: with --tls-ca
// it trusts exactly those CAs (the system pool is not loaded); with
// --tls-cert it presents that client certificate. nil: Go's defaults.
func (a *app) httpClient() (*http.Client, error) {
	caFile, certFile, keyFile := *a.values["tls-ca"], *a.values["tls-cert"], *a.values["tls-key"]
	if caFile == "" && certFile == "" {
		return nil, nil
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("--tls-ca: %w", err)
		}
		cfg.RootCAs = x509.NewCertPool()
		if !cfg.RootCAs.AppendCertsFromPEM(pem) {
			return nil, usageError{fmt.Errorf("--tls-ca %s holds no PEM certificate", caFile)}
		}
	}
	if certFile != "" {
		cert, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return nil, fmt.Errorf("--tls-cert/--tls-key: %w", err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = cfg
	return &http.Client{Transport: tr}, nil
}

// splitList splits a comma-separated list, dropping empty items.
func splitList(s string) []string {
	var out []string
	for item := range strings.SplitSeq(s, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}
