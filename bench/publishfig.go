package main

import (
	"context"
	"crypto/rand"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// publishSizesFigure: one publisher changing one tag of a flat repository
// (one targets role) of 10, 1,000 and 10,000 tags, timed from the POST to
// its answer. The 10-tag repository is the baseline: the ratio says how the
// server's cost grows with the size of the role it must validate, store
// and re-snapshot.
func (e *env) publishSizesFigure(ctx context.Context, p plan) ([]Result, error) {
	sizes := []struct {
		name   string
		tags   int
		target string
	}{{"10", 10, "<= 3 ms"}, {"1k", 1_000, "<= 8 ms"}, {"10k", 10_000, "<= 60 ms"}}
	hc := seedClient()
	defer hc.CloseIdleConnections()
	runs := make([][]sample, len(sizes))
	for i, sz := range sizes {
		d, err := initRepo("http://"+e.pgServer.addr, fmt.Sprintf("bench.example.com/flat-%d", sz.tags), hc, sz.tags)
		if err != nil {
			return nil, fmt.Errorf("seed %d tags: %w", sz.tags, err)
		}
		runs[i] = measure(ctx, p, 1, publishOp(hc, d))
	}
	var out []Result
	for i, sz := range sizes {
		name := "publish one tag, 1 publisher, " + sz.name + "-tag flat repo, postgres"
		r50 := Result{Name: name + " p50", Unit: "ms", Target: sz.target}
		summarize(&r50, runs[i], runs[0], p50ms)
		r99 := Result{Name: name + " p99", Unit: "ms"}
		summarize(&r99, runs[i], runs[0], p99ms)
		out = append(out, r50, r99)
	}
	return out, nil
}

// publishFigure: 16 publishers, each publishing one tag at a time into its
// own 10-tag repository, against the same number of clients running raw
// single-row INSERT transactions on the same PostgreSQL: the ratio is the
// share of the database's write rate that signet's publish path keeps.
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
	pubOps := make([]op, publishers)
	for i, d := range repos {
		pubOps[i] = publishOp(hc, d)
	}
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
	raw := func(ctx context.Context, w int, _ *stopwatch) error {
		return pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
			_, err := tx.Exec(ctx, `INSERT INTO raw (gun, data) VALUES ($1, $2)`, fmt.Sprint(w), payload)
			return err
		})
	}
	pub := func(ctx context.Context, w int, sw *stopwatch) error { return pubOps[w](ctx, w, sw) }
	both := measureInterleaved(ctx, p, workload{publishers, pub}, workload{publishers, raw})
	runs, baseRuns := both[0], both[1]
	r := Result{Name: "publish one tag, 16 publishers, postgres publishes/s", Unit: "publishes/s", Target: "ratio >= 0.25 (baseline: raw single-row insert transactions)"}
	summarize(&r, runs, baseRuns, perSec)
	lat := Result{Name: "publish one tag, 16 publishers p50", Unit: "ms", Target: "<= 15 ms"}
	summarize(&lat, runs, baseRuns, p50ms)
	lat99 := Result{Name: "publish one tag, 16 publishers p99", Unit: "ms"}
	summarize(&lat99, runs, baseRuns, p99ms)
	return []Result{r, lat, lat99}, nil
}
