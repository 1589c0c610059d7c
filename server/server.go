// Package server is signet-server's HTTP API: the chi route table, handlers,
// middleware, error mapping and metrics. It serves and accepts standard TUF
// 1.0 metadata under Notary-style paths (/v2/{gun}/_trust/tuf/…).
//
// Handlers parse and bound the request, then call tufrepo (TUF rules) or the
// store through metacache (reads). This package holds no SQL, no TUF rules
// and no private keys. A Server is safe for concurrent use.
package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/signetdev/signet/api"

	"github.com/signetdev/signet/server/auth"

	"github.com/go-chi/chi/v5"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/singleflight"

	"github.com/signetdev/signet/internal/reqid"
	"github.com/signetdev/signet/server/metacache"
	"github.com/signetdev/signet/server/store"
	"github.com/signetdev/signet/server/tufrepo"
	"github.com/signetdev/signet/signer"
)

// Defaults for limits and upkeep.
const (
	DefaultMaxBody       = 16 << 20
	DefaultRootMax       = 512_000 // go-tuf's updater defaults
	DefaultSnapshotMax   = 2_000_000
	DefaultTargetsMax    = 5_000_000
	DefaultSweepInterval = time.Minute
	DefaultRequestTimout = 30 * time.Second
	// DefaultMaxAge is how long clients and caches (a CDN) may reuse
	// timestamp.json, {role}.json and not-found answers before asking
	// again: the server's share of how late a publish or a revocation
	// reaches an engine (see WithMaxAge).
	DefaultMaxAge = 10 * time.Second
)

// Limits bound what a publish may upload.
type Limits struct {
	MaxBody     int64 // whole request body
	RootMax     int64
	SnapshotMax int64
	TargetsMax  int64 // targets and each delegated role
}

// Server serves the HTTP API.
type Server struct {
	repo     *tufrepo.Repo
	store    store.MetaStore
	cache    *metacache.Cache
	signer   signer.Service
	auth     auth.Authorizer
	log      *slog.Logger
	limits   Limits
	metrics  *metrics
	sweep    time.Duration
	timeout  time.Duration
	refresh  singleflight.Group
	prefixes []string
	keyLimit *keyLimiter
	trusted  []netip.Prefix
	cc       cacheControls
	// validGUNs: names of repositories this server accepted (splitGUN).
	validGUNs gunMemo
	now       func() time.Time

	pruneKeep  int
	pruneEvery time.Duration
}

type options struct {
	log       *slog.Logger
	auth      auth.Authorizer
	limits    Limits
	registry  *prometheus.Registry
	sweep     time.Duration
	timeout   time.Duration
	repoOpts  []tufrepo.Option
	cacheOpts []metacache.Option
	prefixes  []string
	keyRate   float64
	keyBurst  int
	trusted   []netip.Prefix
	now       func() time.Time
	maxAge    time.Duration

	stagedQuota store.StagedQuota
	pruneKeep   int
	pruneEvery  time.Duration
}

// Option configures a Server.
type Option func(*options)

// WithLogger sets the logger.
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.log = l } }

// WithAuthorizer sets who may do what; the default allows everything.
func WithAuthorizer(a auth.Authorizer) Option { return func(o *options) { o.auth = a } }

// WithLimits sets upload limits; zero fields keep their defaults.
func WithLimits(l Limits) Option { return func(o *options) { o.limits = l } }

// WithRegistry sets the Prometheus registry metrics are registered in.
func WithRegistry(r *prometheus.Registry) Option { return func(o *options) { o.registry = r } }

// WithSweepInterval sets how often Run looks for timestamps to re-sign
// (0 disables the sweep; reads still re-sign lazily).
func WithSweepInterval(d time.Duration) Option { return func(o *options) { o.sweep = d } }

// WithGUNPrefixes serves only repositories whose GUN starts with one of
// prefixes; others are refused with 403.
func WithGUNPrefixes(prefixes ...string) Option { return func(o *options) { o.prefixes = prefixes } }

