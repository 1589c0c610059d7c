package localsigner

import "crypto/x509"

// PrivateDER exposes a key's PKCS#8 bytes to the at-rest test.
func PrivateDER(s *Signer, id string) []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, e := range s.keys {
		if e.info.ID == id {
			der, _ := x509.MarshalPKCS8PrivateKey(e.priv)
			return der
		}
	}
	return nil
}
