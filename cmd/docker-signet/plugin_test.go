package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/opencontainers/go-digest"

	"github.com/signetdev/signet/client"
	"github.com/signetdev/signet/internal/testserver"
)

// These tests run the real docker CLI, which discovers the plugin built
// into a Docker config directory's cli-plugins and runs it; the engine
// is a test double of the Docker Engine API (no engine runs here) that
// records calls and pushes to a real in-process OCI registry, and trust
// data comes from a real signet-server (internal/testserver).

var (
	dockerBin string // the docker CLI
	pluginDir string // a Docker config directory with cli-plugins/docker-signet
)

func TestMain(m *testing.M) {
	var err error
	if dockerBin, err = exec.LookPath("docker"); err != nil {
		fmt.Fprintln(os.Stderr, "cmd/docker-signet tests need the docker CLI (not an engine): install it with scripts/test-deps.sh (Debian: docker-cli or docker.io)")
		os.Exit(1)
	}
	dir, err := os.MkdirTemp("", "docker-signet-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	pluginDir = filepath.Join(dir, "docker")
	bin := filepath.Join(pluginDir, "cli-plugins", "docker-signet")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "go build ./cmd/docker-signet: %v\n%s", err, out)
		os.Exit(1)
	}
	if err := os.WriteFile(filepath.Join(pluginDir, "config.json"), []byte("{}\n"), 0o600); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// docker runs the docker CLI with only env (and PATH, HOME) set.
func docker(t *testing.T, env map[string]string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	cmd := exec.Command(dockerBin, args...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(), "DOCKER_CONFIG=" + pluginDir}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode(), out.String(), errb.String()
	} else if err != nil {
		t.Fatalf("docker %v: %v", args, err)
	}
	return 0, out.String(), errb.String()
}

func TestDiscovery(t *testing.T) {
	t.Parallel()
	code, out, errOut := docker(t, nil, "--help")
	if code != 0 || !strings.Contains(out, "signet*") || !strings.Contains(out, "Sign images on push and verify them on pull") {
		t.Fatalf("docker --help does not list the plugin: exit %d\n%s\n%s", code, out, errOut)
	}
	code, out, errOut = docker(t, nil, "signet", "--help")
	if code != 0 {
		t.Fatalf("docker signet --help: exit %d: %s", code, errOut)
	}
	for _, want := range []string{"Usage:  docker signet", "pull", "push", "sign", "inspect", "unsign", "signer", "key", "DOCKER_CONTENT_TRUST_SERVER"} {
		if !strings.Contains(out, want) {
			t.Errorf("docker signet --help lacks %q:\n%s", want, out)
		}
	}
	// One command tree: signet's commands, aliases and exit codes.
	if code, out, _ := docker(t, nil, "signet", "revoke", "--help"); code != 0 || !strings.Contains(out, "signet unsign") {
		t.Errorf("docker signet revoke --help: exit %d\n%s", code, out)
	}
	if code, out, _ := docker(t, nil, "signet", "key", "load", "--help"); code != 0 || !strings.Contains(out, "import") {
		t.Errorf("docker signet key load --help: exit %d\n%s", code, out)
	}
	if code, _, errOut := docker(t, nil, "signet", "nosuch"); code != 2 || !strings.Contains(errOut, "unknown command") {
		t.Errorf("docker signet nosuch: exit %d: %s", code, errOut)
	}
}

// engineCall is one request the engine double received.
type engineCall struct{ Op, Name, Query string }

// fakeEngine is the Docker Engine API endpoints docker-signet uses:
// version negotiation, images/create (pull), images/{name}/tag and
// images/{name}/push. A push writes a new random image to the registry
// and reports the registry's digest and size in an aux message, as the
// engine does; a pull succeeds only for a manifest the registry holds.
type fakeEngine struct {
	mu    sync.Mutex
	calls []engineCall
}

