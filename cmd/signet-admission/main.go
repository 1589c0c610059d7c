// Command signet-admission is Signet's Kubernetes admission webhook
// (package admission): pods run only images the pull policy allows, and
// signed images are pinned to the digest their tag vouches for.
//
//	signet-admission --tls-cert tls.crt --tls-key tls.key --policy /etc/signet/policy.yaml
//
// It serves the webhook over HTTPS (TLS 1.2 or later; the certificate and
// key are re-read when their files change, as cert-manager rotates them) on
// --addr: POST /mutate and POST /validate take admission.k8s.io/v1
// AdmissionReviews. /healthz, /readyz and Prometheus /metrics are served
// over plain HTTP on --health-addr, for the kubelet and Prometheus.
// Every flag can also be set with SIGNET_ADMISSION_<FLAG>. This is the
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
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/signetdev/signet/admission"
	"github.com/signetdev/signet/internal/cli"
	"github.com/signetdev/signet/internal/tlsutil"
	"github.com/signetdev/signet/policy"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr, os.Getenv, nil))
}

// config is signet-admission's whole configuration.
type config struct {
	Addr            string
	HealthAddr      string
	TLSCert, TLSKey string
	Policy          string
	CacheSize       int
	CacheTTL        time.Duration
	ReviewTimeout   time.Duration
	ShutdownDelay   time.Duration
	ShutdownTimeout time.Duration
	LogFormat       string
	LogLevel        string
}

func (c *config) Flags(fs *flag.FlagSet) {
	fs.StringVar(&c.Addr, "addr", ":8443", "HTTPS listen address of the webhook")
	fs.StringVar(&c.HealthAddr, "health-addr", ":8080", "plain HTTP listen address of /healthz, /readyz and /metrics")
	fs.StringVar(&c.TLSCert, "tls-cert", "", "TLS certificate file (PEM), re-read when it changes")
	fs.StringVar(&c.TLSKey, "tls-key", "", "TLS private key file (PEM), re-read when it changes")
	fs.StringVar(&c.Policy, "policy", "/etc/signet/policy.yaml", "pull policy file (deploy/policy.sample.yaml documents it)")
	fs.IntVar(&c.CacheSize, "cache-size", admission.DefaultCacheSize, "most verified decisions kept in memory")
	fs.DurationVar(&c.CacheTTL, "cache-ttl", admission.DefaultCacheTTL, "how long a verified decision answers without asking the trust server (never beyond its TUF expiry; a revocation takes this long to reach the webhook; 0 or less: no cache)")
	fs.DurationVar(&c.ReviewTimeout, "review-timeout", admission.DefaultReviewTimeout, "longest time one review may take (the API server's timeoutSeconds shortens it)")
	fs.DurationVar(&c.ShutdownDelay, "shutdown-delay", 5*time.Second, "on SIGTERM, how long to answer reviews while /readyz fails, so endpoints drain")
	fs.DurationVar(&c.ShutdownTimeout, "shutdown-timeout", 10*time.Second, "how long to let reviews finish on shutdown")
	fs.StringVar(&c.LogFormat, "log-format", "json", "log format: json or text")
	fs.StringVar(&c.LogLevel, "log-level", "info", "log level: debug, info, warn, error")
}

// Logging implements cli.Config.
func (c *config) Logging() (format, level string) { return c.LogFormat, c.LogLevel }

// Validate checks the configuration before anything starts.
func (c *config) Validate() error {
	var errs []error
	for name, a := range map[string]string{"--addr": c.Addr, "--health-addr": c.HealthAddr} {
		if _, _, err := net.SplitHostPort(a); err != nil {
			errs = append(errs, fmt.Errorf("%s %q: %w", name, a, err))
		}
	}
	if c.TLSCert == "" || c.TLSKey == "" {
		errs = append(errs, errors.New("--tls-cert and --tls-key are required: the API server calls webhooks over HTTPS only"))
	}
	if c.Policy == "" {
		errs = append(errs, errors.New("--policy is required"))
	}
	if c.CacheSize < 0 {
		errs = append(errs, errors.New("--cache-size must not be negative"))
	}
	if c.ReviewTimeout <= 0 || c.ReviewTimeout > 30*time.Second {
		errs = append(errs, errors.New("--review-timeout must be more than 0 and at most 30s (the API server's longest webhook timeout)"))
	}
	return errors.Join(errs...)
}

// run parses the configuration and serves until ctx ends. listening, if
// set, receives the webhook's and the health server's addresses (tests).
func run(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string, listening func(hook, health string)) int {
	var cfg config
	return cli.Serve(ctx, "signet-admission", "SIGNET_ADMISSION_", &cfg, args, stdout, stderr, getenv, func(ctx context.Context, log *slog.Logger) error {
		return serve(ctx, cfg, log.With("component", "signet-admission"), listening)
	})
}

func serve(ctx context.Context, cfg config, log *slog.Logger, listening func(hook, health string)) error {
	f, err := policy.Load(cfg.Policy)
	if err != nil {
		return err
	}
	p, err := policy.New(f, policy.WithLogger(log.With("component", "policy")))
	if err != nil {
		return err
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	ttl := cfg.CacheTTL
	if ttl <= 0 {
		ttl = -1 // admission.Options: negative disables the cache
	}
	w, err := admission.New(admission.Options{Policy: p, CacheSize: cfg.CacheSize, CacheTTL: ttl, ReviewTimeout: cfg.ReviewTimeout, Registerer: reg, Logger: log})
	if err != nil {
		return err
	}
	rl, err := tlsutil.NewReloader(cfg.TLSCert, cfg.TLSKey)
	if err != nil {
		return err
	}
	hookLn, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return err
	}
	healthLn, err := net.Listen("tcp", cfg.HealthAddr)
	if err != nil {
		hookLn.Close()
		return err
	}
	var ready atomic.Bool
	ready.Store(true)
	hs := &http.Server{
		Handler:           w.Handler(),
		TLSConfig:         &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: rl.GetCertificate},
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       15 * time.Second,
		WriteTimeout:      cfg.ReviewTimeout + 5*time.Second,
		IdleTimeout:       90 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(rw http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(rw, "ok\n") })
	mux.HandleFunc("GET /readyz", func(rw http.ResponseWriter, _ *http.Request) {
		if !ready.Load() {
			http.Error(rw, "shutting down", http.StatusServiceUnavailable)
			return
		}
		_, _ = io.WriteString(rw, "ok\n")
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	health := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second, WriteTimeout: 10 * time.Second}

	errc := make(chan error, 2)
	go func() { errc <- hs.ServeTLS(hookLn, "", "") }()
	go func() { errc <- health.Serve(healthLn) }()
	log.Info("serving", "addr", hookLn.Addr().String(), "health_addr", healthLn.Addr().String(), "policy", cfg.Policy, "cache_ttl", cfg.CacheTTL, "cache_size", cfg.CacheSize)
	if listening != nil {
		listening(hookLn.Addr().String(), healthLn.Addr().String())
	}
	select {
	case err := <-errc:
		hs.Close()
		health.Close()
		return err
	case <-ctx.Done():
	}
	// Drain: fail /readyz so the Service stops sending reviews, keep
	// answering those that still come, then shut down.
	ready.Store(false)
	log.Info("shutting down", "delay", cfg.ShutdownDelay)
	select {
	case <-time.After(cfg.ShutdownDelay):
	case err := <-errc:
		return err
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.ShutdownTimeout)
	defer cancel()
	err = errors.Join(hs.Shutdown(sctx), health.Shutdown(sctx))
	if err != nil {
		return err
	}
	return nil
}
