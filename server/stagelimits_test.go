package server_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/signetdev/signet/internal/tuftest"
	"github.com/signetdev/signet/server"
	"github.com/signetdev/signet/server/auth"
	"github.com/signetdev/signet/server/store"
	"github.com/signetdev/signet/server/store/memstore"
	"github.com/signetdev/signet/server/tufrepo"
	"github.com/signetdev/signet/signer/keystore"
)

// limitsEnv is a server with token auth: alice and bob may push to gun,
// admin may do anything. The repository's targets role needs 2 of the
// keys k1 (alice's) and k2 (bob's).
type limitsEnv struct {
	*env
	alice, bob, admin string
	k1, k2            *tuftest.Key
	next              *metadata.Metadata[metadata.TargetsType]
}

func newLimitsEnv(t *testing.T, opts ...server.Option) *limitsEnv {
	t.Helper()
	path := filepath.Join(t.TempDir(), "tokens.json")
	mk := func(scope string) string {
		_, tok, err := auth.CreateToken(path, []string{scope}, time.Now(), time.Time{})
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	l := &limitsEnv{alice: mk("push:" + gun), bob: mk("push:" + gun), admin: mk("admin:*")}
	tokens, err := auth.LoadTokens(path, false)
	if err != nil {
		t.Fatal(err)
	}
	clock := tuftest.NewClock()
	srv := server.New(memstore.New(), keystore.NewMemory(keystore.WithClock(clock.Now)), append([]server.Option{
		server.WithSweepInterval(0), server.WithAuthorizer(tokens), server.WithRepoOptions(tufrepo.WithClock(clock.Now))}, opts...)...)
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(hs.Close)
	l.env = &env{t: t, url: hs.URL, clock: clock}
	key := func(role string) *metadata.Key {
		resp, body := l.do(http.MethodGet, l.tufURL(gun)+role+".key", nil, "", "Authorization", "Bearer "+l.admin)
		var k metadata.Key
		if resp.StatusCode != 200 || json.Unmarshal(body, &k) != nil {
			t.Fatalf("%s key: %d %s", role, resp.StatusCode, body)
		}
		return &k
	}
	l.dev = tuftest.NewRepo(t, clock.Now, key(metadata.TIMESTAMP), key(metadata.SNAPSHOT))
	l.k1, l.k2 = l.dev.TargetsKeys[0], tuftest.NewKey(t)
	if err := l.dev.Root.Signed.AddKey(l.k2.Public, metadata.TARGETS); err != nil {
		t.Fatal(err)
	}
	l.dev.Root.Signed.Roles[metadata.TARGETS].Threshold = 2
	l.dev.TargetsKeys = append(l.dev.TargetsKeys, l.k2)
	body, ct := multipartBody(t, map[string][]byte{metadata.ROOT: l.dev.RootBytes(), metadata.TARGETS: l.dev.TargetsBytes()})
	if resp, b := l.do(http.MethodPost, l.tufURL(gun), body, ct, "Authorization", "Bearer "+l.admin); resp.StatusCode != 200 {
		t.Fatalf("publish: %d %s", resp.StatusCode, b)
	}
	l.next = tuftest.Clone(t, l.dev.Targets)
	l.next.Signed.Version = 2
	l.next.Signed.Targets["2.0"] = tuftest.Target("2.0")
	return l
}

func (l *limitsEnv) send(method, u, token string, files map[string][]byte) (int, []byte) {
	l.t.Helper()
	if files == nil {
		resp, b := l.do(method, u, nil, "", "Authorization", "Bearer "+token)
		return resp.StatusCode, b
	}
	body, ct := multipartBody(l.t, files)
	resp, b := l.do(method, u, body, ct, "Authorization", "Bearer "+token)
	return resp.StatusCode, b
}

func (l *limitsEnv) stage(token string, keys ...*tuftest.Key) (int, string, []byte) {
	l.t.Helper()
	code, body := l.send(http.MethodPost, l.stagedURL(""), token, map[string][]byte{metadata.TARGETS: tuftest.Sign(l.t, l.next, keys...)})
	var st struct{ ID string }
	_ = json.Unmarshal(body, &st)
	return code, st.ID, body
}

// TestStagingNeedsASignature: a push token alone cannot park data in the
// staging area: a change with no valid signature is refused and stored
// nowhere.
func TestStagingNeedsASignature(t *testing.T) {
	t.Parallel()
	l := newLimitsEnv(t)
	if code, _, body := l.stage(l.alice); code != http.StatusBadRequest || errCode(body) != string(tufrepo.CodeSignature) || !strings.Contains(string(body), "at least one valid signature") {
		t.Fatalf("unsigned stage: %d %s", code, body)
	}
	if code, body := l.send(http.MethodGet, l.stagedURL(""), l.alice, nil); code != 200 || !strings.Contains(string(body), `"staged":[]`) {
		t.Fatalf("list after a refused stage: %d %s", code, body)
	}
	if code, _, body := l.stage(l.alice, l.k1); code != http.StatusAccepted {
		t.Fatalf("signed stage: %d %s", code, body)
	}
}

// TestWithdrawNeedsStagerKeyHolderOrAdmin: another pusher cannot withdraw
// someone's staged change, not even by replaying a signature it already
// carries; the stager, an admin and a key holder with a new signature can.
func TestWithdrawNeedsStagerKeyHolderOrAdmin(t *testing.T) {
	t.Parallel()
	l := newLimitsEnv(t)
	_, id, _ := l.stage(l.alice, l.k1)
	if code, body := l.send(http.MethodDelete, l.stagedURL(id), l.bob, nil); code != http.StatusForbidden || !strings.Contains(string(body), "who staged it") {
		t.Fatalf("bob withdraws alice's change: %d %s", code, body)
	}
	replay := map[string][]byte{metadata.TARGETS: tuftest.Sign(t, l.next, l.k1)}
	if code, body := l.send(http.MethodDelete, l.stagedURL(id), l.bob, replay); code != http.StatusBadRequest || errCode(body) != string(tufrepo.CodeSignature) {
		t.Fatalf("bob replays alice's signature: %d %s", code, body)
	}
	if code, body := l.send(http.MethodDelete, l.stagedURL(id), l.bob, map[string][]byte{metadata.TARGETS: tuftest.Sign(t, l.next, tuftest.NewKey(t))}); code != http.StatusBadRequest {
		t.Fatalf("bob signs with a key of no role: %d %s", code, body)
	}
	if code, body := l.send(http.MethodGet, l.stagedURL(id), l.bob, nil); code != 200 {
		t.Fatalf("refused withdrawals removed the change: %d %s", code, body)
	}
	// bob holds k2: a new signature by it proves it.
	if code, body := l.send(http.MethodDelete, l.stagedURL(id), l.bob, map[string][]byte{metadata.TARGETS: tuftest.Sign(t, l.next, l.k2)}); code != http.StatusNoContent {
		t.Fatalf("key holder withdraws: %d %s", code, body)
	}
	_, id, _ = l.stage(l.alice, l.k1)
	if code, body := l.send(http.MethodDelete, l.stagedURL(id), l.alice, nil); code != http.StatusNoContent {
		t.Fatalf("stager withdraws: %d %s", code, body)
	}
	_, id, _ = l.stage(l.bob, l.k2)
	if code, body := l.send(http.MethodDelete, l.stagedURL(id), l.admin, nil); code != http.StatusNoContent {
		t.Fatalf("admin withdraws: %d %s", code, body)
	}
	if code, body := l.send(http.MethodDelete, l.stagedURL(id), l.admin, nil); code != http.StatusNotFound {
		t.Fatalf("withdraw twice: %d %s", code, body)
	}
}

// TestStagedQuotas over HTTP: past a repository's or a principal's quota
// a stage is refused with 409 QUOTA_EXCEEDED naming the quota, and stores
// nothing.
func TestStagedQuotas(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		quota store.StagedQuota
		scope string
	}{
		{store.StagedQuota{PerGUN: 1}, "repository"},
		{store.StagedQuota{PerPrincipal: 1}, "principal"},
	} {
		l := newLimitsEnv(t, server.WithStagedQuota(tc.quota))
		code, _, body := l.stage(l.alice, l.k1)
		if code != http.StatusConflict || errCode(body) != "QUOTA_EXCEEDED" || !strings.Contains(string(body), "the "+tc.scope+"'s staged changes") {
			t.Fatalf("%s quota: %d %s", tc.scope, code, body)
		}
		if code, body := l.send(http.MethodGet, l.stagedURL(""), l.alice, nil); code != 200 || !strings.Contains(string(body), `"staged":[]`) {
			t.Fatalf("list after a refused stage: %d %s", code, body)
		}
	}
	// One stager cannot fill a repository's staging area for everyone.
	l := newLimitsEnv(t, server.WithStagedQuota(store.StagedQuota{CountPerPrincipal: 1}))
	if code, _, body := l.stage(l.alice, l.k1); code != http.StatusAccepted {
		t.Fatalf("first stage: %d %s", code, body)
	}
	if code, _, body := l.stage(l.alice, l.k1); code != http.StatusConflict || errCode(body) != "QUOTA_EXCEEDED" || !strings.Contains(string(body), "the most one stager may") {
		t.Fatalf("second stage by the same token: %d %s", code, body)
	}
	if code, _, body := l.stage(l.bob, l.k2); code != http.StatusAccepted {
		t.Fatalf("another stager: %d %s", code, body)
	}
	// The defaults leave room for ordinary use.
	l = newLimitsEnv(t)
	if code, _, body := l.stage(l.alice, l.k1); code != http.StatusAccepted {
		t.Fatalf("default quota: %d %s", code, body)
	}
}