func (e *fakeEngine) record(c engineCall) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.calls = append(e.calls, c)
}

func (e *fakeEngine) Calls(op string) []engineCall {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []engineCall
	for _, c := range e.calls {
		if c.Op == op {
			out = append(out, c)
		}
	}
	return out
}

func startEngine(t *testing.T) (*fakeEngine, string) {
	e := &fakeEngine{}
	hs := httptest.NewServer(http.HandlerFunc(e.serve))
	t.Cleanup(hs.Close)
	return e, "tcp://" + hs.Listener.Addr().String()
}

func (e *fakeEngine) serve(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Api-Version", "1.50")
	w.Header().Set("Ostype", "linux")
	path := r.URL.Path
	if strings.HasPrefix(path, "/v1.") { // strip the API version
		if i := strings.Index(path[1:], "/"); i > 0 {
			path = path[i+1:]
		}
	}
	stream := func(msgs ...any) {
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		for _, m := range msgs {
			_ = enc.Encode(m)
		}
	}
	switch {
	case path == "/_ping":
		_, _ = w.Write([]byte("OK"))
	case path == "/version":
		_ = json.NewEncoder(w).Encode(map[string]string{"Version": "28.2.2", "ApiVersion": "1.50", "MinAPIVersion": "1.24", "Os": "linux", "Arch": "amd64"})
	case path == "/images/create" && r.Method == http.MethodPost:
		q := r.URL.Query()
		e.record(engineCall{"pull", q.Get("fromImage"), q.Get("tag")})
		ref := q.Get("fromImage") + "@" + q.Get("tag")
		if !strings.HasPrefix(q.Get("tag"), "sha256:") {
			ref = q.Get("fromImage") + ":" + q.Get("tag")
		}
		if _, err := remoteHead(ref); err != nil {
			stream(map[string]any{"errorDetail": map[string]string{"message": err.Error()}, "error": err.Error()})
			return
		}
		stream(map[string]string{"status": "Pulling from " + q.Get("fromImage"), "id": q.Get("tag")}, map[string]string{"status": "Digest: " + q.Get("tag")})
	case strings.HasPrefix(path, "/images/") && strings.HasSuffix(path, "/tag") && r.Method == http.MethodPost:
		q := r.URL.Query()
		e.record(engineCall{"tag", strings.TrimSuffix(strings.TrimPrefix(path, "/images/"), "/tag"), q.Get("repo") + ":" + q.Get("tag")})
		w.WriteHeader(http.StatusCreated)
	case strings.HasPrefix(path, "/images/") && strings.HasSuffix(path, "/push") && r.Method == http.MethodPost:
		repo := strings.TrimSuffix(strings.TrimPrefix(path, "/images/"), "/push")
		tag := r.URL.Query().Get("tag")
		e.record(engineCall{"push", repo, tag})
		ref := repo + ":" + tag
		d, size, err := pushRandom(ref)
		if err != nil {
			stream(map[string]any{"errorDetail": map[string]string{"message": err.Error()}, "error": err.Error()})
			return
		}
		stream(map[string]string{"status": "The push refers to repository [" + repo + "]"},
			map[string]string{"status": fmt.Sprintf("%s: digest: %s size: %d", tag, d, size)},
			map[string]any{"progressDetail": map[string]any{}, "aux": map[string]any{"Tag": tag, "Digest": d, "Size": size}})
	default:
		http.Error(w, "the engine double does not implement "+r.Method+" "+r.URL.Path, http.StatusNotImplemented)
	}
}

// pushRandom writes a new image to the registry as ref and returns the
// digest and size of the manifest the registry then serves.
func pushRandom(ref string) (digest.Digest, int64, error) {
	r, err := name.ParseReference(ref)
	if err != nil {
		return "", 0, err
	}
	img, err := random.Image(256, 1)
	if err != nil {
		return "", 0, err
	}
	if err := remote.Write(r, img); err != nil {
		return "", 0, err
	}
	desc, err := remoteHead(ref)
	if err != nil {
		return "", 0, err
	}
	return digest.Digest(desc.Digest.String()), desc.Size, nil
}

