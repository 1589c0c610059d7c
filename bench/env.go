package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/signetdev/signet/internal/pgtest"
)

const (
	getConns   = 32
	publishers = 16
	signConns  = 16
	smallGUN   = "bench.example.com/small"
	bigGUN     = "bench.example.com/big10k"
)

// env is everything the figures run against.
type env struct {
	tmp      string
	cluster  *pgtest.Cluster
	pgBase   string
	rawURL   string
	signer   *proc
	pgServer *proc
	embedded *proc
	procs    []*proc
	certs    string
}

func dbURL(base, name string) string {
	u := base
	if i := len(u) - len("/postgres?sslmode=disable"); i > 0 && u[i:] == "/postgres?sslmode=disable" {
		return u[:i] + "/" + name + "?sslmode=disable"
	}
	return u
}

func newEnv(ctx context.Context, tmp string, pr progress) (*env, error) {
	e := &env{tmp: tmp, certs: filepath.Join(tmp, "certs")}
	e.pgBase = pgtest.Find(os.Getenv)
	if e.pgBase == "" {
		pr.say("starting a throwaway PostgreSQL cluster")
		c, err := pgtest.Start(ctx)
		if err != nil {
			return nil, err
		}
		e.cluster, e.pgBase = c, c.URL
	}
	if err := createDBs(ctx, e.pgBase, "signet_bench_server", "signet_bench_signer", "signet_bench_raw"); err != nil {
		return e, err
	}
	e.rawURL = dbURL(e.pgBase, "signet_bench_raw")
	srvDB, sgnDB := dbURL(e.pgBase, "signet_bench_server"), dbURL(e.pgBase, "signet_bench_signer")

	srvBin := filepath.Join(tmp, "signet-server")
	var err error
	if e.signer, err = startSigner(ctx, tmp, e.certs, sgnDB); err != nil {
		return e, err
	}
	e.procs = append(e.procs, e.signer)
	if err := runCmd(ctx, nil, srvBin, "migrate", "--db", srvDB); err != nil {
		return e, err
	}
	pgAddr, _ := freeAddr()
	if e.pgServer, err = start(ctx, tmp, "server-postgres", srvBin, pgAddr, nil, pgServerFlags(pgAddr, srvDB, e.signer.addr, e.certs)...); err != nil {
		return e, err
	}
	e.procs = append(e.procs, e.pgServer)
	pass := []string{"SIGNET_SIGNER_PASSPHRASE=bench passphrase"}
	embAddr, _ := freeAddr()
	if e.embedded, err = start(ctx, tmp, "server-embedded", srvBin, embAddr, pass, "--addr", embAddr, "--db", filepath.Join(tmp, "embedded", "signet.db"), "--log-level", "warn", "--allow-anonymous-writes", "--key-create-rate", "0"); err != nil {
		return e, err
	}
	e.procs = append(e.procs, e.embedded)

	hc := seedClient()
	pr.say("seeding repositories")
	for _, srv := range []*proc{e.pgServer, e.embedded} {
		if _, err := initRepo("http://"+srv.addr, smallGUN, hc, 10); err != nil {
			return e, fmt.Errorf("seed %s: %w", srv.name, err)
		}
	}
	if _, err := initRepo("http://"+e.pgServer.addr, bigGUN, hc, 10_000); err != nil {
		return e, fmt.Errorf("seed 10k: %w", err)
	}
	return e, nil
}

func (e *env) cert(name string) string { return filepath.Join(e.certs, name) }

// createDBs (re)creates empty databases on the server at base.
func createDBs(ctx context.Context, base string, names ...string) error {
	admin, err := pgx.Connect(ctx, base)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer admin.Close(ctx)
	for _, db := range names {
		if _, err := admin.Exec(ctx, "DROP DATABASE IF EXISTS "+db+" WITH (FORCE)"); err != nil {
			return err
		}
		if _, err := admin.Exec(ctx, "CREATE DATABASE "+db); err != nil {
			return err
		}
	}
	return nil
}

