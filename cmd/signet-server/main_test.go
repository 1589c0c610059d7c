package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/signetdev/signet/internal/pgtest"
	"github.com/signetdev/signet/internal/tuftest"
	"github.com/signetdev/signet/server"
	"github.com/signetdev/signet/server/store/postgres"
	"github.com/signetdev/signet/server/store/sqlite"
	"github.com/signetdev/signet/server/tufrepo"
	"github.com/signetdev/signet/signer/keystore"
)

func env(vars map[string]string) func(string) string {
	return func(k string) string { return vars[k] }
}

func TestRefusesBadConfig(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		args []string
		env  map[string]string
		want string
	}{
		{"plain HTTP off loopback", []string{"--addr", "0.0.0.0:4443"}, nil, "not loopback"},
		{"env sets the address", nil, map[string]string{"SIGNET_ADDR": "10.0.0.1:4443"}, "not loopback"},
		{"cert without key", []string{"--tls-cert", "c.pem"}, nil, "go together"},
		{"signer without mTLS files", []string{"--signer", "https://signer:7443"}, nil, "--signer-ca"},
		{"tiny body limit", []string{"--max-body", "10"}, nil, "--max-body"},
		{"unknown flag", []string{"--nope"}, nil, "flag provided but not defined"},
		{"anonymous writes off loopback", []string{"--addr", "0.0.0.0:4443", "--tls-cert", "c.pem", "--tls-key", "k.pem"}, nil, "--auth none lets anyone"},
		{"anonymous writes on loopback (behind a proxy it is everybody)", nil, nil, "--auth none lets anyone"},
		{"anonymous writes with token auth", []string{"--auth", "token", "--tokens", "t.json", "--allow-anonymous-writes"}, nil, "--allow-anonymous-writes goes only with --auth none"},
		{"CLI credentials in SIGNET_AUTH", nil, map[string]string{"SIGNET_AUTH": "alice:hunter2"}, "unset it for signet-server"},
		{"prune keeping one version", []string{"--prune-keep", "1"}, nil, "--prune-keep must be 0"},
		{"zero staged quota", []string{"--staged-quota-repo", "0"}, nil, "-1 for no quota"},
		{"bad trusted proxy", []string{"--trusted-proxy", "10.0.0.0/33"}, nil, "neither an address nor a CIDR"},
		{"token auth without a file", []string{"--auth", "token"}, nil, "--tokens FILE"},
		{"registry auth without its settings", []string{"--auth", "registry"}, nil, "--registry-realm"},
		{"misspelt command", []string{"migarte", "--allow-anonymous-writes"}, nil, `unknown command or argument "migarte"`},
		{"max-age of a fraction of a second", []string{"--cache-max-age", "1500ms", "--allow-anonymous-writes"}, nil, "--cache-max-age 1.5s must be whole seconds"},
		{"max-age past the timestamps' half-life", []string{"--cache-max-age", "13h", "--timestamp-lifetime", "24h", "--allow-anonymous-writes"}, nil, "under half of --timestamp-lifetime"},
		{"listen URL with the embedded store", []string{"--db-listen-url", "postgres://db/signet", "--allow-anonymous-writes"}, nil, "--db-listen-url goes with a postgres:// --db"},
		{"re-check too often", []string{"--cache-recheck", "1ms", "--allow-anonymous-writes"}, nil, "--cache-recheck 1ms must be between"},
		{"empty pool", []string{"--db", "postgres://db/signet", "--db-max-conns", "0", "--allow-anonymous-writes"}, nil, "--db-max-conns must be at least 1"},
		{"help lists the commands", []string{"--help"}, nil, "prune      remove old metadata versions"},
	} {
		var stderr bytes.Buffer
		code := run(context.Background(), tc.args, io.Discard, &stderr, env(tc.env))
		if code != 2 || !strings.Contains(stderr.String(), tc.want) || strings.Contains(stderr.String(), "hunter2") {
			t.Errorf("%s: exit %d, stderr %q", tc.name, code, stderr.String())
		}
	}
}

