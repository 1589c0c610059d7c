package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"path/filepath"

	"github.com/signetdev/signet/internal/tlsutil"
	"github.com/signetdev/signet/signer"
	"github.com/signetdev/signet/signer/keywrap"
	"github.com/signetdev/signet/signer/localsigner"
	"github.com/signetdev/signet/signer/signerclient"
)

// openSigner returns the remote signet-signer when --signer is set, else the
// built-in signer with its keys in an encrypted file beside the data.
func openSigner(ctx context.Context, cfg config, log *slog.Logger, getenv func(string) string) (signer.Service, error) {
	if cfg.Signer != "" {
		tc, err := tlsutil.ClientConfig(cfg.SignerCA, cfg.SignerCert, cfg.SignerKey)
		if err != nil {
			return nil, fmt.Errorf("signer TLS: %w", err)
		}
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.TLSClientConfig = tc
		tr.MaxIdleConnsPerHost = 64
		return signerclient.New(cfg.Signer, &http.Client{Transport: tr}), nil
	}
	dir := dataDir(cfg)
	path := cfg.SignerKeys
	if path == "" {
		path = filepath.Join(dir, "online-keys.json")
	}
	pass := []byte(getenv("SIGNET_SIGNER_PASSPHRASE"))
	if len(pass) == 0 {
		passFile := filepath.Join(dir, "signer-passphrase")
		var created bool
		var err error
		pass, created, err = localsigner.LoadOrCreatePassphraseFile(passFile)
		if err != nil {
			return nil, err
		}
		if created {
			log.Warn("SIGNET_SIGNER_PASSPHRASE is not set: created a random passphrase file for the online keys; set the variable (and keep it secret) for anything beyond a first try", "file", passFile)
		}
	}
	kr, err := keywrap.NewKeyring("default", map[string][]byte{"default": pass}, keywrap.DefaultParams())
	if err != nil {
		return nil, err
	}
	sg, err := localsigner.Open(ctx, path, kr)
	if errors.Is(err, keywrap.ErrDecrypt) {
		return nil, fmt.Errorf("wrong passphrase for the online keys in %s: %w", path, err)
	}
	return sg, err
}

// dataDir is where the single-node default keeps its files: beside the
// embedded database, or ./signet-data with Postgres.
func dataDir(cfg config) string {
	if isPostgres(cfg.DB) {
		return "./signet-data"
	}
	return filepath.Dir(cfg.DB)
}
