package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/signetdev/signet/api"

	"github.com/signetdev/signet/server/auth"

	"github.com/distribution/reference"
	"github.com/go-chi/chi/v5"
	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/signetdev/signet/server/store"
	"github.com/signetdev/signet/server/tufrepo"
)

// gunOf is the repository of a request under /v2/{gun}/_trust/ ("" for
// any other route).
func gunOf(r *http.Request) string { return infoOf(r.Context()).gun }

// splitGUN splits "/v2/{gun}/_trust/…" (escaped form) into the GUN and the
// rest of the path, and validates the GUN against the OCI reference grammar
// (lower case, at most 255 bytes, no ".."), through valid.
func splitGUN(escapedPath string, valid *gunMemo) (gun, rest string, err error) {
	p := strings.TrimPrefix(escapedPath, "/v2/")
	i := strings.Index(p, "/_trust/")
	if i < 0 {
		return "", "", notFound("no such endpoint")
	}
	gun, rest = p[:i], p[i:]
	if err := valid.check(gun); err != nil {
		return "", "", err
	}
	return gun, rest, nil
}

// gunMemo remembers names ValidateGUN accepted: its regular expression
// was a sixth of the CPU of a read served from memory. Only accepted names
// are kept, and at most maxValidGUNs of them: when full it is emptied, so
// a flood of distinct names costs what it would without it.
type gunMemo struct {
	names sync.Map // GUN → struct{}
	n     atomic.Int64
}

const maxValidGUNs = 16_384

func (g *gunMemo) check(gun string) error {
	if _, ok := g.names.Load(gun); ok {
		return nil
	}
	if err := ValidateGUN(gun); err != nil {
		return err
	}
	if g.n.Add(1) > maxValidGUNs {
		g.names.Clear()
		g.n.Store(1)
	}
	g.names.Store(strings.Clone(gun), struct{}{}) // not a slice of the request's path
	return nil
}

// ValidateGUN reports whether gun is a repository name as OCI references
// spell it: registry.example.com/team/app, at most 255 bytes.
func ValidateGUN(gun string) error {
	if len(gun) > reference.RepositoryNameTotalLengthMax {
		return badRequest(api.CodeInvalidGUN, fmt.Sprintf("repository name is longer than %d bytes", reference.RepositoryNameTotalLengthMax))
	}
	named, err := reference.WithName(gun)
	// The grammar allows upper case in the registry host; signet does not,
	// so that one repository never has two names.
	if err != nil || named.Name() != gun || strings.ToLower(gun) != gun {
		return badRequest(api.CodeInvalidGUN, fmt.Sprintf("%q is not a valid repository name (lower-case OCI name such as registry.example.com/team/app)", gun))
	}
	return nil
}

// fileRef is a parsed metadata file name: {role}.json, {N}.{role}.json or
// {role}.{sha256}.json.
type fileRef struct {
	role     string
	version  int64  // 0: not by version
	checksum string // "": not by checksum
}

func parseFile(escaped string) (fileRef, error) {
	name, err := url.PathUnescape(escaped)
	if err != nil {
		return fileRef{}, badRequest(api.CodeBadRequest, "bad escaping in file name")
	}
	base, ok := strings.CutSuffix(name, ".json")
	if !ok {
		return fileRef{}, notFound("metadata files end in .json")
	}
	var f fileRef
	if head, tail, ok := strings.Cut(base, "."); ok && isDigits(head) {
		v, err := strconv.ParseInt(head, 10, 64)
		if err != nil || v < 1 {
			return fileRef{}, badRequest(api.CodeBadRequest, "bad version in file name")
		}
		f.version, base = v, tail
	} else if i := strings.LastIndexByte(base, '.'); i > 0 && len(base)-i-1 == 64 && isHex(base[i+1:]) {
		f.checksum, base = base[i+1:], base[:i]
	}
	f.role = base
	if !isTopLevel(f.role) {
		if err := tufrepo.ValidateRoleName(f.role); err != nil {
			return fileRef{}, err
		}
	}
	return f, nil
}

