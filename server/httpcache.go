package server

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/signetdev/signet/server/store"
)

// HTTP caching of metadata, so that a CDN or caching proxy can carry the
// pull traffic:
//
//   - {N}.{role}.json and {role}.{sha256}.json never change: a year,
//     immutable.
//   - timestamp.json, {role}.json and "not found" change with any publish:
//     the max-age of WithMaxAge, then revalidate.
//   - Every file has an ETag (its sha256) and a Last-Modified: the time
//     the store recorded that version (every built-in store does; a store
//     that records none gets no Last-Modified, and If-Modified-Since is
//     then ignored: a made-up date would be a validator that lies).
//     If-None-Match and If-Modified-Since are answered with 304.
//   - A request that carried credentials is answered without "public", so
//     that a shared cache does not hand what an authorised client read to
//     everyone (RFC 9111 §3.5); private caches still reuse it.

// immutableMaxAge is the max-age of versioned and checksum-addressed files.
const immutableMaxAge = 365 * 24 * time.Hour

// cacheControls are the four Cache-Control values of metadata answers,
// made once (New): by [mutable][the request carried credentials].
type cacheControls [2][2][]string

func newCacheControls(maxAge time.Duration) cacheControls {
	var cc cacheControls
	for i, age := range []string{
		"max-age=" + strconv.FormatInt(int64(immutableMaxAge/time.Second), 10) + ", immutable",
		"max-age=" + strconv.FormatInt(int64(maxAge/time.Second), 10),
	} {
		cc[i][0] = []string{"public, " + age}
		cc[i][1] = []string{age}
	}
	return cc
}

// cacheControl is the Cache-Control of a metadata answer of r: mutable
// answers (the latest version, or not found) may be reused for WithMaxAge.
// The slice is shared by every answer: headers are set with it, never
// changed in place.
func (s *Server) cacheControl(r *http.Request, mutable bool) []string {
	i, j := 0, 0
	if mutable {
		i = 1
	}
	if r.Header.Get("Authorization") != "" {
		j = 1
	}
	return s.cc[i][j]
}

// jsonContentType is the Content-Type of every metadata answer (shared,
// like cacheControl's values).
var jsonContentType = []string{"application/json"}

// writeMeta writes m, or 304 Not Modified when the request's validators
// match it. Headers are assigned in net/http's canonical form, from one
// allocation: this is the path of every read.
func (s *Server) writeMeta(w http.ResponseWriter, r *http.Request, m *store.Meta, mutable bool) {
	h := w.Header()
	etag := `"` + m.SHA256 + `"`
	v := make([]string, 3)
	v[0], v[2] = etag, strconv.Itoa(len(m.Data))
	h["Etag"] = v[0:1:1]
	h["Cache-Control"] = s.cacheControl(r, mutable)
	h["Content-Type"] = jsonContentType
	if !m.CreatedAt.IsZero() {
		v[1] = m.CreatedAt.UTC().Format(http.TimeFormat)
		h["Last-Modified"] = v[1:2:2]
	}
	if s.notModified(r, etag, m.CreatedAt, mutable) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	h["Content-Length"] = v[2:3:3]
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = w.Write(m.Data)
	}
}

// notModified evaluates r's preconditions against the representation with
// etag, stored at modified (zero: unknown), as RFC 9110 §13.2.2 orders
// them: If-None-Match when present, else If-Modified-Since.
//
// An HTTP date has whole seconds, and a busy repository stores several
// timestamps in one second. So for a mutable file a date equal to its
// Last-Modified does not prove that the client holds this version rather
// than an earlier one of the same second: it gets the file, and only a
// date after that second gets 304 (§13.1.3 would answer 304; a wrong 304
// would keep an engine on an old timestamp, and a full answer is always
// correct). An immutable file is the same bytes at every date, so a date
// at or after its Last-Modified gets 304. The ETag is exact: it is the
// validator to use, and caches that have one send it.
func (s *Server) notModified(r *http.Request, etag string, modified time.Time, mutable bool) bool {
	if inm := r.Header.Values("If-None-Match"); len(inm) > 0 {
		return etagMatches(strings.Join(inm, ","), etag)
	}
	ims := r.Header.Get("If-Modified-Since")
	if ims == "" || modified.IsZero() {
		return false
	}
	since, err := http.ParseTime(ims)
	if err != nil || since.After(s.now()) {
		return false // not a date this server could have sent: ignore it
	}
	lm := modified.Truncate(time.Second)
	if mutable {
		return lm.Before(since)
	}
	return !lm.After(since)
}

// etagMatches is If-None-Match's weak comparison (RFC 9110 §8.8.3.2): a
// cache may have weakened the tag (W/"…") when it re-encoded the body.
func etagMatches(header, etag string) bool {
	for t := range strings.SplitSeq(header, ",") {
		t = strings.TrimSpace(t)
		if t == "*" || strings.TrimPrefix(t, "W/") == etag {
			return true
		}
	}
	return false
}
