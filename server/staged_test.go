package server_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/signetdev/signet/internal/tuftest"
	"github.com/signetdev/signet/server"
	"github.com/signetdev/signet/server/store/memstore"
	"github.com/signetdev/signet/server/tufrepo"
	"github.com/signetdev/signet/signer/keystore"
)

func (e *env) stagedURL(id string) string { return e.url + "/v2/" + gun + "/_trust/staged/" + id }

func (e *env) post(u string, files map[string][]byte) (int, []byte) {
	e.t.Helper()
	body, ct := multipartBody(e.t, files)
	resp, b := e.do(http.MethodPost, u, body, ct)
	return resp.StatusCode, b
}

func errCode(body []byte) string {
	var eb struct{ Errors []struct{ Code string } }
	if json.Unmarshal(body, &eb) != nil || len(eb.Errors) == 0 {
		return ""
	}
	return eb.Errors[0].Code
}

// TestStagedOverHTTP walks a 2-of-2 targets change through the staged
// endpoints, with the refusals a client can meet on the way.
func TestStagedOverHTTP(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	second := tuftest.NewKey(t)
	if err := e.dev.Root.Signed.AddKey(second.Public, metadata.TARGETS); err != nil {
		t.Fatal(err)
	}
	e.dev.Root.Signed.Roles[metadata.TARGETS].Threshold = 2
	e.dev.TargetsKeys = append(e.dev.TargetsKeys, second)
	e.mustPublish(map[string][]byte{metadata.ROOT: e.dev.RootBytes(), metadata.TARGETS: e.dev.TargetsBytes()})

	next := tuftest.Clone(t, e.dev.Targets)
	next.Signed.Version = 2
	next.Signed.Targets["2.0"] = tuftest.Target("2.0")

	// Staging needs a valid upload: junk, root and unknown roles are refused.
	for _, tc := range []struct {
		files map[string][]byte
		code  int
		err   string
	}{
		{map[string][]byte{metadata.TARGETS: []byte("{not json")}, http.StatusBadRequest, string(tufrepo.CodeMalformed)},
		{map[string][]byte{metadata.ROOT: e.dev.RootBytes()}, http.StatusBadRequest, string(tufrepo.CodeUnsupported)},
		{map[string][]byte{"targets/nobody": tuftest.Sign(t, next, second)}, http.StatusBadRequest, string(tufrepo.CodeUnknownRole)},
		{map[string][]byte{metadata.TARGETS: tuftest.Sign(t, next, tuftest.NewKey(t))}, http.StatusBadRequest, string(tufrepo.CodeSignature)},
	} {
		if code, body := e.post(e.stagedURL(""), tc.files); code != tc.code || errCode(body) != tc.err {
			t.Fatalf("stage %v: %d %s, want %d %s", keys(tc.files), code, body, tc.code, tc.err)
		}
	}

	code, body := e.post(e.stagedURL(""), map[string][]byte{metadata.TARGETS: tuftest.Sign(t, next, e.dev.TargetsKeys[0])})
	if code != http.StatusAccepted {
		t.Fatalf("stage: %d %s", code, body)
	}
	var st struct {
		ID    string
		Roles []struct {
			Role      string
			Threshold int
			SignedBy  []string `json:"signed_by"`
		}
	}
	if err := json.Unmarshal(body, &st); err != nil || st.ID == "" || len(st.Roles) != 1 || len(st.Roles[0].SignedBy) != 1 {
		t.Fatalf("stage answer %s (%v)", body, err)
	}

	resp, body := e.do(http.MethodGet, e.stagedURL(""), nil, "")
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), st.ID) {
		t.Fatalf("list: %d %s", resp.StatusCode, body)
	}
	resp, body = e.do(http.MethodGet, e.stagedURL(st.ID), nil, "")
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `"files":{"targets":{"signatures"`) {
		t.Fatalf("get: %d %s", resp.StatusCode, body)
	}
	for _, id := range []string{"ZZZ", "..", strings.Repeat("a", 65), "0123456789abcdef"} {
		if resp, body := e.do(http.MethodGet, e.stagedURL(id), nil, ""); resp.StatusCode != http.StatusNotFound {
			t.Fatalf("get staged %q: %d %s", id, resp.StatusCode, body)
		}
	}
	if resp, _ := e.do(http.MethodGet, e.tufURL(gun)+"2.targets.json", nil, ""); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("staged targets served as published: %d", resp.StatusCode)
	}

	// Approving completes it.
	code, body = e.post(e.stagedURL(st.ID), map[string][]byte{metadata.TARGETS: tuftest.Sign(t, next, second)})
	if code != http.StatusOK || !strings.Contains(string(body), `"published":{`) {
		t.Fatalf("approve: %d %s", code, body)
	}
	if resp, _ := e.do(http.MethodGet, e.tufURL(gun)+"2.targets.json", nil, ""); resp.StatusCode != http.StatusOK {
		t.Fatalf("published targets: %d", resp.StatusCode)
	}
	if code, body := e.post(e.stagedURL(st.ID), map[string][]byte{metadata.TARGETS: tuftest.Sign(t, next, second)}); code != http.StatusNotFound {
		t.Fatalf("approve a published change: %d %s", code, body)
	}

	// A change staged on v2 goes stale once v3 is published (409), and an
	// expired one is gone (410).
	stage := func(tag string, version int64) string {
		m := tuftest.Clone(t, next)
		m.Signed.Version = version
		m.Signed.Targets[tag] = tuftest.Target(tag)
		code, body := e.post(e.stagedURL(""), map[string][]byte{metadata.TARGETS: tuftest.Sign(t, m, second)})
		if code != http.StatusAccepted {
			t.Fatalf("stage %s: %d %s", tag, code, body)
		}
		var s struct{ ID string }
		_ = json.Unmarshal(body, &s)
		return s.ID
	}
	stale := stage("a", 3)
	direct := tuftest.Clone(t, next)
	direct.Signed.Version = 3
	e.mustPublish(map[string][]byte{metadata.TARGETS: tuftest.Sign(t, direct, e.dev.TargetsKeys...)})
	m := tuftest.Clone(t, next)
	m.Signed.Version = 3
	m.Signed.Targets["a"] = tuftest.Target("a")
	if code, body := e.post(e.stagedURL(stale), map[string][]byte{metadata.TARGETS: tuftest.Sign(t, m, e.dev.TargetsKeys[0])}); code != http.StatusConflict || errCode(body) != string(tufrepo.CodeStaleStaged) {
		t.Fatalf("approve stale: %d %s", code, body)
	}
	old := stage("b", 4)
	e.clock.Advance(tufrepo.DefaultStagedLifetime + time.Hour)
	if resp, body := e.do(http.MethodGet, e.stagedURL(old), nil, ""); resp.StatusCode != http.StatusGone {
		t.Fatalf("expired: %d %s", resp.StatusCode, body)
	}
	if resp, _ := e.do(http.MethodDelete, e.stagedURL(old), nil, ""); resp.StatusCode != http.StatusNoContent {
		t.Fatalf("withdraw: %d", resp.StatusCode)
	}
}