// WithRequestTimeout bounds every request's work (default
// DefaultRequestTimout); a publish past it stops and answers 503. Metadata
// reads are bounded by the store's own timeouts instead (authorizedUntimed).
func WithRequestTimeout(d time.Duration) Option { return func(o *options) { o.timeout = d } }

// WithKeyCreationLimit bounds how fast one client (by address) may create
// server keys: perSecond on average, burst at once. 0 disables the limit.
func WithKeyCreationLimit(perSecond float64, burst int) Option {
	return func(o *options) { o.keyRate, o.keyBurst = perSecond, burst }
}

// WithTrustedProxies names the proxies whose X-Forwarded-For header gives
// the client address (for the key-creation limit and the access log). With
// none, the header is ignored and the TCP peer is the client.
func WithTrustedProxies(proxies ...netip.Prefix) Option {
	return func(o *options) { o.trusted = proxies }
}

// WithMaxAge sets the Cache-Control max-age of the answers that change
// with every publish: timestamp.json, {role}.json and metadata not found
// (default DefaultMaxAge; whole seconds, 0 makes every reuse ask first).
// Versioned and checksum-addressed files never change and are always
// cacheable for a year. A revoked tag can reach an engine up to this long
// after the publish that revoked it, plus the client's own staleness.
func WithMaxAge(d time.Duration) Option { return func(o *options) { o.maxAge = d } }

// WithPruning makes Run apply the retention rule (see Prune) every interval,
// keeping keep versions of each role. Off by default; signet-server prune
// does the same once.
func WithPruning(keep int, interval time.Duration) Option {
	return func(o *options) { o.pruneKeep, o.pruneEvery = keep, interval }
}

// WithClock sets the clock of the server's own metrics (the expiry gauge)
// and of conditional requests (an If-Modified-Since in the future is
// ignored); give tufrepo the same one through WithRepoOptions(tufrepo.WithClock(…)).
func WithClock(now func() time.Time) Option { return func(o *options) { o.now = now } }

// WithRepoOptions passes options to the TUF layer (clock, lifetimes, …).
func WithRepoOptions(opts ...tufrepo.Option) Option {
	return func(o *options) { o.repoOpts = append(o.repoOpts, opts...) }
}

// WithCacheOptions passes options to the read cache.
func WithCacheOptions(opts ...metacache.Option) Option {
	return func(o *options) { o.cacheOpts = append(o.cacheOpts, opts...) }
}

// New returns a Server over st and sg.
func New(st store.MetaStore, sg signer.Service, opts ...Option) *Server {
	o := options{
		log:      slog.New(slog.DiscardHandler),
		auth:     auth.AllowAll{},
		sweep:    DefaultSweepInterval,
		timeout:  DefaultRequestTimout,
		keyRate:  1,
		keyBurst: 20,
		now:      time.Now,
		maxAge:   DefaultMaxAge,
	}
	for _, opt := range opts {
		opt(&o)
	}
	o.limits = withDefaults(o.limits)
	o.maxAge = max(o.maxAge, 0).Truncate(time.Second)
	if o.registry == nil {
		o.registry = prometheus.NewRegistry()
	}
	// Every line logged with a request's context names its request ID,
	// tufrepo's included.
	o.log = slog.New(reqid.Handler(o.log.Handler()))
	log := o.log.With("component", "server")
	cache := metacache.New(st, o.cacheOpts...)
	m := newMetrics(o.registry, cache.Stats)
	registerCacheSize(o.registry, cache)
	o.registry.MustRegister(newExpiryCollector(st, o.now))
	if p, ok := st.(poolStats); ok {
		m.registerPool(p)
	}
	sg = instrumentedSigner{Service: sg, hist: m.signer}
	repo := tufrepo.New(withQuotas(st, stagedQuotaDefaults(o.stagedQuota)), sg,
		append([]tufrepo.Option{tufrepo.WithLogger(o.log), tufrepo.WithInvalidate(cache.Invalidate)}, o.repoOpts...)...)
	return &Server{
		repo:     repo,
		store:    st,
		cache:    cache,
		signer:   sg,
		auth:     o.auth,
		log:      log,
		limits:   o.limits,
		metrics:  m,
		sweep:    o.sweep,
		timeout:  o.timeout,
		prefixes: o.prefixes,
		keyLimit: newKeyLimiter(o.keyRate, o.keyBurst),
		trusted:  o.trusted,
		cc:       newCacheControls(o.maxAge),
		now:      o.now,

		pruneKeep:  o.pruneKeep,
		pruneEvery: o.pruneEvery,
	}
}

