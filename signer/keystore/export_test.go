package keystore

import "crypto/x509"

// PrivateDER exposes a cached key's PKCS#8 bytes to the at-rest test.
func PrivateDER(s *Signer, id string) []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	if k, ok := s.keys[id]; ok {
		der, _ := x509.MarshalPKCS8PrivateKey(k.priv)
		return der
	}
	return nil
}
