package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"mime/multipart"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/signetdev/signet/internal/pgtest"
	"github.com/signetdev/signet/internal/reqid"
	"github.com/signetdev/signet/internal/tlsutil"
	"github.com/signetdev/signet/internal/tuftest"
	"github.com/signetdev/signet/server"
	"github.com/signetdev/signet/server/store/postgres"
	"github.com/signetdev/signet/signer"
	"github.com/signetdev/signet/signer/api"
	"github.com/signetdev/signet/signer/signerclient"
)

// pki is a test CA that issues certificates into dir.
type pki struct {
	t    *testing.T
	dir  string
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

func newPKI(t *testing.T, dir, name string) *pki {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	p := &pki{t: t, dir: dir, cert: cert, key: key}
	p.write(name+"-ca.pem", "CERTIFICATE", der)
	return p
}

func (p *pki) write(name, typ string, der []byte) string {
	path := filepath.Join(p.dir, name)
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		p.t.Fatal(err)
	}
	return path
}

// issue writes name.pem and name-key.pem.
func (p *pki) issue(name string, server bool, notAfter time.Time) (certFile, keyFile string) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{SerialNumber: serial, Subject: pkix.Name{CommonName: name}, NotBefore: time.Now().Add(-2 * time.Hour), NotAfter: notAfter,
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	if server {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		tmpl.IPAddresses = []net.IP{net.ParseIP("127.0.0.1")}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.cert, &key.PublicKey, p.key)
	if err != nil {
		p.t.Fatal(err)
	}
	keyDER, _ := x509.MarshalPKCS8PrivateKey(key)
	return p.write(name+".pem", "CERTIFICATE", der), p.write(name+"-key.pem", "PRIVATE KEY", keyDER)
}

func freeAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

type signerProc struct {
	addr   string
	cancel context.CancelFunc
	done   chan int
}

func startSigner(t *testing.T, addr string, env map[string]string, args ...string) *signerProc {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	p := &signerProc{addr: addr, cancel: cancel, done: make(chan int, 1)}
	go func() {
		p.done <- run(ctx, append([]string{"--addr", addr, "--log-format", "text"}, args...), io.Discard, io.Discard, func(k string) string { return env[k] })
	}()
	for range 200 {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return p
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatal("signer did not start")
	return nil
}

func (p *signerProc) stop(t *testing.T) {
	p.cancel()
	if code := <-p.done; code != 0 {
		t.Errorf("signer exit %d", code)
	}
}

type setup struct {
	dir                       string
	pki                       *pki
	ca, signerCert, signerKey string
	clientCert, clientKey     string
	env                       map[string]string
	args                      []string
}

func newSetup(t *testing.T) *setup {
	dir := t.TempDir()
	p := newPKI(t, dir, "test")
	s := &setup{dir: dir, pki: p, ca: filepath.Join(dir, "test-ca.pem"), env: map[string]string{"SIGNET_SIGNER_PASSPHRASE": "signer passphrase"}}
	s.signerCert, s.signerKey = p.issue("signet-signer", true, time.Now().Add(time.Hour))
	s.clientCert, s.clientKey = p.issue("signet-server", false, time.Now().Add(time.Hour))
	s.args = []string{"--db", filepath.Join(dir, "keys.db"), "--tls-cert", s.signerCert, "--tls-key", s.signerKey, "--client-ca", s.ca}
	return s
}

func (s *setup) client(t *testing.T, cert, key string) *http.Client {
	t.Helper()
	pool, err := tlsutil.LoadPool(s.ca)
	if err != nil {
		t.Fatal(err)
	}
	cfg := &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS13}
	if cert != "" {
		c, err := tls.LoadX509KeyPair(cert, key)
		if err != nil {
			t.Fatal(err)
		}
		cfg.Certificates = []tls.Certificate{c}
	}
	return &http.Client{Transport: &http.Transport{TLSClientConfig: cfg}, Timeout: 5 * time.Second}
}

func TestMutualTLS(t *testing.T) {
	t.Parallel()
	s := newSetup(t)
	other := newPKI(t, s.dir, "other")
	otherCert, otherKey := other.issue("intruder", false, time.Now().Add(time.Hour))
	expiredCert, expiredKey := s.pki.issue("expired", false, time.Now().Add(-time.Minute))
	p := startSigner(t, freeAddr(t), s.env, s.args...)
	defer p.stop(t)
	url := "https://" + p.addr + api.PathReady

	for _, tc := range []struct {
		name      string
		cert, key string
		ok        bool
	}{
		{"no client certificate", "", "", false},
		{"certificate from another CA", otherCert, otherKey, false},
		{"expired certificate", expiredCert, expiredKey, false},
		{"the server's certificate", s.clientCert, s.clientKey, true},
	} {
		resp, err := s.client(t, tc.cert, tc.key).Get(url)
		if tc.ok {
			if err != nil || resp.StatusCode != 200 {
				t.Errorf("%s: %v %v", tc.name, resp, err)
			}
		} else if err == nil {
			t.Errorf("%s: got %d, want a refused handshake", tc.name, resp.StatusCode)
		}
		if resp != nil {
			resp.Body.Close()
		}
	}
}