// startSigner makes the bench's mTLS certificates in certs, migrates db
// and starts signet-signer (built into tmp) on it.
func startSigner(ctx context.Context, tmp, certs, db string) (*proc, error) {
	bin := filepath.Join(tmp, "signet-signer")
	if err := runCmd(ctx, nil, bin, "certs", "--out", certs); err != nil {
		return nil, err
	}
	if err := runCmd(ctx, nil, bin, "migrate", "--db", db); err != nil {
		return nil, err
	}
	addr, _ := freeAddr()
	cert := func(name string) string { return filepath.Join(certs, name) }
	return start(ctx, tmp, "signer", bin, addr, []string{"SIGNET_SIGNER_PASSPHRASE=bench passphrase"}, "--addr", addr, "--db", db,
		"--tls-cert", cert("signer.pem"), "--tls-key", cert("signer-key.pem"), "--client-ca", cert("ca.pem"))
}

// pgServerFlags are the flags of a signet-server on the Postgres database
// db, signing through the signer at signerAddr; extra flags follow.
func pgServerFlags(addr, db, signerAddr, certs string, extra ...string) []string {
	cert := func(name string) string { return filepath.Join(certs, name) }
	return append([]string{"--addr", addr, "--db", db, "--log-level", "warn", "--allow-anonymous-writes",
		"--max-body", "128000000", "--max-role-size", "64000000", "--key-create-rate", "0",
		"--signer", "https://" + signerAddr, "--signer-ca", cert("ca.pem"), "--signer-cert", cert("server.pem"), "--signer-key", cert("server-key.pem")}, extra...)
}

func (e *env) close() {
	for _, p := range e.procs {
		p.stop()
	}
	if e.cluster != nil {
		if err := e.cluster.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
		}
	}
}

// figure is one entry of the suite.
type figure struct {
	name string
	run  func(ctx context.Context, p plan) ([]Result, error)
}

func (e *env) figures() []figure {
	return []figure{
		{"GET timestamp.json, postgres store", e.getFigure("GET timestamp.json, 32 conns, postgres", e.pgServer, smallGUN, "timestamp.json", "ratio >= 0.85")},
		{"GET 1.targets.json of a 10k-tag repo", e.getFigure("GET {N}.targets.json 10k tags, 32 conns, postgres", e.pgServer, bigGUN, "1.targets.json", "ratio >= 0.70")},
		{"GET timestamp.json, embedded store", e.getFigure("GET timestamp.json, 32 conns, embedded", e.embedded, smallGUN, "timestamp.json", "ratio >= 0.70")},
		{"publish one tag into a 10 / 1k / 10k-tag flat repo", e.publishSizesFigure},
		{"publish one tag, 16 publishers", e.publishFigure},
		{"signer signatures/s", e.signerFigure},
		{"sign through the client library", e.signFigure},
		{"signet sign end to end", e.signCLIFigure},
		{"resolve, warm cache", e.resolveWarmFigure},
		{"resolve, cold cache, flat repos", e.resolveColdFigure},
		{"hashed bins: resolve and publish", e.binsFigure},
	}
}

// measure warms up (unless p.Warmup is 0), then runs op p.Runs times.
func measure(ctx context.Context, p plan, conc int, fn op) []sample {
	if p.Warmup > 0 {
		load(ctx, conc, p.Warmup, fn)
	}
	out := make([]sample, p.Runs)
	for i := range out {
		out[i] = load(ctx, conc, p.Run, fn)
	}
	return out
}

// workload is one load of an interleaved measurement.
type workload struct {
	conc int
	fn   op
}

// measureInterleaved measures several loads run by run, in turn (a run of
// the first, of the second, …, then the next runs), so that a figure and
// its baseline see the same share of a machine whose other work comes and
// goes: on a shared machine, a baseline measured a minute after its figure
// can be off by half. It returns the samples of each load.
func measureInterleaved(ctx context.Context, p plan, loads ...workload) [][]sample {
	if p.Warmup > 0 {
		for _, l := range loads {
			load(ctx, l.conc, p.Warmup, l.fn)
		}
	}
	out := make([][]sample, len(loads))
	for range p.Runs {
		for i, l := range loads {
			out[i] = append(out[i], load(ctx, l.conc, p.Run, l.fn))
		}
	}
	return out
}

