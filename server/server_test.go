package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/signetdev/signet/server/auth"

	"github.com/theupdateframework/go-tuf/v2/metadata"
	"github.com/theupdateframework/go-tuf/v2/metadata/config"
	"github.com/theupdateframework/go-tuf/v2/metadata/updater"
	"go.uber.org/goleak"

	"github.com/signetdev/signet/internal/pgtest"
	"github.com/signetdev/signet/internal/tuftest"
	"github.com/signetdev/signet/server"
	"github.com/signetdev/signet/server/store"
	"github.com/signetdev/signet/server/store/memstore"
	"github.com/signetdev/signet/server/tufrepo"
	"github.com/signetdev/signet/signer/keystore"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(pgtest.M(m)) }

const gun = "registry.example.com/team/app"

type env struct {
	t     *testing.T
	url   string
	clock *tuftest.Clock
	store store.MetaStore
	dev   *tuftest.Repo
	srv   *server.Server
}

func newEnv(t *testing.T, opts ...server.Option) *env {
	t.Helper()
	return newEnvOn(t, memstore.New(), opts...)
}

// newEnvOn is newEnv over st.
func newEnvOn(t *testing.T, st store.MetaStore, opts ...server.Option) *env {
	t.Helper()
	clock := tuftest.NewClock()
	sg := keystore.NewMemory(keystore.WithClock(clock.Now))
	srv := server.New(st, sg, append([]server.Option{server.WithSweepInterval(0), server.WithRepoOptions(tufrepo.WithClock(clock.Now))}, opts...)...)
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(hs.Close)
	e := &env{t: t, url: hs.URL, clock: clock, store: st, srv: srv}
	ts := e.key(gun, metadata.TIMESTAMP)
	snap := e.key(gun, metadata.SNAPSHOT)
	e.dev = tuftest.NewRepo(t, clock.Now, ts, snap)
	return e
}

func (e *env) tufURL(g string) string { return e.url + "/v2/" + g + "/_trust/tuf/" }

func (e *env) key(g, role string) *metadata.Key {
	e.t.Helper()
	resp, body := e.do(http.MethodGet, e.tufURL(g)+role+".key", nil, "")
	if resp.StatusCode != http.StatusOK {
		e.t.Fatalf("get %s key: %d %s", role, resp.StatusCode, body)
	}
	var k metadata.Key
	if err := json.Unmarshal(body, &k); err != nil {
		e.t.Fatal(err)
	}
	return &k
}

