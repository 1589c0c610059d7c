// Package postgres is the production store.MetaStore on PostgreSQL (pgx v5,
// pgxpool, hand-written SQL). Any number of signet-server replicas share one
// database: a publish is one transaction holding a per-GUN advisory lock,
// with PRIMARY KEY (gun, role, version) as the final guard, so exactly one
// writer wins each version and nothing of a loser is stored. Writes NOTIFY
// the other replicas (Watch), so their caches forget the GUN at once.
//
// Driver errors are translated here (23505 → store.ErrVersionExists,
// connection failures → store.ErrUnavailable): nothing above imports pgx.
// A Store is safe for concurrent use.
package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/jackc/puddle/v2"

	"github.com/signetdev/signet/migrations"
	"github.com/signetdev/signet/server/store"
)

// channel is the NOTIFY channel; its payload is the GUN.
const channel = "signet_meta"

// Store is a MetaStore on a pgxpool.
type Store struct {
	pool *pgxpool.Pool
	// listenURL, if set, is where Watch connects for LISTEN instead of
	// taking a connection from the pool (see WithListenURL).
	listenURL string
}

var (
	_ store.MetaStore = (*Store)(nil)
	_ store.Watcher   = (*Store)(nil)
)

// DefaultMaxConns is the pool size unless the URL (pool_max_conns) or
// WithMaxConns asks for more, or WithMaxConns for fewer.
const DefaultMaxConns = 16

// Option tunes the store.
type Option func(*settings)

type settings struct {
	pool      *pgxpool.Config
	listenURL string
}

// WithMaxConns sets the pool size: the most connections this store (one
// server replica) holds, besides the one Watch listens on.
func WithMaxConns(n int32) Option { return func(s *settings) { s.pool.MaxConns = n } }

// WithListenURL makes Watch LISTEN on its own connection to url rather
// than on one taken from the pool. LISTEN needs a session that stays
// with this process; a pooler in transaction mode (PgBouncer's
// pool_mode=transaction) hands each transaction to whichever server
// connection is free, so behind one the pool's URL names the pooler and
// url the database itself (or a pooler port in session mode). The
// pool's pool_* parameters do not apply to it.
func WithListenURL(url string) Option { return func(s *settings) { s.listenURL = url } }

// Open connects a pool to url and checks that the database answers (and,
// with WithListenURL, that the listen URL does too).
func Open(ctx context.Context, url string, opts ...Option) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("postgres: parse URL: %w", err)
	}
	cfg.MaxConns = max(cfg.MaxConns, DefaultMaxConns)
	cfg.MinConns = 2
	cfg.MaxConnIdleTime = 5 * time.Minute
	cfg.MaxConnLifetime = time.Hour
	cfg.HealthCheckPeriod = 15 * time.Second
	cfg.ConnConfig.ConnectTimeout = 5 * time.Second
	set := settings{pool: cfg}
	for _, o := range opts {
		o(&set)
	}
	cfg.MinConns = min(cfg.MinConns, cfg.MaxConns)
	if set.listenURL != "" {
		if _, err := pgx.ParseConfig(set.listenURL); err != nil {
			return nil, fmt.Errorf("postgres: parse listen URL: %w", err)
		}
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", translate(err))
	}
	s := &Store{pool: pool, listenURL: set.listenURL}
	if err := s.Ping(ctx); err != nil {
		pool.Close()
		return nil, err
	}
	if s.listenURL != "" {
		// Watch reconnects quietly; a listen URL that never works would
		// leave replicas on the cache's TTL without anyone noticing.
		conn, err := s.listenConn(ctx)
		if err != nil {
			pool.Close()
			return nil, fmt.Errorf("postgres: listen URL: %w", translate(err))
		}
		_ = conn.Close(ctx)
	}
	return s, nil
}

// Migrate applies the embedded migrations through this store's pool.
func (s *Store) Migrate(ctx context.Context) error {
	db := stdlib.OpenDBFromPool(s.pool)
	defer db.Close()
	return migrations.ServerPostgres.Up(ctx, db)
}

// MigrationStatus reports the schema version and the one this binary wants.
func (s *Store) MigrationStatus(ctx context.Context) (current, want int64, err error) {
	db := stdlib.OpenDBFromPool(s.pool)
	defer db.Close()
	return migrations.ServerPostgres.Status(ctx, db)
}

