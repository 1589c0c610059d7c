package signetcli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestListShowsEveryResolvingTag: list shows the tags that delegates
// signed and those in hashed bins, each with the role that vouches for it,
// and only the winner of a tag listed twice.
func TestListShowsEveryResolvingTag(t *testing.T) {
	t.Parallel()
	srv := newServer(t)
	gun := "registry.example.com/team/listed"
	owner := &cli{t: t, server: srv, trustDir: t.TempDir()}
	owner.ok("init", gun)
	rootFile := filepath.Join(t.TempDir(), "root.json")
	if err := os.WriteFile(rootFile, []byte(owner.ok("trust", "show", gun)), 0o600); err != nil {
		t.Fatal(err)
	}
	alice, _, alicePub := newSigner(t, srv, gun, rootFile)
	addSigner(t, owner, alice, gun, "alice", alicePub)
	owner.ok("sign", gun+":owner", "--digest", digest1, "--size", "1", "--role", "targets")
	alice.ok("sign", gun+":alice", "--digest", digest2, "--size", "2")
	alice.ok("sign", gun+":both", "--digest", digest2, "--size", "2")
	owner.ok("sign", gun+":both", "--digest", digest1, "--size", "1", "--role", "targets")

	out := owner.ok("list", gun)
	for _, want := range []string{"owner", "alice", "both", "targets/releases"} {
		if !strings.Contains(out, want) {
			t.Fatalf("list lacks %q:\n%s", want, out)
		}
	}
	var rows []map[string]any
	if err := json.Unmarshal([]byte(owner.ok("-o", "json", "list", gun)), &rows); err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, r := range rows {
		got[r["tag"].(string)] = r["role"].(string) + " " + r["digest"].(string)
	}
	want := map[string]string{"owner": "targets " + digest1, "alice": "targets/releases " + digest2, "both": "targets " + digest1}
	if len(got) != len(want) {
		t.Fatalf("list: %v", got)
	}
	for k, v := range want {
		if got[k] != v {
			t.Fatalf("%s: %q, want %q", k, got[k], v)
		}
	}
	if out := owner.ok("list", gun, "--role", "targets/releases"); !strings.Contains(out, "alice") || strings.Contains(out, "owner") {
		t.Fatalf("list --role:\n%s", out)
	}

	// Hashed bins: every tag lives in a bin.
	bins := "registry.example.com/team/binned"
	owner.ok("init", bins, "--bins", "4")
	owner.ok("sign", bins+":a", "--digest", digest1, "--size", "1")
	owner.ok("sign", bins+":b", "--digest", digest2, "--size", "2")
	out = owner.ok("list", bins)
	if !strings.Contains(out, "a ") || !strings.Contains(out, "b ") || !strings.Contains(out, "bins-") {
		t.Fatalf("list of a binned repository:\n%s", out)
	}
}
