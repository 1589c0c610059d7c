package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/signetdev/signet/api"
	"github.com/signetdev/signet/internal/pgtest"
)

// The replica scale test (make scale): N signet-server replicas (separate
// processes) on one PostgreSQL and one signet-signer, for each N of
// SCALE_REPLICAS (default 1,2,4). For each N, three phases of
// SCALE_PHASE (default 10s):
//
//	reads     GET timestamp.json of the seeded repositories through every
//	          replica: throughput per replica, latency, and PostgreSQL's
//	          statements per read (pg_stat_statements) and CPU
//	publishes SCALE_PUBLISHERS publishers (default 4), each into its own
//	          repository, each publish on the next replica: throughput,
//	          latency, and statements, rows and CPU per publish of
//	          PostgreSQL, the signer and the servers
//	mixed     both at once, plus a probe that publishes on one replica and
//	          watches timestamp.json on every other until the new version
//	          shows: publish-to-visible latency (the change notification)
//
// SCALE_SERVER_FLAGS adds flags to every replica (e.g. "--cache-recheck 5s").
//
// The database is the throwaway cluster with pg_stat_statements loaded
// and durable commits (fsync and synchronous_commit on), unlike the test
// suite's. Results go to bench/results/scale.json.

// scaleConfig is what the environment asks of the run.
type scaleConfig struct {
	Replicas   []int         `json:"replicas"`
	Phase      time.Duration `json:"phase_ns"`
	Warmup     time.Duration `json:"warmup_ns"`
	GUNs       int           `json:"guns"`
	Publishers int           `json:"publishers"`
	Readers    int           `json:"readers"`
	// ServerFlags are SCALE_SERVER_FLAGS.
	ServerFlags string `json:"server_flags,omitempty"`
}

func scaleConfigFromEnv() (scaleConfig, error) {
	c := scaleConfig{Replicas: []int{1, 2, 4}, Phase: 10 * time.Second, Warmup: 2 * time.Second, GUNs: 16, Publishers: 4, Readers: 32}
	if v := os.Getenv("SCALE_REPLICAS"); v != "" {
		c.Replicas = nil
		for f := range strings.SplitSeq(v, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil || n < 1 || n > 16 {
				return c, fmt.Errorf("SCALE_REPLICAS %q: want counts from 1 to 16, comma-separated", v)
			}
			c.Replicas = append(c.Replicas, n)
		}
		slices.Sort(c.Replicas)
	}
	for name, dst := range map[string]*int{"SCALE_GUNS": &c.GUNs, "SCALE_PUBLISHERS": &c.Publishers, "SCALE_READERS": &c.Readers} {
		if v := os.Getenv(name); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 {
				return c, fmt.Errorf("%s %q: want a positive count", name, v)
			}
			*dst = n
		}
	}
	c.ServerFlags = os.Getenv("SCALE_SERVER_FLAGS")
	if v := os.Getenv("SCALE_PHASE"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < time.Second {
			return c, fmt.Errorf("SCALE_PHASE %q: want a duration of at least 1s", v)
		}
		c.Phase = d
	}
	return c, nil
}

// cluster is signet's processes on one PostgreSQL, shared by the scale
// test and the soak run.
type cluster struct {
	tmp      string
	pg       *pgtest.Cluster
	srvDB    string
	signer   *proc
	replicas []*proc
	started  int // replicas ever started, for their log names
	mon      *pgMonitor
	pr       progress
}

const scaleDB = "signet_scale_server"