func remoteHead(ref string) (*registryDesc, error) {
	r, err := name.ParseReference(ref)
	if err != nil {
		return nil, err
	}
	d, err := remote.Head(r)
	if err != nil {
		return nil, err
	}
	return &registryDesc{Digest: digest.Digest(d.Digest.String()), Size: d.Size}, nil
}

type registryDesc struct {
	Digest digest.Digest
	Size   int64
}

// world is one test's registry, trust server, engine and trust
// directories.
type world struct {
	t        *testing.T
	srv      *testserver.Server
	engine   *fakeEngine
	host     string // DOCKER_HOST
	gun      string
	devDir   string // the developer's trust directory (keys of gun)
	dev      *client.Client
	root     []byte
	rootFile string
}

func newWorld(t *testing.T) *world {
	t.Helper()
	reg := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(reg.Close)
	u, _ := url.Parse(reg.URL)
	w := &world{t: t, srv: testserver.Start(t), gun: u.Host + "/team/app"}
	w.engine, w.host = startEngine(t)
	w.dev = w.srv.NewClient(t, func(o *client.Options) { w.devDir = o.TrustDir })
	var err error
	if w.root, err = w.dev.Init(context.Background(), w.gun); err != nil {
		t.Fatal(err)
	}
	w.rootFile = filepath.Join(t.TempDir(), "root.json")
	if err := os.WriteFile(w.rootFile, w.root, 0o600); err != nil {
		t.Fatal(err)
	}
	return w
}

// developer runs docker signet as the developer, with the Docker Content
// Trust variables only (their fallbacks are under test).
func (w *world) developer(args ...string) (int, string, string) {
	w.t.Helper()
	return docker(w.t, map[string]string{
		"DOCKER_HOST": w.host, "SIGNET_TRUST_DIR": w.devDir,
		"DOCKER_CONTENT_TRUST_SERVER":                w.srv.URL,
		"DOCKER_CONTENT_TRUST_ROOT_PASSPHRASE":       "test passphrase",
		"DOCKER_CONTENT_TRUST_REPOSITORY_PASSPHRASE": "test passphrase",
	}, append([]string{"signet"}, args...)...)
}

// puller returns a runner of docker signet on a machine with its own trust
// directory in which gun's root is pinned.
func (w *world) puller() func(env map[string]string, args ...string) (int, string, string) {
	w.t.Helper()
	dir := w.t.TempDir()
	run := func(env map[string]string, args ...string) (int, string, string) {
		w.t.Helper()
		all := map[string]string{"DOCKER_HOST": w.host, "SIGNET_TRUST_DIR": dir, "SIGNET_SERVER": w.srv.URL}
		for k, v := range env {
			all[k] = v
		}
		return docker(w.t, all, append([]string{"signet"}, args...)...)
	}
	if code, _, errOut := run(nil, "trust", "pin", w.gun, "--root", w.rootFile); code != 0 {
		w.t.Fatalf("trust pin: %s", errOut)
	}
	return run
}

