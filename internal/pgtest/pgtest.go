package pgtest

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"regexp"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"
)

// Main runs a package's tests with a Postgres: the one Find finds, else a
// cluster started for this test binary and removed when it ends.
func Main(m *testing.M) {
	os.Exit(M(m).Run())
}

// TestingM is what a TestMain runs (testing.M, or a wrapper such as
// goleak's).
type TestingM interface{ Run() int }

// M wraps m so that running it first makes sure a Postgres is there:
// goleak.VerifyTestMain(pgtest.M(m)) checks leaks of a Postgres test binary.
func M(m TestingM) TestingM { return withPostgres{m} }

type withPostgres struct{ m TestingM }

func (w withPostgres) Run() int {
	if Find(os.Getenv) == "" {
		c, err := Start(context.Background())
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer func() {
			if err := c.Stop(); err != nil {
				fmt.Fprintln(os.Stderr, err)
			}
		}()
		os.Setenv(EnvURL, c.URL)
	}
	defer dropTemplates()
	return w.m.Run()
}

// templates remembers the template databases made by this process.
type templates struct {
	mu    sync.Mutex
	ready map[string]error
}

// A process-wide set of templates is the one piece of shared state: test
// binaries are short-lived and templates are only ever added.
var made = &templates{ready: map[string]error{}}

var nameRE = regexp.MustCompile(`^[a-z0-9_]+$`)

// NewDatabase returns the URL of a fresh database for t, cloned from a
// template that migrate prepared once per process (named by template), and
// dropped when t ends. It fails t if no Postgres can be had.
func NewDatabase(t testing.TB, template string, migrate func(ctx context.Context, url string) error) string {
	t.Helper()
	base := Find(os.Getenv)
	if base == "" {
		t.Fatalf("pgtest: no PostgreSQL: run the tests with `make test`, call pgtest.Main from TestMain, or set %s", EnvURL)
	}
	if !nameRE.MatchString(template) {
		t.Fatalf("pgtest: template name %q", template)
	}
	ctx := context.Background()
	// One template per process: test binaries of several packages run at
	// once and must not rebuild each other's templates.
	tmpl := fmt.Sprintf("signet_tmpl_%s_%d", template, os.Getpid())
	made.mu.Lock()
	err, ok := made.ready[tmpl]
	if !ok {
		err = makeTemplate(ctx, base, tmpl, migrate)
		made.ready[tmpl] = err
	}
	made.mu.Unlock()
	if err != nil {
		t.Fatalf("pgtest: template %s: %v", tmpl, err)
	}
	name := fmt.Sprintf("signet_test_%s_%d", template, nextID())
	admin, err := pgx.Connect(ctx, base)
	if err != nil {
		t.Fatalf("pgtest: connect %s: %v", redact(base), err)
	}
	defer admin.Close(ctx)
	if _, err := admin.Exec(ctx, fmt.Sprintf("CREATE DATABASE %s TEMPLATE %s", name, tmpl)); err != nil {
		t.Fatalf("pgtest: create database: %v", err)
	}
	t.Cleanup(func() {
		c, err := pgx.Connect(ctx, base)
		if err != nil {
			t.Errorf("pgtest: drop %s: %v", name, err)
			return
		}
		defer c.Close(ctx)
		if _, err := c.Exec(ctx, fmt.Sprintf("DROP DATABASE IF EXISTS %s WITH (FORCE)", name)); err != nil {
			t.Errorf("pgtest: drop %s: %v", name, err)
		}
	})
	return withDatabase(base, name)
}

var (
	idMu sync.Mutex
	id   int
)

func nextID() int {
	idMu.Lock()
	defer idMu.Unlock()
	id++
	return os.Getpid()*10000 + id
}

func makeTemplate(ctx context.Context, base, tmpl string, migrate func(ctx context.Context, url string) error) error {
	admin, err := pgx.Connect(ctx, base)
	if err != nil {
		return fmt.Errorf("connect %s: %w", redact(base), err)
	}
	defer admin.Close(ctx)
	if _, err := admin.Exec(ctx, fmt.Sprintf("DROP DATABASE IF EXISTS %s WITH (FORCE)", tmpl)); err != nil {
		return err
	}
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+tmpl); err != nil {
		return err
	}
	if err := migrate(ctx, withDatabase(base, tmpl)); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	return nil
}

// dropTemplates removes the templates this process made.
func dropTemplates() {
	made.mu.Lock()
	defer made.mu.Unlock()
	base := Find(os.Getenv)
	if base == "" || len(made.ready) == 0 {
		return
	}
	ctx := context.Background()
	admin, err := pgx.Connect(ctx, base)
	if err != nil {
		return
	}
	defer admin.Close(ctx)
	for tmpl := range made.ready {
		_, _ = admin.Exec(ctx, fmt.Sprintf("DROP DATABASE IF EXISTS %s WITH (FORCE)", tmpl))
	}
}

func withDatabase(base, name string) string {
	u, err := url.Parse(base)
	if err != nil {
		return base
	}
	u.Path = "/" + name
	return u.String()
}

func redact(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return "(unparseable URL)"
	}
	return p.Redacted()
}