func withDefaults(l Limits) Limits {
	def := func(v *int64, d int64) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&l.MaxBody, DefaultMaxBody)
	def(&l.RootMax, DefaultRootMax)
	def(&l.SnapshotMax, DefaultSnapshotMax)
	def(&l.TargetsMax, DefaultTargetsMax)
	return l
}

// Handler returns the whole route table.
func (s *Server) Handler() http.Handler {
	r := chi.NewRouter()
	r.Use(s.withRequest, s.observe)
	r.Get("/healthz", s.healthz)
	r.Get("/readyz", s.readyz)
	r.Method(http.MethodGet, "/metrics", s.metrics.handler())

	r.Get("/v2/", s.handle(s.ping))
	r.Get("/v2/_trust/changefeed", s.authorized(auth.ActionAdmin, s.changefeed))
	r.Handle("/v2/*", s.repoRoutes())
	r.NotFound(s.handle(func(http.ResponseWriter, *http.Request) error { return notFound("no such endpoint") }))
	r.MethodNotAllowed(s.handle(func(http.ResponseWriter, *http.Request) error {
		return &httpError{status: http.StatusMethodNotAllowed, code: api.CodeMethod, msg: "method not allowed"}
	}))
	return r
}

// repoRoutes serves /v2/{gun}/_trust/…: it takes the GUN (which has
// slashes) off the path, then routes the rest.
func (s *Server) repoRoutes() http.Handler {
	t := chi.NewRouter()
	t.Get("/_trust/tuf/*", s.authorizedUntimed(auth.ActionPull, s.getFile))
	t.Head("/_trust/tuf/*", s.authorizedUntimed(auth.ActionPull, s.getFile))
	t.Post("/_trust/tuf/*", s.authorized(auth.ActionAdmin, s.rotateKey))
	t.Post("/_trust/tuf/", s.authorized(auth.ActionPush, s.publish))
	t.Delete("/_trust/tuf/", s.authorized(auth.ActionAdmin, s.deleteRepo))
	t.Get("/_trust/staged/", s.authorized(auth.ActionPull, s.listStaged))
	t.Post("/_trust/staged/", s.authorized(auth.ActionPush, s.stage))
	t.Get("/_trust/staged/{id}", s.authorized(auth.ActionPull, s.getStaged))
	t.Post("/_trust/staged/{id}", s.authorized(auth.ActionPush, s.approve))
	t.Delete("/_trust/staged/{id}", s.authorized(auth.ActionPush, s.withdrawStaged))
	t.NotFound(s.handle(func(http.ResponseWriter, *http.Request) error { return notFound("no such endpoint") }))
	t.MethodNotAllowed(s.handle(func(http.ResponseWriter, *http.Request) error {
		return &httpError{status: http.StatusMethodNotAllowed, code: api.CodeMethod, msg: "method not allowed"}
	}))
	return s.handle(func(w http.ResponseWriter, r *http.Request) error {
		gun, rest, err := splitGUN(r.URL.EscapedPath(), &s.validGUNs)
		if err != nil {
			return err
		}
		if !gunAllowed(s.prefixes, gun) {
			return &httpError{status: http.StatusForbidden, code: api.CodeDenied, msg: fmt.Sprintf("this server does not hold repositories named %s (allowed prefixes: %s)", gun, strings.Join(s.prefixes, ", "))}
		}
		chi.RouteContext(r.Context()).RoutePath = rest
		infoOf(r.Context()).gun = gun
		t.ServeHTTP(w, r)
		return nil
	})
}

