package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"
)

// The soak run (make soak): two replicas on one PostgreSQL and signer.
// It measures their read capacity (closed loop, SOAK_CAPACITY_RUN,
// default 15s), then for SOAK_DURATION (default 10m) reads at
// SOAK_LOAD (default 0.8) of it, open loop, while SOAK_PUBLISH_RATE
// publishes a second (default 10) land alternately on either replica. It
// reports errors, latency percentiles per minute and each replica's RSS
// over time, and fails if any operation failed or if RSS grew after the
// warm-up by more than the tolerance (see rssTolerance). Results go to
// bench/results/soak.json.

type soakConfig struct {
	Duration    time.Duration `json:"duration_ns"`
	CapacityRun time.Duration `json:"capacity_run_ns"`
	Load        float64       `json:"load"`
	PublishRate float64       `json:"publish_rate"`
	GUNs        int           `json:"guns"`
	Workers     int           `json:"workers"`
	// Rate, if set, replaces the measured capacity × Load.
	Rate float64 `json:"rate,omitempty"`
}

func soakConfigFromEnv() (soakConfig, error) {
	c := soakConfig{Duration: 10 * time.Minute, CapacityRun: 15 * time.Second, Load: 0.8, PublishRate: 10, GUNs: 16, Workers: 128}
	var errs []error
	dur := func(name string, dst *time.Duration, least time.Duration) {
		if v := os.Getenv(name); v != "" {
			d, err := time.ParseDuration(v)
			if err != nil || d < least {
				errs = append(errs, fmt.Errorf("%s %q: want a duration of at least %v", name, v, least))
			}
			*dst = d
		}
	}
	float := func(name string, dst *float64, lo, hi float64) {
		if v := os.Getenv(name); v != "" {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil || f < lo || f > hi {
				errs = append(errs, fmt.Errorf("%s %q: want a number from %g to %g", name, v, lo, hi))
			}
			*dst = f
		}
	}
	dur("SOAK_DURATION", &c.Duration, time.Minute)
	dur("SOAK_CAPACITY_RUN", &c.CapacityRun, 3*time.Second)
	float("SOAK_LOAD", &c.Load, 0.05, 1)
	float("SOAK_PUBLISH_RATE", &c.PublishRate, 0, 1000)
	float("SOAK_RATE", &c.Rate, 0, 1e6)
	return c, errors.Join(errs...)
}

// warmup is the part of the run RSS is allowed to grow in: caches fill,
// connection buffers and the heap reach their working size.
func (c soakConfig) warmup() time.Duration { return min(2*time.Minute, c.Duration/4) }

// rssTolerance is how much a replica's RSS may grow from just after the
// warm-up to the end: 8 MiB or 10%, whichever is more. The Go runtime
// returns freed memory to the OS lazily and the heap breathes up to
// GOGC between collections, so RSS moves by a few MiB without any leak;
// a leak of one byte per request at this rate (tens of thousands a
// second) adds more than 8 MiB in ten minutes.
func rssTolerance(base int64) int64 { return max(8<<20, base/10) }

// SoakMinute is one minute of the run.
type SoakMinute struct {
	Minute     int           `json:"minute"`
	Reads      int64         `json:"reads"`
	ReadsPerS  float64       `json:"reads_per_s"`
	ReadP50    time.Duration `json:"read_p50_ns"`
	ReadP99    time.Duration `json:"read_p99_ns"`
	ReadP999   time.Duration `json:"read_p999_ns"`
	ReadMax    time.Duration `json:"read_max_ns"`
	Publishes  int64         `json:"publishes"`
	PubP50     time.Duration `json:"publish_p50_ns"`
	PubP99     time.Duration `json:"publish_p99_ns"`
	Errors     int64         `json:"errors"`
	Late       int64         `json:"late"`
	RSS        []int64       `json:"rss_bytes"` // per replica, the minute's last sample
	Load       float64       `json:"load_average"`
	minuteHist *hist
	pubHist    *hist
}

