package signetcli

import (
	"encoding/json"
	"runtime"
	"strings"
	"testing"
)

// TestUsageErrorsExitTwo: every usage error (unknown command or
// subcommand, bad flag, bad argument, bad reference or digest, unknown -o)
// exits 2, with one message; with -o json the error is JSON on stderr.
func TestUsageErrorsExitTwo(t *testing.T) {
	t.Parallel()
	c := &cli{t: t, server: "http://127.0.0.1:1", trustDir: t.TempDir()}
	d := "sha256:" + strings.Repeat("a", 64)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"nosuch"}, "unknown command"},
		{[]string{"key", "lst"}, `unknown command "lst" for "signet key"`},
		{[]string{"trust", "pinn", "x"}, "unknown command"},
		{[]string{"delegation", "ad"}, "unknown command"},
		{[]string{"list", "x", "--bogus"}, "unknown flag"},
		{[]string{"list"}, "takes 1 argument"},
		{[]string{"-o", "yaml", "trust", "list"}, `-o "yaml": want text or json`},
		{[]string{"resolve", "NOT A REF"}, "not an image reference"},
		{[]string{"resolve", "registry.example.com/app"}, "has no tag"},
		{[]string{"verify", "registry.example.com/app:1", "--digest", "sha256:abc"}, "64 hex digits, not 3"},
		{[]string{"verify", "registry.example.com/app:1", "--digest", "md5:" + strings.Repeat("a", 32)}, `unsupported algorithm "md5"`},
		{[]string{"sign", "registry.example.com/app:1", "--digest", "md5:" + strings.Repeat("a", 32), "--size", "1"}, `unsupported algorithm "md5"`},
		{[]string{"sign", "registry.example.com/app:1", "--digest", d}, "needs --size"},
		{[]string{"sign", "registry.example.com/app:1", "--size", "5"}, "--size goes with --digest"},
		{[]string{"sign", "registry.example.com/app:1", "--digest", "sha256:" + strings.Repeat("A", 64), "--size", "1"}, "lower-case hex"},
		{[]string{"delegation", "add", "registry.example.com/app", "ci", "--key", "k.pub"}, "must start with targets/"},
	} {
		code, _, e := c.run(tc.args...)
		if code != exitUsage || !strings.Contains(e, tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want exit 2 and %q", tc.args, code, e, tc.want)
		}
		if strings.Count(e, "signet:") != 1 {
			t.Errorf("%v: the error is not reported once: %q", tc.args, e)
		}
	}
	code, out, e := c.run("-o", "json", "resolve", "NOT A REF")
	var je struct {
		Error struct {
			Code    string `json:"code"`
			Exit    int    `json:"exit"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if code != exitUsage || out != "" || json.Unmarshal([]byte(e), &je) != nil || je.Error.Code != "usage" || je.Error.Exit != 2 || je.Error.Message == "" {
		t.Fatalf("-o json error: exit %d, stdout %q, stderr %q", code, out, e)
	}
	// A group with nothing after it prints its help.
	if code, out, _ := c.run("key"); code != exitOK || !strings.Contains(out, "Available Commands") {
		t.Fatalf("signet key: exit %d: %q", code, out)
	}
}

// TestVersion: signet version and signet --version print the version and
// the Go version from the build information.
func TestVersion(t *testing.T) {
	t.Parallel()
	c := &cli{t: t, server: "http://127.0.0.1:1", trustDir: t.TempDir()}
	for _, args := range [][]string{{"version"}, {"--version"}} {
		code, out, e := c.run(args...)
		if code != exitOK || !strings.HasPrefix(out, "signet ") || !strings.Contains(out, runtime.Version()) {
			t.Fatalf("%v: exit %d: %q %q", args, code, out, e)
		}
	}
	if code, out, _ := c.run("-o", "json", "version"); code != exitOK || !strings.Contains(out, `"version": "signet `) {
		t.Fatalf("json version: %q", out)
	}
}

// TestReferenceNormalisation: alpine ≡ docker.io/library/alpine, for GUN
// arguments and references alike.
func TestReferenceNormalisation(t *testing.T) {
	t.Parallel()
	dev := &cli{t: t, server: newServer(t), trustDir: t.TempDir()}
	if out := dev.ok("init", "alpine"); !strings.Contains(out, "initialised docker.io/library/alpine") {
		t.Fatalf("init alpine: %s", out)
	}
	dev.ok("sign", "alpine:3.19", "--digest", digest1, "--size", "1")
	if out := dev.ok("resolve", "docker.io/library/alpine:3.19"); strings.TrimSpace(out) != "docker.io/library/alpine@"+digest1 {
		t.Fatalf("resolve: %q", out)
	}
	if out := dev.ok("list", "docker.io/library/alpine"); !strings.Contains(out, "3.19") {
		t.Fatalf("list: %q", out)
	}
	if out := dev.ok("trust", "list"); !strings.Contains(out, "docker.io/library/alpine") {
		t.Fatalf("trust list: %q", out)
	}
	if code, _, e := dev.run("status", "alpine:3.19"); code != exitUsage || !strings.Contains(e, "without tag") {
		t.Fatalf("a GUN with a tag: exit %d: %s", code, e)
	}
}

// TestJSONEverywhere: with -o json, every command that prints data prints
// one JSON document, in lower-case field names.
func TestJSONEverywhere(t *testing.T) {
	t.Parallel()
	dev := &cli{t: t, server: newServer(t), trustDir: t.TempDir()}
	gun := "registry.example.com/team/json"
	work := t.TempDir()
	for _, args := range [][]string{
		{"init", gun}, {"sign", gun + ":1", "--digest", digest1, "--size", "1"}, {"resolve", gun + ":1"},
		{"verify", gun + ":1", "--digest", digest1}, {"list", gun}, {"status", gun}, {"trust", "list"}, {"key", "list"},
		{"signer", "list", gun}, {"delegation", "list", gun}, {"staged", "list", gun}, {"version"},
		{"key", "fetch", gun, "timestamp", "--out", work + "/ts.json"}, {"key", "fetch", gun, "snapshot", "--out", work + "/snap.json"},
		{"root", "init", "registry.example.com/team/other", "--keys", "1", "--threshold", "1", "--timestamp-key", work + "/ts.json", "--snapshot-key", work + "/snap.json", "--out", work + "/root.json"},
		{"root", "verify", work + "/root.json"}, {"unsign", gun + ":1"},
	} {
		code, out, e := dev.run(append([]string{"-o", "json"}, args...)...)
		if code != exitOK && !(args[0] == "root" && args[1] == "verify" && code == exitTrust) {
			t.Fatalf("%v: exit %d: %s", args, code, e)
		}
		if !json.Valid([]byte(out)) || strings.ContainsAny(strings.Join(jsonKeys(t, out), ""), "ABCDEFGHIJKLMNOPQRSTUVWXYZ") {
			t.Fatalf("%v: not lower-case JSON: %s", args, out)
		}
	}
}

// jsonKeys returns every object key in a JSON document.
func jsonKeys(t *testing.T, doc string) []string {
	t.Helper()
	var v any
	if err := json.Unmarshal([]byte(doc), &v); err != nil {
		t.Fatalf("%v: %s", err, doc)
	}
	var keys []string
	var walk func(any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			for k, e := range x {
				if k != "published" && k != "pending" { // role names are values used as keys
					keys = append(keys, k)
				}
				walk(e)
			}
		case []any:
			for _, e := range x {
				walk(e)
			}
		}
	}
	walk(v)
	return keys
}
