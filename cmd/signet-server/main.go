// Command signet-server serves TUF metadata for container image repositories.
//
//	signet-server [--addr HOST:PORT] [--db URL-or-path]   serve
//	signet-server migrate --db postgres://…               apply migrations and exit
//
// Every flag can also be set with SIGNET_<FLAG> (e.g. SIGNET_DB). This is the
// composition root: the only place that knows every concrete type.
package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/signetdev/signet/internal/cli"
	"github.com/signetdev/signet/internal/tlsutil"
	"github.com/signetdev/signet/server"
	"github.com/signetdev/signet/server/auth"
	"github.com/signetdev/signet/server/metacache"
	"github.com/signetdev/signet/server/store"
	"github.com/signetdev/signet/server/store/postgres"
	"github.com/signetdev/signet/server/store/sqlite"
	"github.com/signetdev/signet/server/tufrepo"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr, os.Getenv))
}

// config is signet-server's whole configuration.
type config struct {
	Addr              string
	DB                string
	DBListenURL       string
	DBMaxConns        int
	CacheMaxAge       time.Duration
	CacheRecheck      time.Duration
	TLSCert, TLSKey   string
	SignerKeys        string
	Signer            string
	SignerCA          string
	SignerCert        string
	SignerKey         string
	AutoMigrate       bool
	MaxBody           int64
	MaxRoleSize       int64
	TimestampLifetime time.Duration
	SnapshotLifetime  time.Duration
	LogFormat         string
	LogLevel          string
	ShutdownTimeout   time.Duration
	Auth              string
	Tokens            string
	AuthReads         bool
	AllowAnonymous    bool
	GUNPrefixes       []string
	RegistryRealm     string
	RegistryService   string
	RegistryIssuer    string
	RegistryKeys      string
	RegistryMaxLife   time.Duration
	KeyCreateRate     float64
	KeyCreateBurst    int
	TrustedProxies    []string // addresses or CIDR prefixes, checked by checkProxy
	StagedPerGUN      int64
	StagedPerUser     int64
	StagedCountUser   int
	PruneKeep         int
	PruneInterval     time.Duration
}

const defaultDB = "./signet-data/signet.db"

// Commands implements cli.Commander.
func (c *config) Commands() []string {
	return []string{
		"migrate    apply the Postgres migrations",
		"token      create, list or revoke API tokens (--tokens FILE)",
		"prune      remove old metadata versions (--keep N)",
	}
}