func TestPushSignsWhatTheRegistryStored(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	ref := w.gun + ":1.0"
	code, out, errOut := w.developer("push", ref)
	if code != 0 {
		t.Fatalf("docker signet push: exit %d\n%s\n%s", code, out, errOut)
	}
	if calls := w.engine.Calls("push"); len(calls) != 1 || calls[0].Name != w.gun || calls[0].Query != "1.0" {
		t.Fatalf("engine push calls: %+v", calls)
	}
	inRegistry, err := remoteHead(ref)
	if err != nil {
		t.Fatal(err)
	}
	signed, err := w.dev.Resolve(context.Background(), ref)
	if err != nil {
		t.Fatalf("the pushed tag does not resolve: %v", err)
	}
	if signed.Digest != inRegistry.Digest || signed.Size != inRegistry.Size {
		t.Fatalf("signed %s (%d bytes), the registry holds %s (%d bytes)", signed.Digest, signed.Size, inRegistry.Digest, inRegistry.Size)
	}
	if !strings.Contains(errOut, "pushed "+ref+" as "+inRegistry.Digest.String()) {
		t.Errorf("push did not say what it signed: %s", errOut)
	}

	// inspect: JSON by default, like docker trust inspect.
	code, out, errOut = w.developer("inspect", w.gun)
	if code != 0 {
		t.Fatalf("inspect: exit %d: %s", code, errOut)
	}
	var got []struct {
		Name       string `json:"name"`
		SignedTags []struct {
			SignedTag string   `json:"signed_tag"`
			Digest    string   `json:"digest"`
			Signers   []string `json:"signers"`
		} `json:"signed_tags"`
		AdministrativeKeys []struct {
			Name string `json:"name"`
			Keys []struct {
				ID string `json:"id"`
			} `json:"keys"`
		} `json:"administrative_keys"`
	}
	if err := json.Unmarshal([]byte(out), &got); err != nil || len(got) != 1 {
		t.Fatalf("inspect output: %v\n%s", err, out)
	}
	if g := got[0]; g.Name != w.gun || len(g.SignedTags) != 1 || g.SignedTags[0].SignedTag != "1.0" || g.SignedTags[0].Digest != inRegistry.Digest.String() || !slices.Equal(g.SignedTags[0].Signers, []string{"targets"}) {
		t.Fatalf("inspect: %+v", g)
	}
	rootKeys := got[0].AdministrativeKeys
	if len(rootKeys) != 2 || rootKeys[0].Name != "root" || len(rootKeys[0].Keys) != 1 || !strings.Contains(string(w.root), rootKeys[0].Keys[0].ID) {
		t.Fatalf("administrative keys: %+v", rootKeys)
	}
	code, out, _ = w.developer("inspect", "--pretty", ref)
	if code != 0 || !strings.Contains(out, "Signatures for "+w.gun) || !strings.Contains(out, inRegistry.Digest.String()) {
		t.Fatalf("inspect --pretty: exit %d\n%s", code, out)
	}

	// Without keys for the repository the push happens, but nothing is
	// signed and the command fails.
	code, _, errOut = docker(t, map[string]string{"DOCKER_HOST": w.host, "SIGNET_TRUST_DIR": t.TempDir(), "SIGNET_SERVER": w.srv.URL}, "signet", "push", w.gun+":2.0")
	if code == 0 || !strings.Contains(errOut, "signing failed") {
		t.Fatalf("push without keys: exit %d: %s", code, errOut)
	}
	if _, err := w.dev.Resolve(context.Background(), w.gun+":2.0"); err == nil {
		t.Fatal("2.0 was signed without keys")
	}
}

