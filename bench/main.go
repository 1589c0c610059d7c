// Command bench is signet's benchmark suite (make bench). On loopback it
// starts PostgreSQL the way the tests do, signet-signer and signet-server as
// separate processes, and drives them with its own load generator. Every
// figure is reported next to a baseline measured in the same run on the same
// machine, as a ratio: absolute numbers on a shared 2-core machine drift.
//
//	go run ./bench                  full run (3 runs of 5 s per figure)
//	BENCH_QUICK=1 go run ./bench    every figure once, briefly, with smaller
//	                                seeded repositories (make test runs it)
//	BENCH_ONLY=bins go run ./bench  only figures whose name contains "bins"
//	go run ./bench check FILE       compare a result file's ratios with targets
//	go run ./bench scale            replicas on one PostgreSQL (make scale; scale.go)
//	go run ./bench soak             reads at 80% of capacity for 10 minutes (make soak; soak.go)
//	go run ./bench pgbouncer        replicas through PgBouncer in transaction mode (pgbouncer.go)
//
// It never fails on speed: it reports. It exits non-zero only when a figure
// could not be measured (an operation failed, or none completed), so that
// a bench broken by a server change is noticed where it runs: make test.
// Results go to bench/results/latest.json.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

func main() {
	if len(os.Args) > 1 {
		switch os.Args[1] {
		case "baseline-server":
			if err := serveBaseline(os.Args[2], os.Args[3]); err != nil {
				fmt.Fprintln(os.Stderr, err)
				os.Exit(1)
			}
			return
		case "check":
			os.Exit(check(os.Args[2:]))
		case "peak-rss":
			os.Exit(peakRSS(os.Args[2:]))
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	bench := run
	if len(os.Args) > 1 {
		switch os.Args[1] {
		case "scale":
			bench = runScale
		case "soak":
			bench = runSoak
		case "pgbouncer":
			bench = runBouncerCheck
		default:
			fmt.Fprintf(os.Stderr, "bench: unknown command %q (scale, soak, pgbouncer, check FILE, or none for the suite)\n", os.Args[1])
			os.Exit(2)
		}
	}
	if err := bench(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// plan is how long and how often each figure runs, and how big the
// repositories are that take long to seed.
type plan struct {
	Quick  bool          `json:"quick"`
	Runs   int           `json:"runs"`
	Run    time.Duration `json:"run_ns"`
	Warmup time.Duration `json:"warmup_ns"`
	// HugeTags is the flat repository of the cold-resolve memory figure:
	// 100k tags; BENCH_QUICK seeds 20k (the figure's name says which).
	HugeTags int `json:"huge_tags"`
	// BinsTags are the repositories of the hashed-bins figure, smallest
	// (the baseline) first.
	BinsTags []int `json:"bins_tags"`
	// ColdRuns is how many cold resolves each cold-cache figure times.
	ColdRuns int `json:"cold_runs"`
}

func newPlan() plan {
	if os.Getenv("BENCH_QUICK") == "1" {
		// No warm-up: the smoke test proves each figure can be measured,
		// and a 10k-tag publish is slow enough without a second one.
		return plan{Quick: true, Runs: 1, Run: 500 * time.Millisecond, HugeTags: 20_000, BinsTags: []int{10, 2_000}, ColdRuns: 1}
	}
	return plan{Runs: 3, Run: 5 * time.Second, Warmup: time.Second, HugeTags: 100_000, BinsTags: []int{10, 10_000, 100_000}, ColdRuns: 3}
}

// Result is one figure.
type Result struct {
	Name     string   `json:"name"`
	Unit     string   `json:"unit"`
	Runs     []sample `json:"runs,omitempty"`
	Baseline []sample `json:"baseline,omitempty"`
	// Value summarises Runs: min, median, max of the per-run figure.
	Min, Median, Max float64
	// BaselineMedian and Ratio = Median / BaselineMedian, where a baseline exists.
	BaselineMedian float64 `json:",omitempty"`
	Ratio          float64 `json:",omitempty"`
	Target         string  `json:",omitempty"`
	Note           string  `json:",omitempty"`
	// Error says why the figure could not be measured (an op failed, or
	// none completed). The bench exits non-zero when any figure has one.
	Error string `json:",omitempty"`
}

// Report is the JSON written to bench/results/latest.json.
type Report struct {
	When    time.Time `json:"when"`
	Plan    plan      `json:"plan"`
	Results []Result  `json:"results"`
}

func run(ctx context.Context) error {
	p := newPlan()
	pr := progress{start: time.Now()}
	tmp, err := os.MkdirTemp("", "signet-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	pr.say("building binaries")
	if err := build(ctx, tmp); err != nil {
		return err
	}
	env, err := newEnv(ctx, tmp, pr)
	if err != nil {
		return err
	}
	defer env.close()

	rep := Report{When: time.Now().UTC(), Plan: p}
	only := os.Getenv("BENCH_ONLY")
	var failed []string
	for _, fig := range env.figures() {
		if only != "" && !strings.Contains(fig.name, only) {
			continue
		}
		pr.say(fig.name)
		r, err := fig.run(ctx, p)
		if err != nil {
			r = append(r, Result{Name: fig.name, Error: err.Error()})
		}
		for _, x := range r {
			if x.Error != "" {
				failed = append(failed, x.Name+": "+x.Error)
			}
		}
		rep.Results = append(rep.Results, r...)
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
	printTable(os.Stdout, rep)
	pr.say("done")
	if err := os.MkdirAll(filepath.Join("bench", "results"), 0o755); err != nil {
		return err
	}
	out, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join("bench", "results", "latest.json"), out, 0o644); err != nil {
		return err
	}
	if len(failed) > 0 {
		return fmt.Errorf("%d figure(s) could not be measured:\n  %s", len(failed), strings.Join(failed, "\n  "))
	}
	return nil
}

// progress prints what the bench is doing, with the time since it began.
type progress struct{ start time.Time }

func (p progress) say(msg string) {
	fmt.Fprintf(os.Stderr, "bench: [%5.1fs] %s\n", time.Since(p.start).Seconds(), msg)
}
