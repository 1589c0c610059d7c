// Package tlsutil builds the TLS configurations of signet's binaries: the
// signer's mutual-TLS server side (TLS 1.3, client certificates from one CA,
// optionally only given subjects), the server's client side of it, and
// certificates that are re-read when their files change (they rotate on
// Kubernetes). It also writes a development CA and certificates for a first
// run. Safe for concurrent use.
package tlsutil

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"slices"
	"sync"
	"time"
)

// Reloader serves a certificate and key pair, re-reading the files when
// their modification time changes (checked at most once a second).
type Reloader struct {
	certFile, keyFile string

	mu      sync.Mutex
	cert    *tls.Certificate
	mtime   time.Time
	checked time.Time
}

// NewReloader loads the pair once, failing if it does not load.
func NewReloader(certFile, keyFile string) (*Reloader, error) {
	r := &Reloader{certFile: certFile, keyFile: keyFile}
	if _, err := r.get(time.Now()); err != nil {
		return nil, err
	}
	return r, nil
}

func (r *Reloader) get(now time.Time) (*tls.Certificate, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cert != nil && now.Sub(r.checked) < time.Second {
		return r.cert, nil
	}
	r.checked = now
	fi, err := os.Stat(r.certFile)
	if err != nil {
		if r.cert != nil {
			return r.cert, nil // keep serving the last good pair
		}
		return nil, fmt.Errorf("tlsutil: %w", err)
	}
	if r.cert != nil && fi.ModTime().Equal(r.mtime) {
		return r.cert, nil
	}
	c, err := tls.LoadX509KeyPair(r.certFile, r.keyFile)
	if err != nil {
		if r.cert != nil {
			return r.cert, nil // mid-rotation: files not both written yet
		}
		return nil, fmt.Errorf("tlsutil: load %s: %w", r.certFile, err)
	}
	r.cert, r.mtime = &c, fi.ModTime()
	return r.cert, nil
}

// GetCertificate is for tls.Config.GetCertificate.
func (r *Reloader) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return r.get(time.Now())
}

// GetClientCertificate is for tls.Config.GetClientCertificate.
func (r *Reloader) GetClientCertificate(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
	return r.get(time.Now())
}

// LoadPool reads a PEM bundle of CA certificates.
func LoadPool(file string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("tlsutil: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("tlsutil: %s holds no PEM certificate", file)
	}
	return pool, nil
}

// ServerConfig is TLS 1.3 with mutual TLS: only clients with a certificate
// issued by the CA in clientCAFile get through the handshake, and, if
// subjects is not empty, only those whose certificate's common name is in
// it.
func ServerConfig(certFile, keyFile, clientCAFile string, subjects []string) (*tls.Config, error) {
	if certFile == "" || keyFile == "" || clientCAFile == "" {
		return nil, errors.New("tlsutil: a certificate, its key and a client CA are required for mutual TLS")
	}
	rl, err := NewReloader(certFile, keyFile)
	if err != nil {
		return nil, err
	}
	pool, err := LoadPool(clientCAFile)
	if err != nil {
		return nil, err
	}
	cfg := &tls.Config{
		MinVersion:     tls.VersionTLS13,
		GetCertificate: rl.GetCertificate,
		ClientAuth:     tls.RequireAndVerifyClientCert,
		ClientCAs:      pool,
	}
	if len(subjects) > 0 {
		cfg.VerifyConnection = func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 || !slices.Contains(subjects, cs.PeerCertificates[0].Subject.CommonName) {
				return errors.New("tlsutil: client certificate subject not allowed")
			}
			return nil
		}
	}
	return cfg, nil
}

// ClientConfig is the client side of mutual TLS: it trusts servers whose
// certificate chains to caFile and presents certFile/keyFile.
func ClientConfig(caFile, certFile, keyFile string) (*tls.Config, error) {
	if caFile == "" || certFile == "" || keyFile == "" {
		return nil, errors.New("tlsutil: a CA, a client certificate and its key are required for mutual TLS")
	}
	pool, err := LoadPool(caFile)
	if err != nil {
		return nil, err
	}
	rl, err := NewReloader(certFile, keyFile)
	if err != nil {
		return nil, err
	}
	return &tls.Config{MinVersion: tls.VersionTLS13, RootCAs: pool, GetClientCertificate: rl.GetClientCertificate}, nil
}
