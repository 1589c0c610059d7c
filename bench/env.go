package main

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/signetdev/signet/internal/pgtest"
	"github.com/signetdev/signet/internal/tlsutil"
	"github.com/signetdev/signet/signer"
	"github.com/signetdev/signet/signer/signerclient"
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

func newEnv(ctx context.Context, tmp string) (*env, error) {
	e := &env{tmp: tmp, certs: filepath.Join(tmp, "certs")}
	e.pgBase = pgtest.Find(os.Getenv)
	if e.pgBase == "" {
		fmt.Fprintln(os.Stderr, "bench: starting a throwaway PostgreSQL cluster")
		c, err := pgtest.Start(ctx)
		if err != nil {
			return nil, err
		}
		e.cluster, e.pgBase = c, c.URL
	}
	admin, err := pgx.Connect(ctx, e.pgBase)
	if err != nil {
		return e, fmt.Errorf("connect: %w", err)
	}
	for _, db := range []string{"signet_bench_server", "signet_bench_signer", "signet_bench_raw"} {
		if _, err := admin.Exec(ctx, "DROP DATABASE IF EXISTS "+db+" WITH (FORCE)"); err != nil {
			return e, err
		}
		if _, err := admin.Exec(ctx, "CREATE DATABASE "+db); err != nil {
			return e, err
		}
	}
	admin.Close(ctx)
	e.rawURL = dbURL(e.pgBase, "signet_bench_raw")
	srvDB, sgnDB := dbURL(e.pgBase, "signet_bench_server"), dbURL(e.pgBase, "signet_bench_signer")

	srvBin, sgnBin := filepath.Join(tmp, "signet-server"), filepath.Join(tmp, "signet-signer")
	pass := []string{"SIGNET_SIGNER_PASSPHRASE=bench passphrase"}
	if err := runCmd(ctx, nil, sgnBin, "certs", "--out", e.certs); err != nil {
		return e, err
	}
	if err := runCmd(ctx, nil, sgnBin, "migrate", "--db", sgnDB); err != nil {
		return e, err
	}
	if err := runCmd(ctx, nil, srvBin, "migrate", "--db", srvDB); err != nil {
		return e, err
	}
	sgnAddr, _ := freeAddr()
	if e.signer, err = start(ctx, tmp, "signer", sgnBin, sgnAddr, pass, "--addr", sgnAddr, "--db", sgnDB,
		"--tls-cert", e.cert("signer.pem"), "--tls-key", e.cert("signer-key.pem"), "--client-ca", e.cert("ca.pem")); err != nil {
		return e, err
	}
	e.procs = append(e.procs, e.signer)
	pgAddr, _ := freeAddr()
	if e.pgServer, err = start(ctx, tmp, "server-postgres", srvBin, pgAddr, nil, "--addr", pgAddr, "--db", srvDB, "--log-level", "warn", "--allow-anonymous-writes",
		"--max-body", "128000000", "--max-role-size", "64000000",
		"--signer", "https://"+sgnAddr, "--signer-ca", e.cert("ca.pem"), "--signer-cert", e.cert("server.pem"), "--signer-key", e.cert("server-key.pem")); err != nil {
		return e, err
	}
	e.procs = append(e.procs, e.pgServer)
	embAddr, _ := freeAddr()
	if e.embedded, err = start(ctx, tmp, "server-embedded", srvBin, embAddr, pass, "--addr", embAddr, "--db", filepath.Join(tmp, "embedded", "signet.db"), "--log-level", "warn", "--allow-anonymous-writes"); err != nil {
		return e, err
	}
	e.procs = append(e.procs, e.embedded)

	hc := httpGetter(4)
	fmt.Fprintln(os.Stderr, "bench: seeding repositories")
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
		{"GET timestamp.json, postgres store", e.getFigure("GET timestamp.json, 32 conns, postgres", e.pgServer, smallGUN, "timestamp.json")},
		{"GET 1.targets.json of a 10k-tag repo", e.getFigure("GET {N}.targets.json 10k tags, 32 conns, postgres", e.pgServer, bigGUN, "1.targets.json")},
		{"GET timestamp.json, embedded store", e.getFigure("GET timestamp.json, 32 conns, embedded", e.embedded, smallGUN, "timestamp.json")},
		{"publish one tag", e.publishFigure},
		{"signer signatures/s", e.signerFigure},
		{"sign through the client library", e.signFigure},
		{"resolve, warm cache", e.resolveWarmFigure},
		{"resolve, cold cache, 10 / 10k / 100k tags", e.resolveColdFigure},
		{"hashed bins: resolve and publish, 10 / 10k / 100k tags", e.binsFigure},
	}
}

// measure warms up, then runs op p.Runs times.
func measure(ctx context.Context, p plan, conc int, op func(context.Context, int) bool) []sample {
	load(ctx, conc, p.Warmup, op)
	out := make([]sample, p.Runs)
	for i := range out {
		out[i] = load(ctx, conc, p.Run, op)
	}
	return out
}

func summarize(r *Result, runs, base []sample, metric func(sample) float64) {
	vals := make([]float64, len(runs))
	for i, s := range runs {
		vals[i] = metric(s)
	}
	slices.Sort(vals)
	r.Runs, r.Baseline = runs, base
	r.Min, r.Median, r.Max = vals[0], vals[len(vals)/2], vals[len(vals)-1]
	if len(base) > 0 {
		bv := make([]float64, len(base))
		for i, s := range base {
			bv[i] = metric(s)
		}
		slices.Sort(bv)
		r.BaselineMedian = bv[len(bv)/2]
		if r.BaselineMedian > 0 {
			r.Ratio = r.Median / r.BaselineMedian
		}
	}
}