// PoolStats reports the pool's connections for metrics.
func (s *Store) PoolStats() (acquired, idle, total, max int32) {
	st := s.pool.Stat()
	return st.AcquiredConns(), st.IdleConns(), st.TotalConns(), st.MaxConns()
}

// translate maps driver errors to store sentinels.
func translate(err error) error {
	var pgErr *pgconn.PgError
	var connErr *pgconn.ConnectError
	var netErr net.Error
	switch {
	case err == nil:
		return nil
	case errors.As(err, &pgErr):
		switch pgErr.Code {
		case "23505":
			return fmt.Errorf("%w: %s", store.ErrVersionExists, pgErr.Message)
		case "57P01", "57P02", "57P03", "53300": // shutdown, crash, cannot connect now, too many connections
			return fmt.Errorf("%w: %w", store.ErrUnavailable, err)
		case "57014", "55P03": // statement_timeout (or a cancel), lock_timeout: overloaded, retry later
			return fmt.Errorf("%w: %w", store.ErrUnavailable, err)
		}
		return err
	case errors.Is(err, context.Canceled):
		return err
	case errors.As(err, &connErr), errors.As(err, &netErr), errors.Is(err, puddle.ErrClosedPool), pgconn.SafeToRetry(err),
		errors.Is(err, pgconn.ErrConnClosed), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF), pgconn.Timeout(err):
		// The server went away mid-conversation, or cannot be reached.
		return fmt.Errorf("%w: %w", store.ErrUnavailable, err)
	}
	return err
}

// UpdateMany implements store.MetaStore in one round trip: a batch runs
// as one implicit transaction (pgx's SendBatch, PostgreSQL's extended
// protocol up to its Sync), so the per-GUN lock, the rows, the change-feed
// entry and the notification commit together, and an error anywhere rolls
// all of them back. A collision fails the insert on the primary key; only
// then does a second query ask which role lost.
func (s *Store) UpdateMany(ctx context.Context, gun string, updates []store.Update) error {
	b := &pgx.Batch{}
	queueUpdate(b, gun, updates)
	err := s.pool.SendBatch(ctx, b).Close()
	if err != nil && errors.Is(translate(err), store.ErrVersionExists) {
		return s.collision(ctx, gun, updates)
	}
	return updateErr(gun, err)
}

// updateTx stores updates of gun in tx (PublishStaged's transaction).
func updateTx(ctx context.Context, tx pgx.Tx, gun string, updates []store.Update) error {
	b := &pgx.Batch{}
	queueUpdate(b, gun, updates)
	return tx.SendBatch(ctx, b).Close()
}

// queueUpdate queues the statements of an update: serialise the writers
// of this GUN (the loser of a race waits instead of working in vain; the
// primary key is the guard), then all rows in one statement, the current
// versions in another, and the change-feed entry with its notification.
func queueUpdate(b *pgx.Batch, gun string, updates []store.Update) {
	n := len(updates)
	roles, versions, sums := make([]string, n), make([]int64, n), make([]string, n)
	data, expires := make([][]byte, n), make([]time.Time, n)
	var tsVersion int64
	var tsSHA string
	for i, u := range updates {
		roles[i], versions[i], sums[i], data[i], expires[i] = u.Role, u.Version, u.SHA256, u.Data, u.Expires
		if u.Role == "timestamp" {
			tsVersion, tsSHA = u.Version, u.SHA256
		}
	}
	b.Queue(`SELECT pg_advisory_xact_lock(hashtextextended($1, 0))`, gun)
	b.Queue(`INSERT INTO tuf_files (gun, role, version, sha256, data, expires)
			SELECT $1, * FROM unnest($2::text[], $3::bigint[], $4::text[], $5::bytea[], $6::timestamptz[])`,
		gun, roles, versions, sums, data, expires)
	b.Queue(`INSERT INTO current_files (gun, role, version, expires)
			SELECT $1, * FROM unnest($2::text[], $3::bigint[], $4::timestamptz[])
			ON CONFLICT (gun, role) DO UPDATE SET version = EXCLUDED.version, expires = EXCLUDED.expires
			WHERE EXCLUDED.version > current_files.version`, gun, roles, versions, expires)
	b.Queue(`WITH c AS (INSERT INTO changefeed (gun, category, version, sha256) VALUES ($1, $2, $3, $4) RETURNING gun)
			SELECT pg_notify($5, gun) FROM c`, gun, store.ChangeUpdate, tsVersion, tsSHA, channel)
}

