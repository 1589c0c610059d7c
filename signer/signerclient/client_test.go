package signerclient_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/secure-systems-lab/go-securesystemslib/cjson"
	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/signetdev/signet/internal/tlsutil"
	"github.com/signetdev/signet/signer"
	"github.com/signetdev/signet/signer/api"
	"github.com/signetdev/signet/signer/keystore"
	"github.com/signetdev/signet/signer/signerclient"
)

// newSignerServer serves the signer's API over svc with mutual TLS (and
// HTTP/2 offered, as signet-signer's server offers it), auditing to audit,
// and returns it with the client side's TLS configuration.
func newSignerServer(t testing.TB, svc signer.Service, audit io.Writer) (*httptest.Server, *tls.Config) {
	t.Helper()
	dir := t.TempDir()
	if err := tlsutil.WriteDevCerts(tlsutil.DevCerts{Dir: dir}); err != nil {
		t.Fatal(err)
	}
	cert := func(name string) string { return filepath.Join(dir, name) }
	h := api.New(svc, slog.New(slog.DiscardHandler), slog.New(slog.NewJSONHandler(audit, nil)), prometheus.NewRegistry())
	srv := httptest.NewUnstartedServer(api.RequireClientCert(h.Routes()))
	var err error
	if srv.TLS, err = tlsutil.ServerConfig(cert("signer.pem"), cert("signer-key.pem"), cert("ca.pem"), nil); err != nil {
		t.Fatal(err)
	}
	// httptest would serve its own certificate to a client that names no
	// server (an IP address): serve the signer's.
	signerCert, err := tls.LoadX509KeyPair(cert("signer.pem"), cert("signer-key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	srv.TLS.Certificates = []tls.Certificate{signerCert}
	srv.EnableHTTP2 = true
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // anonymous handshakes fail, as they must
	srv.StartTLS()
	t.Cleanup(srv.Close)
	tc, err := tlsutil.ClientConfig(cert("ca.pem"), cert("server.pem"), cert("server-key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	return srv, tc
}

// TestNewTransportSpeaksHTTP1: against a signer that offers HTTP/2,
// NewTransport keeps to HTTP/1.1 (a transport that attempts HTTP/2 gets
// it, so the test can tell).
func TestNewTransportSpeaksHTTP1(t *testing.T) {
	t.Parallel()
	srv, tc := newSignerServer(t, keystore.NewMemory(), io.Discard)
	for _, tt := range []struct {
		name  string
		tr    *http.Transport
		major int
	}{
		{"NewTransport", signerclient.NewTransport(tc.Clone()), 1},
		{"HTTP/2 attempted", &http.Transport{TLSClientConfig: tc.Clone(), ForceAttemptHTTP2: true}, 2},
	} {
		resp, err := (&http.Client{Transport: tt.tr}).Get(srv.URL + api.PathHealth)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		resp.Body.Close()
		tt.tr.CloseIdleConnections()
		if resp.StatusCode != http.StatusOK || resp.ProtoMajor != tt.major {
			t.Errorf("%s: status %d over %s, want HTTP/%d", tt.name, resp.StatusCode, resp.Proto, tt.major)
		}
	}
}

// TestSignBatchOverMutualTLS: SignBatch through the signer's API over real
// mutual TLS, as signet-server calls it. The signatures verify with go-tuf;
// a batch with one wrong-role payload comes back as a *signer.BatchError
// naming it, wrapping ErrRoleMismatch, and the signer audited both payloads
// as refused.
func TestSignBatchOverMutualTLS(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	var audit bytes.Buffer
	svc := keystore.NewMemory()
	srv, tc := newSignerServer(t, svc, &audit)
	tr := signerclient.NewTransport(tc)
	defer tr.CloseIdleConnections()
	c := signerclient.New(srv.URL, &http.Client{Transport: tr})

	const gun = "example.com/app"
	ts, err := c.EnsureKey(ctx, gun, metadata.TIMESTAMP, signer.Ed25519)
	if err != nil {
		t.Fatal(err)
	}
	snap, err := c.EnsureKey(ctx, gun, metadata.SNAPSHOT, signer.ECDSAP256)
	if err != nil {
		t.Fatal(err)
	}
	snapMeta := metadata.Snapshot(time.Now().Add(time.Hour))
	tsMeta := metadata.Timestamp(time.Now().Add(time.Hour))
	snapPayload, _ := cjson.EncodeCanonical(snapMeta.Signed)
	tsPayload, _ := cjson.EncodeCanonical(tsMeta.Signed)
	sigs, err := c.SignBatch(ctx, []signer.SignRequest{
		{GUN: gun, Role: metadata.SNAPSHOT, KeyID: snap.ID, Payload: snapPayload},
		{GUN: gun, Role: metadata.TIMESTAMP, KeyID: ts.ID, Payload: tsPayload},
	})
	if err != nil {
		t.Fatal(err)
	}
	root := metadata.Root(time.Now().Add(time.Hour))
	_ = root.Signed.AddKey(snap.Public, metadata.SNAPSHOT)
	_ = root.Signed.AddKey(ts.Public, metadata.TIMESTAMP)
	snapMeta.Signatures = []metadata.Signature{{KeyID: snap.ID, Signature: sigs[0]}}
	tsMeta.Signatures = []metadata.Signature{{KeyID: ts.ID, Signature: sigs[1]}}
	if err := root.VerifyDelegate(metadata.SNAPSHOT, snapMeta); err != nil {
		t.Errorf("snapshot: %v", err)
	}
	if err := root.VerifyDelegate(metadata.TIMESTAMP, tsMeta); err != nil {
		t.Errorf("timestamp: %v", err)
	}

	audit.Reset()
	sigs, err = c.SignBatch(ctx, []signer.SignRequest{
		{GUN: gun, Role: metadata.SNAPSHOT, KeyID: snap.ID, Payload: snapPayload},
		{GUN: gun, Role: metadata.TIMESTAMP, KeyID: ts.ID, Payload: snapPayload},
	})
	var be *signer.BatchError
	if sigs != nil || !errors.Is(err, signer.ErrRoleMismatch) || !errors.As(err, &be) || be.Index != 1 || be.Role != metadata.TIMESTAMP {
		t.Fatalf("batch with a snapshot payload for the timestamp key: %v, %d signatures", err, len(sigs))
	}
	if n := strings.Count(audit.String(), `"msg":"signature refused"`); n != 2 || strings.Contains(audit.String(), `"msg":"signed"`) {
		t.Errorf("audit of a refused batch: %s", audit.String())
	}

	if _, err := c.SignBatch(ctx, nil); err == nil || errors.Is(err, signer.ErrUnavailable) {
		t.Errorf("empty batch: %v", err)
	}

	// Without a client certificate the handshake fails: the signer is not
	// reachable for anyone else.
	plain := &http.Transport{TLSClientConfig: tc.Clone()}
	plain.TLSClientConfig.GetClientCertificate = nil
	defer plain.CloseIdleConnections()
	anon := signerclient.New(srv.URL, &http.Client{Transport: plain})
	if _, err := anon.SignBatch(ctx, []signer.SignRequest{{GUN: gun, Role: metadata.TIMESTAMP, KeyID: ts.ID, Payload: tsPayload}}); !errors.Is(err, signer.ErrUnavailable) {
		t.Errorf("without a client certificate: %v", err)
	}
}
