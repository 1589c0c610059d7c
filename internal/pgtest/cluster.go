// Package pgtest gives tests a real PostgreSQL. It uses
// $SIGNET_TEST_DATABASE_URL if set, else a server on 127.0.0.1:5432, else it
// starts a throwaway cluster with the installed PostgreSQL binaries (initdb
// as the postgres user when run as root, a temp dir, a free port) and removes
// it afterwards. With no server and no binaries it fails, saying so: a test
// that needs Postgres never skips silently.
//
// Each test gets its own database, cloned from a migrated template. Only
// tests (and cmd/withpg) import this package. Safe for concurrent use.
package pgtest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// EnvURL names the variable that points tests at a Postgres server.
const EnvURL = "SIGNET_TEST_DATABASE_URL"

const defaultURL = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"

// Cluster is a running throwaway PostgreSQL.
type Cluster struct {
	URL        string
	dir        string
	bin        string
	opts       string // server options given to pg_ctl
	asPostgres bool
}

// Find returns the URL of a reachable server, or "" if there is none.
func Find(getenv func(string) string) string {
	if u := getenv(EnvURL); u != "" {
		return u
	}
	c, err := net.DialTimeout("tcp", "127.0.0.1:5432", 300*time.Millisecond)
	if err == nil {
		c.Close()
		return defaultURL
	}
	return ""
}

// binDir finds initdb and pg_ctl.
func binDir() (string, error) {
	if p, err := exec.LookPath("initdb"); err == nil {
		if _, err := exec.LookPath("pg_ctl"); err == nil {
			return filepath.Dir(p), nil
		}
	}
	matches, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	if len(matches) > 0 {
		return filepath.Dir(matches[len(matches)-1]), nil
	}
	return "", errors.New("pgtest: no PostgreSQL server answers and no PostgreSQL binaries (initdb, pg_ctl) are installed: install PostgreSQL (Debian: apt-get install postgresql) or set " + EnvURL)
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// Start initialises and starts a throwaway cluster. Settings ("name=value",
// e.g. "shared_preload_libraries=pg_stat_statements" or "fsync=on") are
// passed to the server after the defaults, which they override: the
// defaults trade durability for speed (fsync, synchronous_commit and
// full_page_writes off) and allow 300 connections.
func Start(ctx context.Context, settings ...string) (*Cluster, error) {
	bin, err := binDir()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "signet-pg-")
	if err != nil {
		return nil, fmt.Errorf("pgtest: %w", err)
	}
	c := &Cluster{dir: dir, bin: bin, asPostgres: os.Geteuid() == 0}
	fail := func(err error) (*Cluster, error) {
		os.RemoveAll(dir)
		return nil, err
	}
	if c.asPostgres {
		// initdb refuses to run as root: hand the directory to postgres.
		u, err := user.Lookup("postgres")
		if err != nil {
			return fail(fmt.Errorf("pgtest: running as root needs a postgres user to run initdb: %w", err))
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chmod(dir, 0o700); err != nil {
			return fail(err)
		}
		if err := os.Chown(dir, uid, gid); err != nil {
			return fail(fmt.Errorf("pgtest: %w", err))
		}
	}
	data := filepath.Join(dir, "data")
	if out, err := c.run(ctx, "initdb", "-D", data, "-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-sync"); err != nil {
		return fail(fmt.Errorf("pgtest: initdb: %w\n%s", err, out))
	}
	port, err := freePort()
	if err != nil {
		return fail(err)
	}
	c.opts = fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300", port, dir)
	for _, kv := range settings {
		if !settingRE.MatchString(kv) {
			return fail(fmt.Errorf("pgtest: setting %q: want name=value", kv))
		}
		c.opts += " -c " + kv
	}
	if err := c.Resume(ctx); err != nil {
		return fail(err)
	}
	c.URL = fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", port)
	return c, nil
}

var settingRE = regexp.MustCompile(`^[a-z_.]+=[A-Za-z0-9_.,:/-]+$`)

// DataDir is the cluster's data directory.
func (c *Cluster) DataDir() string { return filepath.Join(c.dir, "data") }

func (c *Cluster) run(ctx context.Context, name string, args ...string) ([]byte, error) {
	path := filepath.Join(c.bin, name)
	var cmd *exec.Cmd
	if c.asPostgres {
		cmd = exec.CommandContext(ctx, "runuser", append([]string{"-u", "postgres", "--", path}, args...)...)
	} else {
		cmd = exec.CommandContext(ctx, path, args...)
	}
	cmd.Dir = c.dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	return cmd.CombinedOutput()
}

// Resume starts the (paused) cluster.
func (c *Cluster) Resume(ctx context.Context) error {
	if out, err := c.run(ctx, "pg_ctl", "-D", filepath.Join(c.dir, "data"), "-o", c.opts, "-l", filepath.Join(c.dir, "log"), "-w", "-t", "60", "start"); err != nil {
		logs, _ := os.ReadFile(filepath.Join(c.dir, "log"))
		return fmt.Errorf("pgtest: pg_ctl start: %w\n%s\n%s", err, out, logs)
	}
	return nil
}

// Pause stops the server, keeping its data, as an outage would. (A fast,
// clean shutdown: with fsync off, an immediate one could lose the last
// commits.)
func (c *Cluster) Pause(ctx context.Context) error {
	if out, err := c.run(ctx, "pg_ctl", "-D", filepath.Join(c.dir, "data"), "-m", "fast", "-w", "stop"); err != nil {
		return fmt.Errorf("pgtest: pg_ctl stop: %w: %s", err, out)
	}
	return nil
}

// Stop stops the cluster and removes its files.
func (c *Cluster) Stop() error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := c.run(ctx, "pg_ctl", "-D", filepath.Join(c.dir, "data"), "-m", "immediate", "-w", "stop")
	if rmErr := os.RemoveAll(c.dir); err == nil && rmErr != nil {
		err = rmErr
	}
	if err != nil {
		return fmt.Errorf("pgtest: stop: %w: %s", err, strings.TrimSpace(string(out)))
	}
	return nil
}