func TestServesOnEmbeddedStore(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"--db", filepath.Join(dir, "signet.db")}, io.Discard, io.Discard,
			env(map[string]string{"SIGNET_ADDR": addr, "SIGNET_SIGNER_PASSPHRASE": "test passphrase", "SIGNET_ALLOW_ANONYMOUS_WRITES": "true", "SIGNET_CACHE_MAX_AGE": "3s"}))
	}()
	var resp *http.Response
	for range 100 {
		resp, err = http.Get("http://" + addr + "/healthz")
		if err == nil {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("healthz: %d", resp.StatusCode)
	}
	resp, err = http.Get("http://" + addr + "/v2/example.com/app/_trust/tuf/timestamp.key")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("key: %v %v", resp, err)
	}
	resp.Body.Close()
	// SIGNET_CACHE_MAX_AGE reaches the server: a metadata file not found
	// is cacheable for that long.
	resp, err = http.Get("http://" + addr + "/v2/example.com/app/_trust/tuf/timestamp.json")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if cc := resp.Header.Get("Cache-Control"); resp.StatusCode != http.StatusNotFound || cc != "public, max-age=3" {
		t.Fatalf("timestamp of an empty repository: %d, Cache-Control %q; want 404 and public, max-age=3", resp.StatusCode, cc)
	}
	resp, err = http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{"go_goroutines ", "go_memstats_heap_alloc_bytes ", "process_resident_memory_bytes ", "signet_http_requests_total"} {
		if !strings.Contains(string(metrics), want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	cancel()
	if code := <-done; code != 0 {
		t.Fatalf("exit %d", code)
	}
	// A restart with another passphrase refuses to start.
	var stderr bytes.Buffer
	code := run(context.Background(), []string{"--db", filepath.Join(dir, "signet.db"), "--addr", addr, "--allow-anonymous-writes"}, io.Discard, &stderr,
		env(map[string]string{"SIGNET_SIGNER_PASSPHRASE": "another", "SIGNET_LOG_FORMAT": "text"}))
	if code != 1 || !strings.Contains(stderr.String(), "wrong passphrase") {
		t.Fatalf("wrong passphrase: exit %d, %s", code, stderr.String())
	}
}

func TestMain(m *testing.M) { pgtest.Main(m) }

func TestMigratePostgres(t *testing.T) {
	t.Parallel()
	url := pgtest.NewDatabase(t, "empty", func(context.Context, string) error { return nil })
	if code := run(context.Background(), []string{"migrate", "--db", url}, io.Discard, io.Discard, env(nil)); code != 0 {
		t.Fatalf("migrate: exit %d", code)
	}
	st, err := postgres.Open(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	cur, want, err := st.MigrationStatus(context.Background())
	if err != nil || cur != want {
		t.Fatalf("after migrate: %d/%d %v", cur, want, err)
	}
	// Idempotent; the flags may come before the command too.
	if code := run(context.Background(), []string{"--db", url, "migrate"}, io.Discard, io.Discard, env(nil)); code != 0 {
		t.Fatalf("second migrate: exit %d", code)
	}
}

// TestPostgresPoolFlags: --db-max-conns and --db-listen-url reach the
// store.
func TestPostgresPoolFlags(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := pgtest.NewDatabase(t, "empty", func(context.Context, string) error { return nil })
	st, err := openStore(ctx, config{DB: url, DBMaxConns: 3})
	if err != nil {
		t.Fatal(err)
	}
	ps, ok := st.(interface {
		PoolStats() (acquired, idle, total, max int32)
	})
	if !ok {
		t.Fatalf("%T has no pool", st)
	}
	if _, _, _, max := ps.PoolStats(); max != 3 {
		t.Errorf("--db-max-conns 3: pool of %d", max)
	}
	st.Close()
	if _, err := openStore(ctx, config{DB: url, DBMaxConns: 3, DBListenURL: "postgres://%zz"}); err == nil || !strings.Contains(err.Error(), "listen URL") {
		t.Errorf("a listen URL that does not parse: %v", err)
	}
}

// TestCacheOptions: --cache-recheck applies on a shared database only; the
// embedded store's cache trusts what it holds until this process writes.
func TestCacheOptions(t *testing.T) {
	t.Parallel()
	if n := len(cacheOptions(config{DB: "postgres://db/signet", CacheRecheck: time.Second})); n != 1 {
		t.Errorf("postgres: %d cache options, want the re-check", n)
	}
	if n := len(cacheOptions(config{DB: "./signet.db", CacheRecheck: time.Second})); n != 0 {
		t.Errorf("embedded: %d cache options, want none", n)
	}
}

func TestTokenCreate(t *testing.T) {
	t.Parallel()
	file := filepath.Join(t.TempDir(), "tokens.json")
	var out, errb bytes.Buffer
	code := run(context.Background(), []string{"token", "create", "--tokens", file, "--scope", "push:registry.example.com/team/*"}, &out, &errb, env(nil))
	if code != 0 || !strings.HasPrefix(out.String(), "sgt_") {
		t.Fatalf("exit %d: %s %s", code, out.String(), errb.String())
	}
	data, _ := os.ReadFile(file)
	if strings.Contains(string(data), strings.TrimSpace(out.String())) {
		t.Fatal("token stored in the clear")
	}
	if code := run(context.Background(), []string{"token", "create", "--tokens", file, "--scope", "write:x"}, io.Discard, io.Discard, env(nil)); code != 1 {
		t.Fatalf("bad scope: exit %d", code)
	}
}

// TestFlagsBeforeOrAfterCommand: a subcommand reads the same flags
// whether they come before or after it.
func TestFlagsBeforeOrAfterCommand(t *testing.T) {
	t.Parallel()
	file := filepath.Join(t.TempDir(), "tokens.json")
	for _, args := range [][]string{
		{"token", "create", "--tokens", file, "--scope", "push:a/*"},
		{"--tokens", file, "token", "create", "--scope", "push:b/*"},
		{"token", "--tokens", file, "create", "--scope", "push:c/*"},
	} {
		if code := run(context.Background(), args, io.Discard, io.Discard, env(nil)); code != 0 {
			t.Fatalf("%q: exit %d", args, code)
		}
	}
	for _, args := range [][]string{{"token", "list", "--tokens", file}, {"--tokens", file, "token", "list"}} {
		var out bytes.Buffer
		if code := run(context.Background(), args, &out, io.Discard, env(nil)); code != 0 || strings.Count(out.String(), "push:") != 3 {
			t.Fatalf("%q: exit %d: %s", args, code, out.String())
		}
	}
	for _, args := range [][]string{{"version"}, {"--log-level", "debug", "version"}} {
		var out bytes.Buffer
		if code := run(context.Background(), args, &out, io.Discard, env(nil)); code != 0 || !strings.HasPrefix(out.String(), "signet-server ") {
			t.Fatalf("%q: exit %d: %s", args, code, out.String())
		}
	}
	var out bytes.Buffer
	if code := run(context.Background(), []string{"--max-body", "4096", "config"}, &out, io.Discard, env(nil)); code != 0 || !strings.Contains(out.String(), `max-body: "4096"`) {
		t.Fatalf("--max-body 4096 config: exit %d: %s", code, out.String())
	}
	// The value of a flag is never taken for a command.
	if code := run(context.Background(), []string{"--db", "migrate", "--allow-anonymous-writes", "nonsense"}, io.Discard, io.Discard, env(nil)); code != 2 {
		t.Fatalf("--db migrate nonsense: exit %d, want 2", code)
	}
}

func TestConfigCommandMasksSecrets(t *testing.T) {
	t.Parallel()
	cfg := filepath.Join(t.TempDir(), "signet.yaml")
	if err := os.WriteFile(cfg, []byte("db: postgres://signet:hunter2@db.example/signet\nmax-body: 2048\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	code := run(context.Background(), []string{"config", "--config", cfg}, &out, io.Discard, env(map[string]string{"SIGNET_ADDR": "127.0.0.1:9999"}))
	s := out.String()
	if code != 0 || strings.Contains(s, "hunter2") || !strings.Contains(s, `max-body: "2048"`) || !strings.Contains(s, `addr: "127.0.0.1:9999"`) {
		t.Fatalf("exit %d:\n%s", code, s)
	}
}

// TestConfigMasksCredentials: passwords in a database URL's query string
// or a libpq key=value string, and API tokens, are not printed.
func TestConfigMasksCredentials(t *testing.T) {
	t.Parallel()
	for _, db := range []string{
		"postgres://signet@db.example/signet?sslmode=require&password=hunter2",
		"postgres://signet:hunter2@db.example/signet?sslpassword=hunter2",
		"host=db.example user=signet password=hunter2 dbname=signet",
		"host=db.example password='hunter2' dbname=signet",
	} {
		var out, errb bytes.Buffer
		code := run(context.Background(), []string{"config", "--db", db, "--registry-realm", "https://auth.example/token?token=sgt_0123456789abcdef0123"}, &out, &errb, env(nil))
		if code != 0 || strings.Contains(out.String(), "hunter2") || strings.Contains(out.String(), "sgt_0123") || !strings.Contains(out.String(), "db.example") {
			t.Errorf("db %q: exit %d:\n%s%s", db, code, out.String(), errb.String())
		}
	}
}

// TestConfigRoundTrips: what `signet-server config` prints, given back with
// --config, configures the same server; lists (gun-prefix) are shown as
// configured.
func TestConfigRoundTrips(t *testing.T) {
	t.Parallel()
	var first, errb bytes.Buffer
	code := run(context.Background(), []string{"config", "--trusted-proxy", "10.0.0.0/8", "--trusted-proxy", "192.0.2.1", "--max-body", "4096",
		"--timestamp-lifetime", "2h", "--auth-reads", "--key-create-rate", "0.5", "--tls-cert", `/etc/signet/my "cert".pem`}, &first, &errb,
		env(map[string]string{"SIGNET_GUN_PREFIX": "registry.example.com/a/, registry.example.com/b/", "SIGNET_ADDR": "0.0.0.0:443"}))
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	for _, want := range []string{`gun-prefix: ["registry.example.com/a/","registry.example.com/b/"]`, `trusted-proxy: ["10.0.0.0/8","192.0.2.1"]`, `addr: "0.0.0.0:443"`} {
		if !strings.Contains(first.String(), want) {
			t.Errorf("config lacks %s:\n%s", want, first.String())
		}
	}
	file := filepath.Join(t.TempDir(), "signet.yaml")
	if err := os.WriteFile(file, first.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	var second bytes.Buffer
	errb.Reset()
	if code := run(context.Background(), []string{"config", "--config", file}, &second, &errb, env(nil)); code != 0 {
		t.Fatalf("reading the printed config back: exit %d: %s", code, errb.String())
	}
	if first.String() != second.String() {
		t.Fatalf("round trip changed the configuration:\n%s\n---\n%s", first.String(), second.String())
	}
}

// TestMalformedEnvironmentNamesTheVariable: a bad SIGNET_* value exits 2
// and says which variable.
func TestMalformedEnvironmentNamesTheVariable(t *testing.T) {
	t.Parallel()
	for name, value := range map[string]string{"SIGNET_MAX_BODY": "abc", "SIGNET_AUTH_READS": "maybe", "SIGNET_TIMESTAMP_LIFETIME": "1 day", "SIGNET_TRUSTED_PROXY": "proxy.example"} {
		var errb bytes.Buffer
		code := run(context.Background(), nil, io.Discard, &errb, env(map[string]string{name: value}))
		if code != 2 || !strings.Contains(errb.String(), name) {
			t.Errorf("%s=%s: exit %d, stderr %q", name, value, code, errb.String())
		}
	}
}

// TestPassphraseFileNotInSharedDirectory: with --db in a directory others
// may write to (like /tmp), the built-in signer does not write (or trust)
// a generated passphrase file there.
func TestPassphraseFileNotInSharedDirectory(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o1777); err != nil {
		t.Fatal(err)
	}
	var errb bytes.Buffer
	code := run(context.Background(), []string{"--db", filepath.Join(dir, "signet.db"), "--allow-anonymous-writes", "--addr", "127.0.0.1:0"}, io.Discard, &errb,
		env(map[string]string{"SIGNET_LOG_FORMAT": "text"}))
	if code != 1 || !strings.Contains(errb.String(), "writable by other users") {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	if _, err := os.Stat(filepath.Join(dir, "signer-passphrase")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("passphrase file written to a shared directory: %v", err)
	}
}

// TestTokenListRevokeExpires drives the token commands of the binary.
func TestTokenListRevokeExpires(t *testing.T) {
	t.Parallel()
	file := filepath.Join(t.TempDir(), "tokens.json")
	create := func(args ...string) (int, string) {
		var errb bytes.Buffer
		code := run(context.Background(), append([]string{"token", "create", "--tokens", file}, args...), io.Discard, &errb, env(nil))
		return code, errb.String()
	}
	if code, msg := create("--scope", "push:registry.example.com/team/*", "--expires", "30d"); code != 0 || !strings.Contains(msg, "expires "+time.Now().AddDate(0, 0, 30).UTC().Format("2006-01-02")) {
		t.Fatalf("create: exit %d: %s", code, msg)
	}
	if code, msg := create("--scope", "admin:*"); code != 0 || !strings.Contains(msg, "never expires") {
		t.Fatalf("create: exit %d: %s", code, msg)
	}
	for _, bad := range []string{"yesterday", "-1h", "2001-01-01"} {
		if code, msg := create("--scope", "admin:*", "--expires", bad); code != 2 || !strings.Contains(msg, "--expires") {
			t.Errorf("--expires %s: exit %d: %s", bad, code, msg)
		}
	}
	list := func() string {
		var out bytes.Buffer
		if code := run(context.Background(), []string{"token", "list", "--tokens", file}, &out, io.Discard, env(nil)); code != 0 {
			t.Fatalf("list: exit %d", code)
		}
		return out.String()
	}
	lines := strings.Split(strings.TrimSpace(list()), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "ID") || !strings.Contains(lines[1], "push:registry.example.com/team/*") || !strings.Contains(lines[2], "never") {
		t.Fatalf("list:\n%s", strings.Join(lines, "\n"))
	}
	if data, _ := os.ReadFile(file); strings.Contains(list(), "sgt_") || !strings.Contains(string(data), "expires_at") {
		t.Fatal("list shows a token, or the file has no expiry")
	}
	first := strings.Fields(lines[1])[0]
	var errb bytes.Buffer
	if code := run(context.Background(), []string{"token", "revoke", "--tokens", file, "nosuchtoken"}, io.Discard, &errb, env(nil)); code != 1 || !strings.Contains(errb.String(), "nothing revoked") {
		t.Fatalf("revoke unknown: exit %d: %s", code, errb.String())
	}
	if code := run(context.Background(), []string{"token", "revoke", "--tokens", file, first}, io.Discard, io.Discard, env(nil)); code != 0 {
		t.Fatalf("revoke: exit %d", code)
	}
	if l := list(); strings.Contains(l, first) || strings.Count(l, "\n") != 2 {
		t.Fatalf("after revoke:\n%s", l)
	}
	if fi, err := os.Stat(file); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("token file after revoke: %v %v", fi.Mode(), err)
	}
}

// TestPruneCommand publishes four versions into an embedded store, then
// runs `signet-server prune --keep 2` on it.
func TestPruneCommand(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "signet.db")
	st, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	clock := tuftest.NewClock()
	srv := server.New(st, keystore.NewMemory(keystore.WithClock(clock.Now)), server.WithSweepInterval(0), server.WithRepoOptions(tufrepo.WithClock(clock.Now)))
	hs := httptest.NewServer(srv.Handler())
	const gun = "registry.example.com/team/app"
	key := func(role string) *metadata.Key {
		resp, err := http.Get(hs.URL + "/v2/" + gun + "/_trust/tuf/" + role + ".key")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var k metadata.Key
		if err := json.NewDecoder(resp.Body).Decode(&k); err != nil {
			t.Fatal(err)
		}
		return &k
	}
	dev := tuftest.NewRepo(t, clock.Now, key(metadata.TIMESTAMP), key(metadata.SNAPSHOT))
	for v := int64(1); v <= 4; v++ {
		dev.Targets.Signed.Version = v
		var buf bytes.Buffer
		mw := multipart.NewWriter(&buf)
		for role, data := range map[string][]byte{metadata.ROOT: dev.RootBytes(), metadata.TARGETS: dev.TargetsBytes()} {
			if role == metadata.ROOT && v > 1 {
				continue
			}
			w, _ := mw.CreateFormFile("files", role)
			w.Write(data)
		}
		mw.Close()
		resp, err := http.Post(hs.URL+"/v2/"+gun+"/_trust/tuf/", mw.FormDataContentType(), &buf)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("publish v%d: %v %v", v, resp, err)
		}
		resp.Body.Close()
	}
	hs.Close()
	st.Close()
	var errb bytes.Buffer
	if code := run(ctx, []string{"prune", "--db", path, "--keep", "1"}, io.Discard, io.Discard, env(nil)); code != 2 {
		t.Fatalf("prune --keep 1: exit %d", code)
	}
	if code := run(ctx, []string{"prune", "--db", path, "--keep", "2"}, io.Discard, &errb, env(nil)); code != 0 || !strings.Contains(errb.String(), "1 repositories, 6 old versions removed") {
		t.Fatalf("prune: exit %d: %s", code, errb.String())
	}
	if code := run(ctx, []string{"prune", "--db", filepath.Join(t.TempDir(), "none.db")}, io.Discard, io.Discard, env(nil)); code != 1 {
		t.Fatalf("prune of a missing store: exit %d", code)
	}
	st, err = sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for _, tc := range []struct {
		role string
		v    int64
		kept bool
	}{{"root", 1, true}, {"targets", 1, false}, {"targets", 2, false}, {"targets", 3, true}, {"targets", 4, true}, {"snapshot", 2, false}, {"snapshot", 3, true}, {"timestamp", 2, false}} {
		if _, err := st.GetVersion(ctx, gun, tc.role, tc.v); (err == nil) != tc.kept {
			t.Errorf("%s v%d: %v, kept %v", tc.role, tc.v, err, tc.kept)
		}
	}
}