// authorized declares, in the route table, the action a route needs on
// the request's repository (for the global change feed: on none): the
// router asks the Authorizer once, before the handler runs. Handlers check
// only what depends on the request itself (creating a missing server key
// needs push; withdrawing a staged change, its stager, an admin or a key
// holder). The handler runs under the request timeout
// (WithRequestTimeout), which bounds what it may wait for the store and
// the signer.
func (s *Server) authorized(action auth.Action, h func(http.ResponseWriter, *http.Request) error) http.HandlerFunc {
	return s.authorizedUntimed(action, func(w http.ResponseWriter, r *http.Request) error {
		ctx, cancel := context.WithTimeout(r.Context(), s.timeout)
		defer cancel()
		return h(w, r.WithContext(ctx))
	})
}

// authorizedUntimed is authorized without the request timeout, for
// getFile alone: metadata reads come from the cache, whose fetches on a
// miss are detached from the request and bounded by the store's own
// timeouts (metacache), and so is the timestamp's re-signing; getFile
// bounds the calls that wait on the request (getKey, GetChecksum). A timeout per
// read cost a timer and a child context registered on the request's, a
// twelfth of the server's CPU per GET of timestamp.json.
func (s *Server) authorizedUntimed(action auth.Action, h func(http.ResponseWriter, *http.Request) error) http.HandlerFunc {
	return s.handle(func(w http.ResponseWriter, r *http.Request) error {
		gun := gunOf(r)
		if err := s.auth.Authorize(r.Context(), r, gun, action); err != nil {
			return err
		}
		return h(w, r)
	})
}

// handle adapts a handler that returns an error.
func (s *Server) handle(h func(http.ResponseWriter, *http.Request) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := h(w, r); err != nil {
			s.writeError(w, r, err)
		}
	}
}

// Run does the background work until ctx ends: it follows other replicas'
// writes (shared stores) and re-signs timestamps at half-life.
func (s *Server) Run(ctx context.Context) error {
	errc := make(chan error, 1)
	go func() { errc <- s.cache.Run(ctx) }()
	if s.pruneKeep > 0 && s.pruneEvery > 0 {
		done := make(chan struct{})
		defer func() { <-done }()
		go func() {
			defer close(done)
			s.pruneLoop(ctx)
		}()
	}
	if s.sweep > 0 {
		t := time.NewTicker(s.sweep)
		defer t.Stop()
		for {
			s.sweepOnce(ctx)
			select {
			case <-ctx.Done():
				return waitRun(errc)
			case <-t.C:
			}
		}
	}
	<-ctx.Done()
	return waitRun(errc)
}

// pruneLoop applies the retention rule (Prune) every pruneEvery until ctx
// ends. Replicas that all prune are safe: pruning is idempotent and holds
// each repository's lock.
func (s *Server) pruneLoop(ctx context.Context) {
	t := time.NewTicker(s.pruneEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		res, err := Prune(ctx, s.store, s.pruneKeep, s.log)
		if err != nil && ctx.Err() == nil {
			s.log.WarnContext(ctx, "pruning incomplete", "removed", res.Removed, "err", err)
		} else if res.Removed > 0 {
			s.log.InfoContext(ctx, "pruned old metadata versions", "repositories", res.Repositories, "removed", res.Removed)
		}
		if res.Removed > 0 {
			s.cache.InvalidateAll() // this process stops serving what it removed
		}
	}
}

func waitRun(errc chan error) error {
	if err := <-errc; err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}

func (s *Server) sweepOnce(ctx context.Context) {
	n, err := s.repo.Sweep(ctx, 500)
	s.metrics.refreshes.Add(float64(n))
	if err != nil && ctx.Err() == nil {
		s.log.WarnContext(ctx, "sweep incomplete", "refreshed", n, "err", err)
	}
	if n, err := s.repo.SweepStaged(ctx); err != nil && ctx.Err() == nil {
		s.log.WarnContext(ctx, "sweep of expired staged changes failed", "err", err)
	} else if n > 0 {
		s.log.InfoContext(ctx, "removed expired staged changes", "count", n)
	}
}