func (e *env) do(method, u string, body io.Reader, contentType string, hdr ...string) (*http.Response, []byte) {
	e.t.Helper()
	req, err := http.NewRequest(method, u, body)
	if err != nil {
		e.t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return resp, b
}

// multipartBody encodes role files as signet's (and Notary's) publish does.
func multipartBody(t *testing.T, files map[string][]byte) (*bytes.Buffer, string) {
	t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	for role, data := range files {
		w, err := mw.CreateFormFile("files", role)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(data); err != nil {
			t.Fatal(err)
		}
	}
	if err := mw.Close(); err != nil {
		t.Fatal(err)
	}
	return &buf, mw.FormDataContentType()
}

func (e *env) publish(g string, files map[string][]byte) (int, []byte) {
	e.t.Helper()
	body, ct := multipartBody(e.t, files)
	resp, b := e.do(http.MethodPost, e.tufURL(g), body, ct)
	return resp.StatusCode, b
}

func (e *env) mustPublish(files map[string][]byte) {
	e.t.Helper()
	if code, body := e.publish(gun, files); code != http.StatusOK {
		e.t.Fatalf("publish: %d %s", code, body)
	}
}

// TestGoTUFUpdaterResolves publishes root, targets and a delegated role
// whose name has a "/" (go-tuf escapes it), then lets go-tuf's own updater,
// an independent TUF client, refresh and find both targets.
func TestGoTUFUpdaterResolves(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	dev := tuftest.NewKey(t)
	e.dev.Targets.Signed.Delegations = &metadata.Delegations{
		Keys:  map[string]*metadata.Key{},
		Roles: []metadata.DelegatedRole{{Name: "targets/releases", Threshold: 1, Paths: []string{"release-*"}}},
	}
	if err := e.dev.Targets.Signed.AddKey(dev.Public, "targets/releases"); err != nil {
		t.Fatal(err)
	}
	e.dev.AddTag("1.0", "manifest-1.0")
	rel := metadata.Targets(e.clock.Now().Add(24 * time.Hour))
	rel.Signed.Targets["release-2.0"] = tuftest.Target("manifest-2.0")
	e.mustPublish(map[string][]byte{
		metadata.ROOT: e.dev.RootBytes(), metadata.TARGETS: e.dev.TargetsBytes(),
		"targets/releases": tuftest.Sign(t, rel, dev),
	})

	cfg, err := config.New(e.tufURL(gun), e.dev.RootBytes())
	if err != nil {
		t.Fatal(err)
	}
	cfg.LocalMetadataDir = t.TempDir()
	cfg.LocalTargetsDir = t.TempDir()
	up, err := updater.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	up.UnsafeSetRefTime(e.clock.Now())
	if err := up.Refresh(); err != nil {
		t.Fatalf("go-tuf refresh: %v", err)
	}
	for tag, content := range map[string]string{"1.0": "manifest-1.0", "release-2.0": "manifest-2.0"} {
		ti, err := up.GetTargetInfo(tag)
		if err != nil {
			t.Fatalf("target %s: %v", tag, err)
		}
		if !ti.Equal(*tuftest.Target(content)) {
			t.Errorf("target %s: got %+v", tag, ti)
		}
	}
}

func TestBadInputs(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.dev.AddTag("1.0", "m")
	e.mustPublish(map[string][]byte{metadata.ROOT: e.dev.RootBytes(), metadata.TARGETS: e.dev.TargetsBytes()})
	before := changes(t, e)

	e.dev.Bump()
	good := e.dev.TargetsBytes()
	big := bytes.Repeat([]byte("x"), 6_000_000)
	cases := []struct {
		name   string
		gun    string
		body   func() (io.Reader, string)
		status int
		code   string
	}{
		{"not multipart", gun, func() (io.Reader, string) { return strings.NewReader(string(good)), "application/json" }, 415, "UNSUPPORTED_MEDIA_TYPE"},
		{"malformed JSON", gun, files(t, map[string][]byte{"targets": []byte("{nope")}), 400, "MALFORMED_METADATA"},
		{"unknown role", gun, files(t, map[string][]byte{"targets/ghost": good}), 400, "UNKNOWN_ROLE"},
		{"odd role name", gun, files(t, map[string][]byte{"../targets": good}), 400, "UNKNOWN_ROLE"},
		{"wrong part name", gun, func() (io.Reader, string) {
			var buf bytes.Buffer
			mw := multipart.NewWriter(&buf)
			w, _ := mw.CreateFormFile("file", "targets")
			_, _ = w.Write(good)
			_ = mw.Close()
			return &buf, mw.FormDataContentType()
		}, 400, "BAD_REQUEST"},
		{"targets over its limit", gun, files(t, map[string][]byte{"targets": big}), 413, "TOO_LARGE"},
		{"body over the limit", gun, files(t, map[string][]byte{"targets": big, "targets/a": big, "targets/b": big}), 413, "TOO_LARGE"},
		{"GUN with ..", "../x", files(t, map[string][]byte{"targets": good}), 400, "INVALID_GUN"},
		{"upper-case GUN", "Registry.example.com/App", files(t, map[string][]byte{"targets": good}), 400, "INVALID_GUN"},
		{"GUN of 300 bytes", "r.example.com/" + strings.Repeat("a", 286), files(t, map[string][]byte{"targets": good}), 400, "INVALID_GUN"},
		{"version not increasing", gun, files(t, map[string][]byte{"targets": func() []byte { e.dev.Targets.Signed.Version = 1; return e.dev.TargetsBytes() }()}), 409, "VERSION_CONFLICT"},
	}
	for _, tc := range cases {
		body, ct := tc.body()
		resp, b := e.do(http.MethodPost, e.url+"/v2/"+tc.gun+"/_trust/tuf/", body, ct)
		var eb struct {
			Errors []struct{ Code, Message string }
		}
		if err := json.Unmarshal(b, &eb); err != nil || len(eb.Errors) != 1 {
			t.Errorf("%s: body %q is not the error envelope", tc.name, b)
			continue
		}
		if resp.StatusCode != tc.status || eb.Errors[0].Code != tc.code {
			t.Errorf("%s: %d %s (%s), want %d %s", tc.name, resp.StatusCode, eb.Errors[0].Code, eb.Errors[0].Message, tc.status, tc.code)
		}
	}
	if after := changes(t, e); after != before {
		t.Errorf("refused publishes changed the store: %d changes → %d", before, after)
	}
}

func files(t *testing.T, f map[string][]byte) func() (io.Reader, string) {
	return func() (io.Reader, string) { return multipartBody(t, f) }
}

func changes(t *testing.T, e *env) int {
	t.Helper()
	c, err := e.store.Changes(context.Background(), 0, store.MaxChangesPage)
	if err != nil {
		t.Fatal(err)
	}
	return len(c)
}

func TestReadsCachingAndStatus(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.dev.AddTag("1.0", "m")
	e.mustPublish(map[string][]byte{metadata.ROOT: e.dev.RootBytes(), metadata.TARGETS: e.dev.TargetsBytes()})

	resp, _ := e.do(http.MethodGet, e.tufURL(gun)+"2.root.json", nil, "")
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("missing 2.root.json: %d, want exactly 404", resp.StatusCode)
	}
	for _, tc := range []struct {
		file, cache string
	}{
		{"1.root.json", "public, max-age=31536000, immutable"},
		{"1.targets.json", "public, max-age=31536000, immutable"},
		{"timestamp.json", "public, max-age=10"},
		{"root.json", "public, max-age=10"},
	} {
		resp, body := e.do(http.MethodGet, e.tufURL(gun)+tc.file, nil, "")
		if resp.StatusCode != 200 || resp.Header.Get("Cache-Control") != tc.cache || resp.Header.Get("Content-Type") != "application/json" {
			t.Fatalf("%s: %d %q %q", tc.file, resp.StatusCode, resp.Header.Get("Cache-Control"), resp.Header.Get("Content-Type"))
		}
		etag := resp.Header.Get("ETag")
		if !strings.HasPrefix(etag, `"`) || len(body) == 0 {
			t.Fatalf("%s: etag %q", tc.file, etag)
		}
		resp, body = e.do(http.MethodGet, e.tufURL(gun)+tc.file, nil, "", "If-None-Match", etag)
		if resp.StatusCode != http.StatusNotModified || len(body) != 0 {
			t.Fatalf("%s with If-None-Match: %d", tc.file, resp.StatusCode)
		}
	}
	// Stored bytes are exactly the uploaded bytes.
	_, body := e.do(http.MethodGet, e.tufURL(gun)+"1.targets.json", nil, "")
	if !bytes.Equal(body, e.dev.TargetsBytes()) {
		t.Fatal("served targets differ from the uploaded bytes")
	}
}

