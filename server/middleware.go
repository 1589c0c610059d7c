package server

import (
	"context"
	"log/slog"
	"net/http"
	"runtime/debug"
	"time"

	"github.com/signetdev/signet/api"

	"github.com/signetdev/signet/internal/reqid"
)

// requestInfo is what the server works out about a request beyond what
// net/http gives: the client address (withRequest) and the repository
// (repoRoutes, once it has taken the GUN off the path). One per request,
// in one context value, so that the chain copies the request once and not
// at every step: a GET of timestamp.json is a few microseconds of work, and
// each copy was a measurable part of it.
type requestInfo struct {
	client string
	gun    string
}

type infoKey struct{}

func infoOf(ctx context.Context) *requestInfo {
	i, _ := ctx.Value(infoKey{}).(*requestInfo)
	if i == nil {
		return &requestInfo{}
	}
	return i
}

// requestIDHeader is reqid.Header in net/http's canonical form, to set
// the header without canonicalising it on every request.
var requestIDHeader = http.CanonicalHeaderKey(reqid.Header)

// withRequest prepares every request in one step:
//   - a sane X-Request-ID from the caller, or a new one, echoed in the
//     response and carried in the context into every log line
//     (reqid.Handler wraps the server's and tufrepo's loggers) and, as
//     X-Request-ID, to signet-signer;
//   - the client address (clientaddr.go).
//
// The request timeout is the route's (authorized).
func (s *Server) withRequest(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get(reqid.Header)
		if !reqid.Valid(id) {
			id = reqid.New()
		}
		w.Header()[requestIDHeader] = []string{id}
		ctx := context.WithValue(reqid.With(r.Context(), id), infoKey{}, &requestInfo{client: resolveClient(r, s.trusted)})
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// statusWriter records the status and size of a response.
type statusWriter struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += int64(n)
	return n, err
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// observe recovers panics into a 500, then logs and measures every request.
func (s *Server) observe(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w}
		defer func() {
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler {
					panic(p)
				}
				s.log.ErrorContext(r.Context(), "panic", "panic", p, "stack", string(debug.Stack()))
				if sw.status == 0 {
					writeJSON(sw, http.StatusInternalServerError, api.ErrorBody{Errors: []api.Error{{Code: api.CodeInternal, Message: "internal error"}}})
				}
			}
			if sw.status == 0 {
				sw.status = http.StatusOK
			}
			elapsed := time.Since(start)
			route := s.metrics.routeLabel(r)
			s.metrics.observeRequest(methodLabel(r.Method), route, sw.status, elapsed)
			level := slog.LevelDebug
			if sw.status >= 500 {
				level = slog.LevelWarn
			} else if r.Method != http.MethodGet && r.Method != http.MethodHead {
				level = slog.LevelInfo
			}
			// Checked first: the attributes cost more than the call when
			// the line is dropped, as every read's is at the default level.
			if ctx := r.Context(); s.log.Enabled(ctx, level) {
				s.log.Log(ctx, level, "request",
					"method", r.Method, "route", route, "path", r.URL.EscapedPath(),
					"status", sw.status, "bytes", sw.bytes, "duration", elapsed, "remote", r.RemoteAddr, "client", clientAddr(ctx))
			}
		}()
		next.ServeHTTP(sw, r)
	})
}