func (c *config) Flags(fs *flag.FlagSet) {
	fs.StringVar(&c.Addr, "addr", "127.0.0.1:4443", "listen address (plain HTTP is allowed on loopback only; use --tls-cert/--tls-key elsewhere)")
	fs.StringVar(&c.DB, "db", defaultDB, "postgres:// URL, or a file path for the embedded store")
	fs.StringVar(&c.DBListenURL, "db-listen-url", "", "postgres:// URL of a session connection for change notifications (LISTEN), when --db names a pooler in transaction mode such as PgBouncer's; empty: a connection of --db's pool")
	fs.IntVar(&c.DBMaxConns, "db-max-conns", postgres.DefaultMaxConns, "most Postgres connections of this replica's pool, overriding pool_max_conns in --db (the listener takes one more)")
	fs.DurationVar(&c.CacheRecheck, "cache-recheck", metacache.DefaultSharedTTL, "with Postgres: how long this replica trusts a cached latest version before asking the database again, should a change notification be lost (longer: fewer statements, see docs/capacity.md; it adds to how late a publish can show)")
	fs.DurationVar(&c.CacheMaxAge, "cache-max-age", server.DefaultMaxAge, "Cache-Control max-age of timestamp.json, {role}.json and not-found answers, for engines and CDNs (whole seconds; versioned files are cacheable for a year)")
	fs.StringVar(&c.TLSCert, "tls-cert", "", "TLS certificate file (PEM)")
	fs.StringVar(&c.TLSKey, "tls-key", "", "TLS private key file (PEM)")
	fs.StringVar(&c.SignerKeys, "signer-keys", "", "key database of the built-in signer (default: signer.db beside the embedded database, or in ./signet-data/)")
	fs.StringVar(&c.Signer, "signer", "", "URL of signet-signer (https://HOST:PORT); empty runs the built-in signer")
	fs.StringVar(&c.SignerCA, "signer-ca", "", "CA bundle that signs signet-signer's certificate")
	fs.StringVar(&c.SignerCert, "signer-cert", "", "this server's client certificate for signet-signer")
	fs.StringVar(&c.SignerKey, "signer-key", "", "the client certificate's private key")
	fs.BoolVar(&c.AutoMigrate, "auto-migrate", false, "apply Postgres migrations at start (the embedded store always does)")
	fs.Int64Var(&c.MaxBody, "max-body", server.DefaultMaxBody, "largest accepted request body in bytes")
	fs.Int64Var(&c.MaxRoleSize, "max-role-size", server.DefaultTargetsMax, "largest targets or delegated role in bytes (clients must accept it too: go-tuf's default is 5 MB)")
	fs.DurationVar(&c.TimestampLifetime, "timestamp-lifetime", tufrepo.DefaultTimestampLifetime, "lifetime of server-signed timestamps (re-signed at half-life)")
	fs.DurationVar(&c.SnapshotLifetime, "snapshot-lifetime", tufrepo.DefaultSnapshotLifetime, "lifetime of server-signed snapshots")
	fs.StringVar(&c.LogFormat, "log-format", "json", "log format: json or text")
	fs.StringVar(&c.LogLevel, "log-level", "info", "log level: debug, info, warn, error")
	fs.DurationVar(&c.ShutdownTimeout, "shutdown-timeout", 20*time.Second, "how long to let requests finish on shutdown")
	fs.StringVar(&c.Auth, "auth", "none", "who may write: none (anyone: needs --allow-anonymous-writes), token (--tokens FILE) or registry (Docker registry tokens)")
	fs.StringVar(&c.RegistryRealm, "registry-realm", "", "with --auth registry: the token service URL clients are sent to")
	fs.StringVar(&c.RegistryService, "registry-service", "", "with --auth registry: this server's service name (the tokens' audience)")
	fs.StringVar(&c.RegistryIssuer, "registry-issuer", "", "with --auth registry: the token service's issuer")
	fs.StringVar(&c.RegistryKeys, "registry-keys", "", "with --auth registry: JWKS file or PEM certificate bundle of the token service's keys")
	fs.DurationVar(&c.RegistryMaxLife, "registry-max-token-lifetime", auth.DefaultMaxTokenLifetime, "with --auth registry: refuse tokens valid for longer than this (tokens must carry exp)")
	fs.StringVar(&c.Tokens, "tokens", "", "token file for --auth token (signet-server token create)")
	fs.BoolVar(&c.AuthReads, "auth-reads", false, "require a pull scope for reads too")
	fs.BoolVar(&c.AllowAnonymous, "allow-anonymous-writes", false, "with --auth none: yes, anyone who reaches the server may publish, delete and create keys (development only)")
	fs.Var(cli.List{Values: &c.TrustedProxies, Check: checkProxy}, "trusted-proxy", "address or CIDR of a reverse proxy whose X-Forwarded-For names the client (repeatable; in the environment, comma-separated); others' X-Forwarded-For is ignored")
	fs.Var(cli.List{Values: &c.GUNPrefixes}, "gun-prefix", "serve only repositories under this name prefix, matched by whole path components (repeatable; in the environment, comma-separated)")
	fs.Int64Var(&c.StagedPerGUN, "staged-quota-repo", server.DefaultStagedBytesPerGUN, "bytes all staged changes of one repository may hold (-1: no quota)")
	fs.Int64Var(&c.StagedPerUser, "staged-quota-principal", server.DefaultStagedBytesPerPrincipal, "bytes all staged changes of one token or registry subject may hold, in every repository (-1: no quota)")
	fs.IntVar(&c.StagedCountUser, "staged-changes-per-principal", server.DefaultStagedPerPrincipal, "staged changes one token or registry subject may hold in one repository (of its 64; -1: no bound)")
	fs.IntVar(&c.PruneKeep, "prune-keep", 0, "prune old metadata versions every --prune-interval, keeping this many of each role besides every root and what kept snapshots list (0: never; see signet-server prune)")
	fs.DurationVar(&c.PruneInterval, "prune-interval", time.Hour, "how often --prune-keep prunes")
	fs.Float64Var(&c.KeyCreateRate, "key-create-rate", 1, "new server keys per second allowed per client address (0: no limit)")
	fs.IntVar(&c.KeyCreateBurst, "key-create-burst", 20, "new server keys a client may create at once")
}

