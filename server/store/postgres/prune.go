package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/signetdev/signet/server/store"
)

var _ store.Pruner = (*Store)(nil)

// GUNs implements store.Pruner.
func (s *Store) GUNs(ctx context.Context, after string, limit int) ([]string, error) {
	rows, err := s.pool.Query(ctx, `SELECT DISTINCT gun FROM current_files WHERE gun > $1 ORDER BY gun LIMIT $2`, after, limit)
	if err != nil {
		return nil, fmt.Errorf("postgres: list repositories: %w", translate(err))
	}
	guns, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("postgres: list repositories: %w", translate(err))
	}
	return guns, nil
}

// PruneVersions implements store.Pruner. It holds the GUN's advisory lock,
// as publishes do.
func (s *Store) PruneVersions(ctx context.Context, gun, role string, keep int, protect []int64) (int64, error) {
	if role == "root" {
		return 0, fmt.Errorf("postgres: prune %s/%s: %w", gun, role, store.ErrPruneRoot)
	}
	if protect == nil {
		protect = []int64{}
	}
	var n int64
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended($1, 0))`, gun); err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, `DELETE FROM tuf_files WHERE gun = $1 AND role = $2
			AND version NOT IN (SELECT version FROM tuf_files WHERE gun = $1 AND role = $2 ORDER BY version DESC LIMIT $3)
			AND version <> ALL($4::bigint[])`, gun, role, max(keep, 1), protect)
		n = tag.RowsAffected()
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("postgres: prune %s/%s: %w", gun, role, translate(err))
	}
	return n, nil
}
