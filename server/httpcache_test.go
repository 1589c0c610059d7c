package server_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/signetdev/signet/server"
	"github.com/signetdev/signet/server/store"
	"github.com/signetdev/signet/server/store/memstore"
)

// sameSecondStore reports every version as stored at one instant, as a
// busy repository's timestamps are within one second.
type sameSecondStore struct {
	store.MetaStore
	at time.Time
}

func (s sameSecondStore) at1(m *store.Meta, err error) (*store.Meta, error) {
	if err != nil {
		return nil, err
	}
	c := *m
	c.CreatedAt = s.at
	return &c, nil
}

func (s sameSecondStore) GetCurrent(ctx context.Context, gun, role string) (*store.Meta, error) {
	return s.at1(s.MetaStore.GetCurrent(ctx, gun, role))
}

func (s sameSecondStore) GetVersion(ctx context.Context, gun, role string, v int64) (*store.Meta, error) {
	return s.at1(s.MetaStore.GetVersion(ctx, gun, role, v))
}

func (s sameSecondStore) GetChecksum(ctx context.Context, gun, role, sum string) (*store.Meta, error) {
	return s.at1(s.MetaStore.GetChecksum(ctx, gun, role, sum))
}

// TestCacheHeaders: Cache-Control says how long a CDN may keep each kind
// of answer (WithMaxAge for what a publish changes, a year for versioned
// files), never "public" for a request with credentials, and every file
// has an ETag and a Last-Modified from the store.
func TestCacheHeaders(t *testing.T) {
	t.Parallel()
	stored := time.Date(2026, 11, 23, 12, 0, 0, 500_000_000, time.UTC)
	e := newEnvOn(t, sameSecondStore{MetaStore: memstore.New(), at: stored}, server.WithMaxAge(3*time.Second))
	e.dev.AddTag("1.0", "m")
	e.mustPublish(map[string][]byte{metadata.ROOT: e.dev.RootBytes(), metadata.TARGETS: e.dev.TargetsBytes()})
	const year = "max-age=31536000, immutable"
	for _, tc := range []struct {
		file, auth string
		status     int
		cache      string
	}{
		{"timestamp.json", "", 200, "public, max-age=3"},
		{"root.json", "", 200, "public, max-age=3"},
		{"snapshot.json", "", 200, "public, max-age=3"},
		{"1.root.json", "", 200, "public, " + year},
		{"1.targets.json", "", 200, "public, " + year},
		// The next root, asked for by every refresh: cacheable only as
		// long as a timestamp, so a new root shows as fast.
		{"2.root.json", "", 404, "public, max-age=3"},
		{"timestamp.json", "Bearer x", 200, "max-age=3"},
		{"1.root.json", "Bearer x", 200, year},
		{"2.root.json", "Bearer x", 404, "max-age=3"},
	} {
		var hdr []string
		if tc.auth != "" {
			hdr = []string{"Authorization", tc.auth}
		}
		resp, _ := e.do(http.MethodGet, e.tufURL(gun)+tc.file, nil, "", hdr...)
		if resp.StatusCode != tc.status || resp.Header.Get("Cache-Control") != tc.cache {
			t.Errorf("%s (auth %q): %d, Cache-Control %q; want %d, %q", tc.file, tc.auth, resp.StatusCode, resp.Header.Get("Cache-Control"), tc.status, tc.cache)
		}
		if lm := resp.Header.Get("Last-Modified"); tc.status == 200 && lm != "Mon, 23 Nov 2026 12:00:00 GMT" {
			t.Errorf("%s: Last-Modified %q, want the stored time", tc.file, lm)
		}
	}
	// Everything else is for no cache: publish results, the change feed,
	// staged changes, keys, errors.
	for _, u := range []string{e.url + "/v2/_trust/changefeed", e.url + "/v2/" + gun + "/_trust/staged/", e.tufURL(gun) + "timestamp.key", e.tufURL(gun) + "nope.txt", e.url + "/v2/Bad/_trust/tuf/root.json"} {
		if resp, _ := e.do(http.MethodGet, u, nil, ""); resp.Header.Get("Cache-Control") != "no-store" {
			t.Errorf("GET %s: %d, Cache-Control %q, want no-store", u, resp.StatusCode, resp.Header.Get("Cache-Control"))
		}
	}
	// The default window.
	d := newEnv(t)
	d.mustPublish(map[string][]byte{metadata.ROOT: d.dev.RootBytes(), metadata.TARGETS: d.dev.TargetsBytes()})
	if resp, _ := d.do(http.MethodGet, d.tufURL(gun)+"timestamp.json", nil, ""); resp.Header.Get("Cache-Control") != "public, max-age=10" {
		t.Errorf("default Cache-Control %q", resp.Header.Get("Cache-Control"))
	}
}