// proxyPrefix parses a trusted proxy: an address or a CIDR prefix.
func proxyPrefix(p string) (netip.Prefix, error) {
	if pfx, err := netip.ParsePrefix(p); err == nil {
		return pfx.Masked(), nil
	}
	a, err := netip.ParseAddr(p)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%q is neither an address nor a CIDR prefix", p)
	}
	return netip.PrefixFrom(a, a.BitLen()), nil
}

func checkProxy(p string) error {
	_, err := proxyPrefix(p)
	return err
}

func trustedProxies(list []string) []netip.Prefix {
	var out []netip.Prefix
	for _, p := range list {
		if pfx, err := proxyPrefix(p); err == nil { // checked when set
			out = append(out, pfx)
		}
	}
	return out
}

// Logging implements cli.Config.
func (c *config) Logging() (format, level string) { return c.LogFormat, c.LogLevel }

// Validate checks the configuration before anything starts.
func (c *config) Validate() error {
	var errs []error
	if _, _, err := net.SplitHostPort(c.Addr); err != nil {
		errs = append(errs, fmt.Errorf("--addr %q: %w", c.Addr, err))
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		errs = append(errs, errors.New("--tls-cert and --tls-key go together"))
	}
	if c.TLSCert == "" && !isLoopback(c.Addr) {
		errs = append(errs, fmt.Errorf("--addr %s is not loopback: serve TLS (--tls-cert, --tls-key), or put the server behind a TLS proxy on loopback", c.Addr))
	}
	if c.Signer != "" && (c.SignerCA == "" || c.SignerCert == "" || c.SignerKey == "") {
		errs = append(errs, errors.New("--signer needs --signer-ca, --signer-cert and --signer-key (mutual TLS)"))
	}
	if c.DB == "" {
		errs = append(errs, errors.New("--db is empty"))
	}
	if c.DBListenURL != "" && !isPostgres(c.DBListenURL) {
		errs = append(errs, errors.New("--db-listen-url must be a postgres:// URL"))
	}
	if c.DBListenURL != "" && !isPostgres(c.DB) {
		errs = append(errs, errors.New("--db-listen-url goes with a postgres:// --db (the embedded store has no listener)"))
	}
	if c.DBMaxConns < 1 {
		errs = append(errs, errors.New("--db-max-conns must be at least 1"))
	}
	if c.CacheRecheck < 10*time.Millisecond || c.CacheRecheck > time.Minute {
		errs = append(errs, fmt.Errorf("--cache-recheck %v must be between 10ms and 1m", c.CacheRecheck))
	}
	// A cache may hand out a timestamp for max-age after it fetched it, and
	// the server re-signs timestamps only at half-life: past that, caches
	// would serve timestamps that expire in them.
	if c.CacheMaxAge < 0 || c.CacheMaxAge%time.Second != 0 || c.CacheMaxAge >= c.TimestampLifetime/2 {
		errs = append(errs, fmt.Errorf("--cache-max-age %v must be whole seconds, at least 0 and under half of --timestamp-lifetime (%v)", c.CacheMaxAge, c.TimestampLifetime))
	}
	switch c.Auth {
	case "none":
		// Whatever the address: behind a TLS proxy on loopback, "loopback"
		// is everybody.
		if !c.AllowAnonymous {
			errs = append(errs, errors.New("--auth none lets anyone who reaches the server publish, delete and create keys: use --auth token (signet-server token create) or --auth registry, or, for development only, say --allow-anonymous-writes"))
		}
	case "token":
		if c.Tokens == "" {
			errs = append(errs, errors.New("--auth token needs --tokens FILE (signet-server token create --tokens FILE --scope …)"))
		}
	case "registry":
		if c.RegistryRealm == "" || c.RegistryService == "" || c.RegistryIssuer == "" || c.RegistryKeys == "" {
			errs = append(errs, errors.New("--auth registry needs --registry-realm, --registry-service, --registry-issuer and --registry-keys"))
		}
	default:
		// Not echoed: the signet CLI reads SIGNET_AUTH as registry
		// credentials (user:password), and a shell set up for it must not
		// print them here.
		errs = append(errs, errors.New("--auth (SIGNET_AUTH) is none of none, token, registry; if SIGNET_AUTH holds registry credentials for the signet CLI, unset it for signet-server"))
	}
	if c.AllowAnonymous && c.Auth != "none" {
		errs = append(errs, fmt.Errorf("--allow-anonymous-writes goes only with --auth none, not --auth %s", c.Auth))
	}
	if c.StagedPerGUN == 0 || c.StagedPerUser == 0 || c.StagedPerGUN < -1 || c.StagedPerUser < -1 {
		errs = append(errs, errors.New("--staged-quota-repo and --staged-quota-principal are byte counts, or -1 for no quota"))
	}
	if c.StagedCountUser == 0 || c.StagedCountUser < -1 {
		errs = append(errs, errors.New("--staged-changes-per-principal is a count, or -1 for no bound"))
	}
	if c.PruneKeep < 0 || c.PruneKeep == 1 || (c.PruneKeep > 0 && c.PruneInterval < time.Minute) {
		errs = append(errs, errors.New("--prune-keep must be 0 (off) or at least 2, and --prune-interval at least a minute"))
	}
	if c.MaxBody < 1024 {
		errs = append(errs, errors.New("--max-body must be at least 1024"))
	}
	if c.TimestampLifetime < time.Minute || c.SnapshotLifetime < time.Minute {
		errs = append(errs, errors.New("lifetimes must be at least a minute"))
	}
	return errors.Join(errs...)
}