func isTopLevel(role string) bool {
	switch role {
	case metadata.ROOT, metadata.TARGETS, metadata.SNAPSHOT, metadata.TIMESTAMP:
		return true
	}
	return false
}

func isDigits(s string) bool {
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return s != ""
}

func isHex(s string) bool {
	for _, c := range s {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// getFile serves metadata files and server public keys.
func (s *Server) getFile(w http.ResponseWriter, r *http.Request) error {
	gun, file := gunOf(r), chi.URLParam(r, "*")
	if role, ok := strings.CutSuffix(file, ".key"); ok {
		ctx, cancel := context.WithTimeout(r.Context(), s.timeout) // the signer, maybe the store (authorizedUntimed)
		defer cancel()
		return s.getKey(w, r.WithContext(ctx), gun, role)
	}
	f, err := parseFile(file)
	if err != nil {
		return err
	}
	var m *store.Meta
	switch {
	case f.version > 0:
		m, err = s.cache.GetVersion(r.Context(), gun, f.role, f.version)
	case f.checksum != "":
		ctx, cancel := context.WithTimeout(r.Context(), s.timeout) // not cached: the store (authorizedUntimed)
		defer cancel()
		m, err = s.cache.GetChecksum(ctx, gun, f.role, f.checksum)
	case f.role == metadata.TIMESTAMP:
		m, err = s.timestamp(r.Context(), gun)
	default:
		m, err = s.cache.GetCurrent(r.Context(), gun, f.role)
	}
	if errors.Is(err, store.ErrNotFound) {
		// Exactly 404: go-tuf reads only 404 on {N}.root.json as "no newer
		// root". Cacheable like the latest files: every refresh asks for
		// the next root, and a CDN must answer that too, but a new root
		// must show within the same window as a new timestamp.
		w.Header()["Cache-Control"] = s.cacheControl(r, true)
		return &httpError{status: http.StatusNotFound, code: tufrepo.CodeNotFound, msg: fmt.Sprintf("%s has no %s", gun, file)}
	}
	if err != nil {
		return err
	}
	s.writeMeta(w, r, m, f.version == 0 && f.checksum == "")
	return nil
}

// timestamp returns the latest timestamp, re-signing it first once it has
// reached half of its lifetime. If re-signing fails (signer down), the
// stored timestamp is served until it expires: clients then see expiry.
func (s *Server) timestamp(ctx context.Context, gun string) (*store.Meta, error) {
	m, err := s.cache.GetCurrent(ctx, gun, metadata.TIMESTAMP)
	if err != nil || !s.repo.NeedsRefresh(m.Expires) {
		return m, err
	}
	_, err, _ = s.refresh.Do(gun, func() (any, error) {
		ok, err := s.repo.Refresh(context.WithoutCancel(ctx), gun)
		if ok {
			s.metrics.refreshes.Inc()
		}
		return nil, err
	})
	if err != nil {
		s.log.WarnContext(ctx, "serving timestamp without re-signing", "gun", gun, "expires", m.Expires, "err", err)
		return m, nil
	}
	return s.cache.GetCurrent(ctx, gun, metadata.TIMESTAMP)
}

// getKey returns a server-managed public key as TUF key JSON. Reading an
// existing key needs pull; creating one (the first ask for a GUN) needs
// push, and a caller without it gets the push refusal (401 with the
// challenge, or 403), not a 404: the key is missing because the caller may
// not create it, and "no timestamp key" would send them chasing the wrong
// thing.
func (s *Server) getKey(w http.ResponseWriter, r *http.Request, gun, role string) error {
	if role != metadata.TIMESTAMP && role != metadata.SNAPSHOT {
		return notFound("the server holds keys only for timestamp and snapshot")
	}
	ctx := r.Context()
	k, err := s.repo.ServerKey(ctx, gun, role, false)
	var te *tufrepo.Error
	if errors.As(err, &te) && te.Code == tufrepo.CodeNotFound {
		if err := s.auth.Authorize(ctx, r, gun, auth.ActionPush); err != nil {
			return explainAuth(err, fmt.Sprintf("%s has no %s key yet, and creating it needs push rights", gun, role))
		}
		if !s.keyLimit.allow(r) {
			return &httpError{status: http.StatusTooManyRequests, code: api.CodeTooManyRequests, msg: "too many new server keys from this client; retry later"}
		}
		k, err = s.repo.ServerKey(ctx, gun, role, true)
	}
	if err != nil {
		return err
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, k.Public)
	return nil
}

// rotateKey makes a new server key for the role in POST …/{role}.key.
func (s *Server) rotateKey(w http.ResponseWriter, r *http.Request) error {
	gun := gunOf(r)
	role, ok := strings.CutSuffix(chi.URLParam(r, "*"), ".key")
	if !ok {
		return &httpError{status: http.StatusMethodNotAllowed, code: api.CodeMethod, msg: "only server keys (…/{role}.key) can be rotated with POST"}
	}
	if role != metadata.TIMESTAMP && role != metadata.SNAPSHOT {
		return notFound("the server holds keys only for timestamp and snapshot")
	}
	k, err := s.repo.RotateKey(r.Context(), gun, role)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, k.Public)
	return nil
}

// publish takes a multipart/form-data upload, one part per role, each named
// "files" with the role name as its filename.
func (s *Server) publish(w http.ResponseWriter, r *http.Request) error {
	gun := gunOf(r)
	files, err := s.readUpload(w, r)
	if err != nil {
		return err
	}
	res, err := s.repo.Publish(r.Context(), gun, files)
	if err != nil {
		var te *tufrepo.Error
		if errors.As(err, &te) {
			s.metrics.publishes.WithLabelValues(string(te.Code)).Inc()
		}
		return err
	}
	s.metrics.publishes.WithLabelValues("accepted").Inc()
	writeJSON(w, http.StatusOK, api.PublishResult{GUN: gun, Versions: res.Versions})
	return nil
}

func (s *Server) readUpload(w http.ResponseWriter, r *http.Request) (map[string][]byte, error) {
	mt, params, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/form-data" || params["boundary"] == "" {
		return nil, &httpError{status: http.StatusUnsupportedMediaType, code: api.CodeUnsupportedType,
			msg: "publish with multipart/form-data: one part per role, named \"files\", with the role name as its filename"}
	}
	mr := multipart.NewReader(http.MaxBytesReader(w, r.Body, s.limits.MaxBody), params["boundary"])
	files := map[string][]byte{}
	for {
		part, err := mr.NextRawPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, uploadErr(err)
		}
		role, err := partRole(part)
		if err != nil {
			return nil, err
		}
		if _, dup := files[role]; dup {
			return nil, badRequest(api.CodeBadRequest, fmt.Sprintf("role %s is uploaded twice", role))
		}
		limit := s.roleLimit(role)
		data, err := io.ReadAll(io.LimitReader(part, limit+1))
		if err != nil {
			return nil, uploadErr(err)
		}
		if int64(len(data)) > limit {
			return nil, &httpError{status: http.StatusRequestEntityTooLarge, code: api.CodeTooLarge, msg: fmt.Sprintf("%s is larger than its limit of %d bytes", role, limit)}
		}
		files[role] = data
	}
	if len(files) == 0 {
		return nil, badRequest(api.CodeBadRequest, "the upload holds no metadata")
	}
	return files, nil
}

