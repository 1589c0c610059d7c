// Package migrations embeds signet's SQL schemas (goose format) and applies
// them: server/… for signet-server's metadata store, signer/… for
// signet-signer's key store (separate databases, as Notary kept them). It
// uses goose's Provider API, never goose's package-level state. Safe for
// concurrent use; concurrent migrations of one Postgres database serialise
// on a session lock.
package migrations

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"io/fs"

	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
)

//go:embed server signer
var files embed.FS

// Set names one embedded schema.
type Set struct {
	dir     string
	dialect goose.Dialect
}

// The embedded schemas.
var (
	ServerPostgres = Set{dir: "server/postgres", dialect: goose.DialectPostgres}
	ServerSQLite   = Set{dir: "server/sqlite", dialect: goose.DialectSQLite3}
	SignerPostgres = Set{dir: "signer/postgres", dialect: goose.DialectPostgres}
	SignerSQLite   = Set{dir: "signer/sqlite", dialect: goose.DialectSQLite3}
)

// provider makes a goose provider; with lock, concurrent migrations of one
// Postgres database serialise on a session advisory lock.
func (s Set) provider(db *sql.DB, locked bool) (*goose.Provider, error) {
	sub, err := fs.Sub(files, s.dir)
	if err != nil {
		return nil, err
	}
	var opts []goose.ProviderOption
	if locked && s.dialect == goose.DialectPostgres {
		locker, err := lock.NewPostgresSessionLocker()
		if err != nil {
			return nil, err
		}
		opts = append(opts, goose.WithSessionLocker(locker))
	}
	return goose.NewProvider(s.dialect, db, sub, opts...)
}

// Up applies every pending migration of s to db.
func (s Set) Up(ctx context.Context, db *sql.DB) error {
	p, err := s.provider(db, true)
	if err != nil {
		return fmt.Errorf("migrations: %s: %w", s.dir, err)
	}
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("migrations: %s: %w", s.dir, err)
	}
	return nil
}

// Status reports the version db is at and the version this binary expects.
func (s Set) Status(ctx context.Context, db *sql.DB) (current, want int64, err error) {
	p, err := s.provider(db, false)
	if err != nil {
		return 0, 0, fmt.Errorf("migrations: %s: %w", s.dir, err)
	}
	for _, src := range p.ListSources() {
		want = max(want, src.Version)
	}
	current, err = p.GetDBVersion(ctx)
	if err != nil {
		return 0, want, fmt.Errorf("migrations: %s version: %w", s.dir, err)
	}
	return current, want, nil
}
