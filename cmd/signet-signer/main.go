// Command signet-signer holds the online (timestamp and snapshot) keys of
// every repository and signs TUF metadata for signet-server, over HTTPS with
// mutual TLS only.
//
//	signet-signer [--addr HOST:PORT] [--db URL-or-path] --tls-cert F --tls-key F --client-ca F
//	signet-signer migrate --db postgres://…
//	signet-signer certs --out DIR
//	signet-signer rewrap --db … --from OLD --to NEW
//
// Flags can be set with SIGNET_SIGNER_<FLAG>. The passphrase that wraps the
// keys comes only from the environment: SIGNET_SIGNER_PASSPHRASE_<ALIAS>,
// or SIGNET_SIGNER_PASSPHRASE for the alias "default".
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/signetdev/signet/internal/cli"
	"github.com/signetdev/signet/internal/keydb"
	"github.com/signetdev/signet/internal/tlsutil"
	"github.com/signetdev/signet/signer/api"
	"github.com/signetdev/signet/signer/keystore"
	"github.com/signetdev/signet/signer/keywrap"
)

const envPrefix = "SIGNET_SIGNER_"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr, os.Getenv))
}

type config struct {
	Addr            string
	HealthAddr      string
	DB              string
	TLSCert         string
	TLSKey          string
	ClientCA        string
	AllowedSubjects string
	Alias           string
	PKCS11Module    string
	PKCS11Token     string
	LogFormat       string
	LogLevel        string
	Demo            bool
}

// Commands implements cli.Commander.
func (c *config) Commands() []string {
	return []string{
		"migrate    apply the key database's migrations",
		"certs      make development mTLS certificates",
		"rewrap     re-encrypt every key under a new passphrase",
	}
}

func (c *config) Flags(fs *flag.FlagSet) {
	fs.StringVar(&c.Addr, "addr", "127.0.0.1:7443", "mutual-TLS listen address")
	fs.StringVar(&c.HealthAddr, "health-addr", "", "optional plain-HTTP address for /healthz and /readyz only (for probes that cannot present a client certificate)")
	fs.StringVar(&c.DB, "db", "./signet-signer-data/signer.db", "postgres:// URL, or a file path for the embedded key store")
	fs.StringVar(&c.TLSCert, "tls-cert", "", "the signer's certificate (PEM)")
	fs.StringVar(&c.TLSKey, "tls-key", "", "the signer's private key (PEM)")
	fs.StringVar(&c.ClientCA, "client-ca", "", "CA bundle whose client certificates are accepted (PEM)")
	fs.StringVar(&c.AllowedSubjects, "allowed-subjects", "", "comma-separated client certificate common names to accept (default: any from --client-ca)")
	fs.StringVar(&c.Alias, "passphrase-alias", "default", "alias of the passphrase that wraps new keys (SIGNET_SIGNER_PASSPHRASE_<ALIAS>)")
	fs.StringVar(&c.PKCS11Module, "pkcs11-module", "", "PKCS#11 library: make and use keys on a token instead of wrapping them (PIN in SIGNET_SIGNER_PKCS11_PIN; needs a build with -tags pkcs11)")
	fs.StringVar(&c.PKCS11Token, "pkcs11-token", "signet", "label of the PKCS#11 token")
	fs.StringVar(&c.LogFormat, "log-format", "json", "log format: json or text")
	fs.StringVar(&c.LogLevel, "log-level", "info", "log level")
	fs.BoolVar(&c.Demo, "demo", false, "accept a placeholder passphrase (\"change this passphrase\", CHANGE-ME…): a throwaway demo whose keys protect nothing")
}

// Logging implements cli.Config.
func (c *config) Logging() (format, level string) { return c.LogFormat, c.LogLevel }

// Validate checks the configuration before anything starts.
func (c *config) Validate() error {
	var errs []error
	if c.TLSCert == "" || c.TLSKey == "" || c.ClientCA == "" {
		errs = append(errs, errors.New("--tls-cert, --tls-key and --client-ca are required: the signer speaks only mutual TLS (signet-signer certs --out DIR makes a development set)"))
	}
	if _, _, err := net.SplitHostPort(c.Addr); err != nil {
		errs = append(errs, fmt.Errorf("--addr: %w", err))
	}
	if c.DB == "" {
		errs = append(errs, errors.New("--db is empty"))
	}
	return errors.Join(errs...)
}

