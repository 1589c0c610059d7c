package signerclient_test

import (
	"context"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/secure-systems-lab/go-securesystemslib/cjson"
	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/signetdev/signet/signer"
	"github.com/signetdev/signet/signer/keystore"
	"github.com/signetdev/signet/signer/signerclient"
)

// BenchmarkSignBatch measures one publish's signatures (snapshot and
// timestamp in one batch) from 16 callers: in process, and through the
// signer's API over mutual TLS as signet-server calls it. The audit log
// goes to io.Discard through a JSON handler, as the signer writes it.
func BenchmarkSignBatch(b *testing.B) {
	ctx := context.Background()
	svc := keystore.NewMemory()
	const gun = "bench.example.com/app"
	ts, err := svc.EnsureKey(ctx, gun, metadata.TIMESTAMP, signer.Ed25519)
	if err != nil {
		b.Fatal(err)
	}
	snap, err := svc.EnsureKey(ctx, gun, metadata.SNAPSHOT, signer.Ed25519)
	if err != nil {
		b.Fatal(err)
	}
	snapPayload, _ := cjson.EncodeCanonical(metadata.Snapshot(time.Now().Add(time.Hour)).Signed)
	tsPayload, _ := cjson.EncodeCanonical(metadata.Timestamp(time.Now().Add(time.Hour)).Signed)
	batch := []signer.SignRequest{
		{GUN: gun, Role: metadata.SNAPSHOT, KeyID: snap.ID, Payload: snapPayload},
		{GUN: gun, Role: metadata.TIMESTAMP, KeyID: ts.ID, Payload: tsPayload},
	}
	run := func(b *testing.B, sg signer.Service) {
		b.ReportAllocs()
		b.SetParallelism(8) // 16 callers on 2 cores
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := sg.SignBatch(ctx, batch); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	b.Run("in-process", func(b *testing.B) { run(b, svc) })

	srv, tc := newSignerServer(b, svc, io.Discard)
	for _, tt := range []struct {
		name string
		tr   *http.Transport
	}{
		{"mTLS-http1", signerclient.NewTransport(tc.Clone())},
		{"mTLS-http2", &http.Transport{TLSClientConfig: tc.Clone(), MaxIdleConnsPerHost: 64, ForceAttemptHTTP2: true}},
	} {
		b.Run(tt.name, func(b *testing.B) {
			defer tt.tr.CloseIdleConnections()
			run(b, signerclient.New(srv.URL, &http.Client{Transport: tt.tr}))
		})
	}
}
