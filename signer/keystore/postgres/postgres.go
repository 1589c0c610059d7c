// Package postgres is signet-signer's key store on PostgreSQL (pgx v5,
// pgxpool, hand-written SQL) in the signer's own database, which any number
// of signer replicas share: InsertFirst serialises the writers of one
// (GUN, role) on a transaction-scoped advisory lock, so concurrent first
// asks create one key. The schema is migrated by Migrate (signet-signer
// migrate), never on Open.
//
// Driver errors are translated here (connection failures →
// signer.ErrUnavailable): nothing above imports pgx. A Store is safe for
// concurrent use.
package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/jackc/puddle/v2"

	"github.com/signetdev/signet/migrations"
	"github.com/signetdev/signet/signer"
	"github.com/signetdev/signet/signer/keystore"
	"github.com/signetdev/signet/signer/keystore/internal/keyrow"
	"github.com/signetdev/signet/signer/keywrap"
)

// Store is a keystore.Store on a pgxpool.
type Store struct{ pool *pgxpool.Pool }

var _ keystore.Store = (*Store)(nil)

// Open connects a pool to url (postgres://…) and checks that the database
// answers.
func Open(ctx context.Context, url string) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("keystore: parse the database URL: %w", err)
	}
	cfg.MaxConns = 16
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("keystore: %w", unavailable(err))
	}
	s := &Store{pool: pool}
	if err := s.Ping(ctx); err != nil {
		pool.Close()
		return nil, err
	}
	return s, nil
}

// Migrate applies the signer's migrations through this store's pool.
func (s *Store) Migrate(ctx context.Context) error {
	db := stdlib.OpenDBFromPool(s.pool)
	defer db.Close()
	return migrations.SignerPostgres.Up(ctx, db)
}

// MigrationStatus reports the schema version and the one this binary wants.
func (s *Store) MigrationStatus(ctx context.Context) (current, want int64, err error) {
	db := stdlib.OpenDBFromPool(s.pool)
	defer db.Close()
	return migrations.SignerPostgres.Status(ctx, db)
}

const insertSQL = `INSERT INTO signer_keys (` + keyrow.Columns + `) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`

func insert(ctx context.Context, db interface {
	Exec(context.Context, string, ...any) (pgconn.CommandTag, error)
}, r *keystore.Record) error {
	args, err := keyrow.Encode(r)
	if err != nil {
		return err
	}
	_, err = db.Exec(ctx, insertSQL, append(args, r.CreatedAt.UTC())...)
	return err
}

// Insert implements keystore.Store.
func (s *Store) Insert(ctx context.Context, r *keystore.Record) error {
	if err := insert(ctx, s.pool, r); err != nil {
		return fmt.Errorf("keystore: insert %s: %w", r.ID, unavailable(err))
	}
	return nil
}

