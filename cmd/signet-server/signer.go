package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"

	"github.com/signetdev/signet/internal/keydb"
	"github.com/signetdev/signet/internal/tlsutil"
	"github.com/signetdev/signet/signer"
	"github.com/signetdev/signet/signer/keystore"
	"github.com/signetdev/signet/signer/keywrap"
	"github.com/signetdev/signet/signer/signerclient"
)

// openSigner returns the remote signet-signer when --signer is set; else the
// same signer code in-process, on its own embedded key database beside the
// data (single-node default). The closer releases what it opened.
func openSigner(ctx context.Context, cfg config, log *slog.Logger, getenv func(string) string) (signer.Service, func() error, error) {
	if cfg.Signer != "" {
		tc, err := tlsutil.ClientConfig(cfg.SignerCA, cfg.SignerCert, cfg.SignerKey)
		if err != nil {
			return nil, nil, fmt.Errorf("signer TLS: %w", err)
		}
		tr := signerclient.NewTransport(tc)
		return signerclient.New(cfg.Signer, &http.Client{Transport: tr}), func() error { tr.CloseIdleConnections(); return nil }, nil
	}
	dir := dataDir(cfg)
	path := cfg.SignerKeys
	if path == "" {
		path = filepath.Join(dir, "signer.db")
	}
	pass := []byte(getenv("SIGNET_SIGNER_PASSPHRASE"))
	if len(pass) == 0 {
		passFile := filepath.Join(dir, "signer-passphrase")
		var created bool
		var err error
		if pass, created, err = loadOrCreatePassphrase(passFile); err != nil {
			return nil, nil, err
		}
		if created {
			log.Warn("SIGNET_SIGNER_PASSPHRASE is not set: created a random passphrase file for the online keys; set the variable (and keep it secret) for anything beyond a first try", "file", passFile)
		}
	}
	kr, err := keywrap.NewKeyring("default", map[string][]byte{"default": pass}, keywrap.DefaultParams())
	if err != nil {
		return nil, nil, err
	}
	st, err := keydb.Open(ctx, path)
	if err != nil {
		return nil, nil, err
	}
	sg, err := keystore.New(ctx, st, keystore.NewWrapped(kr))
	if err != nil {
		st.Close()
		if errors.Is(err, keywrap.ErrDecrypt) || errors.Is(err, keywrap.ErrUnknownAlias) {
			return nil, nil, fmt.Errorf("wrong passphrase for the online keys in %s: %w", path, err)
		}
		return nil, nil, err
	}
	return sg, st.Close, nil
}

// dataDir is where the single-node default keeps its files: beside the
// embedded database, or ./signet-data with Postgres.
func dataDir(cfg config) string {
	if isPostgres(cfg.DB) {
		return "./signet-data"
	}
	return filepath.Dir(cfg.DB)
}

// loadOrCreatePassphrase returns the passphrase stored in path, or creates
// the file (0600) with a random one and reports created. It refuses a
// directory that other users may write to (such as /tmp, where --db may
// point): anyone could plant a passphrase file there before the first
// start, or replace it. It refuses a passphrase file others may read.
func loadOrCreatePassphrase(path string) (pass []byte, created bool, err error) {
	dir := filepath.Dir(path)
	if fi, err := os.Stat(dir); err == nil && fi.Mode().Perm()&0o022 != 0 {
		return nil, false, fmt.Errorf("SIGNET_SIGNER_PASSPHRASE is not set, and %s is writable by other users (mode %v), so the generated passphrase file cannot be kept there: set SIGNET_SIGNER_PASSPHRASE, or put --db (or --signer-keys) in a private directory", dir, fi.Mode().Perm())
	}
	if fi, err := os.Stat(path); err == nil && fi.Mode().Perm()&0o077 != 0 {
		return nil, false, fmt.Errorf("passphrase file %s is readable or writable by other users (mode %v): chmod 600 it", path, fi.Mode().Perm())
	}
	data, err := os.ReadFile(path)
	if err == nil {
		if pass = bytes.TrimSpace(data); len(pass) == 0 {
			return nil, false, fmt.Errorf("passphrase file %s is empty", path)
		}
		return pass, false, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, false, err
	}
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return nil, false, err
	}
	pass = []byte(hex.EncodeToString(b[:]))
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, false, err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, false, err
	}
	_, err = f.Write(append(pass, '\n'))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return pass, true, err
}
