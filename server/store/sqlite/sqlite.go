// Package sqlite is the embedded store.MetaStore: a single SQLite file
// through modernc.org/sqlite (pure Go, no cgo), so that signet-server runs
// with no database server for a first try and small single-node use. It
// applies its migrations when opened.
//
// WAL lets readers run beside the writer; every transaction begins
// IMMEDIATE (the _txlock DSN parameter), so writers take the write lock up
// front and conflicting publishes serialise instead of failing with
// SQLITE_BUSY half-way. One process per file: it is not a Watcher. Safe for
// concurrent use.
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/signetdev/signet/migrations"
	"github.com/signetdev/signet/server/store"
)

// Store is a MetaStore in one SQLite file.
type Store struct {
	db  *sql.DB
	now func() time.Time
}

var _ store.MetaStore = (*Store)(nil)

// Open opens (creating if needed) the database file at path and migrates it.
func Open(ctx context.Context, path string) (*Store, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("sqlite: %w", err)
	}
	q := url.Values{}
	q.Add("_pragma", "busy_timeout(10000)")
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous(NORMAL)")
	q.Add("_pragma", "foreign_keys(1)")
	q.Set("_txlock", "immediate")
	db, err := sql.Open("sqlite", "file:"+path+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	db.SetMaxOpenConns(8)
	if err := migrations.ServerSQLite.Up(ctx, db); err != nil {
		db.Close()
		return nil, fmt.Errorf("sqlite: %s: %w", path, err)
	}
	return &Store{db: db, now: time.Now}, nil
}

func nanos(t time.Time) int64 { return t.UTC().UnixNano() }

func fromNanos(n int64) time.Time { return time.Unix(0, n).UTC() }

// UpdateMany implements store.MetaStore.
func (s *Store) UpdateMany(ctx context.Context, gun string, updates []store.Update) error {
	return s.inTx(ctx, "update "+gun, func(tx *sql.Tx) error { return s.updateTx(ctx, tx, gun, updates) })
}

// inTx runs fn in a transaction and commits it if fn succeeds.
func (s *Store) inTx(ctx context.Context, what string, fn func(*sql.Tx) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlite: %s: %w", what, err)
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("sqlite: %s: commit: %w", what, err)
	}
	return nil
}

