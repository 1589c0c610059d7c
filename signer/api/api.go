// Package api is signet-signer's HTTPS API: JSON handlers over any
// signer.Service, served only to clients presenting a certificate from the
// configured CA (mutual TLS, TLS 1.3), with an audit log line for every
// signature (one per payload of a batch). The role binding itself (a
// timestamp key signs only timestamp metadata of its own GUN) is enforced
// by the Service implementations through signer.CheckPayloadRole; the API
// checks it again before signing.
//
// It must not import server packages or any database driver. A Handler is
// safe for concurrent use.
package api

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/signetdev/signet/internal/reqid"
	"github.com/signetdev/signet/signer"
)

var (
	errMissingKey    = errors.New("api: key without public part")
	errKeyIDMismatch = errors.New("api: key ID does not match the key")
	errBatches       = fmt.Errorf("api: a request holds 1 to %d batches", MaxBatches)
)

// maxRequest bounds request bodies: a snapshot payload of a repository with
// many roles stays well under it.
const maxRequest = 4 << 20

// maxBatchRequest bounds a batch: a large snapshot and its timestamp, base64
// on the wire, twice over while a key is rotated.
const maxBatchRequest = 4 * maxRequest

// Handler serves the API.
type Handler struct {
	svc      signer.Service
	log      *slog.Logger
	audit    *slog.Logger
	registry *prometheus.Registry
	calls    *prometheus.HistogramVec

	lastClient atomic.Pointer[identity] // see clientIdentity

	// With WithAuditSink: the signing calls' audit lines are formatted
	// into a buffer by auditHandler and written to auditSink in one write
	// per request.
	auditSink    io.Writer
	auditHandler func(io.Writer) slog.Handler
}

// Option configures a Handler.
type Option func(*Handler)

// WithAuditSink has the signing calls write their audit lines to w in one
// write per request, before the answer is sent, formatted by handler
// (which must format as the audit logger does: the same format, level and
// destination). Without it each line is its own write through the audit
// logger. w must be safe for concurrent use, and should be the writer the
// audit logger writes to, serialised with it (so that lines never
// interleave).
func WithAuditSink(w io.Writer, handler func(io.Writer) slog.Handler) Option {
	return func(h *Handler) { h.auditSink, h.auditHandler = w, handler }
}

// New returns the API over svc. Audit lines go to audit (use the main
// logger if there is no separate audit sink). Metrics go to reg.
func New(svc signer.Service, log, audit *slog.Logger, reg *prometheus.Registry, opts ...Option) *Handler {
	// Lines logged for a request name the caller's X-Request-ID (see handle).
	log, audit = slog.New(reqid.Handler(log.Handler())), slog.New(reqid.Handler(audit.Handler()))
	h := &Handler{svc: svc, log: log.With("component", "signer-api"), audit: audit.With("component", "signer-audit"), registry: reg}
	for _, o := range opts {
		o(h)
	}
	h.calls = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "signet_signer_requests_duration_seconds", Help: "Signer API requests by operation and status code.",
		Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, 1},
	}, []string{"op", "code"})
	reg.MustRegister(h.calls)
	if kc, ok := svc.(interface {
		CountByRole(ctx context.Context) (map[string]int, error)
	}); ok {
		for _, role := range []string{"timestamp", "snapshot"} {
			reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
				Name: "signet_signer_keys", Help: "Keys held, by role.", ConstLabels: prometheus.Labels{"role": role},
			}, func() float64 {
				ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
				defer cancel()
				n, err := kc.CountByRole(ctx)
				if err != nil {
					return -1
				}
				return float64(n[role])
			}))
		}
	}
	return h
}