func TestPullPullsTheSignedDigest(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	if code, _, errOut := w.developer("push", w.gun+":1.0"); code != 0 {
		t.Fatalf("push: %s", errOut)
	}
	want, err := remoteHead(w.gun + ":1.0")
	if err != nil {
		t.Fatal(err)
	}
	// 2.0 is in the registry, unsigned.
	if _, _, err := pushRandom(w.gun + ":2.0"); err != nil {
		t.Fatal(err)
	}
	pull := w.puller()

	code, out, errOut := pull(nil, "pull", w.gun+":1.0")
	if code != 0 {
		t.Fatalf("pull of a signed tag: exit %d\n%s\n%s", code, out, errOut)
	}
	pulls, tags := w.engine.Calls("pull"), w.engine.Calls("tag")
	if len(pulls) != 1 || pulls[0].Name != w.gun || pulls[0].Query != want.Digest.String() {
		t.Fatalf("engine pulls: %+v, want exactly %s@%s", pulls, w.gun, want.Digest)
	}
	if len(tags) != 1 || tags[0].Name != w.gun+"@"+want.Digest.String() || tags[0].Query != w.gun+":1.0" {
		t.Fatalf("engine tags: %+v", tags)
	}

	// Unsigned: refused with the reason, nothing pulled.
	code, _, errOut = pull(nil, "pull", w.gun+":2.0")
	if code != 3 || !strings.Contains(errOut, "not signed") {
		t.Fatalf("pull of an unsigned tag: exit %d: %s", code, errOut)
	}
	// Signed, but not by the keys of the pinned root: another server's
	// repository of the same name (a hijacked or impostor trust server).
	other := testserver.Start(t)
	impostor := other.NewClient(t)
	if _, err := impostor.Init(context.Background(), w.gun); err != nil {
		t.Fatal(err)
	}
	if _, err := impostor.Publish(context.Background(), w.gun, []client.Change{{Tag: "2.0", Digest: digest.FromString("evil"), Size: 10}}); err != nil {
		t.Fatal(err)
	}
	code, _, errOut = pull(map[string]string{"SIGNET_SERVER": other.URL}, "pull", w.gun+":2.0")
	if code != 4 || !strings.Contains(errOut, "refusing to pull") {
		t.Fatalf("pull of a tag signed under another root: exit %d: %s", code, errOut)
	}
	if n := len(w.engine.Calls("pull")); n != 1 {
		t.Fatalf("refused pulls reached the engine: %d pulls", n)
	}
}

func TestPullWithPolicy(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	if code, _, errOut := w.developer("push", w.gun+":1.0"); code != 0 {
		t.Fatalf("push: %s", errOut)
	}
	want, err := remoteHead(w.gun + ":1.0")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	writePolicy := func(file, extra string) string {
		p := filepath.Join(dir, file)
		body := fmt.Sprintf("server:\n  url: %s\ntrust_dir: %s\ndefault: deny\nrules:\n  - match: %s\n    require: signed\n    root: %s\n%s", w.srv.URL, filepath.Join(dir, file+".trust"), w.gun, w.rootFile, extra)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	ok := writePolicy("ok.yaml", "")
	releasesOnly := writePolicy("releases.yaml", "    roles: [targets/releases]\n")
	// No pinned root in this trust directory: the policy is the anchor.
	run := func(env map[string]string, args ...string) (int, string, string) {
		all := map[string]string{"DOCKER_HOST": w.host, "SIGNET_TRUST_DIR": t.TempDir(), "SIGNET_SERVER": "http://127.0.0.1:1"}
		for k, v := range env {
			all[k] = v
		}
		return docker(t, all, append([]string{"signet"}, args...)...)
	}
	if code, _, errOut := run(map[string]string{"SIGNET_POLICY": releasesOnly}, "pull", w.gun+":1.0"); code != 3 || !strings.Contains(errOut, "targets/releases") {
		t.Fatalf("policy accepting only targets/releases: exit %d: %s", code, errOut)
	}
	if code, _, errOut := run(nil, "pull", "--policy", ok, "docker.io/library/nginx:1"); code != 3 || !strings.Contains(errOut, "default is deny") {
		t.Fatalf("pull of a name no rule matches: exit %d: %s", code, errOut)
	}
	if n := len(w.engine.Calls("pull")); n != 0 {
		t.Fatalf("denied pulls reached the engine: %d", n)
	}
	if code, _, errOut := run(nil, "pull", "--policy", ok, w.gun+":1.0"); code != 0 {
		t.Fatalf("policy pull: exit %d: %s", code, errOut)
	}
	if pulls := w.engine.Calls("pull"); len(pulls) != 1 || pulls[0].Query != want.Digest.String() {
		t.Fatalf("engine pulls: %+v, want %s", pulls, want.Digest)
	}
}