// newCluster builds the binaries, starts PostgreSQL (durable, with
// pg_stat_statements), the signer and one replica.
func newCluster(ctx context.Context, pr progress) (*cluster, error) {
	tmp, err := os.MkdirTemp("", "signet-scale-")
	if err != nil {
		return nil, err
	}
	c := &cluster{tmp: tmp, pr: pr}
	pr.say("building binaries")
	if err := build(ctx, tmp); err != nil {
		return c, err
	}
	pr.say("starting PostgreSQL (fsync on, pg_stat_statements)")
	if c.pg, err = pgtest.Start(ctx, "shared_preload_libraries=pg_stat_statements", "fsync=on", "synchronous_commit=on", "full_page_writes=on"); err != nil {
		return c, err
	}
	if err := createDBs(ctx, c.pg.URL, scaleDB, "signet_scale_signer"); err != nil {
		return c, err
	}
	c.srvDB = dbURL(c.pg.URL, scaleDB)
	if c.signer, err = startSigner(ctx, tmp, filepath.Join(tmp, "certs"), dbURL(c.pg.URL, "signet_scale_signer")); err != nil {
		return c, err
	}
	if err := runCmd(ctx, nil, filepath.Join(tmp, "signet-server"), "migrate", "--db", c.srvDB); err != nil {
		return c, err
	}
	if c.mon, err = newPGMonitor(ctx, c.pg.URL, scaleDB); err != nil {
		return c, err
	}
	if !c.mon.pgss {
		return c, fmt.Errorf("pg_stat_statements is not loaded: the statement counts cannot be measured")
	}
	return c, c.grow(ctx, 1)
}

// grow starts replicas until there are n.
func (c *cluster) grow(ctx context.Context, n int) error {
	for len(c.replicas) < n {
		p, err := c.startReplica(ctx, c.srvDB, strings.Fields(os.Getenv("SCALE_SERVER_FLAGS"))...)
		if err != nil {
			return err
		}
		c.replicas = append(c.replicas, p)
	}
	return nil
}

// startReplica starts a signet-server on db with extra flags; the caller
// stops it.
func (c *cluster) startReplica(ctx context.Context, db string, extra ...string) (*proc, error) {
	addr, _ := freeAddr()
	c.started++
	name := fmt.Sprintf("replica-%d", c.started)
	return start(ctx, c.tmp, name, filepath.Join(c.tmp, "signet-server"), addr, nil, pgServerFlags(addr, db, c.signer.addr, filepath.Join(c.tmp, "certs"), extra...)...)
}

func (c *cluster) url(i int) string { return "http://" + c.replicas[i].addr }

func (c *cluster) close() {
	for _, p := range c.replicas {
		p.stop()
	}
	if c.signer != nil {
		c.signer.stop()
	}
	if c.mon != nil {
		c.mon.close()
	}
	if c.pg != nil {
		if err := c.pg.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
		}
	}
	os.RemoveAll(c.tmp)
}

// serversCPU is the CPU time of the first n replicas so far.
func (c *cluster) serversCPU(n int) time.Duration {
	var d time.Duration
	for _, p := range c.replicas[:n] {
		d += p.cpu()
	}
	return d
}

// seed creates n repositories of 10 tags through replica 0.
func (c *cluster) seed(prefix string, n int) ([]*devRepo, error) {
	hc := seedClient()
	out := make([]*devRepo, n)
	for i := range out {
		d, err := initRepo(c.url(0), fmt.Sprintf("scale.example.com/%s-%d", prefix, i), hc, 10)
		if err != nil {
			return nil, fmt.Errorf("seed %s-%d: %w", prefix, i, err)
		}
		out[i] = d
	}
	return out, nil
}

// reader GETs timestamp.json of a random repository among guns, worker w
// through replica w mod n, counting per replica.
func (c *cluster) reader(hc *http.Client, n int, guns []string, perReplica []atomic.Int64) op {
	return func(ctx context.Context, w int, _ *stopwatch) error {
		r := w % n
		if _, err := getOK(ctx, hc, c.url(r)+"/v2/"+guns[rand.IntN(len(guns))]+"/_trust/tuf/timestamp.json"); err != nil {
			return err
		}
		perReplica[r].Add(1)
		return nil
	}
}

