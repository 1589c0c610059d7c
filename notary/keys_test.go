package notary

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"math/big"
	"strings"
	"testing"
	"time"
)

func pkixDER(t *testing.T, pub crypto.PublicKey) []byte {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func pubKey(typ string, public []byte) PublicKey {
	var k PublicKey
	k.Type, k.Value.Public = typ, public
	return k
}

// TestKeyTypes: Notary's ed25519 and RSA-PSS signatures verify; other
// curves, small RSA keys, a method that does not fit the key, and a
// private key in a public entry are refused.
func TestKeyTypes(t *testing.T) {
	t.Parallel()
	msg := []byte(`{"_type":"Targets"}`)
	digest := sha256.Sum256(msg)

	edPub, edPriv, _ := ed25519.GenerateKey(rand.Reader)
	ed := pubKey(KeyED25519, edPub)
	pub, err := ed.Public()
	if err != nil {
		t.Fatal(err)
	}
	if err := verifySig(pub, "ed25519", msg, ed25519.Sign(edPriv, msg)); err != nil {
		t.Fatal(err)
	}
	if err := verifySig(pub, "ecdsa", msg, ed25519.Sign(edPriv, msg)); err == nil {
		t.Fatal("ed25519 signature accepted as method ecdsa")
	}

	rsaPriv, _ := rsa.GenerateKey(rand.Reader, 2048)
	rk := pubKey(KeyRSA, pkixDER(t, &rsaPriv.PublicKey))
	if pub, err = rk.Public(); err != nil {
		t.Fatal(err)
	}
	sig, _ := rsa.SignPSS(rand.Reader, rsaPriv, crypto.SHA256, digest[:], &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash})
	if err := verifySig(pub, "rsapss", msg, sig); err != nil {
		t.Fatal(err)
	}
	if err := verifySig(pub, "rsapss", []byte("other"), sig); err == nil {
		t.Fatal("RSA-PSS signature of another message verified")
	}

	small, _ := rsa.GenerateKey(rand.Reader, 1024)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	for name, k := range map[string]PublicKey{
		"small RSA":          pubKey(KeyRSA, pkixDER(t, &small.PublicKey)),
		"P-384":              pubKey(KeyECDSA, pkixDER(t, &p384.PublicKey)),
		"ECDSA typed as RSA": pubKey(KeyRSA, pkixDER(t, &p256.PublicKey)),
		"unknown type":       pubKey("dsa", pkixDER(t, &p256.PublicKey)),
		"short ed25519":      pubKey(KeyED25519, edPub[:16]),
	} {
		if _, err := k.Public(); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v", name, err)
		}
	}
	withPriv := pubKey(KeyECDSA, pkixDER(t, &p256.PublicKey))
	withPriv.Value.Private = json.RawMessage(`"c2VjcmV0"`)
	if _, err := withPriv.ID(); err == nil || !strings.Contains(err.Error(), "private key") {
		t.Fatalf("private key in a public entry: %v", err)
	}
	// A 64-byte ECDSA signature that is not r‖s of this message.
	if err := verifySig(&p256.PublicKey, "ecdsa", msg, make([]byte, 64)); err == nil {
		t.Fatal("zero signature verified")
	}
}

// TestThresholdCountsKeysOnce: one key listed under two IDs (as an x509
// certificate and bare) signs twice but counts once.
func TestThresholdCountsKeysOnce(t *testing.T) {
	t.Parallel()
	priv, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	bare := pubKey(KeyECDSA, pkixDER(t, &priv.PublicKey))
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "example.com/x"}, NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &priv.PublicKey, priv)
	if err != nil {
		t.Fatal(err)
	}
	other := pubKey(KeyECDSAX509, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})) // the same key, another ID
	if _, err := other.Public(); err != nil {
		t.Fatal(err)
	}
	id1, _ := bare.ID()
	id2, _ := other.ID()
	signed := json.RawMessage(`{"_type":"Targets","version":1}`)
	sum := sha256.Sum256(signed)
	r, s, _ := ecdsa.Sign(rand.Reader, priv, sum[:])
	sig := make([]byte, 64)
	r.FillBytes(sig[:32])
	s.FillBytes(sig[32:])
	env := &Envelope{Signed: signed, Signatures: []Signature{{id1, "ecdsa", sig}, {id2, "ecdsa", sig}, {id1, "ecdsa", sig}}}
	keys := map[string]PublicKey{id1: bare, id2: other}
	if _, err := verifyThreshold(env, keys, []string{id1, id2}, 2); !errors.Is(err, ErrSignature) {
		t.Fatalf("one key met a threshold of 2: %v", err)
	}
	if good, err := verifyThreshold(env, keys, []string{id1, id2}, 1); err != nil || len(good) != 1 {
		t.Fatalf("%v %v", good, err)
	}
}