// collision names the role whose version already exists, after an update
// failed on the primary key (and stored nothing).
func (s *Store) collision(ctx context.Context, gun string, updates []store.Update) error {
	roles := make([]string, len(updates))
	versions := make([]int64, len(updates))
	for i, u := range updates {
		roles[i], versions[i] = u.Role, u.Version
	}
	var role string
	var version int64
	err := s.pool.QueryRow(ctx, `SELECT f.role, f.version FROM tuf_files f
			JOIN unnest($2::text[], $3::bigint[]) AS u(role, version) ON f.role = u.role AND f.version = u.version
			WHERE f.gun = $1 LIMIT 1`, gun, roles, versions).Scan(&role, &version)
	if err != nil {
		return &store.VersionConflictError{GUN: gun} // gone again since; still a conflict
	}
	return &store.VersionConflictError{GUN: gun, Role: role, Version: version}
}

func updateErr(gun string, err error) error {
	var vc *store.VersionConflictError
	if errors.As(err, &vc) {
		return err
	}
	if err != nil {
		err = translate(err)
		if errors.Is(err, store.ErrVersionExists) {
			return &store.VersionConflictError{GUN: gun}
		}
		return fmt.Errorf("postgres: update %s: %w", gun, err)
	}
	return nil
}

const metaColumns = `gun, role, version, sha256, data, expires, created_at`

