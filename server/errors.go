package server

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"

	"github.com/signetdev/signet/api"

	"github.com/signetdev/signet/server/auth"

	"github.com/signetdev/signet/server/store"
	"github.com/signetdev/signet/server/tufrepo"
)

// httpError is a refusal decided by the HTTP layer itself.
type httpError struct {
	status int
	code   api.Code
	msg    string
}

func (e *httpError) Error() string { return e.msg }

func badRequest(code api.Code, msg string) error {
	return &httpError{status: http.StatusBadRequest, code: code, msg: msg}
}

func notFound(msg string) error {
	return &httpError{status: http.StatusNotFound, code: api.CodeNoEndpoint, msg: msg}
}

// statusOf maps tufrepo's codes to HTTP statuses.
func statusOf(c tufrepo.Code) int {
	switch c {
	case tufrepo.CodeVersionConflict, tufrepo.CodeStaleStaged, tufrepo.CodeTooManyStaged:
		return http.StatusConflict
	case tufrepo.CodeStagedExpired:
		return http.StatusGone
	case tufrepo.CodeNotFound:
		return http.StatusNotFound
	case tufrepo.CodeSignerDown, tufrepo.CodeStoreDown:
		return http.StatusServiceUnavailable
	}
	return http.StatusBadRequest
}

// writeError is the one place where errors become HTTP responses. Client
// mistakes get their own status and message; anything else is a 500 with a
// generic message, its cause logged with the request ID.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	var (
		status int
		item   api.Error
		te     *tufrepo.Error
		he     *httpError
		mbe    *http.MaxBytesError
		ae     *auth.AuthError
		qe     *store.StagedQuotaError
	)
	if errors.As(err, &qe) {
		err = quotaError(qe)
	}
	switch {
	case errors.As(err, &ae):
		code := api.CodeDenied
		if ae.Status == http.StatusUnauthorized {
			code = api.CodeUnauthorized
			if ae.Challenge != "" {
				w.Header().Set("WWW-Authenticate", ae.Challenge)
			}
		}
		status, item = ae.Status, api.Error{Code: code, Message: ae.Msg}
	case errors.As(err, &he):
		status, item = he.status, api.Error{Code: he.code, Message: he.msg}
	case errors.As(err, &te):
		status, item = statusOf(te.Code), api.Error{Code: te.Code, Message: te.Error()}
		if te.Role != "" {
			item.Detail = map[string]string{"role": te.Role}
		}
	case errors.As(err, &mbe):
		status, item = http.StatusRequestEntityTooLarge, api.Error{Code: api.CodeTooLarge, Message: "request body is larger than the limit", Detail: map[string]int64{"limit": mbe.Limit}}
	case errors.Is(err, store.ErrNotFound):
		status, item = http.StatusNotFound, api.Error{Code: tufrepo.CodeNotFound, Message: "metadata not found"}
	case errors.Is(err, store.ErrUnavailable):
		status, item = http.StatusServiceUnavailable, api.Error{Code: tufrepo.CodeStoreDown, Message: "the database is unavailable"}
	case errors.Is(err, context.DeadlineExceeded):
		status, item = http.StatusServiceUnavailable, api.Error{Code: api.CodeTimeout, Message: "the request took longer than the server allows and was stopped; nothing was stored: retry, or publish in smaller batches"}
	case errors.Is(err, context.Canceled) && r.Context().Err() != nil:
		// The client hung up: nobody reads the answer.
		w.WriteHeader(499)
		return
	default:
		status, item = http.StatusInternalServerError, api.Error{Code: api.CodeInternal, Message: "internal error; the server log has details under this request ID"}
	}
	if status >= 500 {
		s.log.ErrorContext(r.Context(), "request failed", "status", status, "err", err)
	}
	writeJSON(w, status, api.ErrorBody{Errors: []api.Error{item}})
}

// writeJSON writes v. Unless the handler said otherwise (metadata, and
// metadata not found: httpcache.go), the answer is not for caches: a CDN
// in front of the server must not keep staged changes, the change feed,
// keys, publish results or errors.
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	if w.Header().Get("Cache-Control") == "" {
		w.Header().Set("Cache-Control", "no-store")
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}
