// Package containerdtest runs signet-containerd-verifier under containerd's
// own bindir image verifier (github.com/containerd/containerd/v2/pkg/imageverifier/bindir),
// configured from the README's config stanza, against a real signet-server
// in-process. It is a separate module so that containerd's dependencies
// stay out of signet's go.mod; `make test` runs it.
package containerdtest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/containerd/containerd/v2/pkg/imageverifier/bindir"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/pelletier/go-toml/v2"

	"github.com/signetdev/signet/internal/testserver"
)

// stanza is the containerd configuration the README documents.
const stanza = `
[plugins."io.containerd.image-verifier.v1.bindir"]
  bin_dir = %q
  max_verifiers = 10
  per_verifier_timeout = "10s"
`

const app = "registry.example.com/team/app"

// binary is the verifier, built once by TestMain.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "signet-verifier-")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "signet-containerd-verifier")
	build := exec.Command("go", "build", "-o", binary, "./cmd/signet-containerd-verifier")
	build.Dir = "../.."
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "go build ./cmd/signet-containerd-verifier: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// verifier puts the verifier into a fresh bin_dir and returns containerd's
// bindir verifier configured from the stanza.
func verifier(t *testing.T) *bindir.ImageVerifier {
	t.Helper()
	binDir := filepath.Join(t.TempDir(), "bin")
	data, err := os.ReadFile(binary)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(binDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(binDir, "signet-containerd-verifier"), data, 0o755); err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		Plugins struct {
			Bindir bindir.Config `toml:"io.containerd.image-verifier.v1.bindir"`
		} `toml:"plugins"`
	}
	if err := toml.Unmarshal(fmt.Appendf(nil, stanza, binDir), &cfg); err != nil {
		t.Fatal(err)
	}
	if cfg.Plugins.Bindir.BinDir != binDir || cfg.Plugins.Bindir.MaxVerifiers != 10 {
		t.Fatalf("stanza read as %+v", cfg.Plugins.Bindir)
	}
	return bindir.NewImageVerifier(&cfg.Plugins.Bindir)
}

