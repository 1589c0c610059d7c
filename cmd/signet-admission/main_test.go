package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/signetdev/signet/internal/testserver"
	"github.com/signetdev/signet/internal/tlsutil"
)

const app = "registry.example.com/team/app"

// TestServe runs the binary's serve loop: a review over HTTPS pins a
// signed image, TLS below 1.2 is refused, a rotated certificate is served
// without a restart, health and metrics answer, and SIGTERM drains.
func TestServe(t *testing.T) {
	srv := testserver.Start(t)
	repo := srv.Init(t, app)
	repo.Sign("1.0")
	dir := t.TempDir()
	certs := filepath.Join(dir, "certs")
	if err := tlsutil.WriteDevCerts(tlsutil.DevCerts{Dir: certs}); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "root.json"), repo.Root, 0o600); err != nil {
		t.Fatal(err)
	}
	pol := fmt.Sprintf("server: {url: %q, timeout: 3s}\ntrust_dir: trust\nrules:\n  - {match: %s, require: signed, root: root.json}\n", srv.URL, app)
	if err := os.WriteFile(filepath.Join(dir, "policy.yaml"), []byte(pol), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	addrs := make(chan [2]string, 1)
	done := make(chan int, 1)
	var stderr bytes.Buffer
	go func() {
		done <- run(ctx, []string{"--addr", "127.0.0.1:0", "--health-addr", "127.0.0.1:0", "--shutdown-delay", "0s",
			"--tls-cert", filepath.Join(certs, "server.pem"), "--tls-key", filepath.Join(certs, "server-key.pem")},
			io.Discard, &stderr, func(k string) string {
				return map[string]string{"SIGNET_ADMISSION_POLICY": filepath.Join(dir, "policy.yaml")}[k]
			}, func(hook, health string) { addrs <- [2]string{hook, health} })
	}()
	var hook, health string
	select {
	case a := <-addrs:
		hook, health = a[0], a[1]
	case code := <-done:
		t.Fatalf("exited %d: %s", code, stderr.String())
	}
	pool, err := tlsutil.LoadPool(filepath.Join(certs, "ca.pem"))
	if err != nil {
		t.Fatal(err)
	}
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}

	pod := &corev1.Pod{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"}, Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: app + ":1.0"}}}}
	raw, _ := json.Marshal(pod)
	ar := admissionv1.AdmissionReview{TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
		Request: &admissionv1.AdmissionRequest{UID: "b1a3", Kind: metav1.GroupVersionKind{Version: "v1", Kind: "Pod"}, Namespace: "default", Operation: admissionv1.Create, Object: runtime.RawExtension{Raw: raw}}}
	body, _ := json.Marshal(ar)
	resp, err := hc.Post("https://"+hook+"/mutate?timeout=5s", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	var out admissionv1.AdmissionReview
	err = json.NewDecoder(resp.Body).Decode(&out)
	resp.Body.Close()
	if err != nil || out.Response == nil || out.Response.UID != "b1a3" || !out.Response.Allowed || !strings.Contains(string(out.Response.Patch), testserver.Digest("1.0").String()) {
		t.Fatalf("review: %v %+v", err, out.Response)
	}

	// TLS 1.1 is refused.
	old := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MaxVersion: tls.VersionTLS11}}}
	if _, err := old.Get("https://" + hook + "/healthz"); err == nil {
		t.Error("a TLS 1.1 handshake succeeded")
	}

	// Rotation: new files are served without a restart.
	first := serial(t, hook)
	time.Sleep(1100 * time.Millisecond) // the reloader looks at most once a second
	if err := tlsutil.WriteDevCerts(tlsutil.DevCerts{Dir: certs}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for serial(t, hook) == first {
		if time.Now().After(deadline) {
			t.Fatal("the rotated certificate is not served")
		}
		time.Sleep(200 * time.Millisecond)
	}

	for path, want := range map[string]string{"/healthz": "ok", "/readyz": "ok", "/metrics": "signet_admission_decisions_total{endpoint=\"mutate\",reason=\"signed\",result=\"allow\"} 1"} {
		resp, err := http.Get("http://" + health + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(b), want) {
			t.Errorf("%s: %s %.300s", path, resp.Status, b)
		}
	}
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("exit %d: %s", code, stderr.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatal("no shutdown")
	}
	if strings.Contains(stderr.String(), "PRIVATE KEY") {
		t.Fatal("a key was logged")
	}
	if !strings.Contains(stderr.String(), `"uid":"b1a3"`) {
		t.Errorf("logs do not carry the request uid:\n%s", stderr.String())
	}
}

// serial is the serial number of the certificate served at addr
// (verification off: only the serial is read).
func serial(t *testing.T, addr string) string {
	t.Helper()
	conn, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true, VerifyPeerCertificate: func([][]byte, [][]*x509.Certificate) error { return nil }})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0].SerialNumber.String()
}

func TestConfigRefused(t *testing.T) {
	for _, args := range [][]string{
		{"--policy", "p.yaml"}, // no TLS
		{"--tls-cert", "c", "--tls-key", "k", "--review-timeout", "45s"},
		{"--tls-cert", "c", "--tls-key", "k", "--addr", "nope"},
	} {
		var stderr bytes.Buffer
		if code := run(context.Background(), args, io.Discard, &stderr, func(string) string { return "" }, nil); code != 2 {
			t.Errorf("%v: exit %d, want 2: %s", args, code, stderr.String())
		}
	}
}