func TestRoleBindingOverAPI(t *testing.T) {
	t.Parallel()
	s := newSetup(t)
	p := startSigner(t, freeAddr(t), s.env, s.args...)
	defer p.stop(t)
	c := signerclient.New("https://"+p.addr, s.client(t, s.clientCert, s.clientKey), slowOK)
	ctx := context.Background()
	k, err := c.EnsureKey(ctx, "example.com/app", metadata.TIMESTAMP, "")
	if err != nil {
		t.Fatal(err)
	}
	for _, payload := range []string{`{"_type":"targets"}`, `{"_type":"root"}`, `{"_type":"snapshot"}`} {
		if _, err := c.Sign(ctx, "example.com/app", metadata.TIMESTAMP, k.ID, []byte(payload)); err == nil || !strings.Contains(err.Error(), "does not match") {
			t.Errorf("%s: %v", payload, err)
		}
	}
	if _, err := c.Sign(ctx, "example.com/other", metadata.TIMESTAMP, k.ID, []byte(`{"_type":"timestamp"}`)); err == nil {
		t.Error("signed another GUN's timestamp")
	}
	if _, err := c.Sign(ctx, "example.com/app", metadata.TIMESTAMP, k.ID, []byte(`{"_type":"timestamp","version":1}`)); err != nil {
		t.Errorf("timestamp: %v", err)
	}
}

