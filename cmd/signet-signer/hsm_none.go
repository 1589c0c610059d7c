//go:build !(cgo && pkcs11)

package main

import (
	"errors"

	"github.com/signetdev/signet/signer/keystore"
)

// openToken reports that this binary has no PKCS#11 support.
func openToken(config, func(string) string) (keystore.Backend, func() error, error) {
	return nil, nil, errors.New("this signet-signer was built without PKCS#11 support: build it with cgo and -tags pkcs11")
}
