package api_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/signetdev/signet/signer"
	"github.com/signetdev/signet/signer/api"
	"github.com/signetdev/signet/signer/keystore"
)

// TestAuditLog checks that every signature, and every refusal, is logged
// with GUN, role, key ID, payload digest and client identity.
func TestAuditLog(t *testing.T) {
	t.Parallel()
	svc := keystore.NewMemory()
	k, err := svc.EnsureKey(context.Background(), "example.com/app", "timestamp", signer.Ed25519)
	if err != nil {
		t.Fatal(err)
	}
	var audit bytes.Buffer
	handler := api.New(svc, slog.New(slog.DiscardHandler), slog.New(slog.NewJSONHandler(&audit, nil)), prometheus.NewRegistry())
	h := handler.Routes()
	sign := func(payload string) int {
		body, _ := json.Marshal(api.SignRequest{GUN: "example.com/app", Role: "timestamp", KeyID: k.ID, Payload: []byte(payload)})
		r := httptest.NewRequest(http.MethodPost, api.PathSign, bytes.NewReader(body))
		r.TLS = &tls.ConnectionState{PeerCertificates: []*x509.Certificate{{Subject: pkix.Name{CommonName: "signet-server"}}}}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w.Code
	}
	good := `{"_type":"timestamp","version":1}`
	if code := sign(good); code != 200 {
		t.Fatalf("sign: %d", code)
	}
	if code := sign(`{"_type":"targets"}`); code != http.StatusForbidden {
		t.Fatalf("targets payload: %d", code)
	}
	lines := strings.Split(strings.TrimSpace(audit.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("audit lines: %q", audit.String())
	}
	sum := sha256.Sum256([]byte(good))
	for _, want := range []string{`"msg":"signed"`, `"gun":"example.com/app"`, `"role":"timestamp"`, `"key_id":"` + k.ID, `"payload_sha256":"` + hex.EncodeToString(sum[:]), `"client":"CN=signet-server"`} {
		if !strings.Contains(lines[0], want) {
			t.Errorf("audit line %s lacks %s", lines[0], want)
		}
	}
	if !strings.Contains(lines[1], `"msg":"signature refused"`) {
		t.Errorf("refusal not audited: %s", lines[1])
	}
	if strings.Contains(audit.String(), "PRIVATE") {
		t.Error("key material in the audit log")
	}
	w := httptest.NewRecorder()
	handler.HealthRoutes().ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	for _, want := range []string{`signet_signer_keys{role="timestamp"} 1`, `signet_signer_requests_duration_seconds_count{code="200",op="sign"} 1`, `signet_signer_requests_duration_seconds_count{code="403",op="sign"} 1`} {
		if !strings.Contains(w.Body.String(), want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

func TestRequireClientCert(t *testing.T) {
	t.Parallel()
	h := api.RequireClientCert(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(200) }))
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/", nil))
	if w.Code != http.StatusForbidden {
		t.Fatalf("plain request: %d", w.Code)
	}
}

// TestSignBatchAudit: a batch is signed whole, with one audit line per
// payload; a batch with one payload of the wrong role is refused whole
// (403, the payload's index in the error, no signature), and every payload
// of it is audited as refused.
func TestSignBatchAudit(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	svc := keystore.NewMemory()
	ts, err := svc.EnsureKey(ctx, "example.com/app", "timestamp", signer.Ed25519)
	if err != nil {
		t.Fatal(err)
	}
	snap, err := svc.EnsureKey(ctx, "example.com/app", "snapshot", signer.Ed25519)
	if err != nil {
		t.Fatal(err)
	}
	var audit bytes.Buffer
	h := api.New(svc, slog.New(slog.DiscardHandler), slog.New(slog.NewJSONHandler(&audit, nil)), prometheus.NewRegistry()).Routes()
	post := func(reqs ...api.SignRequest) (int, []byte) {
		body, _ := json.Marshal(api.SignBatchRequest{Requests: reqs})
		r := httptest.NewRequest(http.MethodPost, api.PathSignBatch, bytes.NewReader(body))
		r.TLS = &tls.ConnectionState{PeerCertificates: []*x509.Certificate{{Subject: pkix.Name{CommonName: "signet-server"}}}}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w.Code, w.Body.Bytes()
	}
	snapReq := api.SignRequest{GUN: "example.com/app", Role: "snapshot", KeyID: snap.ID, Payload: []byte(`{"_type":"snapshot","version":2}`)}
	tsReq := api.SignRequest{GUN: "example.com/app", Role: "timestamp", KeyID: ts.ID, Payload: []byte(`{"_type":"timestamp","version":2}`)}

	code, body := post(snapReq, tsReq)
	var resp api.SignBatchResponse
	if err := json.Unmarshal(body, &resp); code != 200 || err != nil || len(resp.Signatures) != 2 {
		t.Fatalf("batch: %d %s", code, body)
	}
	lines := strings.Split(strings.TrimSpace(audit.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("audit lines for a batch of 2: %q", audit.String())
	}
	for i, req := range []api.SignRequest{snapReq, tsReq} {
		sum := sha256.Sum256(req.Payload)
		for _, want := range []string{`"msg":"signed"`, `"role":"` + req.Role, `"key_id":"` + req.KeyID, `"payload_sha256":"` + hex.EncodeToString(sum[:]),
			`"client":"CN=signet-server"`, fmt.Sprintf(`"batch_index":%d`, i), `"batch_size":2`} {
			if !strings.Contains(lines[i], want) {
				t.Errorf("audit line %s lacks %s", lines[i], want)
			}
		}
	}

	audit.Reset()
	bad := tsReq
	bad.Payload = []byte(`{"_type":"targets","version":2}`)
	code, body = post(snapReq, bad)
	var eb api.ErrorBody
	if err := json.Unmarshal(body, &eb); code != http.StatusForbidden || err != nil || len(eb.Errors) != 1 ||
		eb.Errors[0].Code != api.CodeRoleMismatch || eb.Errors[0].Index == nil || *eb.Errors[0].Index != 1 {
		t.Fatalf("batch with a targets payload: %d %s", code, body)
	}
	if strings.Contains(string(body), "signatures") {
		t.Errorf("a refused batch returned signatures: %s", body)
	}
	lines = strings.Split(strings.TrimSpace(audit.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("audit lines for a refused batch of 2: %q", audit.String())
	}
	for i, l := range lines {
		if !strings.Contains(l, `"msg":"signature refused"`) || !strings.Contains(l, fmt.Sprintf(`"batch_index":%d`, i)) {
			t.Errorf("refused payload %d not audited as refused: %s", i, l)
		}
	}

	many := make([]api.SignRequest, signer.MaxBatch+1)
	for i := range many {
		many[i] = tsReq
	}
	for name, reqs := range map[string][]api.SignRequest{"empty": nil, "too many": many, "no key ID": {{GUN: "example.com/app", Role: "timestamp", Payload: tsReq.Payload}}} {
		audit.Reset()
		if code, body := post(reqs...); code != http.StatusBadRequest {
			t.Errorf("%s batch: %d %s", name, code, body)
		}
		if n := strings.Count(audit.String(), `"msg":"signed"`); n != 0 {
			t.Errorf("%s batch: %d signatures audited", name, n)
		}
		if n := strings.Count(audit.String(), "\n"); n > 1 {
			t.Errorf("%s batch: %d audit lines, want at most 1", name, n)
		}
	}
}

// TestSignBatchesAudit: the batches of one PathSignBatches request are
// signed or refused each on its own, each payload audited under its
// batch's request ID; a request with no batch or too many is refused whole.
func TestSignBatchesAudit(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	svc := keystore.NewMemory()
	ts, err := svc.EnsureKey(ctx, "example.com/app", "timestamp", signer.Ed25519)
	if err != nil {
		t.Fatal(err)
	}
	var audit bytes.Buffer
	h := api.New(svc, slog.New(slog.DiscardHandler), slog.New(slog.NewJSONHandler(&audit, nil)), prometheus.NewRegistry()).Routes()
	post := func(in api.SignBatchesRequest) (int, []byte) {
		body, _ := json.Marshal(in)
		r := httptest.NewRequest(http.MethodPost, api.PathSignBatches, bytes.NewReader(body))
		r.TLS = &tls.ConnectionState{PeerCertificates: []*x509.Certificate{{Subject: pkix.Name{CommonName: "signet-server"}}}}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w.Code, w.Body.Bytes()
	}
	good := api.SignRequest{GUN: "example.com/app", Role: "timestamp", KeyID: ts.ID, Payload: []byte(`{"_type":"timestamp","version":2}`)}
	bad := good
	bad.Payload = []byte(`{"_type":"targets","version":2}`)
	code, body := post(api.SignBatchesRequest{Batches: []api.SignBatch{
		{RequestID: "one", Requests: []api.SignRequest{good}},
		{RequestID: "two", Requests: []api.SignRequest{good, bad}},
		{RequestID: "three", Requests: nil},
		{RequestID: "bad id\n", Requests: []api.SignRequest{good, good}},
	}})
	var resp api.SignBatchesResponse
	if err := json.Unmarshal(body, &resp); code != 200 || err != nil || len(resp.Results) != 4 {
		t.Fatalf("batches: %d %s", code, body)
	}
	if r := resp.Results[0]; r.Error != nil || len(r.Signatures) != 1 {
		t.Errorf("batch 0: %+v", r)
	}
	if r := resp.Results[1]; r.Signatures != nil || r.Error == nil || r.Status != http.StatusForbidden || r.Error.Code != api.CodeRoleMismatch || r.Error.Index == nil || *r.Error.Index != 1 {
		t.Errorf("batch 1 (a targets payload): %+v", r)
	}
	if r := resp.Results[2]; r.Signatures != nil || r.Error == nil || r.Status != http.StatusBadRequest {
		t.Errorf("batch 2 (empty): %+v", r)
	}
	if r := resp.Results[3]; r.Error != nil || len(r.Signatures) != 2 {
		t.Errorf("batch 3: %+v", r)
	}
	lines := strings.Split(strings.TrimSpace(audit.String()), "\n")
	var signed, refused []string
	for _, l := range lines {
		var rec struct {
			Msg       string `json:"msg"`
			RequestID string `json:"request_id"`
		}
		if err := json.Unmarshal([]byte(l), &rec); err != nil {
			t.Fatal(err)
		}
		switch rec.Msg {
		case "signed":
			signed = append(signed, rec.RequestID)
		case "signature refused":
			refused = append(refused, rec.RequestID)
		}
	}
	if got := strings.Join(signed, ","); got != "one,," {
		t.Errorf("signed lines by request ID: %q", got)
	}
	if got := strings.Join(refused, ","); got != "two,two,three" {
		t.Errorf("refused lines by request ID: %q", got)
	}

	many := make([]api.SignBatch, api.MaxBatches+1)
	for i := range many {
		many[i] = api.SignBatch{Requests: []api.SignRequest{good}}
	}
	for name, in := range map[string]api.SignBatchesRequest{"no batch": {}, "too many": {Batches: many}} {
		audit.Reset()
		if code, body := post(in); code != http.StatusBadRequest {
			t.Errorf("%s: %d %s", name, code, body)
		}
		if strings.Contains(audit.String(), `"msg":"signed"`) {
			t.Errorf("%s: signed", name)
		}
	}
}

// sinkWriter counts the writes to an audit sink and notes whether the
// answer had been written before each.
type sinkWriter struct {
	lines        bytes.Buffer
	writes       int
	answer       *httptest.ResponseRecorder
	answeredLate bool
}

func (s *sinkWriter) Write(p []byte) (int, error) {
	s.writes++
	if s.answer.Body.Len() > 0 {
		s.answeredLate = true
	}
	return s.lines.Write(p)
}

// TestAuditSink: with WithAuditSink, a signing request's audit lines are
// the same lines, written in one write, before the answer.
func TestAuditSink(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	svc := keystore.NewMemory()
	ts, err := svc.EnsureKey(ctx, "example.com/app", "timestamp", signer.Ed25519)
	if err != nil {
		t.Fatal(err)
	}
	good := api.SignRequest{GUN: "example.com/app", Role: "timestamp", KeyID: ts.ID, Payload: []byte(`{"_type":"timestamp","version":2}`)}
	bad := good
	bad.Payload = []byte(`{"_type":"root","version":2}`)
	body, _ := json.Marshal(api.SignBatchesRequest{Batches: []api.SignBatch{
		{RequestID: "one", Requests: []api.SignRequest{good, good}},
		{RequestID: "two", Requests: []api.SignRequest{bad}},
	}})
	batchBody, _ := json.Marshal(api.SignBatchRequest{Requests: []api.SignRequest{good, good}})
	for _, tt := range []struct{ path, body string }{{api.PathSignBatches, string(body)}, {api.PathSignBatch, string(batchBody)}} {
		run := func(sink *sinkWriter) (string, *httptest.ResponseRecorder) {
			var direct bytes.Buffer
			newHandler := func(w io.Writer) slog.Handler { return slog.NewJSONHandler(w, nil) }
			var opts []api.Option
			if sink != nil {
				opts = append(opts, api.WithAuditSink(sink, newHandler))
			}
			h := api.New(svc, slog.New(slog.DiscardHandler), slog.New(newHandler(&direct)), prometheus.NewRegistry(), opts...).Routes()
			r := httptest.NewRequest(http.MethodPost, tt.path, strings.NewReader(tt.body))
			r.TLS = &tls.ConnectionState{PeerCertificates: []*x509.Certificate{{Subject: pkix.Name{CommonName: "signet-server"}}}}
			w := httptest.NewRecorder()
			if sink != nil {
				sink.answer = w
			}
			h.ServeHTTP(w, r)
			if sink != nil {
				if direct.Len() > 0 {
					t.Errorf("%s: lines written past the sink: %s", tt.path, direct.String())
				}
				return sink.lines.String(), w
			}
			return direct.String(), w
		}
		want, w := run(nil)
		sink := &sinkWriter{}
		got, sw := run(sink)
		if w.Code != 200 || sw.Code != 200 || w.Body.Len() == 0 {
			t.Fatalf("%s: %d, %d %s", tt.path, w.Code, sw.Code, w.Body)
		}
		// The lines differ only in their times.
		strip := func(s string) []string {
			var out []string
			for _, l := range strings.Split(strings.TrimSpace(s), "\n") {
				var m map[string]any
				if err := json.Unmarshal([]byte(l), &m); err != nil {
					t.Fatalf("%q: %v", l, err)
				}
				delete(m, "time")
				b, _ := json.Marshal(m)
				out = append(out, string(b))
			}
			return out
		}
		if g, wnt := strip(got), strip(want); strings.Join(g, "\n") != strings.Join(wnt, "\n") || len(g) < 2 {
			t.Errorf("%s: through the sink:\n%s\nwithout:\n%s", tt.path, strings.Join(g, "\n"), strings.Join(wnt, "\n"))
		}
		if sink.writes != 1 || sink.answeredLate {
			t.Errorf("%s: %d writes to the sink (want 1), after the answer: %v", tt.path, sink.writes, sink.answeredLate)
		}
	}
}
