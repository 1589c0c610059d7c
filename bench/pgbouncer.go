package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"
	"text/tabwriter"
	"time"
)

// The PgBouncer check (make pgbouncer-check, not in CI: it needs
// pgbouncer installed): two replicas reach PostgreSQL through PgBouncer in
// transaction mode, the way docs/capacity.md describes, in three set-ups:
//
//	as is          pgx's default (cached prepared statements) through the pooler
//	exec mode      --db …?default_query_exec_mode=exec, LISTEN through the pooler
//	+ listen URL   the same, and --db-listen-url straight to PostgreSQL
//
// For each: publishes from 4 publishers on both replicas (errors count),
// and how long a publish on one replica takes to show on the other.

// BouncerCase is one set-up's result.
type BouncerCase struct {
	Name        string `json:"name"`
	Publishes   sample `json:"publishes"`
	Visible     sample `json:"visible"`
	VisibleMiss int    `json:"visible_missed"`
}

// bouncer is a running PgBouncer.
type bouncer struct {
	cmd  *exec.Cmd
	addr string
	dir  string
}

func startBouncer(ctx context.Context, pgURL string) (*bouncer, error) {
	bin, err := exec.LookPath("pgbouncer")
	if err != nil {
		return nil, errors.New("pgbouncer is not installed (Debian: apt-get install pgbouncer); this check runs the server through it")
	}
	u, err := url.Parse(pgURL)
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "signet-pgbouncer-")
	if err != nil {
		return nil, err
	}
	addr, _ := freeAddr()
	_, port, _ := net.SplitHostPort(addr)
	ini := fmt.Sprintf(`[databases]
* = host=%s port=%s

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = %s
unix_socket_dir =
auth_type = trust
auth_file = %s
pool_mode = transaction
max_client_conn = 1000
default_pool_size = 20
ignore_startup_parameters = extra_float_digits
logfile = %s
`, u.Hostname(), u.Port(), port, filepath.Join(dir, "users.txt"), filepath.Join(dir, "pgbouncer.log"))
	if err := os.WriteFile(filepath.Join(dir, "pgbouncer.ini"), []byte(ini), 0o644); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "users.txt"), []byte(`"postgres" ""`+"\n"), 0o644); err != nil {
		return nil, err
	}
	args := []string{filepath.Join(dir, "pgbouncer.ini")}
	cmd := exec.CommandContext(ctx, bin, args...)
	if os.Geteuid() == 0 {
		// PgBouncer refuses to run as root.
		pg, err := user.Lookup("postgres")
		if err != nil {
			return nil, fmt.Errorf("pgbouncer must not run as root, and there is no postgres user: %w", err)
		}
		uid, _ := strconv.Atoi(pg.Uid)
		gid, _ := strconv.Atoi(pg.Gid)
		if err := os.Chown(dir, uid, gid); err != nil {
			return nil, err
		}
		cmd = exec.CommandContext(ctx, "runuser", append([]string{"-u", "postgres", "--", bin}, args...)...)
	}
	logf, err := os.Create(filepath.Join(dir, "stdout.log"))
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	cmd.Stdout, cmd.Stderr = logf, logf
	// runuser does not pass signals on: stop the whole process group.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start pgbouncer: %w", err)
	}
	b := &bouncer{cmd: cmd, addr: addr, dir: dir}
	for range 100 {
		if c, err := net.DialTimeout("tcp", addr, 100*time.Millisecond); err == nil {
			c.Close()
			return b, nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	b.stop()
	out, _ := os.ReadFile(filepath.Join(dir, "stdout.log"))
	log, _ := os.ReadFile(filepath.Join(dir, "pgbouncer.log"))
	return nil, fmt.Errorf("pgbouncer did not start: %s%s", out, log)
}

// stop shuts PgBouncer down at once (SIGTERM; SIGINT would wait for its
// clients).
func (b *bouncer) stop() {
	_ = syscall.Kill(-b.cmd.Process.Pid, syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = b.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		_ = syscall.Kill(-b.cmd.Process.Pid, syscall.SIGKILL)
		<-done
	}
	os.RemoveAll(b.dir)
}

// url is the pooler's URL for the database of direct.
func (b *bouncer) url(direct string, params string) string {
	u, _ := url.Parse(direct)
	u.Host = b.addr
	q := u.Query()
	if params != "" {
		extra, _ := url.ParseQuery(params)
		for k, v := range extra {
			q[k] = v
		}
	}
	u.RawQuery = q.Encode()
	return u.String()
}

func runBouncerCheck(ctx context.Context) error {
	pr := progress{start: time.Now()}
	c, err := newCluster(ctx, pr)
	defer c.close()
	if err != nil {
		return err
	}
	b, err := startBouncer(ctx, c.pg.URL)
	if err != nil {
		return err
	}
	defer b.stop()
	pubRepos, err := c.seed("bouncer-publish", 4)
	if err != nil {
		return err
	}
	probe, err := c.seed("bouncer-probe", 1)
	if err != nil {
		return err
	}
	var out []BouncerCase
	for _, tc := range []struct {
		name string
		db   string
		args []string
	}{
		{"through PgBouncer, pgx defaults", b.url(c.srvDB, ""), nil},
		{"through PgBouncer, default_query_exec_mode=exec", b.url(c.srvDB, "default_query_exec_mode=exec"), nil},
		{"… and --db-listen-url to PostgreSQL", b.url(c.srvDB, "default_query_exec_mode=exec"), []string{"--db-listen-url", c.srvDB}},
	} {
		pr.say(tc.name)
		r, err := c.bouncerCase(ctx, tc.name, tc.db, tc.args, pubRepos, probe[0])
		if err != nil {
			return fmt.Errorf("%s: %w", tc.name, err)
		}
		out = append(out, r)
	}
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "\nset-up\tpublishes\tfailed\tfirst failure\tvisible on the other replica p50 ms\tp99 ms\tnot visible in 5 s\t")
	for _, r := range out {
		first := r.Publishes.FirstError
		if len(first) > 60 {
			first = first[:60] + "…"
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%s\t%s\t%d\t\n", r.Name, r.Publishes.Ops, r.Publishes.Errors, first, ms(r.Visible.P50), ms(r.Visible.P99), r.VisibleMiss)
	}
	tw.Flush()
	if err := writeResult("pgbouncer.json", out); err != nil {
		return err
	}
	// What docs/capacity.md recommends must work.
	if last := out[len(out)-1]; last.Publishes.Errors > 0 || last.VisibleMiss > 0 || last.Visible.Ops == 0 {
		return fmt.Errorf("the recommended set-up failed: %d publishes failed, %d not visible", last.Publishes.Errors, last.VisibleMiss)
	}
	return nil
}

func (c *cluster) bouncerCase(ctx context.Context, name, db string, extra []string, pubRepos []*devRepo, probe *devRepo) (BouncerCase, error) {
	r := BouncerCase{Name: name}
	v := *c
	v.replicas = nil
	defer func() {
		for _, p := range v.replicas {
			p.stop()
		}
	}()
	for range 2 {
		p, err := c.startReplica(ctx, db, extra...)
		if err != nil {
			return r, err
		}
		v.replicas = append(v.replicas, p)
	}
	hc := httpGetter(8)
	defer hc.CloseIdleConnections()
	r.Publishes = load(ctx, len(pubRepos), 3*time.Second, v.publisher(hc, 2, pubRepos))
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	// A failure ends the probe; it counts with the publishes'.
	lats, miss, err := v.visibility(pctx, hc, 2, probe)
	r.Visible, r.VisibleMiss = latencySample(lats, 5*time.Second), miss
	if err != nil {
		r.Publishes.Errors++
		if r.Publishes.FirstError == "" {
			r.Publishes.FirstError = "probe: " + err.Error()
		}
	}
	return r, nil
}