// SoakReport is bench/results/soak.json.
type SoakReport struct {
	When       time.Time      `json:"when"`
	Machine    string         `json:"machine"`
	Config     soakConfig     `json:"config"`
	Capacity   float64        `json:"capacity_reads_per_s"`
	Rate       float64        `json:"target_reads_per_s"`
	Minutes    []SoakMinute   `json:"minutes"`
	RSSSamples [][]rssSample  `json:"rss_samples"` // per replica
	RSSCheck   []string       `json:"rss_check"`
	Errors     int64          `json:"errors"`
	Late       int64          `json:"late"` // reads the pacer dropped: no worker was free
	FirstError string         `json:"first_error,omitempty"`
	PGConns    map[string]int `json:"postgres_connections"`
}

type rssSample struct {
	At  time.Duration `json:"at_ns"`
	RSS int64         `json:"rss_bytes"`
}

func runSoak(ctx context.Context) error {
	cfg, err := soakConfigFromEnv()
	if err != nil {
		return err
	}
	pr := progress{start: time.Now()}
	c, err := newCluster(ctx, pr)
	defer c.close()
	if err != nil {
		return err
	}
	if err := c.grow(ctx, 2); err != nil {
		return err
	}
	pr.say("seeding")
	readRepos, err := c.seed("read", cfg.GUNs)
	if err != nil {
		return err
	}
	pubRepos, err := c.seed("publish", 2)
	if err != nil {
		return err
	}
	var guns []string
	for _, d := range append(readRepos, pubRepos...) {
		guns = append(guns, d.gun)
	}
	rep := SoakReport{When: time.Now().UTC(), Machine: machine(), Config: cfg}
	hc := httpGetter(cfg.Workers)
	defer hc.CloseIdleConnections()
	perReplica := make([]atomic.Int64, 2)
	if cfg.Rate > 0 {
		rep.Rate = cfg.Rate
	} else {
		pr.say(fmt.Sprintf("measuring read capacity of 2 replicas for %v", cfg.CapacityRun))
		load(ctx, 32, 2*time.Second, c.reader(hc, 2, guns, perReplica))
		s := load(ctx, 32, cfg.CapacityRun, c.reader(hc, 2, guns, perReplica))
		if s.Errors > 0 || s.Ops == 0 {
			return fmt.Errorf("capacity run: %d errors of %d; first: %s", s.Errors, s.Ops+s.Errors, s.FirstError)
		}
		rep.Capacity, rep.Rate = s.PerSec, s.PerSec*cfg.Load
	}
	pr.say(fmt.Sprintf("soaking for %v: %.0f reads/s (%.0f%% of %.0f), %.0f publishes/s on alternate replicas", cfg.Duration, rep.Rate, cfg.Load*100, rep.Capacity, cfg.PublishRate))
	if err := c.soak(ctx, cfg, &rep, guns, pubRepos); err != nil {
		return err
	}
	printSoak(os.Stdout, rep)
	if err := writeResult("soak.json", rep); err != nil {
		return err
	}
	var fails []string
	if rep.Errors > 0 {
		fails = append(fails, fmt.Sprintf("%d operations failed; first: %s", rep.Errors, rep.FirstError))
	}
	for _, line := range rep.RSSCheck {
		if strings.HasPrefix(line, "FAIL") {
			fails = append(fails, line)
		}
	}
	if len(fails) > 0 {
		return errors.New(strings.Join(fails, "\n"))
	}
	return nil
}

