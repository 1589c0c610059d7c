//go:build cgo && pkcs11

package main

import (
	"fmt"

	"github.com/signetdev/signet/signer/keystore"
	"github.com/signetdev/signet/signer/pkcs11"
)

// openToken selects the PKCS#11 backend: keys are made and used on the
// token; the PIN comes from SIGNET_SIGNER_PKCS11_PIN.
func openToken(cfg config, getenv func(string) string) (keystore.Backend, func() error, error) {
	pin := getenv(envPrefix + "PKCS11_PIN")
	if pin == "" {
		return nil, nil, fmt.Errorf("--pkcs11-module needs the token PIN in %sPKCS11_PIN", envPrefix)
	}
	b, err := pkcs11.Open(pkcs11.Config{Module: cfg.PKCS11Module, TokenLabel: cfg.PKCS11Token, PIN: pin})
	if err != nil {
		return nil, nil, err
	}
	return b, b.Close, nil
}
