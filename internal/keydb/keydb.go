// Package keydb opens signet-signer's key database by its name, for the
// commands that hold a signer (signet-signer, and signet-server's built-in
// one): a postgres:// URL is keystore/postgres, anything else a file path
// of keystore/sqlite. It holds no state.
package keydb

import (
	"context"
	"strings"

	"github.com/signetdev/signet/signer/keystore"
	"github.com/signetdev/signet/signer/keystore/postgres"
	"github.com/signetdev/signet/signer/keystore/sqlite"
)

// DB is a key database of either kind.
type DB interface {
	keystore.Store
	// Migrate applies the signer's migrations (the embedded store already
	// has, on open).
	Migrate(ctx context.Context) error
}

// IsPostgres reports whether dsn is a Postgres URL.
func IsPostgres(dsn string) bool {
	return strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://")
}

// Open opens the key database dsn names: a postgres:// URL (migrated by
// signet-signer migrate), or a file path for the embedded store (created
// and migrated on open).
func Open(ctx context.Context, dsn string) (DB, error) {
	if IsPostgres(dsn) {
		st, err := postgres.Open(ctx, dsn)
		if err != nil {
			return nil, err
		}
		return st, nil
	}
	st, err := sqlite.Open(ctx, dsn)
	if err != nil {
		return nil, err
	}
	return st, nil
}
