// Package sqlite is signet-signer's embedded key store: one SQLite file
// through modernc.org/sqlite (pure Go, no cgo), for a single signer with no
// database server. Open creates the file (0600, with SQLite's -wal and
// -shm beside it) and migrates it. WAL lets readers run beside the writer;
// every transaction begins IMMEDIATE, so InsertFirst's writers serialise on
// the database's write lock. Safe for concurrent use; processes sharing
// the file serialise on that lock too.
package sqlite

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"time"

	_ "modernc.org/sqlite" // database/sql driver "sqlite"

	"github.com/signetdev/signet/migrations"
	"github.com/signetdev/signet/signer"
	"github.com/signetdev/signet/signer/keystore"
	"github.com/signetdev/signet/signer/keystore/internal/keyrow"
	"github.com/signetdev/signet/signer/keywrap"
)

// Store is a keystore.Store in one SQLite file.
type Store struct{ db *sql.DB }

var _ keystore.Store = (*Store)(nil)

// Open opens the key database file at path, creating and migrating it.
func Open(ctx context.Context, path string) (*Store, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("keystore: %w", err)
	}
	if err := privateFiles(path); err != nil {
		return nil, err
	}
	q := url.Values{}
	q.Add("_pragma", "busy_timeout(10000)")
	q.Add("_pragma", "journal_mode(WAL)")
	q.Set("_txlock", "immediate")
	db, err := sql.Open("sqlite", "file:"+path+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("keystore: %w", err)
	}
	s := &Store{db: db}
	if err := s.Migrate(ctx); err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}

// privateFiles creates the key database 0600 before SQLite opens it, so
// that the -wal and -shm files SQLite makes beside it (with the database
// file's mode) are 0600 too, and narrows files an older version left
// wider.
func privateFiles(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("keystore: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("keystore: %w", err)
	}
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		if err := os.Chmod(p, 0o600); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("keystore: %w", err)
		}
	}
	return nil
}

// Migrate applies the signer's migrations (Open already has).
func (s *Store) Migrate(ctx context.Context) error { return migrations.SignerSQLite.Up(ctx, s.db) }

// MigrationStatus reports the schema version and the one this binary wants.
func (s *Store) MigrationStatus(ctx context.Context) (current, want int64, err error) {
	return migrations.SignerSQLite.Status(ctx, s.db)
}

type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

func insert(ctx context.Context, ex execer, r *keystore.Record) error {
	args, err := keyrow.Encode(r)
	if err != nil {
		return err
	}
	_, err = ex.ExecContext(ctx, `INSERT INTO signer_keys (`+keyrow.Columns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, append(args, r.CreatedAt.UTC().UnixNano())...)
	return err
}

// Insert implements keystore.Store.
func (s *Store) Insert(ctx context.Context, r *keystore.Record) error {
	if err := insert(ctx, s.db, r); err != nil {
		return fmt.Errorf("keystore: insert %s: %w", r.ID, unavailable(err))
	}
	return nil
}

// InsertFirst implements keystore.Store. The transaction begins IMMEDIATE:
// it holds the database's write lock from the first statement.
func (s *Store) InsertFirst(ctx context.Context, r *keystore.Record) (_ *keystore.Record, err error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("keystore: insert %s: %w", r.ID, unavailable(err))
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback()
		}
	}()
	rows, err := tx.QueryContext(ctx, `SELECT `+keyrow.Columns+` FROM signer_keys WHERE gun = ? AND role = ? ORDER BY seq DESC LIMIT 1`, r.GUN, r.Role)
	if err != nil {
		return nil, fmt.Errorf("keystore: insert %s: %w", r.ID, unavailable(err))
	}
	existing, err := scan(rows)
	if err != nil {
		return nil, err
	}
	if len(existing) > 0 {
		_ = tx.Rollback()
		return &existing[0], keystore.ErrExists
	}
	if err := insert(ctx, tx, r); err != nil {
		return nil, fmt.Errorf("keystore: insert %s: %w", r.ID, unavailable(err))
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("keystore: insert %s: %w", r.ID, unavailable(err))
	}
	return r, nil
}

func scan(rows *sql.Rows) ([]keystore.Record, error) {
	defer rows.Close()
	var out []keystore.Record
	for rows.Next() {
		var (
			r              keystore.Record
			alg, pub, priv string
			created        int64
		)
		if err := rows.Scan(&r.ID, &r.GUN, &r.Role, &alg, &pub, &priv, &r.HSMID, &created); err != nil {
			return nil, fmt.Errorf("keystore: scan: %w", err)
		}
		if err := keyrow.Decode(&r, alg, pub, priv); err != nil {
			return nil, fmt.Errorf("keystore: %w", err)
		}
		r.CreatedAt = time.Unix(0, created).UTC()
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("keystore: %w", unavailable(err))
	}
	return out, nil
}

func (s *Store) query(ctx context.Context, query string, args ...any) ([]keystore.Record, error) {
	rows, err := s.db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("keystore: %w", unavailable(err))
	}
	return scan(rows)
}

// List implements keystore.Store.
func (s *Store) List(ctx context.Context, gun string) ([]keystore.Record, error) {
	return s.query(ctx, `SELECT `+keyrow.Columns+` FROM signer_keys WHERE gun = ? ORDER BY seq`, gun)
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
	res, err := s.db.ExecContext(ctx, `UPDATE signer_keys SET private = ? WHERE id = ?`, priv, id)
	if err != nil {
		return fmt.Errorf("keystore: update %s: %w", id, unavailable(err))
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return fmt.Errorf("keystore: update %s: %w", id, signer.ErrKeyNotFound)
	}
	return nil
}

// DeleteGUN implements keystore.Store.
func (s *Store) DeleteGUN(ctx context.Context, gun string) error {
	if _, err := s.db.ExecContext(ctx, `DELETE FROM signer_keys WHERE gun = ?`, gun); err != nil {
		return fmt.Errorf("keystore: delete %s: %w", gun, unavailable(err))
	}
	return nil
}

// Ping implements keystore.Store.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.db.PingContext(ctx); err != nil {
		return fmt.Errorf("keystore: ping: %w", unavailable(err))
	}
	return nil
}

// Close implements keystore.Store.
func (s *Store) Close() error { return s.db.Close() }

// unavailable marks errors that mean the database cannot be used at all.
func unavailable(err error) error {
	if errors.Is(err, sql.ErrConnDone) || errors.Is(err, driver.ErrBadConn) {
		return fmt.Errorf("%w: %w", signer.ErrUnavailable, err)
	}
	return err
}