func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func isPostgres(db string) bool {
	return strings.HasPrefix(db, "postgres://") || strings.HasPrefix(db, "postgresql://")
}

// run dispatches to a subcommand, given before or after the flags, or
// serves.
func run(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	var cfg config
	cmd, args := cli.Command(&cfg, args, "migrate", "token", "prune")
	switch cmd {
	case "migrate":
		return runMigrate(ctx, args, stderr, getenv)
	case "token":
		return runToken(args, stdout, stderr, getenv)
	case "prune":
		return runPrune(ctx, args, stderr, getenv)
	}
	return cli.Serve(ctx, "signet-server", "SIGNET_", &cfg, args, stdout, stderr, getenv, func(ctx context.Context, log *slog.Logger) error {
		return serve(ctx, cfg, log, getenv)
	})
}

func authorizer(cfg config) (auth.Authorizer, error) {
	switch cfg.Auth {
	case "token":
		return auth.LoadTokens(cfg.Tokens, cfg.AuthReads)
	case "registry":
		return auth.NewRegistry(auth.RegistryConfig{Realm: cfg.RegistryRealm, Service: cfg.RegistryService,
			Issuer: cfg.RegistryIssuer, Keys: cfg.RegistryKeys, AuthReads: cfg.AuthReads, MaxLifetime: cfg.RegistryMaxLife})
	}
	return auth.AllowAll{}, nil
}