// soak runs the open-loop reads and paced publishes for cfg.Duration.
func (c *cluster) soak(ctx context.Context, cfg soakConfig, rep *SoakReport, guns []string, pubRepos []*devRepo) error {
	ctx, cancel := context.WithTimeout(ctx, cfg.Duration)
	defer cancel()
	start := time.Now()
	minutes := int((cfg.Duration + time.Minute - 1) / time.Minute)
	rep.Minutes = make([]SoakMinute, minutes)
	for i := range rep.Minutes {
		rep.Minutes[i] = SoakMinute{Minute: i + 1, minuteHist: &hist{}, pubHist: &hist{}}
	}
	minuteOf := func(t time.Time) *SoakMinute {
		return &rep.Minutes[min(int(t.Sub(start)/time.Minute), minutes-1)]
	}
	var (
		errCount atomic.Int64
		firstErr sync.Once
		errMsg   string
	)
	fail := func(err error) {
		errCount.Add(1)
		firstErr.Do(func() { errMsg = fmt.Sprintf("%.1fs: %v", time.Since(start).Seconds(), err) })
	}
	var wg sync.WaitGroup

	// Reads: a pacer hands out one token per read at the target rate;
	// tokens that no worker is free to take are counted late and dropped
	// (the rate was not held), not queued.
	tokens := make(chan struct{}, cfg.Workers)
	var late atomic.Int64
	wg.Go(func() {
		defer close(tokens)
		t := time.NewTicker(time.Millisecond)
		defer t.Stop()
		var issued int64
		for {
			select {
			case <-ctx.Done():
				return
			case now := <-t.C:
				owed := int64(now.Sub(start).Seconds()*rep.Rate) - issued
				for ; owed > 0; owed-- {
					issued++
					select {
					case tokens <- struct{}{}:
					default:
						late.Add(1)
						minuteOf(now).Late++
					}
				}
			}
		}
	})
	perReplica := make([]atomic.Int64, 2)
	rc := httpGetter(cfg.Workers)
	defer rc.CloseIdleConnections()
	read := c.reader(rc, 2, guns, perReplica)
	for w := range cfg.Workers {
		wg.Go(func() {
			for range tokens {
				t0 := time.Now()
				if err := read(ctx, w+rand.IntN(2), nil); err != nil {
					if ctx.Err() == nil {
						fail(err)
					}
					continue
				}
				minuteOf(t0).minuteHist.add(time.Since(t0))
			}
		})
	}

	// Publishes: each of the two publishers alternates between the
	// replicas.
	if cfg.PublishRate > 0 {
		pc := httpGetter(4)
		pub := c.publisher(pc, 2, pubRepos)
		every := time.Duration(float64(time.Second) * float64(len(pubRepos)) / cfg.PublishRate)
		for w := range pubRepos {
			wg.Go(func() {
				t := time.NewTicker(every)
				defer t.Stop()
				for {
					select {
					case <-ctx.Done():
						return
					case <-t.C:
					}
					sw := stopwatch{start: time.Now()}
					if err := pub(ctx, w, &sw); err != nil {
						if ctx.Err() == nil {
							fail(fmt.Errorf("publish: %w", err))
						}
						continue
					}
					minuteOf(sw.start).pubHist.add(time.Since(sw.start))
				}
			})
		}
	}

	// RSS every 5 s; a minute's figures when it ends.
	rep.RSSSamples = make([][]rssSample, 2)
	wg.Go(func() {
		t := time.NewTicker(5 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case now := <-t.C:
				m := minuteOf(now)
				m.RSS = m.RSS[:0]
				for i, p := range c.replicas[:2] {
					rss := p.vmRSS()
					rep.RSSSamples[i] = append(rep.RSSSamples[i], rssSample{At: now.Sub(start), RSS: rss})
					m.RSS = append(m.RSS, rss)
				}
				m.Load = loadAvg()
				if now.Sub(start)%time.Minute < 5*time.Second {
					c.pr.say(fmt.Sprintf("  minute %d: %d errors so far, RSS %s MiB", int(now.Sub(start)/time.Minute), errCount.Load(), mibs(m.RSS)))
				}
			}
		}
	})
	time.Sleep(cfg.Duration / 2)
	conns, err := c.mon.connections(context.Background())
	if err != nil {
		return err
	}
	rep.PGConns = conns
	wg.Wait()
	rep.Errors, rep.FirstError = errCount.Load(), errMsg
	for i := range rep.Minutes {
		m := &rep.Minutes[i]
		span := time.Minute
		if i == minutes-1 {
			span = cfg.Duration - time.Duration(i)*time.Minute
		}
		m.Reads, m.Publishes = m.minuteHist.n.Load(), m.pubHist.n.Load()
		m.ReadsPerS = float64(m.Reads) / span.Seconds()
		m.ReadP50, m.ReadP99, m.ReadP999 = m.minuteHist.quantile(0.5), m.minuteHist.quantile(0.99), m.minuteHist.quantile(0.999)
		m.ReadMax = time.Duration(m.minuteHist.maxNS.Load())
		m.PubP50, m.PubP99 = m.pubHist.quantile(0.5), m.pubHist.quantile(0.99)
	}
	rep.Late = late.Load()
	rep.RSSCheck = rssCheck(cfg, rep.RSSSamples)
	return nil
}