// publisher is publishOp on every replica in turn: publisher w's k-th
// publish goes to replica (w+k) mod n.
func (c *cluster) publisher(hc *http.Client, n int, repos []*devRepo) op {
	next := make([]int, len(repos))
	return func(ctx context.Context, w int, sw *stopwatch) error {
		d := repos[w]
		r := (w + next[w]) % n
		next[w]++
		tb, err := d.nextTargets("latest")
		if err != nil {
			return err
		}
		body, ct := multipartBody(map[string][]byte{metadata.TARGETS: tb})
		sw.restart()
		return postBody(ctx, hc, c.url(r)+"/v2/"+d.gun+"/_trust/tuf/", body, ct)
	}
}

// visibility publishes into d on one replica after another and measures,
// on every other replica, how long after the publish's answer that
// replica serves the new timestamp. It runs until ctx ends.
func (c *cluster) visibility(ctx context.Context, hc *http.Client, n int, d *devRepo) ([]time.Duration, int, error) {
	var lats []time.Duration
	misses := 0
	tsURL := func(r int) string { return c.url(r) + "/v2/" + d.gun + "/_trust/tuf/timestamp.json" }
	for k := 0; ctx.Err() == nil; k++ {
		w := k % n
		// Every replica reads the current timestamp first, so that each
		// holds it in its cache: only the change notification (or, if it
		// is lost, the cache's TTL) can make the others serve the next.
		for r := range n {
			if _, err := getOK(ctx, hc, tsURL(r)); err != nil {
				if ctx.Err() != nil {
					break
				}
				return lats, misses, err
			}
		}
		tb, err := d.nextTargets("latest")
		if err != nil {
			return lats, misses, err
		}
		body, ct := multipartBody(map[string][]byte{metadata.TARGETS: tb})
		res, err := publishResult(ctx, hc, c.url(w)+"/v2/"+d.gun+"/_trust/tuf/", body, ct)
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			return lats, misses, err
		}
		done := time.Now()
		want := res.Versions[metadata.TIMESTAMP]
		var mu sync.Mutex
		var wg sync.WaitGroup
		for r := range n {
			if r == w {
				continue
			}
			wg.Go(func() {
				lat, ok := waitVersion(ctx, hc, tsURL(r), want, done)
				mu.Lock()
				defer mu.Unlock()
				if ok {
					lats = append(lats, lat)
				} else if ctx.Err() == nil {
					misses++
				}
			})
		}
		wg.Wait()
		select {
		case <-ctx.Done():
		case <-time.After(50 * time.Millisecond):
		}
	}
	return lats, misses, nil
}

func publishResult(ctx context.Context, hc *http.Client, url string, body io.Reader, ct string) (api.PublishResult, error) {
	var res api.PublishResult
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, body)
	if err != nil {
		return res, err
	}
	req.Header.Set("Content-Type", ct)
	resp, err := hc.Do(req)
	if err != nil {
		return res, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return res, fmt.Errorf("publish: %d %s", resp.StatusCode, b)
	}
	return res, json.Unmarshal(b, &res)
}

// waitVersion polls url (timestamp.json) every millisecond until it
// serves version want or later, and returns how long after since that
// was; false after 5 s.
func waitVersion(ctx context.Context, hc *http.Client, url string, want int64, since time.Time) (time.Duration, bool) {
	for time.Since(since) < 5*time.Second && ctx.Err() == nil {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if resp, err := hc.Do(req); err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			var ts struct {
				Signed struct {
					Version int64 `json:"version"`
				} `json:"signed"`
			}
			if resp.StatusCode == 200 && json.Unmarshal(b, &ts) == nil && ts.Signed.Version >= want {
				return time.Since(since), true
			}
		}
		time.Sleep(time.Millisecond)
	}
	return 0, false
}

// ScalePhase is one phase of one replica count.
type ScalePhase struct {
	Reads        sample         `json:"reads"`
	PerReplica   []float64      `json:"reads_per_s_per_replica,omitempty"`
	Publishes    sample         `json:"publishes"`
	Visible      sample         `json:"visible,omitempty"`
	VisibleMiss  int            `json:"visible_missed,omitempty"`
	PG           pgDelta        `json:"postgres"`
	Connections  map[string]int `json:"postgres_connections"`
	ServerCPU    time.Duration  `json:"server_cpu_ns"`
	SignerCPU    time.Duration  `json:"signer_cpu_ns"`
	GeneratorCPU time.Duration  `json:"generator_cpu_ns"`
	Load         float64        `json:"load_average"`
}