// InsertFirst implements keystore.Store: writers of one (gun, role)
// serialise on an advisory lock held until their transaction ends.
func (s *Store) InsertFirst(ctx context.Context, r *keystore.Record) (*keystore.Record, error) {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return nil, fmt.Errorf("keystore: insert %s: %w", r.ID, unavailable(err))
	}
	defer func() { _ = tx.Rollback(ctx) }() // after Commit, a no-op
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended($1, 0))`, "signer "+r.GUN+" "+r.Role); err != nil {
		return nil, fmt.Errorf("keystore: lock: %w", unavailable(err))
	}
	rows, err := tx.Query(ctx, `SELECT `+keyrow.Columns+` FROM signer_keys WHERE gun = $1 AND role = $2 ORDER BY seq DESC LIMIT 1`, r.GUN, r.Role)
	if err != nil {
		return nil, fmt.Errorf("keystore: insert %s: %w", r.ID, unavailable(err))
	}
	existing, err := scan(rows)
	if err != nil {
		return nil, err
	}
	if len(existing) > 0 {
		return &existing[0], keystore.ErrExists
	}
	if err := insert(ctx, tx, r); err != nil {
		return nil, fmt.Errorf("keystore: insert %s: %w", r.ID, unavailable(err))
	}
	if err := tx.Commit(ctx); err != nil {
		return nil, fmt.Errorf("keystore: insert %s: %w", r.ID, unavailable(err))
	}
	return r, nil
}

func scan(rows pgx.Rows) ([]keystore.Record, error) {
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (keystore.Record, error) {
		var (
			r              keystore.Record
			alg, pub, priv string
		)
		if err := row.Scan(&r.ID, &r.GUN, &r.Role, &alg, &pub, &priv, &r.HSMID, &r.CreatedAt); err != nil {
			return r, fmt.Errorf("scan: %w", err)
		}
		r.CreatedAt = r.CreatedAt.UTC()
		return r, keyrow.Decode(&r, alg, pub, priv)
	})
	if err != nil {
		return nil, fmt.Errorf("keystore: %w", unavailable(err))
	}
	return out, nil
}

func (s *Store) query(ctx context.Context, query string, args ...any) ([]keystore.Record, error) {
	rows, err := s.pool.Query(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("keystore: %w", unavailable(err))
	}
	return scan(rows)
}

// List implements keystore.Store.
func (s *Store) List(ctx context.Context, gun string) ([]keystore.Record, error) {
	return s.query(ctx, `SELECT `+keyrow.Columns+` FROM signer_keys WHERE gun = $1 ORDER BY seq`, gun)
}

// All implements keystore.Store.
func (s *Store) All(ctx context.Context) ([]keystore.Record, error) {
	return s.query(ctx, `SELECT `+keyrow.Columns+` FROM signer_keys ORDER BY seq`)
}

// UpdatePrivate implements keystore.Store.
func (s *Store) UpdatePrivate(ctx context.Context, id string, w *keywrap.Wrapped) error {
	priv, err := keyrow.EncodePrivate(w)
	if err != nil {
		return fmt.Errorf("keystore: update %s: %w", id, err)
	}
	tag, err := s.pool.Exec(ctx, `UPDATE signer_keys SET private = $1 WHERE id = $2`, priv, id)
	if err != nil {
		return fmt.Errorf("keystore: update %s: %w", id, unavailable(err))
	}
	if tag.RowsAffected() != 1 {
		return fmt.Errorf("keystore: update %s: %w", id, signer.ErrKeyNotFound)
	}
	return nil
}

// DeleteGUN implements keystore.Store.
func (s *Store) DeleteGUN(ctx context.Context, gun string) error {
	if _, err := s.pool.Exec(ctx, `DELETE FROM signer_keys WHERE gun = $1`, gun); err != nil {
		return fmt.Errorf("keystore: delete %s: %w", gun, unavailable(err))
	}
	return nil
}

// Ping implements keystore.Store.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.pool.Ping(ctx); err != nil {
		return fmt.Errorf("keystore: ping: %w", unavailable(err))
	}
	return nil
}

// Close implements keystore.Store.
func (s *Store) Close() error {
	s.pool.Close()
	return nil
}

// unavailable marks errors that mean the database cannot be reached or
// went away mid-conversation, as signer.ErrUnavailable.
func unavailable(err error) error {
	var (
		pgErr   *pgconn.PgError
		connErr *pgconn.ConnectError
		netErr  net.Error
	)
	switch {
	case errors.Is(err, context.Canceled):
		return err
	case errors.As(err, &pgErr):
		switch pgErr.Code {
		case "57P01", "57P02", "57P03", "53300": // shutdown, crash, cannot connect now, too many connections
			return fmt.Errorf("%w: %w", signer.ErrUnavailable, err)
		}
		return err
	case errors.As(err, &connErr), errors.As(err, &netErr), errors.Is(err, puddle.ErrClosedPool), pgconn.SafeToRetry(err),
		errors.Is(err, pgconn.ErrConnClosed), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF), pgconn.Timeout(err):
		return fmt.Errorf("%w: %w", signer.ErrUnavailable, err)
	}
	return err
}