func perSec(s sample) float64 { return s.PerSec }

func p50ms(s sample) float64 { return float64(s.P50) / float64(time.Millisecond) }

func p99ms(s sample) float64 { return float64(s.P99) / float64(time.Millisecond) }

func (e *env) getFigure(name string, srv *proc, gun, file string) func(context.Context, plan) ([]Result, error) {
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

		runs := measure(ctx, p, getConns, getOp(hc, url, len(data)))
		baseRuns := measure(ctx, p, getConns, getOp(hc, burl, len(data)))
		r := Result{Name: name + " req/s", Unit: "req/s", Target: "ratio >= 0.70"}
		summarize(&r, runs, baseRuns, perSec)
		lat := Result{Name: name + " p50", Unit: "ms"}
		summarize(&lat, runs, baseRuns, p50ms)
		lat99 := Result{Name: name + " p99", Unit: "ms"}
		summarize(&lat99, runs, baseRuns, p99ms)
		out := []Result{r, lat, lat99}
		if gun == smallGUN {
			out = append(out, Result{Name: "server RSS (peak) after " + name, Unit: "MiB", Median: float64(srv.rss()) / (1 << 20), Min: float64(srv.rss()) / (1 << 20), Max: float64(srv.rss()) / (1 << 20)})
		}
		return out, nil
	}
}

func (e *env) publishFigure(ctx context.Context, p plan) ([]Result, error) {
	hc := httpGetter(publishers)
	defer hc.CloseIdleConnections()
	repos := make([]*devRepo, publishers)
	for i := range repos {
		d, err := initRepo("http://"+e.pgServer.addr, fmt.Sprintf("bench.example.com/publish-%d", i), hc, 10)
		if err != nil {
			return nil, err
		}
		repos[i] = d
	}
	op := func(ctx context.Context, w int) bool {
		d := repos[w]
		tb, err := d.nextTargets("latest")
		if err != nil {
			return false
		}
		err = postFiles(ctx, hc, d.tufURL(), map[string][]byte{metadata.TARGETS: tb})
		if err != nil && ctx.Err() != nil {
			d.targets.Signed.Version-- // cut off by the end of the run: not stored
		}
		return err == nil
	}
	runs := measure(ctx, p, publishers, op)

	pool, err := pgxpool.New(ctx, e.rawURL)
	if err != nil {
		return nil, err
	}
	defer pool.Close()
	if _, err := pool.Exec(ctx, `CREATE TABLE IF NOT EXISTS raw (id BIGSERIAL PRIMARY KEY, gun TEXT NOT NULL, data BYTEA NOT NULL)`); err != nil {
		return nil, err
	}
	payload := make([]byte, 600)
	_, _ = rand.Read(payload)
	raw := func(ctx context.Context, w int) bool {
		err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
			_, err := tx.Exec(ctx, `INSERT INTO raw (gun, data) VALUES ($1, $2)`, fmt.Sprint(w), payload)
			return err
		})
		return err == nil
	}
	baseRuns := measure(ctx, p, publishers, raw)
	r := Result{Name: "publish one tag, 16 publishers, postgres publishes/s", Unit: "publishes/s", Target: "ratio >= 0.30 (baseline: raw single-row insert transactions)"}
	summarize(&r, runs, baseRuns, perSec)
	lat := Result{Name: "publish one tag p50", Unit: "ms", Target: "<= 5 ms"}
	summarize(&lat, runs, baseRuns, p50ms)
	lat99 := Result{Name: "publish one tag p99", Unit: "ms"}
	summarize(&lat99, runs, baseRuns, p99ms)
	return []Result{r, lat, lat99}, nil
}

func (e *env) signerFigure(ctx context.Context, p plan) ([]Result, error) {
	tc, err := tlsutil.ClientConfig(e.cert("ca.pem"), e.cert("server.pem"), e.cert("server-key.pem"))
	if err != nil {
		return nil, err
	}
	tr := &http.Transport{TLSClientConfig: tc, MaxIdleConnsPerHost: signConns}
	defer tr.CloseIdleConnections()
	c := signerclient.New("https://"+e.signer.addr, &http.Client{Transport: tr})
	k, err := c.EnsureKey(ctx, "bench.example.com/signer", metadata.TIMESTAMP, signer.Ed25519)
	if err != nil {
		return nil, err
	}
	payload := []byte(`{"_type":"timestamp","expires":"2030-01-01T00:00:00Z","meta":{"snapshot.json":{"version":1}},"spec_version":"1.0.31","version":1}`)
	remote := func(ctx context.Context, _ int) bool {
		_, err := c.Sign(ctx, "bench.example.com/signer", metadata.TIMESTAMP, k.ID, payload)
		return err == nil
	}
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	local := func(context.Context, int) bool {
		_, err := signer.SignPayload(priv, payload)
		return err == nil
	}
	runs := measure(ctx, p, signConns, remote)
	baseRuns := measure(ctx, p, signConns, local)
	r := Result{Name: "signer signatures/s over mTLS", Unit: "sig/s", Target: "ratio >= 0.40 (baseline: in-process ed25519)"}
	summarize(&r, runs, baseRuns, perSec)
	return []Result{r}, nil
}
