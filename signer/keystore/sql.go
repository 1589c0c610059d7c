package keystore

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx"
	_ "modernc.org/sqlite"             // database/sql driver "sqlite"

	"github.com/signetdev/signet/migrations"
	"github.com/signetdev/signet/signer"
	"github.com/signetdev/signet/signer/keywrap"
)

// SQL is a Store in the signer's own database: Postgres, or an embedded
// SQLite file.
type SQL struct {
	db       *sql.DB
	postgres bool
	set      migrations.Set
}

var _ Store = (*SQL)(nil)

// Open opens the key database: a postgres:// URL, or a file path for the
// embedded store (created and migrated on open). A Postgres database is
// migrated by Migrate (signet-signer migrate).
func Open(ctx context.Context, dsn string) (*SQL, error) {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		db, err := sql.Open("pgx", dsn)
		if err != nil {
			return nil, fmt.Errorf("keystore: %w", err)
		}
		db.SetMaxOpenConns(16)
		s := &SQL{db: db, postgres: true, set: migrations.SignerPostgres}
		if err := s.Ping(ctx); err != nil {
			db.Close()
			return nil, err
		}
		return s, nil
	}
	if err := os.MkdirAll(filepath.Dir(dsn), 0o700); err != nil {
		return nil, fmt.Errorf("keystore: %w", err)
	}
	if err := privateFiles(dsn); err != nil {
		return nil, err
	}
	q := url.Values{}
	q.Add("_pragma", "busy_timeout(10000)")
	q.Add("_pragma", "journal_mode(WAL)")
	q.Set("_txlock", "immediate")
	db, err := sql.Open("sqlite", "file:"+dsn+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("keystore: %w", err)
	}
	s := &SQL{db: db, set: migrations.SignerSQLite}
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

// Migrate applies the signer's migrations.
func (s *SQL) Migrate(ctx context.Context) error { return s.set.Up(ctx, s.db) }

// MigrationStatus reports the schema version and the one this binary wants.
func (s *SQL) MigrationStatus(ctx context.Context) (current, want int64, err error) {
	return s.set.Status(ctx, s.db)
}

// q rewrites "?" placeholders as "$n" for Postgres.
func (s *SQL) q(query string) string {
	if !s.postgres {
		return query
	}
	var b strings.Builder
	n := 0
	for _, c := range query {
		if c == '?' {
			n++
			b.WriteString("$" + strconv.Itoa(n))
			continue
		}
		b.WriteRune(c)
	}
	return b.String()
}

func (s *SQL) encodeTime(t time.Time) any {
	if s.postgres {
		return t.UTC()
	}
	return t.UTC().UnixNano()
}

type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

func (s *SQL) insert(ctx context.Context, ex execer, r *Record) error {
	pub, err := json.Marshal(r.Public)
	if err != nil {
		return err
	}
	priv, err := json.Marshal(r.Private)
	if err != nil {
		return err
	}
	_, err = ex.ExecContext(ctx, s.q(`INSERT INTO signer_keys (id, gun, role, algorithm, public, private, hsm_id, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`),
		r.ID, r.GUN, r.Role, string(r.Algorithm), string(pub), string(priv), r.HSMID, s.encodeTime(r.CreatedAt))
	return err
}

// Insert implements Store.
func (s *SQL) Insert(ctx context.Context, r *Record) error {
	if err := s.insert(ctx, s.db, r); err != nil {
		return fmt.Errorf("keystore: insert %s: %w", r.ID, unavailable(err))
	}
	return nil
}