// ScaleRun is the phases of one replica count.
type ScaleRun struct {
	Replicas  int        `json:"replicas"`
	Reads     ScalePhase `json:"reads"`
	Publishes ScalePhase `json:"publishes"`
	Mixed     ScalePhase `json:"mixed"`
}

// ScaleReport is bench/results/scale.json.
type ScaleReport struct {
	When    time.Time   `json:"when"`
	Machine string      `json:"machine"`
	Config  scaleConfig `json:"config"`
	Runs    []ScaleRun  `json:"runs"`
	Pulls   []PullCount `json:"pulls"`
}

func machine() string {
	cpus := "?"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		cpus = strconv.Itoa(strings.Count(string(b), "\nprocessor") + 1)
		for line := range strings.SplitSeq(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "model name"); ok {
				cpus += " × " + strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
				break
			}
		}
	}
	return cpus
}

func runScale(ctx context.Context) error {
	cfg, err := scaleConfigFromEnv()
	if err != nil {
		return err
	}
	pr := progress{start: time.Now()}
	c, err := newCluster(ctx, pr)
	defer c.close()
	if err != nil {
		return err
	}
	pr.say(fmt.Sprintf("seeding %d repositories to read, %d to publish into", cfg.GUNs, cfg.Publishers))
	readRepos, err := c.seed("read", cfg.GUNs)
	if err != nil {
		return err
	}
	pubRepos, err := c.seed("publish", cfg.Publishers)
	if err != nil {
		return err
	}
	probe, err := c.seed("probe", 1)
	if err != nil {
		return err
	}
	var readGUNs []string
	for _, d := range readRepos {
		readGUNs = append(readGUNs, d.gun)
	}
	mixedGUNs := slices.Clone(readGUNs)
	for _, d := range append(pubRepos, probe[0]) {
		mixedGUNs = append(mixedGUNs, d.gun)
	}
	rep := ScaleReport{When: time.Now().UTC(), Machine: machine(), Config: cfg}
	pr.say("counting the requests of one pull")
	if rep.Pulls, err = c.pullCounts(ctx); err != nil {
		return err
	}
	for _, n := range cfg.Replicas {
		if err := c.grow(ctx, n); err != nil {
			return err
		}
		run := ScaleRun{Replicas: n}
		pr.say(fmt.Sprintf("%d replica(s): reads", n))
		if run.Reads, err = c.phase(ctx, cfg, n, readGUNs, nil, nil); err != nil {
			return err
		}
		pr.say(fmt.Sprintf("%d replica(s): publishes", n))
		if run.Publishes, err = c.phase(ctx, cfg, n, nil, pubRepos, nil); err != nil {
			return err
		}
		pr.say(fmt.Sprintf("%d replica(s): reads, publishes and publish-to-visible", n))
		if run.Mixed, err = c.phase(ctx, cfg, n, mixedGUNs, pubRepos, probe[0]); err != nil {
			return err
		}
		rep.Runs = append(rep.Runs, run)
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
	printScale(os.Stdout, rep)
	printPulls(os.Stdout, rep.Pulls)
	if err := writeResult("scale.json", rep); err != nil {
		return err
	}
	return scaleErrors(rep)
}

// scaleErrors fails the run if any operation failed: a number measured
// around failures is no capacity.
func scaleErrors(rep ScaleReport) error {
	var bad []string
	for _, r := range rep.Runs {
		for name, ph := range map[string]ScalePhase{"reads": r.Reads, "publishes": r.Publishes, "mixed": r.Mixed} {
			for what, s := range map[string]sample{"reads": ph.Reads, "publishes": ph.Publishes} {
				if s.Errors > 0 {
					bad = append(bad, fmt.Sprintf("%d replicas, %s phase: %d %s failed; first: %s", r.Replicas, name, s.Errors, what, s.FirstError))
				}
			}
			if ph.VisibleMiss > 0 {
				bad = append(bad, fmt.Sprintf("%d replicas: %d publishes not visible on another replica within 5 s", r.Replicas, ph.VisibleMiss))
			}
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("%s", strings.Join(bad, "\n"))
	}
	return nil
}

func writeResult(name string, v any) error {
	if err := os.MkdirAll(filepath.Join("bench", "results"), 0o755); err != nil {
		return err
	}
	out, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join("bench", "results", name), out, 0o644)
}

// phase runs reads of readGUNs (if any), publishes into pubRepos (if any)
// and the visibility probe (if probe is set) on the first n replicas, for
// cfg.Phase after cfg.Warmup, and reads the counters around it.
func (c *cluster) phase(ctx context.Context, cfg scaleConfig, n int, readGUNs []string, pubRepos []*devRepo, probe *devRepo) (ScalePhase, error) {
	var ph ScalePhase
	rc := httpGetter(cfg.Readers)
	defer rc.CloseIdleConnections()
	pc := httpGetter(len(pubRepos) + 2)
	defer pc.CloseIdleConnections()
	perReplica := make([]atomic.Int64, n)
	if len(readGUNs) > 0 {
		load(ctx, cfg.Readers, cfg.Warmup, c.reader(rc, n, readGUNs, perReplica))
		for i := range perReplica {
			perReplica[i].Store(0)
		}
	}
	before, err := c.mon.read(ctx)
	if err != nil {
		return ph, err
	}
	srv0, sgn0, gen0 := c.serversCPU(n), c.signer.cpu(), selfCPU()
	var wg sync.WaitGroup
	if len(readGUNs) > 0 {
		wg.Go(func() { ph.Reads = load(ctx, cfg.Readers, cfg.Phase, c.reader(rc, n, readGUNs, perReplica)) })
	}
	if len(pubRepos) > 0 {
		wg.Go(func() { ph.Publishes = load(ctx, len(pubRepos), cfg.Phase, c.publisher(pc, n, pubRepos)) })
	}
	var probeErr error
	if probe != nil && n > 1 {
		wg.Go(func() {
			pctx, cancel := context.WithTimeout(ctx, cfg.Phase)
			defer cancel()
			vc := httpGetter(n + 1)
			defer vc.CloseIdleConnections()
			var lats []time.Duration
			lats, ph.VisibleMiss, probeErr = c.visibility(pctx, vc, n, probe)
			ph.Visible = latencySample(lats, cfg.Phase)
		})
	}
	time.Sleep(cfg.Phase / 2)
	if ph.Connections, err = c.mon.connections(ctx); err != nil {
		return ph, err
	}
	wg.Wait()
	if probeErr != nil {
		return ph, fmt.Errorf("visibility probe: %w", probeErr)
	}
	ph.ServerCPU, ph.SignerCPU, ph.GeneratorCPU = c.serversCPU(n)-srv0, c.signer.cpu()-sgn0, selfCPU()-gen0
	ph.Load = loadAvg()
	for i := range perReplica {
		ph.PerReplica = append(ph.PerReplica, float64(perReplica[i].Load())/ph.Reads.Duration.Seconds())
	}
	if len(readGUNs) == 0 {
		ph.PerReplica = nil
	}
	// pg_stat_statements is exact at once; pg_stat_database lags.
	c.pr.say("  letting PostgreSQL's statistics settle")
	select {
	case <-ctx.Done():
		return ph, ctx.Err()
	case <-time.After(pgStatsSettle):
	}
	after, err := c.mon.read(ctx)
	if err != nil {
		return ph, err
	}
	ph.PG = before.delta(after)
	return ph, nil
}

// latencySample summarises latencies gathered outside load.
func latencySample(lats []time.Duration, d time.Duration) sample {
	slices.Sort(lats)
	s := sample{Ops: len(lats), Duration: d, PerSec: float64(len(lats)) / d.Seconds()}
	if len(lats) > 0 {
		s.P50 = lats[len(lats)/2]
		s.P99 = lats[min(len(lats)-1, len(lats)*99/100)]
	}
	return s
}

func selfCPU() time.Duration {
	d, _ := procCPU(os.Getpid(), false)
	return d
}

func ms(d time.Duration) string {
	return strconv.FormatFloat(float64(d)/float64(time.Millisecond), 'f', 2, 64)
}

func per(n int64, ops int) string {
	if ops == 0 {
		return "-"
	}
	return strconv.FormatFloat(float64(n)/float64(ops), 'f', 3, 64)
}

func cpuPer(d time.Duration, ops int) string {
	if ops == 0 {
		return "-"
	}
	return strconv.FormatFloat(float64(d)/float64(time.Microsecond)/float64(ops), 'f', 0, 64)
}

func printScale(w io.Writer, rep ScaleReport) {
	fmt.Fprintf(w, "signet replica scale test, %s, %s; %v phases; PostgreSQL with fsync on\n\n", rep.When.Format("2006-01-02 15:04 UTC"), rep.Machine, rep.Config.Phase)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "replicas\tphase\treads/s\tper replica\tread p50 ms\tread p99 ms\tpublishes/s\tpub p50 ms\tpub p99 ms\tvisible p50 ms\tvisible p99 ms\tpg stmts/read\tpg stmts/pub\tpg rows ins/pub\tWAL B/pub\tdb B/pub\tpg conns\tsrv µs cpu/op\tsigner µs/pub\tpg µs cpu/op\tload\t")
	for _, r := range rep.Runs {
		for _, x := range []struct {
			name string
			ph   ScalePhase
		}{{"reads", r.Reads}, {"publishes", r.Publishes}, {"mixed", r.Mixed}} {
			ph := x.ph
			var pr []string
			for _, v := range ph.PerReplica {
				pr = append(pr, strconv.FormatFloat(v, 'f', 0, 64))
			}
			ops := ph.Reads.Ops + ph.Publishes.Ops
			conns := 0
			for _, v := range ph.Connections {
				conns += v
			}
			vis50, vis99 := "-", "-"
			if ph.Visible.Ops > 0 {
				vis50, vis99 = ms(ph.Visible.P50), ms(ph.Visible.P99)
			}
			// Per-op database figures only where one kind of op ran.
			stmtsRead, stmtsPub, rowsPub, walPub, sizePub := "-", "-", "-", "-", "-"
			switch x.name {
			case "reads":
				stmtsRead = per(ph.PG.Calls, ph.Reads.Ops)
			case "publishes":
				stmtsPub, rowsPub = per(ph.PG.Calls, ph.Publishes.Ops), per(ph.PG.TupInserted, ph.Publishes.Ops)
				walPub, sizePub = per(ph.PG.WALBytes, ph.Publishes.Ops), per(ph.PG.Size, ph.Publishes.Ops)
			}
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\t%.2f\t\n", r.Replicas, x.name,
				strconv.FormatFloat(ph.Reads.PerSec, 'f', 0, 64), strings.Join(pr, "/"), ms(ph.Reads.P50), ms(ph.Reads.P99),
				strconv.FormatFloat(ph.Publishes.PerSec, 'f', 1, 64), ms(ph.Publishes.P50), ms(ph.Publishes.P99), vis50, vis99,
				stmtsRead, stmtsPub, rowsPub, walPub, sizePub, conns,
				cpuPer(ph.ServerCPU, ops), cpuPer(ph.SignerCPU, ph.Publishes.Ops), cpuPer(ph.PG.CPU, ops), ph.Load)
		}
	}
	tw.Flush()
	fmt.Fprintln(w, "\nstatements per op: pg_stat_statements calls in the database (BEGIN/COMMIT included) over the phase's operations;")
	fmt.Fprintln(w, "cpu per op: the processes' user+system time over all operations of the phase (reads and publishes together in mixed).")
}
