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

// rules: packages (by module-relative prefix) and what they must never
// import: module packages by prefix in own ("" is every module package; a
// trailing "$" means that package exactly), other packages exactly in ext.
var rules = []struct {
	from   string
	own    []string
	ext    []string
	reason string
}{
	{"client", []string{"server", "signer", "cmd"}, nil, "the library speaks HTTP through api"},
	{"signer", []string{"server", "client", "cmd"}, nil, "the signer trusts nothing the server says"},
	{"server/auth", []string{"server$", "server/metacache", "server/tufrepo", "server/store", "cmd"}, nil, "the server imports the auth contract, not the reverse"},
	{"tufrules", []string{""}, nil, "shared rules import no signet package"},
	{"api", []string{""}, nil, "the wire contract imports no signet package"},
	{"imageref", []string{""}, nil, "reference normalisation imports no signet package"},
	{"server/tufrepo/tufjson", []string{""}, nil, "go-tuf's decoding, made fast, imports no signet package"},
	{"server/tufrepo", []string{"server$", "server/metacache"}, []string{"net/http", "github.com/go-chi/chi/v5", "github.com/jackc/pgx/v5", "modernc.org/sqlite"}, "TUF rules talk to storage through store.MetaStore only"},
	{"policy", []string{"server", "cmd"}, nil, "hooks use the library"},
	{"admission", []string{"server", "cmd"}, nil, "hooks use the library"},
	{"notary", []string{"server", "signer", "cmd"}, nil, "the migration uses the library"},
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
			if rel != r.from && !strings.HasPrefix(rel, r.from+"/") {
				continue
			}
			for _, imp := range p.Imports {
				if forbidden(imp, r.own, r.ext) {
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

// The matcher itself, so that a rule cannot silently match nothing.
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
}