func (s *Store) getOne(ctx context.Context, what, query string, args ...any) (*store.Meta, error) {
	var m store.Meta
	err := s.pool.QueryRow(ctx, query, args...).Scan(&m.GUN, &m.Role, &m.Version, &m.SHA256, &m.Data, &m.Expires, &m.CreatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("postgres: get %s: %w", what, store.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("postgres: get %s: %w", what, translate(err))
	}
	m.Expires, m.CreatedAt = m.Expires.UTC(), m.CreatedAt.UTC()
	return &m, nil
}

// GetCurrent implements store.MetaStore.
func (s *Store) GetCurrent(ctx context.Context, gun, role string) (*store.Meta, error) {
	return s.getOne(ctx, gun+"/"+role,
		`SELECT `+metaColumns+` FROM tuf_files WHERE gun = $1 AND role = $2 ORDER BY version DESC LIMIT 1`, gun, role)
}

// CurrentVersions implements store.MetaStore.
func (s *Store) CurrentVersions(ctx context.Context, gun string) (map[string]store.RoleVersion, error) {
	// A skip scan of the primary key: one backward index probe per role,
	// the newest version of the next role down. It reads only tuf_files,
	// which is never updated in place (current_files is, at every
	// publish, and carries dead rows until vacuumed).
	rows, err := s.pool.Query(ctx, `WITH RECURSIVE heads AS (
			(SELECT role, version, sha256 FROM tuf_files WHERE gun = $1 ORDER BY role DESC, version DESC LIMIT 1)
			UNION ALL
			SELECT n.role, n.version, n.sha256 FROM heads h, LATERAL (
				SELECT role, version, sha256 FROM tuf_files WHERE gun = $1 AND role < h.role ORDER BY role DESC, version DESC LIMIT 1
			) n
		) SELECT role, version, sha256 FROM heads`, gun)
	if err != nil {
		return nil, fmt.Errorf("postgres: current versions of %s: %w", gun, translate(err))
	}
	out := map[string]store.RoleVersion{}
	var role string
	var v store.RoleVersion
	_, err = pgx.ForEachRow(rows, []any{&role, &v.Version, &v.SHA256}, func() error {
		out[role] = v
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: current versions of %s: %w", gun, translate(err))
	}
	return out, nil
}

// GetVersion implements store.MetaStore.
func (s *Store) GetVersion(ctx context.Context, gun, role string, version int64) (*store.Meta, error) {
	return s.getOne(ctx, fmt.Sprintf("%s/%s v%d", gun, role, version),
		`SELECT `+metaColumns+` FROM tuf_files WHERE gun = $1 AND role = $2 AND version = $3`, gun, role, version)
}

// GetChecksum implements store.MetaStore.
func (s *Store) GetChecksum(ctx context.Context, gun, role, checksum string) (*store.Meta, error) {
	return s.getOne(ctx, fmt.Sprintf("%s/%s sha256 %s", gun, role, checksum),
		`SELECT `+metaColumns+` FROM tuf_files WHERE gun = $1 AND role = $2 AND sha256 = $3 ORDER BY version DESC LIMIT 1`, gun, role, checksum)
}

// Delete implements store.MetaStore.
func (s *Store) Delete(ctx context.Context, gun string) error {
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended($1, 0))`, gun); err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, `DELETE FROM tuf_files WHERE gun = $1`, gun)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return store.ErrNotFound
		}
		b := &pgx.Batch{}
		b.Queue(`DELETE FROM current_files WHERE gun = $1`, gun)
		b.Queue(`DELETE FROM staged_changes WHERE gun = $1`, gun)
		b.Queue(`INSERT INTO changefeed (gun, category) VALUES ($1, $2)`, gun, store.ChangeDeletion)
		b.Queue(`SELECT pg_notify($1, $2)`, channel, gun)
		return tx.SendBatch(ctx, b).Close()
	})
	if err != nil {
		return fmt.Errorf("postgres: delete %s: %w", gun, translate(err))
	}
	return nil
}

// Changes implements store.MetaStore.
func (s *Store) Changes(ctx context.Context, since int64, limit int) ([]store.Change, error) {
	if limit <= 0 {
		limit = 100
	}
	limit = min(limit, store.MaxChangesPage)
	rows, err := s.pool.Query(ctx, `SELECT id, gun, category, version, sha256, created_at FROM changefeed WHERE id > $1 ORDER BY id LIMIT $2`, since, limit)
	if err != nil {
		return nil, fmt.Errorf("postgres: changes since %d: %w", since, translate(err))
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.Change, error) {
		var c store.Change
		err := r.Scan(&c.ID, &c.GUN, &c.Category, &c.Version, &c.SHA256, &c.CreatedAt)
		c.CreatedAt = c.CreatedAt.UTC()
		return c, err
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: changes since %d: %w", since, translate(err))
	}
	return out, nil
}

// Expiring implements store.MetaStore.
func (s *Store) Expiring(ctx context.Context, role string, before time.Time, limit int) ([]string, error) {
	rows, err := s.pool.Query(ctx, `SELECT gun FROM current_files WHERE role = $1 AND expires < $2 ORDER BY expires, gun LIMIT $3`, role, before, limit)
	if err != nil {
		return nil, fmt.Errorf("postgres: expiring %s: %w", role, translate(err))
	}
	guns, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("postgres: expiring %s: %w", role, translate(err))
	}
	return guns, nil
}

// Ping implements store.MetaStore.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.pool.Ping(ctx); err != nil {
		return fmt.Errorf("postgres: ping: %w: %w", store.ErrUnavailable, err)
	}
	return nil
}

// Close implements store.MetaStore.
func (s *Store) Close() error {
	s.pool.Close()
	return nil
}

// Watch implements store.Watcher: it LISTENs on a dedicated connection
// (taken from the pool, or to the WithListenURL), reconnecting with
// backoff, and calls changed("") after every (re)connect since
// notifications may have been missed meanwhile.
func (s *Store) Watch(ctx context.Context, changed func(gun string)) error {
	backoff := 100 * time.Millisecond
	for {
		start := time.Now()
		// An error means the connection is gone: reconnect. Meanwhile the
		// caller's TTL bounds how stale its cache can be.
		if s.listen(ctx, changed); ctx.Err() != nil {
			return ctx.Err()
		}
		if time.Since(start) > time.Minute {
			backoff = 100 * time.Millisecond
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 5*time.Second)
	}
}

func (s *Store) listen(ctx context.Context, changed func(gun string)) error {
	pc, err := s.listenConn(ctx)
	if err != nil {
		return err
	}
	defer pc.Close(context.WithoutCancel(ctx))
	if _, err := pc.Exec(ctx, "LISTEN "+channel); err != nil {
		return err
	}
	changed("")
	for {
		n, err := pc.WaitForNotification(ctx)
		if err != nil {
			return err
		}
		changed(n.Payload)
	}
}

// listenConn opens the connection Watch listens on.
func (s *Store) listenConn(ctx context.Context) (*pgx.Conn, error) {
	if s.listenURL != "" {
		cfg, err := pgx.ParseConfig(s.listenURL) // checked by Open
		if err != nil {
			return nil, err
		}
		if cfg.ConnectTimeout == 0 {
			cfg.ConnectTimeout = 5 * time.Second
		}
		return pgx.ConnectConfig(ctx, cfg)
	}
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return nil, err
	}
	// The connection carries LISTEN state: never return it to the pool.
	return conn.Hijack(), nil
}