// run dispatches to a subcommand, given before or after the flags, or
// serves.
func run(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	var cfg config
	cmd, args := cli.Command(&cfg, args, "migrate", "certs", "rewrap")
	switch cmd {
	case "migrate":
		return runMigrate(ctx, args, stderr, getenv)
	case "certs":
		return runCerts(args, stdout, stderr, getenv)
	case "rewrap":
		return runRewrap(ctx, args, stdout, stderr, getenv)
	}
	// Every log line, the audit lines included, goes through one lock:
	// the API writes a request's audit lines in one write of its own
	// (api.WithAuditSink), which must not interleave with other lines.
	logw := &lockedWriter{w: stderr}
	return cli.Serve(ctx, "signet-signer", envPrefix, &cfg, args, stdout, logw, getenv, func(ctx context.Context, log *slog.Logger) error {
		return serve(ctx, cfg, log, logw, getenv)
	})
}

// lockedWriter serialises writes to w.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// passphrase reads the passphrase of alias from the environment.
func passphrase(alias string, getenv func(string) string) ([]byte, error) {
	name := envPrefix + "PASSPHRASE_" + strings.ToUpper(alias)
	p := getenv(name)
	if p == "" && alias == "default" {
		name, p = envPrefix+"PASSPHRASE", getenv(envPrefix+"PASSPHRASE")
	}
	if p == "" {
		return nil, fmt.Errorf("no passphrase for alias %q: set %s", alias, name)
	}
	return []byte(p), nil
}

func keyring(primary string, aliases []string, getenv func(string) string) (*keywrap.Keyring, error) {
	pp := map[string][]byte{}
	for _, a := range append([]string{primary}, aliases...) {
		p, err := passphrase(a, getenv)
		if err != nil {
			return nil, err
		}
		pp[a] = p
	}
	return keywrap.NewKeyring(primary, pp, keywrap.DefaultParams())
}

// backend is where private keys live: wrapped in the key store under the
// passphrase, or on a PKCS#11 token.
func backend(cfg config, getenv func(string) string) (keystore.Backend, func() error, error) {
	if cfg.PKCS11Module != "" {
		return openToken(cfg, getenv)
	}
	kr, err := keyring(cfg.Alias, nil, getenv)
	if err != nil {
		return nil, nil, err
	}
	return keystore.NewWrapped(kr), func() error { return nil }, nil
}

// isPlaceholder reports whether a passphrase is one of the placeholders
// shipped in docker-compose.yml and deploy/kubernetes/secrets.yaml (or
// looks like one): keys wrapped under it are as good as unwrapped.
func isPlaceholder(p []byte) bool {
	s := strings.ToLower(string(p))
	for _, marker := range []string{"change this", "change-me", "changeme", "change me"} {
		if strings.Contains(s, marker) {
			return true
		}
	}
	return false
}