func keys(m map[string][]byte) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// TestStagedNeedsPush: reading staged changes needs pull, changing them
// push.
func TestStagedNeedsPush(t *testing.T) {
	t.Parallel()
	srv := server.New(memstore.New(), keystore.NewMemory(), server.WithSweepInterval(0), server.WithAuthorizer(pullOnly{}))
	hs := httptest.NewServer(srv.Handler())
	defer hs.Close()
	e := &env{t: t, url: hs.URL}
	if resp, body := e.do(http.MethodGet, e.stagedURL(""), nil, ""); resp.StatusCode != http.StatusOK {
		t.Fatalf("list with pull: %d %s", resp.StatusCode, body)
	}
	if code, _ := e.post(e.stagedURL(""), map[string][]byte{metadata.TARGETS: []byte("{}")}); code != http.StatusUnauthorized {
		t.Fatalf("stage without push: %d", code)
	}
	if code, _ := e.post(e.stagedURL("abcd"), map[string][]byte{metadata.TARGETS: []byte("{}")}); code != http.StatusUnauthorized {
		t.Fatalf("approve without push: %d", code)
	}
	if resp, _ := e.do(http.MethodDelete, e.stagedURL("abcd"), nil, ""); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("withdraw without push: %d", resp.StatusCode)
	}
}
