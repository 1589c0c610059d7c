package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/signetdev/signet/client"
)

func pass(string, string) ([]byte, error) { return []byte("bench"), nil }

// countingTransport counts response body bytes.
type countingTransport struct {
	rt    http.RoundTripper
	bytes atomic.Int64
}

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := c.rt.RoundTrip(r)
	if err == nil {
		resp.Body = &countingBody{ReadCloser: resp.Body, n: &c.bytes}
	}
	return resp, err
}

type countingBody struct {
	io.ReadCloser
	n *atomic.Int64
}

func (b *countingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.n.Add(int64(n))
	return n, err
}

func (e *env) newClient(dir string, hc *http.Client) (*client.Client, error) {
	return client.New(client.Options{Server: "http://" + e.pgServer.addr, TrustDir: dir, HTTPClient: hc,
		Keys: client.NewFileKeyStore(filepath.Join(dir, "private"), pass, 0)})
}

// signFigure: stage, sign and publish one tag through the library, one at a
// time (a CI job signing what it pushed).
func (e *env) signFigure(ctx context.Context, p plan) ([]Result, error) {
	dev, err := e.newClient(filepath.Join(e.tmp, "sign-dev"), httpGetter(2))
	if err != nil {
		return nil, err
	}
	const gun = "bench.example.com/lib-sign"
	if _, err := dev.Init(ctx, gun); err != nil {
		return nil, err
	}
	var n atomic.Int64
	op := func(ctx context.Context, _ int, _ *stopwatch) error {
		d := digest.FromString(fmt.Sprint(n.Add(1)))
		_, err := dev.Publish(ctx, gun, []client.Change{{Tag: "latest", Digest: d, Size: 1}})
		return err
	}
	r := Result{Name: "sign one tag through the library (update, sign, publish; key unlocked) p50", Unit: "ms", Target: "<= 20 ms"}
	summarize(&r, measure(ctx, p, 1, op), nil, p50ms)
	return []Result{r}, nil
}

func (e *env) pinnedClient(ctx context.Context, gun, dir string, hc *http.Client, root []byte) (*client.Client, error) {
	c, err := e.newClient(dir, hc)
	if err != nil {
		return nil, err
	}
	return c, c.PinRoot(gun, root)
}

// firstRoot fetches a repository's 1.root.json (the bench trusts its own
// server; a real engine pins the ceremony's root).
func (e *env) firstRoot(gun string) ([]byte, error) {
	resp, err := http.Get("http://" + e.pgServer.addr + "/v2/" + gun + "/_trust/tuf/1.root.json")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	return io.ReadAll(resp.Body)
}

// resolveWarmFigure: Resolve with an up-to-date cache (timestamp unchanged)
// against one GET of timestamp.json, the least a check can cost.
func (e *env) resolveWarmFigure(ctx context.Context, p plan) ([]Result, error) {
	root, err := e.firstRoot(smallGUN)
	if err != nil {
		return nil, err
	}
	hc := httpGetter(2)
	c, err := e.pinnedClient(ctx, smallGUN, filepath.Join(e.tmp, "warm"), hc, root)
	if err != nil {
		return nil, err
	}
	resolve := func(ctx context.Context, _ int, _ *stopwatch) error {
		_, err := c.Resolve(ctx, smallGUN+":tag-1")
		return err
	}
	if err := resolve(ctx, 0, nil); err != nil {
		return nil, fmt.Errorf("resolve: %w", err)
	}
	runs := measure(ctx, p, 1, resolve)
	base := measure(ctx, p, 1, getOp(hc, "http://"+e.pgServer.addr+"/v2/"+smallGUN+"/_trust/tuf/timestamp.json", -1))
	r50 := Result{Name: "resolve, warm cache p50", Unit: "ms", Target: "ratio <= 1.50 (baseline: one GET of timestamp.json)"}
	summarize(&r50, runs, base, p50ms)
	r99 := Result{Name: "resolve, warm cache p99", Unit: "ms"}
	summarize(&r99, runs, base, p99ms)
	return []Result{r50, r99}, nil
}

