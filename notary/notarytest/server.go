package notarytest

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"

	"github.com/signetdev/signet/notary"
)

// Server is a notary-server's read API over the files of a ServerDir:
// GET /v2/{gun}/_trust/tuf/{role}.json, {version}.{role}.json and
// {role}.{sha256}.json, 404 with Notary's error body for anything else.
// With User set it asks for a registry token as Docker Hub's Notary does:
// GET /v2/ and unauthenticated reads answer 401 with a Bearer challenge
// whose realm is /token, which hands out a token for User:Password.
type Server struct {
	Dir            notary.ServerDir
	User, Password string
	// URL is the server's own base URL (set it after httptest.NewServer).
	URL string
	// Requests counts the metadata requests served.
	Requests int
}

var checksumRE = regexp.MustCompile(`^(.+)\.([0-9a-f]{64})$`)

const token = "notarytest-token"

func (s *Server) challenge(w http.ResponseWriter, scope string) {
	h := fmt.Sprintf(`Bearer realm="%s/token",service="notary-test"`, s.URL)
	if scope != "" {
		h += fmt.Sprintf(`,scope="%s"`, scope)
	}
	w.Header().Set("WWW-Authenticate", h)
	writeError(w, http.StatusUnauthorized, "UNAUTHORIZED", "authentication required")
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"errors": []map[string]string{{"code": code, "message": msg}}})
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.URL.Path == "/token":
		u, p, ok := r.BasicAuth()
		if !ok || u != s.User || p != s.Password {
			writeError(w, http.StatusUnauthorized, "UNAUTHORIZED", "bad credentials")
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]string{"token": token})
		return
	case r.URL.Path == "/v2/" || r.URL.Path == "/v2":
		if s.User != "" && r.Header.Get("Authorization") != "Bearer "+token {
			s.challenge(w, "")
			return
		}
		w.WriteHeader(http.StatusOK)
		return
	}
	rest, ok := strings.CutPrefix(r.URL.Path, "/v2/")
	gun, file, ok2 := strings.Cut(rest, "/_trust/tuf/")
	name, ok3 := strings.CutSuffix(file, ".json")
	if !ok || !ok2 || !ok3 || r.Method != http.MethodGet {
		writeError(w, http.StatusNotFound, "NOT_FOUND", "no such endpoint")
		return
	}
	if s.User != "" && r.Header.Get("Authorization") != "Bearer "+token {
		s.challenge(w, "repository:"+gun+":pull")
		return
	}
	s.Requests++
	var want notary.Want
	role := name
	if v, after, ok := strings.Cut(name, "."); ok {
		if n, err := strconv.ParseInt(v, 10, 64); err == nil {
			role, want.Version = after, n
		}
	}
	if m := checksumRE.FindStringSubmatch(name); m != nil && want.Version == 0 {
		role, want.SHA256 = m[1], m[2]
	}
	data, err := s.Dir.Get(r.Context(), gun, role, want)
	if err == nil && want.SHA256 != "" && !strings.EqualFold(sum(data), want.SHA256) {
		err = notary.ErrNotFound // a server answers a checksum exactly
	}
	if errors.Is(err, notary.ErrNotFound) {
		writeError(w, http.StatusNotFound, "METADATA_NOT_FOUND", "You have requested metadata that does not exist.")
		return
	}
	if err != nil {
		writeError(w, http.StatusBadRequest, "INVALID", err.Error())
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(data)
}