// Routes returns the route table.
func (h *Handler) Routes() http.Handler {
	r := chi.NewRouter()
	r.Get(PathHealth, func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	r.Get(PathReady, h.ready)
	r.Post(PathEnsureKey, h.handle(h.ensureKey))
	r.Post(PathRotateKey, h.handle(h.rotateKey))
	r.Post(PathPublicKey, h.handle(h.publicKey))
	r.Post(PathListKeys, h.handle(h.listKeys))
	r.Post(PathDeleteKeys, h.handle(h.deleteKeys))
	r.Post(PathSign, h.handle(h.sign))
	r.Post(PathSignBatch, h.handle(h.signBatch))
	r.Post(PathSignBatches, h.handle(h.signBatches))
	return r
}

// HealthRoutes serves only /healthz, /readyz and /metrics, for probes and
// scrapers that cannot present a client certificate.
func (h *Handler) HealthRoutes() http.Handler {
	r := chi.NewRouter()
	h.health(r)
	r.Method(http.MethodGet, "/metrics", promhttp.HandlerFor(h.registry, promhttp.HandlerOpts{Registry: h.registry}))
	return r
}

func (h *Handler) health(r chi.Router) {
	r.Get(PathHealth, func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	r.Get(PathReady, h.ready)
}

func (h *Handler) handle(fn func(http.ResponseWriter, *http.Request) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		code := http.StatusOK
		if id := r.Header.Get(reqid.Header); reqid.Valid(id) {
			r = r.WithContext(reqid.With(r.Context(), id))
		}
		if err := fn(w, r); err != nil {
			code = h.writeError(w, r, err)
		}
		h.calls.WithLabelValues(strings.TrimPrefix(r.URL.Path, "/v1/"), strconv.Itoa(code)).Observe(time.Since(start).Seconds())
	}
}

type badRequest struct{ msg string }

func (e *badRequest) Error() string { return e.msg }

func decode(w http.ResponseWriter, r *http.Request, v any) error {
	return decodeMax(w, r, v, maxRequest)
}

func decodeMax(w http.ResponseWriter, r *http.Request, v any, limit int64) error {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, limit))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return &badRequest{"malformed request: " + err.Error()}
	}
	return nil
}

// bodies are the request buffers of the signing calls (and their audit
// lines), reused: what is decoded from them is copied out.
var bodies = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// putBody returns buf to bodies, unless it grew past 1 MiB (a huge
// batch's buffer is not kept).
func putBody(buf *bytes.Buffer) {
	if buf.Cap() <= 1<<20 {
		buf.Reset()
		bodies.Put(buf)
	}
}

// decodeSigning reads a signing call's body (at most limit bytes) into v
// with its hand-written, strict decoder (codec.go).
func decodeSigning(w http.ResponseWriter, r *http.Request, v json.Unmarshaler, limit int64) error {
	buf := bodies.Get().(*bytes.Buffer)
	defer putBody(buf)
	if _, err := buf.ReadFrom(http.MaxBytesReader(w, r.Body, limit)); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return err
		}
		return &badRequest{"malformed request: " + err.Error()}
	}
	if err := v.UnmarshalJSON(buf.Bytes()); err != nil {
		return &badRequest{"malformed request: " + err.Error()}
	}
	return nil
}

func (h *Handler) keyRequest(w http.ResponseWriter, r *http.Request, needRole bool) (KeyRequest, error) {
	var req KeyRequest
	if err := decode(w, r, &req); err != nil {
		return req, err
	}
	if req.GUN == "" {
		return req, &badRequest{"gun is required"}
	}
	if needRole {
		if err := signer.CheckRole(req.Role); err != nil {
			return req, err
		}
	}
	if req.Algorithm == "" {
		req.Algorithm = signer.Ed25519
	}
	if req.Algorithm != signer.Ed25519 && req.Algorithm != signer.ECDSAP256 {
		return req, &badRequest{fmt.Sprintf("algorithm %q: want ed25519 or ecdsa-p256", req.Algorithm)}
	}
	return req, nil
}

func (h *Handler) ensureKey(w http.ResponseWriter, r *http.Request) error {
	req, err := h.keyRequest(w, r, true)
	if err != nil {
		return err
	}
	k, err := h.svc.EnsureKey(r.Context(), req.GUN, req.Role, req.Algorithm)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, ToWire(k))
	return nil
}