// resolveColdFigure: Resolve from an empty cache in flat repositories
// (one targets role) of 10, 10k and p.HugeTags tags (100k; 20k under
// BENCH_QUICK): latency, bytes fetched and, for the largest, the peak
// memory of `signet resolve` in its own process.
func (e *env) resolveColdFigure(ctx context.Context, p plan) ([]Result, error) {
	huge := fmt.Sprintf("%dk tags", p.HugeTags/1000)
	if p.Quick {
		huge += " (BENCH_QUICK; the full run uses 100k)"
	}
	hugeGUN := fmt.Sprintf("bench.example.com/flat-huge-%d", p.HugeTags)
	if _, err := initRepo("http://"+e.pgServer.addr, hugeGUN, seedClient(), p.HugeTags); err != nil {
		return nil, fmt.Errorf("seed %s: %w", huge, err)
	}
	var out []Result
	for _, tc := range []struct {
		name, gun string
	}{{"10 tags", smallGUN}, {"10k tags", bigGUN}, {huge, hugeGUN}} {
		root, err := e.firstRoot(tc.gun)
		if err != nil {
			return nil, err
		}
		var runs []sample
		var fetched int64
		for i := range p.ColdRuns {
			ct := &countingTransport{rt: http.DefaultTransport}
			dir := filepath.Join(e.tmp, fmt.Sprintf("cold-%s-%d", filepath.Base(tc.gun), i))
			c, err := e.pinnedClient(ctx, tc.gun, dir, &http.Client{Transport: ct}, root)
			if err != nil {
				return nil, err
			}
			start := time.Now()
			if _, err := c.Resolve(ctx, tc.gun+":tag-7"); err != nil {
				return nil, fmt.Errorf("resolve %s: %w", tc.gun, err)
			}
			d := time.Since(start)
			runs = append(runs, sample{Ops: 1, Duration: d, P50: d, P99: d, PerSec: 1 / d.Seconds()})
			fetched = ct.bytes.Load()
			os.RemoveAll(dir)
		}
		lat := Result{Name: "resolve, cold cache, flat " + tc.name + " latency", Unit: "ms"}
		if tc.gun == hugeGUN {
			lat.Target = "<= 1000 ms"
		}
		summarize(&lat, runs, nil, p50ms)
		out = append(out, lat, single("resolve, cold cache, flat "+tc.name+" bytes fetched", "KiB", float64(fetched)/1024))
	}
	rss, err := e.cliResolveRSS(ctx, hugeGUN)
	if err != nil {
		return nil, err
	}
	r := single("client peak RSS, `signet resolve` cold, flat "+huge, "MiB", rss)
	r.Target = "<= 150 MiB"
	return append(out, r), nil
}

func (e *env) cliResolveRSS(ctx context.Context, gun string) (float64, error) {
	root, err := e.firstRoot(gun)
	if err != nil {
		return 0, err
	}
	dir := filepath.Join(e.tmp, "cli-rss")
	rootFile := filepath.Join(e.tmp, "cli-rss-root.json")
	if err := os.WriteFile(rootFile, root, 0o600); err != nil {
		return 0, err
	}
	bin := filepath.Join(e.tmp, "signet")
	env := []string{"SIGNET_SERVER=http://" + e.pgServer.addr, "SIGNET_TRUST_DIR=" + dir}
	if err := runCmd(ctx, env, bin, "trust", "pin", gun, "--root", rootFile); err != nil {
		return 0, err
	}
	// Through a small process of its own (peakRSS): the child's Maxrss
	// is at least the RSS of the process that started it (see peakRSS),
	// and this one holds seeded repositories.
	self, err := os.Executable()
	if err != nil {
		return 0, err
	}
	cmd := exec.CommandContext(ctx, self, "peak-rss", bin, "resolve", gun+":tag-7")
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return 0, fmt.Errorf("signet resolve: %w: %s", err, ee.Stderr)
		}
		return 0, fmt.Errorf("signet resolve: %w", err)
	}
	kib, err := strconv.ParseInt(strings.TrimSpace(string(out)), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("signet resolve: peak RSS %q: %w", out, err)
	}
	return float64(kib) / 1024, nil
}

// peakRSS (bench peak-rss BIN ARGS…) runs BIN and prints its peak RSS in
// KiB. It is a process of its own because on Linux a child's Maxrss is
// never below the RSS of the process that started it: os/exec starts
// children with clone(CLONE_VM|CLONE_VFORK), so the child runs in its
// parent's address space until it execs, and exec folds that address
// space's high-water mark into the child's Maxrss. Started from the bench
// (hundreds of MiB, seeded repositories in memory), `signet resolve` was
// reported with the bench's own peak; started from this small process, it
// is reported with its own.
func peakRSS(args []string) int {
	if len(args) == 0 {
		fmt.Fprintln(os.Stderr, "bench peak-rss: no command")
		return 2
	}
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "bench peak-rss:", err)
		return 1
	}
	ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	if !ok || ru.Maxrss == 0 {
		fmt.Fprintln(os.Stderr, "bench peak-rss: no peak RSS from the OS")
		return 1
	}
	fmt.Println(ru.Maxrss) // KiB on Linux
	return 0
}
