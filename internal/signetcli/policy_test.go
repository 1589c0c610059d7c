package signetcli

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/signetdev/signet/internal/testserver"
)

func TestPolicyCheck(t *testing.T) {
	t.Parallel()
	srv := testserver.Start(t)
	gun := "registry.example.com/team/app"
	repo := srv.Init(t, gun)
	repo.Sign("1.0")
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "app.root.json"), repo.Root, 0o600); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "policy.yaml")
	yaml := fmt.Sprintf(`server: {url: %s}
trust_dir: %s
rules:
  - {match: %s, require: signed, root: app.root.json}
  - {match: docker.io/library/*, require: none}
`, srv.URL, filepath.Join(dir, "trust"), gun)
	if err := os.WriteFile(file, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	c := &cli{t: t, server: "http://unused.invalid", trustDir: t.TempDir()}
	d10 := testserver.Digest("1.0")

	code, out, errOut := c.run("policy", "check", file, gun+":1.0", "alpine:3.20")
	if code != exitOK || !strings.Contains(out, "allow "+gun+":1.0 as "+gun+"@"+d10.String()+": "+gun+":1.0 is signed by targets") ||
		!strings.Contains(out, "allow alpine:3.20: docker.io/library/alpine is allowed unsigned") {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
	code, out, errOut = c.run("policy", "check", file, gun+":1.0", gun+":2.0", "quay.io/x/y:1", "-o", "json")
	if code != exitNotSigned || !strings.Contains(errOut, "2 of 3 references denied") {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
	var got []struct{ Decision, Ref, Digest, Reason string }
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if len(got) != 3 || got[0].Decision != "allow" || got[0].Digest != d10.String() || got[1].Decision != "deny" || got[1].Reason != gun+":2.0 is not signed" ||
		got[2].Reason != "no rule matches quay.io/x/y and the default is deny" {
		t.Fatalf("json: %+v", got)
	}
	// The digest being pulled.
	if code, out, _ := c.run("policy", "check", file, gun+":1.0", "--digest", testserver.Digest("other").String()); code != exitNotSigned || !strings.Contains(out, "not the digest being pulled") {
		t.Fatalf("--digest: exit %d %s", code, out)
	}
	// Undecided: the server is gone.
	srv.Close()
	if code, out, errOut := c.run("policy", "check", file, gun+":1.0"); code != exitError || !strings.Contains(out, "error "+gun+":1.0: cannot verify") || !strings.Contains(errOut, "1 undecided") {
		t.Fatalf("unreachable: exit %d %s %s", code, out, errOut)
	}
	// Bad files and usage.
	if code, _, errOut := c.run("policy", "check", file); code != exitUsage {
		t.Fatalf("no REF: exit %d %s", code, errOut)
	}
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("rules: [{match: x, requir: signed}]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, _, errOut := c.run("policy", "check", bad, "alpine"); code != exitError || !strings.Contains(errOut, "field requir not found") {
		t.Fatalf("bad file: exit %d %s", code, errOut)
	}
}
