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

// TestSignBatchOverMutualTLS: SignBatch through the signer's API over real
// mutual TLS, as signet-server calls it. The signatures verify with go-tuf;
// a batch with one wrong-role payload comes back as a *signer.BatchError
// naming it, wrapping ErrRoleMismatch, and the signer audited both payloads
// as refused.
func TestSignBatchOverMutualTLS(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	if err := tlsutil.WriteDevCerts(tlsutil.DevCerts{Dir: dir}); err != nil {
		t.Fatal(err)
	}
	cert := func(name string) string { return filepath.Join(dir, name) }
	var audit bytes.Buffer
	svc := keystore.NewMemory()
	h := api.New(svc, slog.New(slog.DiscardHandler), slog.New(slog.NewJSONHandler(&audit, nil)), prometheus.NewRegistry())
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
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the anonymous handshake below fails, as it must
	srv.StartTLS()
	defer srv.Close()
	tc, err := tlsutil.ClientConfig(cert("ca.pem"), cert("server.pem"), cert("server-key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	tr := &http.Transport{TLSClientConfig: tc}
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