func (h *Handler) rotateKey(w http.ResponseWriter, r *http.Request) error {
	req, err := h.keyRequest(w, r, true)
	if err != nil {
		return err
	}
	k, err := h.svc.RotateKey(r.Context(), req.GUN, req.Role, req.Algorithm)
	if err != nil {
		return err
	}
	h.audit.InfoContext(r.Context(), "key rotated", "gun", req.GUN, "role", req.Role, "key_id", k.ID, "client", h.clientIdentity(r))
	writeJSON(w, http.StatusOK, ToWire(k))
	return nil
}

func (h *Handler) publicKey(w http.ResponseWriter, r *http.Request) error {
	req, err := h.keyRequest(w, r, true)
	if err != nil {
		return err
	}
	k, err := h.svc.PublicKey(r.Context(), req.GUN, req.Role)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, ToWire(k))
	return nil
}

func (h *Handler) listKeys(w http.ResponseWriter, r *http.Request) error {
	req, err := h.keyRequest(w, r, false)
	if err != nil {
		return err
	}
	keys, err := h.svc.ListKeys(r.Context(), req.GUN)
	if err != nil {
		return err
	}
	out := KeyList{Keys: make([]Key, len(keys))}
	for i := range keys {
		out.Keys[i] = ToWire(&keys[i])
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (h *Handler) deleteKeys(w http.ResponseWriter, r *http.Request) error {
	req, err := h.keyRequest(w, r, false)
	if err != nil {
		return err
	}
	if err := h.svc.DeleteKeys(r.Context(), req.GUN); err != nil {
		return err
	}
	h.audit.InfoContext(r.Context(), "keys deleted", "gun", req.GUN, "client", h.clientIdentity(r))
	writeJSON(w, http.StatusOK, map[string]string{})
	return nil
}

func (h *Handler) sign(w http.ResponseWriter, r *http.Request) error {
	var req SignRequest
	if err := decodeSigning(w, r, &req, maxRequest); err != nil {
		return err
	}
	if req.GUN == "" || req.KeyID == "" || len(req.Payload) == 0 {
		return &badRequest{"gun, role, key_id and payload are required"}
	}
	if err := signer.CheckRole(req.Role); err != nil {
		return err
	}
	sum := sha256.Sum256(req.Payload)
	attrs := []any{"gun", req.GUN, "role", req.Role, "key_id", req.KeyID, "payload_sha256", hex.EncodeToString(sum[:]), "client", h.clientIdentity(r)}
	if err := signer.CheckPayloadRole(req.Role, req.Payload); err != nil {
		h.audit.WarnContext(r.Context(), "signature refused", append(attrs, "err", err)...)
		return err
	}
	sig, err := h.svc.Sign(r.Context(), req.GUN, req.Role, req.KeyID, req.Payload)
	if err != nil {
		h.audit.WarnContext(r.Context(), "signature refused", append(attrs, "err", err)...)
		return err
	}
	h.audit.InfoContext(r.Context(), "signed", attrs...)
	writeBody(w, http.StatusOK, SignResponse{Signature: sig}.AppendJSON(nil))
	return nil
}

// requestAudit returns the audit logger of one signing request and the
// function that writes its lines, to call before the answer is sent. With
// an audit sink the lines collect in a buffer and go out in one write;
// without one they are written as they are logged. The returned function
// may be called more than once; it writes once. The logger must not be
// used after it.
func (h *Handler) requestAudit() (*slog.Logger, func()) {
	if h.auditSink == nil {
		return h.audit, func() {}
	}
	buf := bodies.Get().(*bytes.Buffer)
	lg := slog.New(reqid.Handler(h.auditHandler(buf))).With("component", "signer-audit")
	done := false
	return lg, func() { // once: the buffer goes back to the pool
		if done {
			return
		}
		done = true
		if buf.Len() > 0 {
			_, _ = h.auditSink.Write(buf.Bytes()) // as slog does, a failed log write fails no request
		}
		putBody(buf)
	}
}

// signBatch signs every payload of the batch or none (signBatchOf).
func (h *Handler) signBatch(w http.ResponseWriter, r *http.Request) error {
	var req SignBatchRequest
	if err := decodeSigning(w, r, &req, maxBatchRequest); err != nil {
		return err
	}
	audit, flush := h.requestAudit()
	sigs, err := h.signBatchOf(r.Context(), audit, h.clientIdentity(r), req.Requests)
	flush()
	if err != nil {
		return err
	}
	writeBody(w, http.StatusOK, SignBatchResponse{Signatures: sigs}.AppendJSON(nil))
	return nil
}

// signBatches signs several independent batches of one request (what
// signerclient coalesces from concurrent callers): each is signed whole or
// refused whole exactly as signBatch would, with its own audit lines under
// its own request ID, and one batch's refusal does not touch another's.
func (h *Handler) signBatches(w http.ResponseWriter, r *http.Request) error {
	var req SignBatchesRequest
	if err := decodeSigning(w, r, &req, maxBatchRequest); err != nil {
		return err
	}
	client := h.clientIdentity(r)
	if n := len(req.Batches); n == 0 || n > MaxBatches {
		h.audit.WarnContext(r.Context(), "signature refused", "batches", n, "client", client, "err", errBatches)
		return &badRequest{fmt.Sprintf("%v: got %d", errBatches, n)}
	}
	out := SignBatchesResponse{Results: make([]SignBatchResult, len(req.Batches))}
	audit, flush := h.requestAudit()
	defer flush() // in any case; on success, before the answer (below)
	for i, b := range req.Batches {
		ctx := r.Context()
		if reqid.Valid(b.RequestID) {
			ctx = reqid.With(ctx, b.RequestID)
		}
		sigs, err := h.signBatchOf(ctx, audit, client, b.Requests)
		if err != nil {
			status, item := h.errorItem(ctx, r.URL.Path, err)
			out.Results[i] = SignBatchResult{Status: status, Error: &item}
			continue
		}
		out.Results[i] = SignBatchResult{Signatures: sigs}
	}
	b, err := out.AppendJSON(nil)
	if err != nil {
		return err
	}
	flush()
	writeBody(w, http.StatusOK, b)
	return nil
}

// signBatchOf signs every payload of in or none: the role guard runs on
// each before the service is called (which checks again), and each payload
// gets its own audit line, "signed" or "signature refused" (a refused
// batch's line names the payload that refused it).
func (h *Handler) signBatchOf(ctx context.Context, auditLog *slog.Logger, client string, in []SignRequest) ([][]byte, error) {
	if n := len(in); n == 0 || n > signer.MaxBatch {
		// One line, not one per payload: a huge batch must not flood the log.
		auditLog.WarnContext(ctx, "signature refused", "batch_size", n, "client", client, "err", signer.ErrBatchSize)
		return nil, fmt.Errorf("%w: got %d", signer.ErrBatchSize, n)
	}
	reqs := make([]signer.SignRequest, len(in))
	for i, q := range in {
		if q.GUN == "" || q.KeyID == "" || len(q.Payload) == 0 {
			return nil, &badRequest{fmt.Sprintf("request %d: gun, role, key_id and payload are required", i)}
		}
		reqs[i] = signer.SignRequest{GUN: q.GUN, Role: q.Role, KeyID: q.KeyID, Payload: q.Payload}
	}
	// audit writes one line per payload; the attributes are built only if
	// the line is written at all.
	audit := func(level slog.Level, msg string, err error) {
		if !auditLog.Enabled(ctx, level) {
			return
		}
		for i, q := range reqs {
			sum := sha256.Sum256(q.Payload)
			var hexSum [2 * sha256.Size]byte
			hex.Encode(hexSum[:], sum[:])
			attrs := [...]slog.Attr{slog.String("gun", q.GUN), slog.String("role", q.Role), slog.String("key_id", q.KeyID),
				slog.String("payload_sha256", string(hexSum[:])), slog.String("client", client),
				slog.Int("batch_index", i), slog.Int("batch_size", len(reqs)), slog.Any("err", err)}
			n := len(attrs)
			if err == nil {
				n-- // no err attribute on a signature
			}
			auditLog.LogAttrs(ctx, level, msg, attrs[:n]...)
		}
	}
	refuse := func(err error) error {
		audit(slog.LevelWarn, "signature refused", err)
		return err
	}
	if err := signer.CheckBatch(reqs); err != nil {
		return nil, refuse(err)
	}
	sigs, err := h.svc.SignBatch(ctx, reqs)
	if err != nil {
		return nil, refuse(err)
	}
	if len(sigs) != len(reqs) {
		return nil, refuse(fmt.Errorf("api: %d signatures for %d payloads", len(sigs), len(reqs)))
	}
	audit(slog.LevelInfo, "signed", nil)
	return sigs, nil
}

func (h *Handler) ready(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if err := h.svc.Ping(ctx); err != nil {
		h.log.WarnContext(ctx, "not ready", "err", err)
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"keys": "unavailable"})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"keys": "ok"})
}