func uploadErr(err error) error {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return err
	}
	return badRequest(api.CodeBadRequest, "malformed multipart body: "+err.Error())
}

// partRole reads the role name from the part's Content-Disposition. It
// does not use Part.FileName, which drops everything before the last "/"
// (delegated role names contain "/").
func partRole(p *multipart.Part) (string, error) {
	disp, params, err := mime.ParseMediaType(p.Header.Get("Content-Disposition"))
	if err != nil || disp != "form-data" || params["name"] != "files" || params["filename"] == "" {
		return "", badRequest(api.CodeBadRequest, `every part must be form-data named "files" with the role name as its filename`)
	}
	role := strings.TrimSuffix(params["filename"], ".json")
	if !isTopLevel(role) {
		if err := tufrepo.ValidateRoleName(role); err != nil {
			return "", err
		}
	}
	return role, nil
}

func (s *Server) roleLimit(role string) int64 {
	switch role {
	case metadata.ROOT:
		return s.limits.RootMax
	case metadata.SNAPSHOT:
		return s.limits.SnapshotMax
	}
	return s.limits.TargetsMax
}

// deleteRepo removes a repository's trust data.
func (s *Server) deleteRepo(w http.ResponseWriter, r *http.Request) error {
	gun := gunOf(r)
	if err := s.repo.Delete(r.Context(), gun); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// changefeed pages through publishes and deletions:
// GET /v2/_trust/changefeed?since=ID&limit=N.
func (s *Server) changefeed(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	since, err := intParam(q.Get("since"), 0)
	if err != nil || since < 0 {
		return badRequest(api.CodeBadRequest, "since must be a change ID (a non-negative integer)")
	}
	limit, err := intParam(q.Get("limit"), 100)
	if err != nil || limit < 1 || limit > store.MaxChangesPage {
		return badRequest(api.CodeBadRequest, fmt.Sprintf("limit must be between 1 and %d", store.MaxChangesPage))
	}
	changes, err := s.cache.Changes(r.Context(), since, int(limit))
	if err != nil {
		return err
	}
	page := api.ChangefeedPage{Count: len(changes), Records: make([]api.Change, len(changes)), Next: since}
	for i, c := range changes {
		page.Records[i] = api.Change{ID: c.ID, GUN: c.GUN, Category: c.Category, Version: c.Version, SHA256: c.SHA256, CreatedAt: c.CreatedAt}
		page.Next = c.ID
	}
	writeJSON(w, http.StatusOK, page)
	return nil
}

func intParam(v string, def int64) (int64, error) {
	if v == "" {
		return def, nil
	}
	return strconv.ParseInt(v, 10, 64)
}

// ping is GET /v2/, the registry API's version check: 200, or the token
// service's challenge when the authoriser has one.
func (s *Server) ping(w http.ResponseWriter, r *http.Request) error {
	if c, ok := s.auth.(auth.Challenger); ok {
		if err := c.Ping(r); err != nil {
			return err
		}
	}
	writeJSON(w, http.StatusOK, map[string]string{})
	return nil
}

func (s *Server) healthz(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// migrationStatus is implemented by stores with versioned schemas.
type migrationStatus interface {
	MigrationStatus(ctx context.Context) (current, want int64, err error)
}

// readyz answers 200 only while the database answers at the schema version
// this binary expects and the signer answers.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	checks := map[string]string{"database": "ok", "signer": "ok"}
	status := http.StatusOK
	if err := s.cache.Ping(ctx); err != nil {
		checks["database"], status = "unavailable", http.StatusServiceUnavailable
		s.log.WarnContext(ctx, "not ready: database", "err", err)
	} else if ms, ok := s.store.(migrationStatus); ok {
		if cur, want, err := ms.MigrationStatus(ctx); err != nil || cur != want {
			checks["database"], status = fmt.Sprintf("schema at version %d, this binary needs %d: run signet-server migrate", cur, want), http.StatusServiceUnavailable
			s.log.WarnContext(ctx, "not ready: database schema", "current", cur, "want", want, "err", err)
		}
	}
	if err := s.signer.Ping(ctx); err != nil {
		checks["signer"], status = "unavailable", http.StatusServiceUnavailable
		s.log.WarnContext(ctx, "not ready: signer", "err", err)
	}
	writeJSON(w, status, checks)
}
