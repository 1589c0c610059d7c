package tlsutil

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// DevCerts describes what WriteDevCerts writes.
type DevCerts struct {
	Dir       string
	SignerDNS []string // extra DNS names for the signer's certificate
	Validity  time.Duration
	Now       time.Time
}

// WriteDevCerts writes a development CA (ca.pem), the signer's certificate
// (signer.pem, signer-key.pem: localhost, 127.0.0.1 and SignerDNS) and the
// server's certificate (server.pem, server-key.pem), good both as the
// server's client certificate towards the signer and for serving HTTPS as
// localhost, 127.0.0.1 and signet-server. Keys are written 0600. For first
// runs and compose, not for production.
func WriteDevCerts(d DevCerts) error {
	if d.Validity == 0 {
		d.Validity = 365 * 24 * time.Hour
	}
	if err := os.MkdirAll(d.Dir, 0o755); err != nil {
		return fmt.Errorf("tlsutil: %w", err)
	}
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	caTmpl := template(d, "signet development CA")
	caTmpl.IsCA, caTmpl.BasicConstraintsValid = true, true
	caTmpl.KeyUsage = x509.KeyUsageCertSign | x509.KeyUsageCRLSign
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return fmt.Errorf("tlsutil: CA: %w", err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		return err
	}
	if err := writePEM(filepath.Join(d.Dir, "ca.pem"), "CERTIFICATE", caDER, 0o644); err != nil {
		return err
	}
	leaf := func(name, cn string, usage []x509.ExtKeyUsage, dns []string, ips []net.IP) error {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return err
		}
		t := template(d, cn)
		t.KeyUsage = x509.KeyUsageDigitalSignature
		t.ExtKeyUsage = usage
		t.DNSNames, t.IPAddresses = dns, ips
		der, err := x509.CreateCertificate(rand.Reader, t, ca, &key.PublicKey, caKey)
		if err != nil {
			return fmt.Errorf("tlsutil: %s: %w", name, err)
		}
		keyDER, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			return err
		}
		if err := writePEM(filepath.Join(d.Dir, name+".pem"), "CERTIFICATE", der, 0o644); err != nil {
			return err
		}
		return writePEM(filepath.Join(d.Dir, name+"-key.pem"), "PRIVATE KEY", keyDER, 0o600)
	}
	loopback := []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("::1")}
	if err := leaf("signer", "signet-signer", []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		append([]string{"localhost"}, d.SignerDNS...), loopback); err != nil {
		return err
	}
	return leaf("server", "signet-server", []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageServerAuth},
		[]string{"localhost", "signet-server"}, loopback)
}

func template(d DevCerts, cn string) *x509.Certificate {
	serial, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	now := d.Now
	if now.IsZero() {
		now = time.Now()
	}
	return &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: cn, Organization: []string{"signet development"}},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(d.Validity),
	}
}

func writePEM(path, typ string, der []byte, mode os.FileMode) error {
	data := pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
	if err := os.WriteFile(path, data, mode); err != nil {
		return fmt.Errorf("tlsutil: %w", err)
	}
	return nil
}