const tokenUsage = `usage:
  signet-server token create --tokens FILE --scope ACTION:PATTERN [--scope …] [--expires 720h|30d|2027-01-31]
  signet-server token list --tokens FILE
  signet-server token revoke --tokens FILE ID [ID …]`

// runToken is `signet-server token create|list|revoke`. A running server
// re-reads the token file, so changes take effect without a restart.
func runToken(args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	sub, args := cli.SplitCommand(args, flag.NewFlagSet("", flag.ContinueOnError), "create", "list", "revoke")
	if sub == "" {
		fmt.Fprintln(stderr, tokenUsage)
		return 2
	}
	fs := flag.NewFlagSet("signet-server token "+sub, flag.ContinueOnError)
	fs.SetOutput(stderr)
	file := fs.String("tokens", "", "token file (only hashes are stored)")
	var scopes []string
	var expires string
	switch sub {
	case "create":
		fs.Func("scope", "ACTION:PATTERN, e.g. push:registry.example.com/team/* (repeatable; actions pull, push, admin)", func(v string) error {
			scopes = append(scopes, v)
			return nil
		})
		fs.StringVar(&expires, "expires", "", "when the token stops working: a duration from now (720h, 30d) or a date (2027-01-31, RFC 3339); default never")
	}
	if err := cli.Parse(fs, args, "SIGNET_", getenv); err != nil {
		return 2
	}
	if *file == "" {
		fmt.Fprintf(stderr, "signet-server token %s: --tokens FILE is required\n", sub)
		return 2
	}
	now := time.Now()
	fail := func(err error) int {
		fmt.Fprintf(stderr, "signet-server token %s: %v\n", sub, err)
		return 1
	}
	switch sub {
	case "create":
		exp, err := parseExpiry(expires, now)
		if err != nil {
			fmt.Fprintf(stderr, "signet-server token create: --expires: %v\n", err)
			return 2
		}
		id, token, err := auth.CreateToken(*file, scopes, now, exp)
		if err != nil {
			return fail(err)
		}
		until := "never expires"
		if !exp.IsZero() {
			until = "expires " + exp.UTC().Format(time.RFC3339)
		}
		fmt.Fprintf(stderr, "token %s created with scopes %s (%s); it is shown only now:\n", id, strings.Join(scopes, " "), until)
		fmt.Fprintln(stdout, token)
	case "list":
		list, err := auth.ListTokens(*file)
		if err != nil {
			return fail(err)
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tCREATED\tEXPIRES\tSCOPES")
		for _, t := range list {
			exp := "never"
			if !t.ExpiresAt.IsZero() {
				exp = t.ExpiresAt.UTC().Format(time.RFC3339)
				if !now.Before(t.ExpiresAt) {
					exp += " (expired)"
				}
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", t.ID, t.CreatedAt.UTC().Format(time.RFC3339), exp, strings.Join(t.Scopes, " "))
		}
		if err := tw.Flush(); err != nil {
			return fail(err)
		}
	case "revoke":
		if err := auth.RevokeTokens(*file, fs.Args()); err != nil {
			return fail(err)
		}
		fmt.Fprintf(stderr, "revoked %s; a running server stops accepting it within seconds\n", strings.Join(fs.Args(), " "))
	}
	return 0
}

// parseExpiry reads --expires: "" (never), a Go duration or N days ("30d")
// from now, a date (midnight UTC) or an RFC 3339 time.
func parseExpiry(v string, now time.Time) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	if days, ok := strings.CutSuffix(v, "d"); ok {
		if n, err := strconv.Atoi(days); err == nil && n > 0 {
			return now.AddDate(0, 0, n), nil
		}
	}
	if d, err := time.ParseDuration(v); err == nil {
		if d <= 0 {
			return time.Time{}, fmt.Errorf("%q is not in the future", v)
		}
		return now.Add(d), nil
	}
	for _, layout := range []string{time.RFC3339, time.DateOnly} {
		if t, err := time.Parse(layout, v); err == nil {
			if !t.After(now) {
				return time.Time{}, fmt.Errorf("%s is not in the future", v)
			}
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("%q: want a duration (720h, 30d), a date (2027-01-31) or an RFC 3339 time", v)
}

// runPrune is `signet-server prune --db … [--keep N]`: the retention rule
// of server.Prune, once. Run it from cron or a Kubernetes CronJob; it is
// safe beside running servers.
func runPrune(ctx context.Context, args []string, stderr io.Writer, getenv func(string) string) int {
	fs := flag.NewFlagSet("signet-server prune", flag.ContinueOnError)
	fs.SetOutput(stderr)
	db := fs.String("db", defaultDB, "postgres:// URL, or the embedded store's file")
	keep := fs.Int("keep", server.DefaultKeepVersions, "versions of each role to keep besides every root and what the kept snapshots and timestamps list")
	if err := cli.Parse(fs, args, "SIGNET_", getenv); err != nil {
		return 2
	}
	// At least 2: with 1, a client that just read a timestamp could find
	// the snapshot it lists pruned by a publish racing the prune.
	if *keep < 2 {
		fmt.Fprintln(stderr, "signet-server prune: --keep must be at least 2")
		return 2
	}
	if !isPostgres(*db) {
		if _, err := os.Stat(*db); err != nil {
			fmt.Fprintf(stderr, "signet-server prune: %v\n", err)
			return 1
		}
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))
	st, err := openStore(ctx, config{DB: *db})
	if err != nil {
		fmt.Fprintf(stderr, "signet-server prune: %v\n", err)
		return 1
	}
	defer st.Close()
	res, err := server.Prune(ctx, st, *keep, log)
	fmt.Fprintf(stderr, "signet-server prune: %d repositories, %d old versions removed\n", res.Repositories, res.Removed)
	if err != nil {
		fmt.Fprintf(stderr, "signet-server prune: %v\n", err)
		return 1
	}
	return 0
}

func runMigrate(ctx context.Context, args []string, stderr io.Writer, getenv func(string) string) int {
	fs := flag.NewFlagSet("signet-server migrate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	db := fs.String("db", "", "postgres:// URL (the embedded store migrates itself when opened)")
	if err := cli.Parse(fs, args, "SIGNET_", getenv); err != nil {
		return 2
	}
	if err := migrate(ctx, *db); err != nil {
		fmt.Fprintf(stderr, "signet-server migrate: %v\n", err)
		return 1
	}
	fmt.Fprintln(stderr, "signet-server migrate: database is up to date")
	return 0
}

func migrate(ctx context.Context, db string) error {
	if !isPostgres(db) {
		st, err := sqlite.Open(ctx, db)
		if err != nil {
			return err
		}
		return st.Close()
	}
	st, err := postgres.Open(ctx, db)
	if err != nil {
		return err
	}
	defer st.Close()
	return st.Migrate(ctx)
}

func openStore(ctx context.Context, cfg config) (store.MetaStore, error) {
	if !isPostgres(cfg.DB) {
		return sqlite.Open(ctx, cfg.DB)
	}
	opts := []postgres.Option{postgres.WithMaxConns(int32(min(cfg.DBMaxConns, math.MaxInt32)))}
	if cfg.DBMaxConns == 0 {
		opts = nil // a one-off command (prune): the store's default
	}
	if cfg.DBListenURL != "" {
		opts = append(opts, postgres.WithListenURL(cfg.DBListenURL))
	}
	st, err := postgres.Open(ctx, cfg.DB, opts...)
	if err != nil {
		return nil, err
	}
	if cfg.AutoMigrate {
		if err := st.Migrate(ctx); err != nil {
			st.Close()
			return nil, err
		}
	}
	return st, nil
}

func serve(ctx context.Context, cfg config, log *slog.Logger, getenv func(string) string) error {
	st, err := openStore(ctx, cfg)
	if err != nil {
		return fmt.Errorf("open store: %w", err)
	}
	defer st.Close()
	sg, closeSigner, err := openSigner(ctx, cfg, log, getenv)
	if err != nil {
		return fmt.Errorf("open signer: %w", err)
	}
	defer closeSigner()
	authz, err := authorizer(cfg)
	if err != nil {
		return err
	}
	srv := server.New(st, sg,
		server.WithLogger(log),
		server.WithRegistry(newRegistry()),
		server.WithAuthorizer(authz),
		server.WithGUNPrefixes(cfg.GUNPrefixes...),
		server.WithKeyCreationLimit(cfg.KeyCreateRate, cfg.KeyCreateBurst),
		server.WithTrustedProxies(trustedProxies(cfg.TrustedProxies)...),
		server.WithStagedQuota(store.StagedQuota{PerGUN: cfg.StagedPerGUN, PerPrincipal: cfg.StagedPerUser, CountPerPrincipal: cfg.StagedCountUser}),
		server.WithPruning(cfg.PruneKeep, cfg.PruneInterval),
		server.WithLimits(server.Limits{MaxBody: cfg.MaxBody, TargetsMax: cfg.MaxRoleSize}),
		server.WithMaxAge(cfg.CacheMaxAge),
		server.WithCacheOptions(cacheOptions(cfg)...),
		server.WithRepoOptions(tufrepo.WithLifetimes(cfg.TimestampLifetime, cfg.SnapshotLifetime)),
	)
	hs := &http.Server{
		Addr:              cfg.Addr,
		Handler:           srv.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       2 * time.Minute,
		WriteTimeout:      2 * time.Minute,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		TLSConfig:         &tls.Config{MinVersion: tls.VersionTLS12},
	}
	if cfg.TLSCert != "" {
		// Re-read the certificate when its files change (they rotate on
		// Kubernetes).
		rl, err := tlsutil.NewReloader(cfg.TLSCert, cfg.TLSKey)
		if err != nil {
			return err
		}
		hs.TLSConfig.GetCertificate = rl.GetCertificate
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	bg := make(chan error, 1)
	go func() { bg <- srv.Run(runCtx) }()
	served := make(chan error, 1)
	go func() {
		if cfg.TLSCert != "" {
			served <- hs.ServeTLS(ln, "", "")
		} else {
			served <- hs.Serve(ln)
		}
	}()
	log.Info("signet-server serving", "addr", ln.Addr().String(), "tls", cfg.TLSCert != "", "store", storeKind(cfg.DB))
	select {
	case err := <-served:
		return fmt.Errorf("serve: %w", err)
	case err := <-bg:
		if err != nil {
			return fmt.Errorf("background work: %w", err)
		}
	case <-ctx.Done():
	}
	log.Info("shutting down")
	sctx, scancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.ShutdownTimeout)
	defer scancel()
	err = hs.Shutdown(sctx)
	cancel()
	if bgErr := <-bg; bgErr != nil && err == nil {
		err = bgErr
	}
	return err
}

// cacheOptions tunes the read cache: a replica on a shared database
// re-checks latest versions every --cache-recheck; the embedded store has
// one writer, this process, and its cache trusts entries until it
// invalidates them.
func cacheOptions(cfg config) []metacache.Option {
	if !isPostgres(cfg.DB) {
		return nil
	}
	return []metacache.Option{metacache.WithTTL(cfg.CacheRecheck)}
}

// newRegistry is the binary's metrics registry, with the Go runtime and
// process collectors (go_*, process_*) beside signet's own.
func newRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

func storeKind(db string) string {
	if isPostgres(db) {
		return "postgres"
	}
	return "embedded:" + filepath.Clean(db)
}