// updateTx stores updates of gun in tx: the body of UpdateMany.
func (s *Store) updateTx(ctx context.Context, tx *sql.Tx, gun string, updates []store.Update) error {
	now := nanos(s.now())
	var tsVersion int64
	var tsSHA string
	for _, u := range updates {
		var exists int
		err := tx.QueryRowContext(ctx, `SELECT 1 FROM tuf_files WHERE gun = ? AND role = ? AND version = ?`, gun, u.Role, u.Version).Scan(&exists)
		if err == nil {
			return &store.VersionConflictError{GUN: gun, Role: u.Role, Version: u.Version}
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("sqlite: update %s: %w", gun, err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO tuf_files (gun, role, version, sha256, data, expires, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)`,
			gun, u.Role, u.Version, u.SHA256, u.Data, nanos(u.Expires), now); err != nil {
			return translate(fmt.Errorf("sqlite: update %s/%s v%d: %w", gun, u.Role, u.Version, err), gun, u)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO current_files (gun, role, version, expires) VALUES (?, ?, ?, ?)
			ON CONFLICT (gun, role) DO UPDATE SET version = excluded.version, expires = excluded.expires WHERE excluded.version > current_files.version`,
			gun, u.Role, u.Version, nanos(u.Expires)); err != nil {
			return fmt.Errorf("sqlite: update %s/%s: %w", gun, u.Role, err)
		}
		if u.Role == "timestamp" {
			tsVersion, tsSHA = u.Version, u.SHA256
		}
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO changefeed (gun, category, version, sha256, created_at) VALUES (?, ?, ?, ?, ?)`,
		gun, store.ChangeUpdate, tsVersion, tsSHA, now); err != nil {
		return fmt.Errorf("sqlite: update %s: changefeed: %w", gun, err)
	}
	return nil
}

// translate turns a primary-key violation into a VersionConflictError.
func translate(err error, gun string, u store.Update) error {
	var se *sqlite.Error
	if errors.As(err, &se) && (se.Code() == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY || se.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE) {
		return &store.VersionConflictError{GUN: gun, Role: u.Role, Version: u.Version}
	}
	return err
}

const metaColumns = `gun, role, version, sha256, data, expires, created_at`

func (s *Store) getOne(ctx context.Context, what, query string, args ...any) (*store.Meta, error) {
	var (
		m                store.Meta
		expires, created int64
	)
	err := s.db.QueryRowContext(ctx, query, args...).Scan(&m.GUN, &m.Role, &m.Version, &m.SHA256, &m.Data, &expires, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("sqlite: get %s: %w", what, store.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("sqlite: get %s: %w", what, err)
	}
	m.Expires, m.CreatedAt = fromNanos(expires), fromNanos(created)
	return &m, nil
}

// GetCurrent implements store.MetaStore.
func (s *Store) GetCurrent(ctx context.Context, gun, role string) (*store.Meta, error) {
	return s.getOne(ctx, gun+"/"+role,
		`SELECT `+metaColumns+` FROM tuf_files WHERE gun = ? AND role = ? ORDER BY version DESC LIMIT 1`, gun, role)
}

// CurrentVersions implements store.MetaStore.
func (s *Store) CurrentVersions(ctx context.Context, gun string) (map[string]store.RoleVersion, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT c.role, c.version, f.sha256 FROM current_files c
		JOIN tuf_files f ON f.gun = c.gun AND f.role = c.role AND f.version = c.version WHERE c.gun = ?`, gun)
	if err != nil {
		return nil, fmt.Errorf("sqlite: current versions of %s: %w", gun, err)
	}
	defer rows.Close()
	out := map[string]store.RoleVersion{}
	for rows.Next() {
		var role string
		var v store.RoleVersion
		if err := rows.Scan(&role, &v.Version, &v.SHA256); err != nil {
			return nil, fmt.Errorf("sqlite: current versions of %s: %w", gun, err)
		}
		out[role] = v
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: current versions of %s: %w", gun, err)
	}
	return out, nil
}

// GetVersion implements store.MetaStore.
func (s *Store) GetVersion(ctx context.Context, gun, role string, version int64) (*store.Meta, error) {
	return s.getOne(ctx, fmt.Sprintf("%s/%s v%d", gun, role, version),
		`SELECT `+metaColumns+` FROM tuf_files WHERE gun = ? AND role = ? AND version = ?`, gun, role, version)
}

// GetChecksum implements store.MetaStore.
func (s *Store) GetChecksum(ctx context.Context, gun, role, checksum string) (*store.Meta, error) {
	return s.getOne(ctx, fmt.Sprintf("%s/%s sha256 %s", gun, role, checksum),
		`SELECT `+metaColumns+` FROM tuf_files WHERE gun = ? AND role = ? AND sha256 = ? ORDER BY version DESC LIMIT 1`, gun, role, checksum)
}

// Delete implements store.MetaStore.
func (s *Store) Delete(ctx context.Context, gun string) error {
	return s.inTx(ctx, "delete "+gun, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM tuf_files WHERE gun = ?`, gun)
		if err != nil {
			return fmt.Errorf("sqlite: delete %s: %w", gun, err)
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			return fmt.Errorf("sqlite: delete %s: %w", gun, store.ErrNotFound)
		}
		for _, q := range []string{`DELETE FROM current_files WHERE gun = ?`, `DELETE FROM staged_changes WHERE gun = ?`} {
			if _, err := tx.ExecContext(ctx, q, gun); err != nil {
				return fmt.Errorf("sqlite: delete %s: %w", gun, err)
			}
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO changefeed (gun, category, created_at) VALUES (?, ?, ?)`, gun, store.ChangeDeletion, nanos(s.now())); err != nil {
			return fmt.Errorf("sqlite: delete %s: changefeed: %w", gun, err)
		}
		return nil
	})
}

// Changes implements store.MetaStore.
func (s *Store) Changes(ctx context.Context, since int64, limit int) ([]store.Change, error) {
	if limit <= 0 {
		limit = 100
	}
	limit = min(limit, store.MaxChangesPage)
	rows, err := s.db.QueryContext(ctx, `SELECT id, gun, category, version, sha256, created_at FROM changefeed WHERE id > ? ORDER BY id LIMIT ?`, since, limit)
	if err != nil {
		return nil, fmt.Errorf("sqlite: changes since %d: %w", since, err)
	}
	defer rows.Close()
	var out []store.Change
	for rows.Next() {
		var c store.Change
		var created int64
		if err := rows.Scan(&c.ID, &c.GUN, &c.Category, &c.Version, &c.SHA256, &created); err != nil {
			return nil, fmt.Errorf("sqlite: changes: %w", err)
		}
		c.CreatedAt = fromNanos(created)
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: changes: %w", err)
	}
	return out, nil
}

// Expiring implements store.MetaStore.
func (s *Store) Expiring(ctx context.Context, role string, before time.Time, limit int) ([]string, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT gun FROM current_files WHERE role = ? AND expires < ? ORDER BY expires, gun LIMIT ?`, role, nanos(before), limit)
	if err != nil {
		return nil, fmt.Errorf("sqlite: expiring %s: %w", role, err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var g string
		if err := rows.Scan(&g); err != nil {
			return nil, fmt.Errorf("sqlite: expiring %s: %w", role, err)
		}
		out = append(out, g)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: expiring %s: %w", role, err)
	}
	return out, nil
}

// Ping implements store.MetaStore.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.db.PingContext(ctx); err != nil {
		return fmt.Errorf("sqlite: ping: %w: %w", store.ErrUnavailable, err)
	}
	return nil
}

// Close implements store.MetaStore.
func (s *Store) Close() error { return s.db.Close() }