func TestTimestampReSignedOnRead(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.mustPublish(map[string][]byte{metadata.ROOT: e.dev.RootBytes(), metadata.TARGETS: e.dev.TargetsBytes()})
	version := func() int64 {
		_, body := e.do(http.MethodGet, e.tufURL(gun)+"timestamp.json", nil, "")
		ts, err := metadata.Timestamp().FromBytes(body)
		if err != nil {
			t.Fatal(err)
		}
		return ts.Signed.Version
	}
	if v := version(); v != 1 {
		t.Fatalf("timestamp v%d", v)
	}
	e.clock.Advance(11 * time.Hour)
	if v := version(); v != 1 {
		t.Fatalf("re-signed before half-life: v%d", v)
	}
	e.clock.Advance(2 * time.Hour)
	if v := version(); v != 2 {
		t.Fatalf("not re-signed after half-life: v%d", v)
	}
}

func TestKeysAndChangefeed(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	first := e.key(gun, metadata.TIMESTAMP)
	if again := e.key(gun, metadata.TIMESTAMP); again.Value.PublicKey != first.Value.PublicKey {
		t.Fatal("second GET created another key")
	}
	resp, _ := e.do(http.MethodGet, e.tufURL(gun)+"root.key", nil, "")
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("root.key: %d", resp.StatusCode)
	}
	resp, body := e.do(http.MethodPost, e.tufURL(gun)+"timestamp.key", nil, "")
	if resp.StatusCode != 200 || strings.Contains(string(body), first.Value.PublicKey) {
		t.Fatalf("rotate: %d %s", resp.StatusCode, body)
	}
	e.mustPublish(map[string][]byte{metadata.ROOT: e.dev.RootBytes(), metadata.TARGETS: e.dev.TargetsBytes()})
	resp, _ = e.do(http.MethodDelete, e.tufURL(gun), nil, "")
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("delete: %d", resp.StatusCode)
	}
	resp, body = e.do(http.MethodGet, e.url+"/v2/_trust/changefeed?since=0&limit=10", nil, "")
	var feed struct {
		Count   int
		Records []struct {
			ID            int64
			GUN, Category string
		}
	}
	if err := json.Unmarshal(body, &feed); err != nil || resp.StatusCode != 200 {
		t.Fatalf("changefeed: %d %s", resp.StatusCode, body)
	}
	if feed.Count != 2 || feed.Records[0].Category != "update" || feed.Records[1].Category != "deletion" || feed.Records[1].GUN != gun {
		t.Fatalf("changefeed: %+v", feed)
	}
	resp, _ = e.do(http.MethodGet, e.url+"/v2/_trust/changefeed?limit=0", nil, "")
	if resp.StatusCode != 400 {
		t.Fatalf("bad limit: %d", resp.StatusCode)
	}
	resp, _ = e.do(http.MethodGet, e.tufURL(gun)+"timestamp.json", nil, "")
	if resp.StatusCode != 404 {
		t.Fatalf("after delete: %d", resp.StatusCode)
	}
}