func serve(ctx context.Context, cfg config, log *slog.Logger, logw io.Writer, getenv func(string) string) error {
	if p, err := passphrase(cfg.Alias, getenv); err == nil && cfg.PKCS11Module == "" && isPlaceholder(p) {
		if !cfg.Demo {
			return fmt.Errorf("the passphrase of alias %q is a placeholder (%q): set %sPASSPHRASE to a long random secret, or, for a throwaway demo, say --demo (compose: SIGNET_DEMO=true)", cfg.Alias, string(p), envPrefix)
		}
		log.Warn("demo mode: the online keys are wrapped under a placeholder passphrase and protect nothing")
	}
	be, closeBackend, err := backend(cfg, getenv)
	if err != nil {
		return err
	}
	defer closeBackend()
	var subjects []string
	if cfg.AllowedSubjects != "" {
		subjects = strings.Split(cfg.AllowedSubjects, ",")
	}
	tc, err := tlsutil.ServerConfig(cfg.TLSCert, cfg.TLSKey, cfg.ClientCA, subjects)
	if err != nil {
		return err
	}
	st, err := keydb.Open(ctx, cfg.DB)
	if err != nil {
		return err
	}
	defer st.Close()
	svc, err := keystore.New(ctx, st, be)
	if err != nil {
		return err // names the wrong passphrase; nothing was created
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	// The audit lines of a signing request are formatted as log's are and
	// written to the same place in one write per request.
	if _, err := cli.NewLogger(io.Discard, cfg.LogFormat, cfg.LogLevel); err != nil {
		return err
	}
	auditFormat := func(w io.Writer) slog.Handler {
		l, _ := cli.NewLogger(w, cfg.LogFormat, cfg.LogLevel) // checked above
		return l.Handler()
	}
	h := api.New(svc, log, log, reg, api.WithAuditSink(logw, auditFormat))
	hs := &http.Server{
		Handler:           api.RequireClientCert(h.Routes()),
		TLSConfig:         tc,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return err
	}
	servers := []*http.Server{hs}
	errc := make(chan error, 2)
	go func() { errc <- hs.ServeTLS(ln, "", "") }()
	if cfg.HealthAddr != "" {
		hl, err := net.Listen("tcp", cfg.HealthAddr)
		if err != nil {
			return err
		}
		health := &http.Server{Handler: h.HealthRoutes(), ReadHeaderTimeout: 5 * time.Second}
		servers = append(servers, health)
		go func() { errc <- health.Serve(hl) }()
	}
	log.Info("signet-signer serving", "addr", ln.Addr().String(), "health_addr", cfg.HealthAddr)
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	for _, s := range servers {
		if err := s.Shutdown(sctx); err != nil {
			return err
		}
	}
	return nil
}

func runMigrate(ctx context.Context, args []string, stderr io.Writer, getenv func(string) string) int {
	fs := flag.NewFlagSet("signet-signer migrate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	db := fs.String("db", "", "postgres:// URL or file path of the key store")
	if err := cli.Parse(fs, args, envPrefix, getenv); err != nil {
		return 2
	}
	st, err := keydb.Open(ctx, *db)
	if err == nil {
		err = st.Migrate(ctx)
		st.Close()
	}
	if err != nil {
		fmt.Fprintf(stderr, "signet-signer migrate: %v\n", err)
		return 1
	}
	fmt.Fprintln(stderr, "signet-signer migrate: database is up to date")
	return 0
}

func runCerts(args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	fs := flag.NewFlagSet("signet-signer certs", flag.ContinueOnError)
	fs.SetOutput(stderr)
	out := fs.String("out", "", "directory to write ca.pem, signer.pem, signer-key.pem, server.pem, server-key.pem")
	dns := fs.String("dns", "signet-signer", "comma-separated extra DNS names for the signer's certificate")
	if err := cli.Parse(fs, args, envPrefix+"CERTS_", getenv); err != nil {
		return 2
	}
	if *out == "" {
		fmt.Fprintln(stderr, "signet-signer certs: --out DIR is required")
		return 2
	}
	if err := tlsutil.WriteDevCerts(tlsutil.DevCerts{Dir: *out, SignerDNS: strings.Split(*dns, ",")}); err != nil {
		fmt.Fprintf(stderr, "signet-signer certs: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "wrote a development CA and certificates to %s (not for production)\n", *out)
	return 0
}

func runRewrap(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	fs := flag.NewFlagSet("signet-signer rewrap", flag.ContinueOnError)
	fs.SetOutput(stderr)
	db := fs.String("db", "./signet-signer-data/signer.db", "postgres:// URL or file path of the key store")
	from := fs.String("from", "default", "alias of the current passphrase (SIGNET_SIGNER_PASSPHRASE_<FROM>)")
	to := fs.String("to", "", "alias of the new passphrase (SIGNET_SIGNER_PASSPHRASE_<TO>)")
	if err := cli.Parse(fs, args, envPrefix+"REWRAP_", getenv); err != nil {
		return 2
	}
	if *to == "" || *to == *from {
		fmt.Fprintln(stderr, "signet-signer rewrap: --to must name a new alias")
		return 2
	}
	err := func() error {
		kr, err := keyring(*to, []string{*from}, getenv)
		if err != nil {
			return err
		}
		st, err := keydb.Open(ctx, *db)
		if err != nil {
			return err
		}
		defer st.Close()
		n, err := keystore.Rewrap(ctx, st, kr, kr)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "re-wrapped %d keys under passphrase alias %q; start signet-signer with --passphrase-alias %s\n", n, *to, *to)
		return nil
	}()
	if err != nil {
		fmt.Fprintf(stderr, "signet-signer rewrap: %v\n", err)
		return 1
	}
	return 0
}