// TestSignerDownAndBack runs a server on a remote signer, stops the signer
// mid-way and starts it again: reads go on, publishes answer 503 naming the
// signer, /readyz fails, and everything recovers by itself.
func TestSignerDownAndBack(t *testing.T) {
	t.Parallel()
	s := newSetup(t)
	// Two processes' worth of Postgres: the signer's own database and the
	// server's.
	signerDB := pgtest.NewDatabase(t, "signer", func(ctx context.Context, url string) error {
		if code := runMigrate(ctx, []string{"--db", url}, io.Discard, func(string) string { return "" }); code != 0 {
			return fmt.Errorf("signet-signer migrate: exit %d", code)
		}
		return nil
	})
	s.args[1] = signerDB
	serverDB := pgtest.NewDatabase(t, "server", func(ctx context.Context, url string) error {
		st, err := postgres.Open(ctx, url)
		if err != nil {
			return err
		}
		defer st.Close()
		return st.Migrate(ctx)
	})
	st, err := postgres.Open(context.Background(), serverDB)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	addr := freeAddr(t)
	p := startSigner(t, addr, s.env, s.args...)
	tc, err := tlsutil.ClientConfig(s.ca, s.clientCert, s.clientKey)
	if err != nil {
		t.Fatal(err)
	}
	tr := &http.Transport{TLSClientConfig: tc}
	defer tr.CloseIdleConnections()
	// A generous timeout: the first call (TLS handshake, key creation in
	// Postgres) can be slow on a loaded 2-core machine; "down" below is a
	// refused connection, not a timeout.
	sc := signerclient.New("https://"+addr, &http.Client{Transport: tr}, signerclient.WithTimeout(15*time.Second))
	srv := server.New(st, sc, server.WithSweepInterval(0))
	hs := httptest.NewServer(srv.Handler())
	defer hs.Close()
	base := hs.URL + "/v2/example.com/app/_trust/tuf/"
	get := func(path string) (int, []byte) {
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}
	key := func(role string) *metadata.Key {
		code, body := get(role + ".key")
		if code != 200 {
			t.Fatalf("%s key: %d %s", role, code, body)
		}
		var k metadata.Key
		if err := json.Unmarshal(body, &k); err != nil {
			t.Fatal(err)
		}
		return &k
	}
	clock := time.Now
	dev := tuftest.NewRepo(t, clock, key(metadata.TIMESTAMP), key(metadata.SNAPSHOT))
	publish := func(files map[string][]byte) (int, string) {
		var buf bytes.Buffer
		mw := multipart.NewWriter(&buf)
		for role, data := range files {
			w, _ := mw.CreateFormFile("files", role)
			_, _ = w.Write(data)
		}
		_ = mw.Close()
		resp, err := http.Post(base, mw.FormDataContentType(), &buf)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := publish(map[string][]byte{metadata.ROOT: dev.RootBytes(), metadata.TARGETS: dev.TargetsBytes()}); code != 200 {
		t.Fatalf("publish through the signer: %d %s", code, body)
	}
	ready := func() int {
		resp, err := http.Get(hs.URL + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if ready() != 200 {
		t.Fatal("not ready with the signer up")
	}

	// Readers keep reading through the outage.
	stopReaders := make(chan struct{})
	readerErrs := make(chan error, 4)
	for range 4 {
		go func() {
			for {
				select {
				case <-stopReaders:
					readerErrs <- nil
					return
				default:
				}
				if code, _ := get("timestamp.json"); code != 200 {
					readerErrs <- fmt.Errorf("read during the outage: %d", code)
					return
				}
			}
		}()
	}
	p.stop(t)
	tr.CloseIdleConnections()
	dev.Bump()
	if code, body := publish(map[string][]byte{metadata.TARGETS: dev.TargetsBytes()}); code != 503 || !strings.Contains(body, "signer") {
		t.Fatalf("publish with the signer down: %d %s", code, body)
	}
	if ready() != 503 {
		t.Fatal("ready with the signer down")
	}

	p = startSigner(t, addr, s.env, s.args...)
	defer p.stop(t)
	if code, body := publish(map[string][]byte{metadata.TARGETS: dev.TargetsBytes()}); code != 200 {
		t.Fatalf("publish after the signer returned: %d %s", code, body)
	}
	close(stopReaders)
	for range 4 {
		if err := <-readerErrs; err != nil {
			t.Fatal(err)
		}
	}
	if ready() != 200 {
		t.Fatal("not ready after the signer returned")
	}
}

func TestWrongPassphraseStopsStartup(t *testing.T) {
	t.Parallel()
	s := newSetup(t)
	p := startSigner(t, freeAddr(t), s.env, s.args...)
	c := signerclient.New("https://"+p.addr, s.client(t, s.clientCert, s.clientKey), slowOK)
	if _, err := c.EnsureKey(context.Background(), "example.com/app", metadata.TIMESTAMP, ""); err != nil {
		t.Fatal(err)
	}
	p.stop(t)
	var stderr bytes.Buffer
	code := run(context.Background(), append([]string{"--addr", freeAddr(t)}, s.args...), io.Discard, &stderr,
		func(k string) string { return map[string]string{"SIGNET_SIGNER_PASSPHRASE": "wrong"}[k] })
	if code != 1 || !strings.Contains(stderr.String(), "passphrase") {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	code = run(context.Background(), append([]string{"--addr", freeAddr(t)}, s.args...), io.Discard, &stderr, func(string) string { return "" })
	if code != 1 || !strings.Contains(stderr.String(), "SIGNET_SIGNER_PASSPHRASE") {
		t.Fatalf("missing passphrase: exit %d: %s", code, stderr.String())
	}
}

func TestCertsAndRewrap(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if code := run(context.Background(), []string{"certs", "--out", dir}, io.Discard, io.Discard, func(string) string { return "" }); code != 0 {
		t.Fatalf("certs: %d", code)
	}
	for _, f := range []string{"ca.pem", "signer.pem", "signer-key.pem", "server.pem", "server-key.pem"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Fatal(err)
		}
	}
	env := map[string]string{"SIGNET_SIGNER_PASSPHRASE": "old", "SIGNET_SIGNER_PASSPHRASE_NEW": "new"}
	args := []string{"--db", filepath.Join(dir, "keys.db"), "--tls-cert", filepath.Join(dir, "signer.pem"), "--tls-key", filepath.Join(dir, "signer-key.pem"), "--client-ca", filepath.Join(dir, "ca.pem")}
	p := startSigner(t, freeAddr(t), env, args...)
	pool, _ := tlsutil.LoadPool(filepath.Join(dir, "ca.pem"))
	cert, _ := tls.LoadX509KeyPair(filepath.Join(dir, "server.pem"), filepath.Join(dir, "server-key.pem"))
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS13}}}
	c := signerclient.New("https://"+p.addr, hc, slowOK)
	k, err := c.EnsureKey(context.Background(), "example.com/app", metadata.TIMESTAMP, "")
	if err != nil {
		t.Fatalf("dev certificates: %v", err)
	}
	p.stop(t)
	getenv := func(k string) string { return env[k] }
	// The flags may come before the command too.
	if code := run(context.Background(), []string{"--db", filepath.Join(dir, "keys.db"), "rewrap", "--from", "default", "--to", "new"}, io.Discard, io.Discard, getenv); code != 0 {
		t.Fatalf("rewrap: %d", code)
	}
	p = startSigner(t, freeAddr(t), map[string]string{"SIGNET_SIGNER_PASSPHRASE_NEW": "new"}, append(args, "--passphrase-alias", "new")...)
	defer p.stop(t)
	c = signerclient.New("https://"+p.addr, hc, slowOK)
	if got, err := c.PublicKey(context.Background(), "example.com/app", metadata.TIMESTAMP); err != nil || got.ID != k.ID {
		t.Fatalf("after rewrap: %v %v", got, err)
	}
}