// TestConditionalRequests: If-None-Match and If-Modified-Since answer 304
// when the client's copy is current, If-None-Match decides when both are
// sent (RFC 9110 §13.2.2), and a date cannot make an engine keep an old
// timestamp stored in the same second as the new one.
func TestConditionalRequests(t *testing.T) {
	t.Parallel()
	stored := time.Date(2026, 11, 23, 12, 0, 0, 500_000_000, time.UTC)
	now := stored.Add(time.Hour)
	e := newEnvOn(t, sameSecondStore{MetaStore: memstore.New(), at: stored}, server.WithClock(func() time.Time { return now }))
	e.dev.AddTag("1.0", "m")
	e.mustPublish(map[string][]byte{metadata.ROOT: e.dev.RootBytes(), metadata.TARGETS: e.dev.TargetsBytes()})
	resp, oldTS := e.do(http.MethodGet, e.tufURL(gun)+"timestamp.json", nil, "")
	etag, lm := resp.Header.Get("ETag"), resp.Header.Get("Last-Modified")
	if etag == "" || lm == "" {
		t.Fatalf("timestamp.json: ETag %q, Last-Modified %q", etag, lm)
	}
	date := func(d time.Duration) string { return stored.Truncate(time.Second).Add(d).Format(http.TimeFormat) }
	for _, tc := range []struct {
		name, method, file string
		hdr                []string
		want               int
	}{
		{"ETag", "GET", "timestamp.json", []string{"If-None-Match", etag}, 304},
		{"weakened ETag", "GET", "timestamp.json", []string{"If-None-Match", "W/" + etag}, 304},
		{"ETag among others", "GET", "timestamp.json", []string{"If-None-Match", `"abc", ` + etag}, 304},
		{"other ETag", "GET", "timestamp.json", []string{"If-None-Match", `"abc"`}, 200},
		{"other ETag wins over a later date", "GET", "timestamp.json", []string{"If-None-Match", `"abc"`, "If-Modified-Since", date(time.Minute)}, 200},
		{"ETag wins over an earlier date", "GET", "timestamp.json", []string{"If-None-Match", etag, "If-Modified-Since", date(-time.Hour)}, 304},
		{"date after the stored second", "GET", "timestamp.json", []string{"If-Modified-Since", date(time.Second)}, 304},
		{"date after the stored second, HEAD", "HEAD", "timestamp.json", []string{"If-Modified-Since", date(time.Second)}, 304},
		// Another version may have been stored in that second.
		{"date of the stored second", "GET", "timestamp.json", []string{"If-Modified-Since", lm}, 200},
		{"earlier date", "GET", "timestamp.json", []string{"If-Modified-Since", date(-time.Second)}, 200},
		{"date past the server's clock", "GET", "timestamp.json", []string{"If-Modified-Since", date(2 * time.Hour)}, 200},
		{"not a date", "GET", "timestamp.json", []string{"If-Modified-Since", "yesterday"}, 200},
		// A versioned file is the same at every date.
		{"versioned, date of the stored second", "GET", "1.root.json", []string{"If-Modified-Since", lm}, 304},
		{"versioned, earlier date", "GET", "1.root.json", []string{"If-Modified-Since", date(-time.Second)}, 200},
	} {
		resp, body := e.do(tc.method, e.tufURL(gun)+tc.file, nil, "", tc.hdr...)
		if resp.StatusCode != tc.want {
			t.Errorf("%s: %d, want %d", tc.name, resp.StatusCode, tc.want)
			continue
		}
		if tc.want == 304 && (len(body) != 0 || resp.Header.Get("ETag") == "" || resp.Header.Get("Cache-Control") == "" || resp.Header.Get("Last-Modified") == "") {
			t.Errorf("%s: 304 with body %q, ETag %q, Cache-Control %q, Last-Modified %q: a 304 carries the validators and no body",
				tc.name, body, resp.Header.Get("ETag"), resp.Header.Get("Cache-Control"), resp.Header.Get("Last-Modified"))
		}
	}

	// A second publish within the same second: an engine holding the
	// first timestamp and asking with its date gets the new one.
	e.dev.AddTag("2.0", "n")
	e.dev.Targets.Signed.Version++
	e.mustPublish(map[string][]byte{metadata.TARGETS: e.dev.TargetsBytes()})
	resp, newTS := e.do(http.MethodGet, e.tufURL(gun)+"timestamp.json", nil, "", "If-Modified-Since", lm)
	if resp.StatusCode != 200 || string(newTS) == string(oldTS) || resp.Header.Get("Last-Modified") != lm {
		t.Fatalf("after a second publish in the same second: %d (new timestamp served: %v, Last-Modified %q)", resp.StatusCode, string(newTS) != string(oldTS), resp.Header.Get("Last-Modified"))
	}
}

// TestNoStoredTime: a store that records no time gets no Last-Modified,
// and If-Modified-Since cannot make a 304 of it.
func TestNoStoredTime(t *testing.T) {
	t.Parallel()
	e := newEnvOn(t, sameSecondStore{MetaStore: memstore.New()})
	e.mustPublish(map[string][]byte{metadata.ROOT: e.dev.RootBytes(), metadata.TARGETS: e.dev.TargetsBytes()})
	for _, file := range []string{"timestamp.json", "1.root.json"} {
		resp, _ := e.do(http.MethodGet, e.tufURL(gun)+file, nil, "", "If-Modified-Since", time.Now().Add(-time.Minute).Format(http.TimeFormat))
		if resp.StatusCode != 200 || resp.Header.Get("Last-Modified") != "" {
			t.Errorf("%s: %d, Last-Modified %q; want 200 and none", file, resp.StatusCode, resp.Header.Get("Last-Modified"))
		}
	}
}
