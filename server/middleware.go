package server

import (
	"log/slog"
	"net/http"
	"runtime/debug"
	"time"

	"github.com/signetdev/signet/api"

	"github.com/signetdev/signet/internal/reqid"
)

// withRequestID takes a sane X-Request-ID from the caller or makes one, and
// echoes it in the response. The ID rides in the context: into every log
// line (reqid.Handler wraps the server's and tufrepo's loggers) and, as
// X-Request-ID, to signet-signer.
func withRequestID(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get(reqid.Header)
		if !reqid.Valid(id) {
			id = reqid.New()
		}
		w.Header().Set(reqid.Header, id)
		next.ServeHTTP(w, r.WithContext(reqid.With(r.Context(), id)))
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
			route := routeLabel(r)
			s.metrics.observeRequest(r.Method, route, sw.status, elapsed)
			level := slog.LevelDebug
			if sw.status >= 500 {
				level = slog.LevelWarn
			} else if r.Method != http.MethodGet && r.Method != http.MethodHead {
				level = slog.LevelInfo
			}
			s.log.Log(r.Context(), level, "request",
				"method", r.Method, "route", route, "path", r.URL.EscapedPath(),
				"status", sw.status, "bytes", sw.bytes, "duration", elapsed, "remote", r.RemoteAddr, "client", clientAddr(r.Context()))
		}()
		next.ServeHTTP(sw, r)
	})
}
