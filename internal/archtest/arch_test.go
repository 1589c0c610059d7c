// Package archtest holds ARCHITECTURE.md's import rules against the code:
// it lists every package of the module with the go tool and fails on an
// import the page forbids.
package archtest

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

const mod = "github.com/signetdev/signet/"

type pkg struct {
	ImportPath string
	Imports    []string
}

// rules: packages (by module-relative prefix; a trailing "$" means that
// package exactly) and what they must never import: module packages by
// prefix in own ("" is every module package; a trailing "$" means that
// package exactly), other packages exactly in ext; with only set, every
// module package but those (by prefix) too.
var rules = []struct {
	from   string
	own    []string
	ext    []string
	reason string
	only   []string
}{
	{"client", []string{"server", "signer", "cmd"}, nil, "the library speaks HTTP through api", nil},
	{"signer", []string{"server", "client", "cmd"}, nil, "the signer trusts nothing the server says", nil},
	{"server/auth", []string{"server$", "server/metacache", "server/tufrepo", "server/store", "cmd"}, nil, "the server imports the auth contract, not the reverse", nil},
	{"tufrules", []string{""}, nil, "shared rules import no signet package", nil},
	{"api", []string{""}, nil, "the wire contract imports no signet package", nil},
	{"imageref", []string{""}, nil, "reference normalisation imports no signet package", nil},
	{"tufedit", nil, []string{"net/http"}, "offline metadata edits: no network, and the shared rules alone", []string{"tufrules"}},
	{"tufjson", []string{""}, nil, "go-tuf's decoding, made fast, imports no signet package", nil},
	{"server/tufrepo", []string{"server$", "server/metacache"}, []string{"net/http", "github.com/go-chi/chi/v5", "github.com/jackc/pgx/v5", "modernc.org/sqlite"}, "TUF rules talk to storage through store.MetaStore only", nil},
	{"policy", []string{"server", "cmd"}, nil, "hooks use the library", nil},
	{"admission", []string{"server", "cmd"}, nil, "hooks use the library", nil},
	{"notary", []string{"server", "signer", "cmd"}, nil, "the migration uses the library", nil},
	{"signer/keystore$", nil, []string{"database/sql", "github.com/jackc/pgx/v5", "github.com/jackc/pgx/v5/pgxpool", "github.com/jackc/pgx/v5/stdlib", "modernc.org/sqlite"}, "the key store contract knows no database: keystore/postgres and keystore/sqlite do", nil},
}

func TestImportRules(t *testing.T) {
	cmd := exec.Command("go", "list", "-json", mod+"...")
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("go list: %v: %s", err, stderr.String())
	}
	dec := json.NewDecoder(&out)
	n := 0
	for {
		var p pkg
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		n++
		rel := strings.TrimPrefix(p.ImportPath, mod)
		for _, r := range rules {
			if !under(rel, r.from) {
				continue
			}
			for _, imp := range p.Imports {
				if forbidden(imp, r.own, r.ext) || outside(imp, r.only) {
					t.Errorf("%s imports %s: %s (ARCHITECTURE.md)", p.ImportPath, imp, r.reason)
				}
			}
		}
	}
	if n < 20 {
		t.Fatalf("go list found %d packages: the module layout is not what this test expects", n)
	}
}

// forbidden reports whether imp is one of ext, or a module package that
// own names.
func forbidden(imp string, own, ext []string) bool {
	rel, ok := strings.CutPrefix(imp, mod)
	if !ok {
		return slices.Contains(ext, imp)
	}
	for _, n := range own {
		if exact, ok := strings.CutSuffix(n, "$"); ok {
			if rel == exact {
				return true
			}
		} else if n == "" || rel == n || strings.HasPrefix(rel, n+"/") {
			return true
		}
	}
	return false
}

// under reports whether the module package rel is from, or below it
// unless from ends in "$".
func under(rel, from string) bool {
	if exact, ok := strings.CutSuffix(from, "$"); ok {
		return rel == exact
	}
	return rel == from || strings.HasPrefix(rel, from+"/")
}

// outside reports whether only is set and imp is a module package that
// only does not name (by prefix).
func outside(imp string, only []string) bool {
	rel, ok := strings.CutPrefix(imp, mod)
	if !ok || only == nil {
		return false
	}
	return !slices.ContainsFunc(only, func(n string) bool { return rel == n || strings.HasPrefix(rel, n+"/") })
}

// The matchers themselves, so that a rule cannot silently match nothing.
func TestForbidden(t *testing.T) {
	for _, tc := range []struct {
		imp      string
		own, ext []string
		want     bool
	}{
		{mod + "server/store", []string{"server"}, nil, true},
		{mod + "serverless", []string{"server"}, nil, false},
		{mod + "server", []string{"server$"}, nil, true},
		{mod + "server/auth", []string{"server$"}, nil, false},
		{mod + "signer", []string{""}, nil, true},
		{"net/http", []string{""}, []string{"net/http"}, true},
		{"net/url", nil, []string{"net/http"}, false},
		{"github.com/go-chi/chi/v5", []string{""}, nil, false},
	} {
		if got := forbidden(tc.imp, tc.own, tc.ext); got != tc.want {
			t.Errorf("forbidden(%s, %q, %q) = %v, want %v", tc.imp, tc.own, tc.ext, got, tc.want)
		}
	}
	for _, tc := range []struct {
		imp  string
		only []string
		want bool
	}{
		{mod + "client", []string{"tufrules"}, true},
		{mod + "tufrules", []string{"tufrules"}, false},
		{mod + "tufrulesx", []string{"tufrules"}, true},
		{mod + "client", nil, false},
		{"net/http", []string{"tufrules"}, false},
	} {
		if got := outside(tc.imp, tc.only); got != tc.want {
			t.Errorf("outside(%s, %q) = %v, want %v", tc.imp, tc.only, got, tc.want)
		}
	}
	for _, tc := range []struct {
		rel, from string
		want      bool
	}{
		{"signer/keystore", "signer/keystore$", true},
		{"signer/keystore/sqlite", "signer/keystore$", false},
		{"signer/keystore/sqlite", "signer", true},
		{"signerx", "signer", false},
	} {
		if got := under(tc.rel, tc.from); got != tc.want {
			t.Errorf("under(%s, %s) = %v, want %v", tc.rel, tc.from, got, tc.want)
		}
	}
}
