package cli

import (
	"bytes"
	"flag"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func newFS() (*flag.FlagSet, *string, *int, *[]string) {
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	addr := fs.String("addr", "127.0.0.1:1", "")
	n := fs.Int("max-body", 1, "")
	var list []string
	fs.Func("gun-prefix", "", func(v string) error { list = append(list, v); return nil })
	fs.String("db", "", "")
	return fs, addr, n, &list
}

func TestPrecedence(t *testing.T) {
	t.Parallel()
	cfg := filepath.Join(t.TempDir(), "c.yaml")
	if err := os.WriteFile(cfg, []byte("addr: 0.0.0.0:2\nmax-body: 7\ngun-prefix: [a/, b/]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"X_MAX_BODY": "8"}
	fs, addr, n, list := newFS()
	if err := Parse(fs, []string{"--config", cfg, "--addr", "0.0.0.0:3"}, "X_", func(k string) string { return env[k] }); err != nil {
		t.Fatal(err)
	}
	if *addr != "0.0.0.0:3" || *n != 8 || strings.Join(*list, ",") != "a/,b/" {
		t.Fatalf("addr %s max-body %d prefixes %v", *addr, *n, *list)
	}
	// From the environment's CONFIG variable, file value kept.
	fs, _, n, _ = newFS()
	if err := Parse(fs, nil, "X_", func(k string) string { return map[string]string{"X_CONFIG": cfg}[k] }); err != nil || *n != 7 {
		t.Fatalf("max-body %d: %v", *n, err)
	}
	// Unknown keys are refused.
	if err := os.WriteFile(cfg, []byte("adr: typo\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	fs, _, _, _ = newFS()
	if err := Parse(fs, []string{"--config=" + cfg}, "X_", func(string) string { return "" }); err == nil || !strings.Contains(err.Error(), `unknown key "adr"`) {
		t.Fatalf("unknown key: %v", err)
	}
}

func TestEffectiveMasksSecrets(t *testing.T) {
	t.Parallel()
	fs, _, _, _ := newFS()
	fs.String("pkcs11-pin", "", "")
	if err := Parse(fs, []string{"--db", "postgres://signet:hunter2@db/signet", "--pkcs11-pin", "1234"}, "X_", func(string) string { return "" }); err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	Effective(&b, fs)
	if strings.Contains(b.String(), "hunter2") || strings.Contains(b.String(), "1234") || !strings.Contains(b.String(), "signet:xxxxx@db") {
		t.Fatalf("effective configuration:\n%s", b.String())
	}
}

func FuzzConfigFile(f *testing.F) {
	f.Add("addr: 0.0.0.0:2\nmax-body: 7\n")
	f.Add("gun-prefix: [a, b]\n")
	f.Fuzz(func(t *testing.T, yamlText string) {
		path := filepath.Join(t.TempDir(), "c.yaml")
		if err := os.WriteFile(path, []byte(yamlText), 0o600); err != nil {
			t.Fatal(err)
		}
		fs, _, _, _ := newFS()
		_ = Parse(fs, []string{"--config", path}, "X_", func(string) string { return "" }) // must not panic
	})
}

func TestSplitCommand(t *testing.T) {
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	fs.String("db", "", "")
	fs.Bool("demo", false, "")
	names := []string{"migrate", "token"}
	for _, tc := range []struct {
		args     []string
		cmd      string
		wantRest []string
	}{
		{[]string{"migrate", "--db", "x"}, "migrate", []string{"--db", "x"}},
		{[]string{"--db", "x", "migrate"}, "migrate", []string{"--db", "x"}},
		{[]string{"--db=x", "migrate", "--y", "z"}, "migrate", []string{"--db=x", "--y", "z"}},
		{[]string{"--demo", "token", "create"}, "token", []string{"--demo", "create"}},
		// "migrate" is the value of --db here, not a subcommand.
		{[]string{"--db", "migrate"}, "", []string{"--db", "migrate"}},
		{[]string{"--config", "f.yaml", "token", "list"}, "token", []string{"--config", "f.yaml", "list"}},
		{[]string{"--db", "x"}, "", []string{"--db", "x"}},
		{[]string{"migarte"}, "", []string{"migarte"}},
		{[]string{"--", "migrate"}, "", []string{"--", "migrate"}},
		{nil, "", nil},
	} {
		cmd, rest := SplitCommand(tc.args, fs, names...)
		if cmd != tc.cmd || !slices.Equal(rest, tc.wantRest) {
			t.Errorf("SplitCommand(%q) = %q %q, want %q %q", tc.args, cmd, rest, tc.cmd, tc.wantRest)
		}
	}
}