func TestMain(m *testing.M) { pgtest.Main(m) }

// slowOK gives test calls to a real signer process room on a loaded
// machine (a -race build, Postgres, several test binaries at once); the
// tests check answers, not speed.
var slowOK = signerclient.WithTimeout(20 * time.Second)

// syncBuffer is a bytes.Buffer safe for the logger and the test at once.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestMetricsAndRequestIDs: the signer's /metrics has the Go and process
// collectors, and its audit lines name the X-Request-ID signet-server sent.
func TestMetricsAndRequestIDs(t *testing.T) {
	t.Parallel()
	s := newSetup(t)
	addr, health := freeAddr(t), freeAddr(t)
	var logs syncBuffer
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, append([]string{"--addr", addr, "--health-addr", health, "--log-format", "text"}, s.args...), io.Discard, &logs, func(k string) string { return s.env[k] })
	}()
	defer func() {
		cancel()
		if code := <-done; code != 0 {
			t.Errorf("signer exit %d", code)
		}
	}()
	var resp *http.Response
	var err error
	for range 200 {
		if resp, err = http.Get("http://" + health + "/metrics"); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{"go_goroutines ", "go_memstats_heap_alloc_bytes ", "process_resident_memory_bytes ", "process_open_fds "} {
		if !strings.Contains(string(body), want) {
			t.Errorf("signer metrics lack %s", want)
		}
	}
	hc := s.client(t, s.clientCert, s.clientKey)
	hc.Timeout = 30 * time.Second // a loaded machine; the test checks logs, not speed
	c := signerclient.New("https://"+addr, hc, slowOK)
	rctx := reqid.With(context.Background(), "req-from-server-42")
	k, err := c.EnsureKey(rctx, "example.com/app", metadata.TIMESTAMP, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Sign(rctx, "example.com/app", metadata.TIMESTAMP, k.ID, []byte(`{"_type":"timestamp","version":1}`)); err != nil {
		t.Fatal(err)
	}
	var signed string
	for line := range strings.SplitSeq(logs.String(), "\n") {
		if strings.Contains(line, "msg=signed") {
			signed = line
		}
	}
	if !strings.Contains(signed, "request_id=req-from-server-42") {
		t.Fatalf("audit line without the request ID: %q\n%s", signed, logs.String())
	}
	// A batch's lines go out through the API's audit sink: in the log's
	// own format, with the request ID, one line per payload.
	bctx := reqid.With(context.Background(), "req-batch-43")
	payload := []byte(`{"_type":"timestamp","version":2}`)
	if _, err := c.SignBatch(bctx, []signer.SignRequest{{GUN: "example.com/app", Role: metadata.TIMESTAMP, KeyID: k.ID, Payload: payload},
		{GUN: "example.com/app", Role: metadata.TIMESTAMP, KeyID: k.ID, Payload: payload}}); err != nil {
		t.Fatal(err)
	}
	n := 0
	for line := range strings.SplitSeq(logs.String(), "\n") {
		if strings.Contains(line, "msg=signed") && strings.Contains(line, "request_id=req-batch-43") &&
			strings.Contains(line, "component=signer-audit") && strings.Contains(line, "batch_size=2") && strings.HasPrefix(line, "time=") {
			n++
		}
	}
	if n != 2 {
		t.Fatalf("%d audit lines for a batch of 2:\n%s", n, logs.String())
	}
}

// TestPlaceholderPassphraseRefused: the passphrases shipped as placeholders
// (docker-compose.yml, deploy/kubernetes/secrets.yaml) stop the signer
// unless --demo says it is a throwaway demo.
func TestPlaceholderPassphraseRefused(t *testing.T) {
	t.Parallel()
	s := newSetup(t)
	for _, pass := range []string{"change this passphrase", "CHANGE-ME-a-long-random-passphrase"} {
		var stderr bytes.Buffer
		code := run(context.Background(), append([]string{"--addr", freeAddr(t), "--log-format", "text"}, s.args...), io.Discard, &stderr,
			func(k string) string { return map[string]string{"SIGNET_SIGNER_PASSPHRASE": pass}[k] })
		if code != 1 || !strings.Contains(stderr.String(), "is a placeholder") {
			t.Errorf("%q: exit %d: %s", pass, code, stderr.String())
		}
	}
	if _, err := os.Stat(filepath.Join(s.dir, "keys.db")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a refused start created the key store: %v", err)
	}
	demo := map[string]string{"SIGNET_SIGNER_PASSPHRASE": "change this passphrase", "SIGNET_SIGNER_DEMO": "true"}
	p := startSigner(t, freeAddr(t), demo, s.args...)
	p.stop(t)
}