// pullOnly lets anyone read and nobody write.
type pullOnly struct{}

func (pullOnly) Authorize(_ context.Context, _ *http.Request, _ string, a auth.Action) error {
	if a == auth.ActionPull {
		return nil
	}
	return &auth.AuthError{Status: http.StatusUnauthorized, Challenge: `Bearer realm="test"`, Msg: "push needs a token"}
}

func TestKeyCreationNeedsPush(t *testing.T) {
	t.Parallel()
	clock := tuftest.NewClock()
	srv := server.New(memstore.New(), keystore.NewMemory(), server.WithSweepInterval(0), server.WithAuthorizer(pullOnly{}),
		server.WithRepoOptions(tufrepo.WithClock(clock.Now)))
	hs := httptest.NewServer(srv.Handler())
	defer hs.Close()
	e := &env{t: t, url: hs.URL}
	resp, body := e.do(http.MethodGet, e.tufURL(gun)+"timestamp.key", nil, "")
	if resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("WWW-Authenticate") != `Bearer realm="test"` ||
		!strings.Contains(string(body), "creating it needs push") {
		t.Fatalf("reader asked for a missing key: %d %q %s", resp.StatusCode, resp.Header.Get("WWW-Authenticate"), body)
	}
	up, ct := multipartBody(t, map[string][]byte{"targets": []byte("{}")})
	resp, _ = e.do(http.MethodPost, e.tufURL(gun), up, ct)
	if resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("WWW-Authenticate") != `Bearer realm="test"` {
		t.Fatalf("publish without push: %d %q", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	}
}

// TestMetrics: after one accepted and one refused publish, the counters
// show both, and signer calls are measured.
func TestMetrics(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.mustPublish(map[string][]byte{metadata.ROOT: e.dev.RootBytes(), metadata.TARGETS: e.dev.TargetsBytes()})
	if code, _ := e.publish(gun, map[string][]byte{metadata.TARGETS: e.dev.TargetsBytes()}); code != http.StatusConflict {
		t.Fatalf("stale publish: %d", code)
	}
	_, body := e.do(http.MethodGet, e.url+"/metrics", nil, "")
	for _, want := range []string{
		`signet_publishes_total{result="accepted"} 1`,
		`signet_publishes_total{result="VERSION_CONFLICT"} 1`,
		`signet_http_requests_total{code="200",method="POST",route="/v2/{gun}/_trust/tuf/"} 1`,
		`signet_signer_call_duration_seconds_count{op="sign_batch",result="ok"}`,
		`signet_metadata_cache_misses_total`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	if strings.Contains(string(body), gun) {
		t.Error("a GUN appears in a metric label")
	}
}

// TestMetricsBoundMethods: net/http accepts any token as a method; each
// must not become a series of its own for the life of the process.
func TestMetricsBoundMethods(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for _, m := range []string{"FROBNICATE1", "FROBNICATE2", "FROBNICATE3"} {
		if resp, _ := e.do(m, e.tufURL(gun)+"timestamp.json", nil, ""); resp.StatusCode != http.StatusMethodNotAllowed {
			t.Fatalf("%s: %d, want 405", m, resp.StatusCode)
		}
	}
	_, body := e.do(http.MethodGet, e.url+"/metrics", nil, "")
	if strings.Contains(string(body), "FROBNICATE") {
		t.Error("a client's made-up method is a metric label")
	}
	if want := `signet_http_requests_total{code="405",method="other",route="unmatched"} 3`; !strings.Contains(string(body), want) {
		t.Errorf("metrics lack %s:\n%s", want, body)
	}
}

func TestGUNPrefixesAndKeyCreationLimit(t *testing.T) {
	t.Parallel()
	srv := server.New(memstore.New(), keystore.NewMemory(), server.WithSweepInterval(0),
		server.WithGUNPrefixes("registry.example.com/"), server.WithKeyCreationLimit(0.001, 2))
	hs := httptest.NewServer(srv.Handler())
	defer hs.Close()
	e := &env{t: t, url: hs.URL}
	if resp, _ := e.do(http.MethodGet, e.url+"/v2/other.example.com/app/_trust/tuf/timestamp.json", nil, ""); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("GUN outside the prefixes: %d", resp.StatusCode)
	}
	codes := []int{}
	for i := range 4 {
		resp, _ := e.do(http.MethodGet, fmt.Sprintf("%s/v2/registry.example.com/app%d/_trust/tuf/timestamp.key", e.url, i), nil, "")
		codes = append(codes, resp.StatusCode)
	}
	if codes[0] != 200 || codes[1] != 200 || codes[2] != http.StatusTooManyRequests {
		t.Fatalf("key creations: %v", codes)
	}
	// Prefixes match whole path components.
	whole := httptest.NewServer(server.New(memstore.New(), keystore.NewMemory(), server.WithSweepInterval(0), server.WithGUNPrefixes("registry.example.com")).Handler())
	defer whole.Close()
	for path, want := range map[string]int{"registry.example.com.evil.io/app": http.StatusForbidden, "registry.example.comx/app": http.StatusForbidden, "registry.example.com/app": http.StatusNotFound} {
		if resp, _ := e.do(http.MethodGet, whole.URL+"/v2/"+path+"/_trust/tuf/timestamp.json", nil, ""); resp.StatusCode != want {
			t.Errorf("%s under prefix registry.example.com: %d, want %d", path, resp.StatusCode, want)
		}
	}
	// Fetching a key that exists is not limited.
	if resp, _ := e.do(http.MethodGet, e.url+"/v2/registry.example.com/app0/_trust/tuf/timestamp.key", nil, ""); resp.StatusCode != 200 {
		t.Fatalf("existing key: %d", resp.StatusCode)
	}
}

// TestTrustedProxies: X-Forwarded-For names the client only when the peer
// is a trusted proxy, and then the rightmost untrusted hop is the client,
// so a client cannot pick its own bucket of the key-creation limit.
func TestTrustedProxies(t *testing.T) {
	t.Parallel()
	newKey := func(e *env, i int, xff string) int {
		resp, _ := e.do(http.MethodGet, fmt.Sprintf("%s/v2/registry.example.com/app%d/_trust/tuf/timestamp.key", e.url, i), nil, "", "X-Forwarded-For", xff)
		return resp.StatusCode
	}
	start := func(opts ...server.Option) *env {
		srv := server.New(memstore.New(), keystore.NewMemory(), append([]server.Option{server.WithSweepInterval(0), server.WithKeyCreationLimit(0.001, 1)}, opts...)...)
		hs := httptest.NewServer(srv.Handler())
		t.Cleanup(hs.Close)
		return &env{t: t, url: hs.URL}
	}
	// No trusted proxies: the header is ignored, every request is the peer.
	e := start()
	if got := []int{newKey(e, 0, "192.0.2.1"), newKey(e, 1, "192.0.2.2")}; got[0] != 200 || got[1] != http.StatusTooManyRequests {
		t.Fatalf("untrusted peer chose its bucket: %v", got)
	}
	// The test's peer (loopback) is a trusted proxy.
	e = start(server.WithTrustedProxies(netip.MustParsePrefix("127.0.0.0/8")))
	for i, tc := range []struct {
		xff  string
		want int
	}{
		{"192.0.2.1", 200},
		{"192.0.2.2", 200},
		{"192.0.2.1", http.StatusTooManyRequests},
		{"192.0.2.1, 127.0.0.9", http.StatusTooManyRequests},    // a trusted hop is skipped
		{"198.51.100.7, 192.0.2.2", http.StatusTooManyRequests}, // the client's own claim is not believed
		{"198.51.100.7", 200},
	} {
		if got := newKey(e, 10+i, tc.xff); got != tc.want {
			t.Errorf("X-Forwarded-For %q: %d, want %d", tc.xff, got, tc.want)
		}
	}
}