// summarize fills r from runs and base (the baseline, may be nil) with
// metric. A run in which an op failed, or none completed, makes r a figure
// that could not be measured (r.Error): the bench reports it and fails.
func summarize(r *Result, runs, base []sample, metric func(sample) float64) {
	summarizeWith(r, runs, metric, base, metric)
}

// summarizeWith is summarize with a metric of its own for the baseline.
func summarizeWith(r *Result, runs []sample, metric func(sample) float64, base []sample, baseMetric func(sample) float64) {
	r.Runs, r.Baseline = runs, base
	for _, set := range [][]sample{runs, base} {
		for _, s := range set {
			switch {
			case s.Errors > 0:
				r.Error = fmt.Sprintf("%d of %d operations failed; first: %s", s.Errors, s.Errors+s.Ops, s.FirstError)
				return
			case s.Ops == 0:
				r.Error = "no operation completed"
				return
			}
		}
	}
	if len(runs) == 0 {
		r.Error = "no runs"
		return
	}
	vals := make([]float64, len(runs))
	for i, s := range runs {
		vals[i] = metric(s)
	}
	slices.Sort(vals)
	r.Min, r.Median, r.Max = vals[0], vals[len(vals)/2], vals[len(vals)-1]
	if len(base) > 0 {
		bv := make([]float64, len(base))
		for i, s := range base {
			bv[i] = baseMetric(s)
		}
		slices.Sort(bv)
		r.BaselineMedian = bv[len(bv)/2]
		if r.BaselineMedian > 0 {
			r.Ratio = r.Median / r.BaselineMedian
		}
	}
}

// single is a figure measured once, outside a load run (a byte count, a
// peak memory).
func single(name, unit string, v float64) Result {
	return Result{Name: name, Unit: unit, Min: v, Median: v, Max: v}
}

func perSec(s sample) float64 { return s.PerSec }

func p50ms(s sample) float64 { return float64(s.P50) / float64(time.Millisecond) }

func p99ms(s sample) float64 { return float64(s.P99) / float64(time.Millisecond) }

func (e *env) getFigure(name string, srv *proc, gun, file, target string) func(context.Context, plan) ([]Result, error) {
	return func(ctx context.Context, p plan) ([]Result, error) {
		url := "http://" + srv.addr + "/v2/" + gun + "/_trust/tuf/" + file
		hc := httpGetter(getConns)
		defer hc.CloseIdleConnections()
		resp, err := hc.Get(url)
		if err != nil {
			return nil, err
		}
		data, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != 200 {
			return nil, fmt.Errorf("GET %s: %d %v", url, resp.StatusCode, err)
		}
		bfile := filepath.Join(e.tmp, "baseline-"+filepath.Base(file))
		if err := os.WriteFile(bfile, data, 0o600); err != nil {
			return nil, err
		}
		self, err := os.Executable()
		if err != nil {
			return nil, err
		}
		baddr, _ := freeAddr()
		base, err := start(ctx, e.tmp, "baseline", self, baddr, nil, "baseline-server", baddr, bfile)
		if err != nil {
			return nil, err
		}
		defer base.stop()
		burl := "http://" + baddr + "/"

		// Run by run in turn, as the other figures with a load of their own
		// for baseline: measured one after the other, the baseline moved
		// between 19k and 25k req/s from one bench run to the next on a
		// machine where the server's figure stayed put.
		both := measureInterleaved(ctx, p, workload{getConns, getOp(hc, url, len(data))}, workload{getConns, getOp(hc, burl, len(data))})
		runs, baseRuns := both[0], both[1]
		r := Result{Name: name + " req/s", Unit: "req/s", Target: target + " (baseline: bare net/http serving the same bytes)"}
		summarize(&r, runs, baseRuns, perSec)
		lat := Result{Name: name + " p50", Unit: "ms"}
		summarize(&lat, runs, baseRuns, p50ms)
		lat99 := Result{Name: name + " p99", Unit: "ms"}
		summarize(&lat99, runs, baseRuns, p99ms)
		out := []Result{r, lat, lat99}
		if gun == smallGUN {
			out = append(out, single("server RSS (peak) after "+name, "MiB", float64(srv.rss())/(1<<20)))
		}
		return out, nil
	}
}
