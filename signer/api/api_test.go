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