// InsertFirst implements Store. Writers of one (gun, role) serialise on an
// advisory lock (Postgres) or the database write lock (SQLite).
func (s *SQL) InsertFirst(ctx context.Context, r *Record) (_ *Record, err error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("keystore: insert %s: %w", r.ID, unavailable(err))
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback()
		}
	}()
	if s.postgres {
		if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock(hashtextextended($1, 0))`, "signer "+r.GUN+" "+r.Role); err != nil {
			return nil, fmt.Errorf("keystore: lock: %w", unavailable(err))
		}
	}
	rows, err := tx.QueryContext(ctx, s.q(`SELECT `+columns+` FROM signer_keys WHERE gun = ? AND role = ? ORDER BY seq DESC LIMIT 1`), r.GUN, r.Role)
	if err != nil {
		return nil, fmt.Errorf("keystore: insert %s: %w", r.ID, unavailable(err))
	}
	existing, err := s.scan(rows)
	if err != nil {
		return nil, err
	}
	if len(existing) > 0 {
		_ = tx.Rollback()
		return &existing[0], ErrExists
	}
	if err := s.insert(ctx, tx, r); err != nil {
		return nil, fmt.Errorf("keystore: insert %s: %w", r.ID, unavailable(err))
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("keystore: insert %s: %w", r.ID, unavailable(err))
	}
	return r, nil
}

const columns = `id, gun, role, algorithm, public, private, hsm_id, created_at`

func (s *SQL) scan(rows *sql.Rows) ([]Record, error) {
	defer rows.Close()
	var out []Record
	for rows.Next() {
		var (
			r         Record
			alg       string
			pub, priv string
			created   any
		)
		if err := rows.Scan(&r.ID, &r.GUN, &r.Role, &alg, &pub, &priv, &r.HSMID, &created); err != nil {
			return nil, fmt.Errorf("keystore: scan: %w", err)
		}
		r.Algorithm = signer.Algorithm(alg)
		if err := json.Unmarshal([]byte(pub), &r.Public); err != nil {
			return nil, fmt.Errorf("keystore: key %s public part: %w", r.ID, err)
		}
		if err := json.Unmarshal([]byte(priv), &r.Private); err != nil {
			return nil, fmt.Errorf("keystore: key %s private part: %w", r.ID, err)
		}
		switch c := created.(type) {
		case time.Time:
			r.CreatedAt = c.UTC()
		case int64:
			r.CreatedAt = time.Unix(0, c).UTC()
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("keystore: %w", unavailable(err))
	}
	return out, nil
}

func (s *SQL) query(ctx context.Context, query string, args ...any) ([]Record, error) {
	rows, err := s.db.QueryContext(ctx, s.q(query), args...)
	if err != nil {
		return nil, fmt.Errorf("keystore: %w", unavailable(err))
	}
	return s.scan(rows)
}

// List implements Store.
func (s *SQL) List(ctx context.Context, gun string) ([]Record, error) {
	return s.query(ctx, `SELECT `+columns+` FROM signer_keys WHERE gun = ? ORDER BY seq`, gun)
}

// All implements Store.
func (s *SQL) All(ctx context.Context) ([]Record, error) {
	return s.query(ctx, `SELECT `+columns+` FROM signer_keys ORDER BY seq`)
}

// UpdatePrivate implements Store.
func (s *SQL) UpdatePrivate(ctx context.Context, id string, w *keywrap.Wrapped) error {
	priv, err := json.Marshal(w)
	if err != nil {
		return err
	}
	res, err := s.db.ExecContext(ctx, s.q(`UPDATE signer_keys SET private = ? WHERE id = ?`), string(priv), id)
	if err != nil {
		return fmt.Errorf("keystore: update %s: %w", id, unavailable(err))
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return fmt.Errorf("keystore: update %s: %w", id, signer.ErrKeyNotFound)
	}
	return nil
}

// DeleteGUN implements Store.
func (s *SQL) DeleteGUN(ctx context.Context, gun string) error {
	if _, err := s.db.ExecContext(ctx, s.q(`DELETE FROM signer_keys WHERE gun = ?`), gun); err != nil {
		return fmt.Errorf("keystore: delete %s: %w", gun, unavailable(err))
	}
	return nil
}

// Ping implements Store.
func (s *SQL) Ping(ctx context.Context) error {
	if err := s.db.PingContext(ctx); err != nil {
		return fmt.Errorf("keystore: ping: %w", unavailable(err))
	}
	return nil
}

// Close implements Store.
func (s *SQL) Close() error { return s.db.Close() }

// unavailable marks errors that mean the database cannot be reached.
func unavailable(err error) error {
	var (
		ne net.Error
		ce *pgconn.ConnectError
	)
	if errors.Is(err, sql.ErrConnDone) || errors.Is(err, driver.ErrBadConn) || errors.As(err, &ne) || errors.As(err, &ce) {
		return fmt.Errorf("%w: %w", signer.ErrUnavailable, err)
	}
	return err
}