// rssCheck compares, per replica, the median RSS of the minute after the
// warm-up with that of the run's last minute.
func rssCheck(cfg soakConfig, samples [][]rssSample) []string {
	warm := cfg.warmup()
	window := min(time.Minute, (cfg.Duration-warm)/3)
	var out []string
	for i, ss := range samples {
		var early, lateRSS []int64
		for _, s := range ss {
			switch {
			case s.At >= warm && s.At < warm+window:
				early = append(early, s.RSS)
			case s.At >= cfg.Duration-window:
				lateRSS = append(lateRSS, s.RSS)
			}
		}
		if len(early) == 0 || len(lateRSS) == 0 {
			out = append(out, fmt.Sprintf("FAIL replica %d: too few RSS samples to judge (%d after warm-up, %d at the end)", i, len(early), len(lateRSS)))
			continue
		}
		base, end := median(early), median(lateRSS)
		tol := rssTolerance(base)
		verdict := "ok"
		if end-base > tol {
			verdict = "FAIL"
		}
		out = append(out, fmt.Sprintf("%s replica %d: RSS %.1f MiB after the %v warm-up, %.1f MiB at the end (growth %+.1f MiB, tolerance %.1f MiB)",
			verdict, i, mib(base), warm, mib(end), mib(end-base), mib(tol)))
	}
	return out
}

func median(v []int64) int64 {
	s := slices.Clone(v)
	slices.Sort(s)
	return s[len(s)/2]
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }

func mibs(v []int64) string {
	var s []string
	for _, b := range v {
		s = append(s, strconv.FormatFloat(mib(b), 'f', 1, 64))
	}
	return strings.Join(s, "/")
}

func printSoak(w io.Writer, rep SoakReport) {
	fmt.Fprintf(w, "signet soak run, %s, %s: %v at %.0f reads/s (%.0f%% of a measured %.0f) on 2 replicas, %.0f publishes/s alternating\n\n",
		rep.When.Format("2006-01-02 15:04 UTC"), rep.Machine, rep.Config.Duration, rep.Rate, rep.Config.Load*100, rep.Capacity, rep.Config.PublishRate)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "minute\treads/s\tp50 ms\tp99 ms\tp99.9 ms\tmax ms\tpublishes\tpub p50 ms\tpub p99 ms\tlate\tRSS MiB\tload\t")
	for _, m := range rep.Minutes {
		fmt.Fprintf(tw, "%d\t%.0f\t%s\t%s\t%s\t%s\t%d\t%s\t%s\t%d\t%s\t%.2f\t\n", m.Minute, m.ReadsPerS, ms(m.ReadP50), ms(m.ReadP99), ms(m.ReadP999), ms(m.ReadMax),
			m.Publishes, ms(m.PubP50), ms(m.PubP99), m.Late, mibs(m.RSS), m.Load)
	}
	tw.Flush()
	fmt.Fprintf(w, "\nerrors: %d", rep.Errors)
	if rep.FirstError != "" {
		fmt.Fprintf(w, " (first: %s)", rep.FirstError)
	}
	fmt.Fprintf(w, "\nreads dropped by the pacer (no worker free, the rate not held): %d", rep.Late)
	fmt.Fprintf(w, "\nPostgreSQL connections at half-time: %v\n", rep.PGConns)
	for _, line := range rep.RSSCheck {
		fmt.Fprintln(w, line)
	}
}