// writePolicy writes a policy over srv to a file and points SIGNET_POLICY
// at it (the verifier is containerd's child and inherits the test's
// environment).
func writePolicy(t *testing.T, url, rules string) {
	t.Helper()
	dir := t.TempDir()
	file := filepath.Join(dir, "policy.yaml")
	yaml := fmt.Sprintf("server: {url: %s, timeout: 2s}\ntrust_dir: %s\nrules:\n%s", url, filepath.Join(dir, "trust"), rules)
	if err := os.WriteFile(file, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("SIGNET_POLICY", file)
}

func writeRoot(t *testing.T, root []byte) string {
	t.Helper()
	f := filepath.Join(t.TempDir(), "root.json")
	if err := os.WriteFile(f, root, 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

// lastReason is the reason of the last judgement.
var lastReason string

// judge asks containerd's verifier about a pull of name as d, and checks
// the judgement and that its reason says each of parts.
func judge(t *testing.T, v *bindir.ImageVerifier, name string, d digest.Digest, ok bool, parts ...string) {
	t.Helper()
	desc := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: d, Size: 1234}
	start := time.Now()
	j, err := v.VerifyImage(context.Background(), name, desc)
	took := time.Since(start)
	if err != nil {
		t.Fatalf("%s@%s: no judgement: %v", name, d, err)
	}
	t.Logf("%s: ok=%v in %s: %s", name, j.OK, took.Round(time.Millisecond), j.Reason)
	lastReason = j.Reason
	if j.OK != ok {
		t.Fatalf("%s@%s: OK = %v, want %v: %s", name, d, j.OK, ok, j.Reason)
	}
	for _, p := range parts {
		if !strings.Contains(j.Reason, p) {
			t.Fatalf("%s@%s: reason %q does not say %q", name, d, j.Reason, p)
		}
	}
}

func TestContainerdBindirVerifier(t *testing.T) {
	v := verifier(t)
	srv := testserver.Start(t)
	repo := srv.Init(t, app)
	repo.Sign("1.0")
	d10 := testserver.Digest("1.0")
	rules := fmt.Sprintf("  - {match: %s, require: signed, root: %s}\n  - {match: registry.example.com/**, require: signed, root_keys: [%s]}\n  - {match: docker.io/library/*, require: none}\n",
		app, writeRoot(t, repo.Root), strings.Join(repo.RootKeyIDs(), ", "))
	writePolicy(t, srv.URL, rules)
	const rejected = "verifier signet-containerd-verifier rejected image"

	t.Run("signed tag, right digest", func(t *testing.T) {
		judge(t, v, app+":1.0", d10, true, "signet-containerd-verifier => signet: allow: "+app+":1.0 is signed by targets as "+d10.String())
	})
	t.Run("by digest", func(t *testing.T) {
		judge(t, v, app+"@"+d10.String(), d10, true, "is signed by targets")
	})
	t.Run("wrong digest", func(t *testing.T) {
		other := digest.FromString("an image nobody signed")
		judge(t, v, app+":1.0", other, false, rejected+" (exit code 1)", app+":1.0 resolves to "+d10.String()+", not the digest being pulled "+other.String())
	})
	t.Run("unsigned tag", func(t *testing.T) {
		judge(t, v, app+":2.0", testserver.Digest("2.0"), false, rejected+" (exit code 1)", app+":2.0 is not signed")
	})
	t.Run("unknown repository under require: signed", func(t *testing.T) {
		judge(t, v, "registry.example.com/team/unknown:1.0", d10, false, rejected, "registry.example.com/team/unknown:1.0 is not signed: registry.example.com/team/unknown has no trust data")
	})
	t.Run("no rule", func(t *testing.T) {
		judge(t, v, "quay.io/org/tool:1", d10, false, rejected, "no rule matches quay.io/org/tool and the default is deny")
	})
	t.Run("unsigned allow-list", func(t *testing.T) {
		judge(t, v, "docker.io/library/alpine:3.20", d10, true, "docker.io/library/alpine is allowed unsigned")
	})
	t.Run("expired trust data", func(t *testing.T) {
		// The server's clock is two days behind: the timestamp of the next
		// publish expired yesterday.
		srv.SetClockSkew(-48 * time.Hour)
		repo.Sign("1.1")
		t.Cleanup(func() { srv.SetClockSkew(0); repo.Sign("1.2") })
		judge(t, v, app+":1.0", d10, false, rejected+" (exit code 1)", "trust data for "+app+" expired")
	})
	t.Run("stalled server", func(t *testing.T) {
		srv.SetStalled(true)
		t.Cleanup(func() { srv.SetStalled(false) })
		start := time.Now()
		judge(t, v, app+":1.0", d10, false, rejected+" (exit code 2)", "error: cannot verify "+app+":1.0")
		if took := time.Since(start); took > 5*time.Second {
			t.Fatalf("a stalled server held the verifier for %s", took)
		}
	})
	t.Run("unreachable server", func(t *testing.T) {
		down := testserver.Start(t)
		writePolicy(t, down.URL, rules)
		down.Close()
		judge(t, v, app+":1.0", d10, false, rejected+" (exit code 2)", "error: cannot verify "+app+":1.0")
	})
}

// Within max_staleness a node keeps pulling while the server is down; past
// it, or with a broken policy, it refuses.
func TestContainerdOfflineAndBrokenPolicy(t *testing.T) {
	v := verifier(t)
	srv := testserver.Start(t)
	repo := srv.Init(t, app)
	repo.Sign("1.0")
	d10 := testserver.Digest("1.0")
	writePolicy(t, srv.URL, fmt.Sprintf("  - {match: %s, require: signed, root: %s, max_staleness: 1h}\n", app, writeRoot(t, repo.Root)))
	judge(t, v, app+":1.0", d10, true)
	srv.SetDown(true)
	judge(t, v, app+":1.0", d10, true, "is signed by targets")
	judge(t, v, app+":1.0", digest.FromString("other"), false, "not the digest being pulled")

	bad := filepath.Join(t.TempDir(), "policy.yaml")
	if err := os.WriteFile(bad, []byte("rules: [{match: x, requir: signed}]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("SIGNET_POLICY", bad)
	judge(t, v, app+":1.0", d10, false, "(exit code 2)", "cannot load the pull policy", "line 1: field requir not found in type policy.Rule")
	if strings.Contains(strings.TrimPrefix(lastReason, "verifier"), "\n") {
		t.Fatalf("the reason is not one line: %q", lastReason)
	}
	t.Setenv("SIGNET_POLICY", filepath.Join(t.TempDir(), "missing.yaml"))
	judge(t, v, app+":1.0", d10, false, "(exit code 2)", "cannot load the pull policy", "no such file")
}
