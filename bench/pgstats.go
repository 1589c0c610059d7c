package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// pgMonitor reads PostgreSQL's own counters for one database, from a
// connection to another (so that its queries are not counted).
type pgMonitor struct {
	conn *pgx.Conn
	db   string
	dbid uint32
	pgss bool // pg_stat_statements is loaded
	pid  int  // the postmaster, for its CPU time (0: not on this machine)
}

// pgCounters is one reading.
type pgCounters struct {
	// From pg_stat_statements (exact and immediate): statements run, by
	// query text, and the rows they returned or changed.
	Statements map[string]int64 `json:"-"`
	Calls      int64            `json:"calls"`
	Rows       int64            `json:"rows"`
	// From pg_stat_database (flushed by backends up to ~10 s late: read
	// after settle).
	XactCommit  int64 `json:"xact_commit"`
	TupReturned int64 `json:"tup_returned"`
	TupFetched  int64 `json:"tup_fetched"`
	TupInserted int64 `json:"tup_inserted"`
	// The database's size on disk, and the WAL the cluster wrote (the
	// cluster is the run's own: nothing else writes).
	Size     int64 `json:"size_bytes"`
	WALBytes int64 `json:"wal_bytes"`
	// CPU of the postmaster and its backends.
	CPU time.Duration `json:"cpu_ns"`
}

// pgStatsSettle is how long backends may hold pg_stat_database counts
// before flushing them (PGSTAT_IDLE_INTERVAL is 10 s), plus a margin.
const pgStatsSettle = 11 * time.Second

func newPGMonitor(ctx context.Context, adminURL, db string) (*pgMonitor, error) {
	conn, err := pgx.Connect(ctx, adminURL)
	if err != nil {
		return nil, fmt.Errorf("monitor: %w", err)
	}
	m := &pgMonitor{conn: conn, db: db}
	if err := conn.QueryRow(ctx, `SELECT oid FROM pg_database WHERE datname = $1`, db).Scan(&m.dbid); err != nil {
		conn.Close(ctx)
		return nil, fmt.Errorf("monitor: database %s: %w", db, err)
	}
	if _, err := conn.Exec(ctx, `CREATE EXTENSION IF NOT EXISTS pg_stat_statements`); err == nil {
		_, err = conn.Exec(ctx, `SELECT pg_stat_statements_reset()`)
		m.pgss = err == nil // fails unless preloaded
	}
	var dataDir string
	if err := conn.QueryRow(ctx, `SELECT setting FROM pg_settings WHERE name = 'data_directory'`).Scan(&dataDir); err == nil {
		if b, err := os.ReadFile(filepath.Join(dataDir, "postmaster.pid")); err == nil {
			m.pid, _ = strconv.Atoi(strings.SplitN(string(b), "\n", 2)[0])
		}
	}
	return m, nil
}

func (m *pgMonitor) close() { m.conn.Close(context.Background()) }

func (m *pgMonitor) read(ctx context.Context) (pgCounters, error) {
	var c pgCounters
	err := m.conn.QueryRow(ctx, `SELECT xact_commit, tup_returned, tup_fetched, tup_inserted FROM pg_stat_database WHERE datid = $1`, m.dbid).
		Scan(&c.XactCommit, &c.TupReturned, &c.TupFetched, &c.TupInserted)
	if err != nil {
		return c, fmt.Errorf("pg_stat_database: %w", err)
	}
	if err := m.conn.QueryRow(ctx, `SELECT pg_database_size($1::oid), (SELECT wal_bytes::bigint FROM pg_stat_wal)`, m.dbid).Scan(&c.Size, &c.WALBytes); err != nil {
		return c, fmt.Errorf("database size, pg_stat_wal: %w", err)
	}
	if m.pgss {
		rows, err := m.conn.Query(ctx, `SELECT query, calls, rows FROM pg_stat_statements WHERE dbid = $1`, m.dbid)
		if err != nil {
			return c, fmt.Errorf("pg_stat_statements: %w", err)
		}
		c.Statements = map[string]int64{}
		for rows.Next() {
			var q string
			var calls, n int64
			if err := rows.Scan(&q, &calls, &n); err != nil {
				return c, err
			}
			q = strings.Join(strings.Fields(q), " ")
			c.Statements[q] += calls
			c.Calls += calls
			c.Rows += n
		}
		if err := rows.Err(); err != nil {
			return c, err
		}
	}
	if m.pid > 0 {
		c.CPU, _ = treeCPU(m.pid)
	}
	return c, nil
}

// connections counts the database's sessions by state (active, idle, …).
func (m *pgMonitor) connections(ctx context.Context) (map[string]int, error) {
	rows, err := m.conn.Query(ctx, `SELECT coalesce(state, ''), count(*) FROM pg_stat_activity WHERE datid = $1 GROUP BY 1`, m.dbid)
	if err != nil {
		return nil, fmt.Errorf("pg_stat_activity: %w", err)
	}
	out := map[string]int{}
	for rows.Next() {
		var st string
		var n int
		if err := rows.Scan(&st, &n); err != nil {
			return nil, err
		}
		out[st] = n
	}
	return out, rows.Err()
}

// pgDelta is what the database did between two readings.
type pgDelta struct {
	Calls       int64         `json:"statements"`
	Rows        int64         `json:"rows"`
	XactCommit  int64         `json:"xact_commit"`
	TupReturned int64         `json:"tup_returned"`
	TupFetched  int64         `json:"tup_fetched"`
	TupInserted int64         `json:"tup_inserted"`
	Size        int64         `json:"size_bytes"`
	WALBytes    int64         `json:"wal_bytes"`
	CPU         time.Duration `json:"cpu_ns"`
	// Top lists the statements run most often, "calls × query".
	Top []string `json:"top,omitempty"`
}

func (a pgCounters) delta(b pgCounters) pgDelta {
	d := pgDelta{Calls: b.Calls - a.Calls, Rows: b.Rows - a.Rows, XactCommit: b.XactCommit - a.XactCommit,
		TupReturned: b.TupReturned - a.TupReturned, TupFetched: b.TupFetched - a.TupFetched,
		TupInserted: b.TupInserted - a.TupInserted, Size: b.Size - a.Size, WALBytes: b.WALBytes - a.WALBytes, CPU: b.CPU - a.CPU}
	type qc struct {
		q string
		n int64
	}
	var top []qc
	for q, n := range b.Statements {
		if n -= a.Statements[q]; n > 0 {
			top = append(top, qc{q, n})
		}
	}
	slices.SortFunc(top, func(x, y qc) int { return int(y.n - x.n) })
	for _, t := range top[:min(len(top), 8)] {
		q := t.q
		if len(q) > 90 {
			q = q[:90] + "…"
		}
		d.Top = append(d.Top, fmt.Sprintf("%d × %s", t.n, q))
	}
	return d
}