// identity is a client certificate's subject, remembered with the
// certificate it was read from.
type identity struct {
	raw  []byte
	name string
}

// clientIdentity names the caller by its certificate's subject, formatted
// once per certificate rather than on every request: the callers of a
// signer are a handful of signet-servers, so the last certificate seen is
// nearly always the next one. It is compared byte for byte.
func (h *Handler) clientIdentity(r *http.Request) string {
	if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
		return "anonymous"
	}
	cert := r.TLS.PeerCertificates[0]
	if id := h.lastClient.Load(); id != nil && bytes.Equal(id.raw, cert.Raw) {
		return id.name
	}
	id := &identity{raw: cert.Raw, name: cert.Subject.String()}
	h.lastClient.Store(id)
	return id.name
}

func (h *Handler) writeError(w http.ResponseWriter, r *http.Request, err error) int {
	status, item := h.errorItem(r.Context(), r.URL.Path, err)
	writeJSON(w, status, ErrorBody{Errors: []ErrorItem{item}})
	return status
}

// errorItem is the one place where errors become statuses and error codes;
// a 5xx carries a generic message, and its cause goes to the log.
func (h *Handler) errorItem(ctx context.Context, path string, err error) (int, ErrorItem) {
	status, code, msg := http.StatusInternalServerError, CodeInternal, "internal error"
	var br *badRequest
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &br):
		status, code, msg = http.StatusBadRequest, CodeBadRequest, br.msg
	case errors.As(err, &mbe):
		status, code, msg = http.StatusRequestEntityTooLarge, CodeBadRequest, "request too large"
	case errors.Is(err, signer.ErrBatchSize):
		status, code, msg = http.StatusBadRequest, CodeBadRequest, err.Error()
	case errors.Is(err, signer.ErrKeyNotFound):
		status, code, msg = http.StatusNotFound, CodeKeyNotFound, err.Error()
	case errors.Is(err, signer.ErrRoleMismatch):
		status, code, msg = http.StatusForbidden, CodeRoleMismatch, err.Error()
	case errors.Is(err, signer.ErrUnsupportedRole):
		status, code, msg = http.StatusBadRequest, CodeUnsupportedRole, err.Error()
	default:
		h.log.ErrorContext(ctx, "request failed", "path", path, "err", err)
	}
	item := ErrorItem{Code: code, Message: msg}
	var be *signer.BatchError
	if status < 500 && errors.As(err, &be) {
		// The index says which payload; the message, why.
		item.Index, item.Message = &be.Index, be.Err.Error()
	}
	return status, item
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	writeBody(w, status, b)
}

// contentJSON is the Content-Type header's value, shared by every answer
// rather than allocated for each.
var contentJSON = []string{"application/json"}

func writeBody(w http.ResponseWriter, status int, b []byte) {
	h := w.Header()
	h["Content-Type"] = contentJSON
	h["Content-Length"] = []string{strconv.Itoa(len(b))}
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// RequireClientCert wraps h so that a request without a verified client
// certificate gets nothing but a 403, as a second line behind the TLS
// configuration (tlsutil.ServerConfig requires and verifies certificates).
func RequireClientCert(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.TLS == nil || len(r.TLS.VerifiedChains) == 0 || r.TLS.Version < tls.VersionTLS13 {
			writeJSON(w, http.StatusForbidden, ErrorBody{Errors: []ErrorItem{{Code: "FORBIDDEN", Message: "a client certificate is required"}}})
			return
		}
		h.ServeHTTP(w, r)
	})
}
