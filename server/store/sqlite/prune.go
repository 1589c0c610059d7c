package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"

	"github.com/signetdev/signet/server/store"
)

var _ store.Pruner = (*Store)(nil)

// GUNs implements store.Pruner.
func (s *Store) GUNs(ctx context.Context, after string, limit int) ([]string, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT DISTINCT gun FROM current_files WHERE gun > ? ORDER BY gun LIMIT ?`, after, limit)
	if err != nil {
		return nil, fmt.Errorf("sqlite: list repositories: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var g string
		if err := rows.Scan(&g); err != nil {
			return nil, fmt.Errorf("sqlite: list repositories: %w", err)
		}
		out = append(out, g)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: list repositories: %w", err)
	}
	return out, nil
}

// PruneVersions implements store.Pruner.
func (s *Store) PruneVersions(ctx context.Context, gun, role string, keep int, protect []int64) (int64, error) {
	if role == "root" {
		return 0, fmt.Errorf("sqlite: prune %s/%s: %w", gun, role, store.ErrPruneRoot)
	}
	if protect == nil {
		protect = []int64{}
	}
	list, err := json.Marshal(protect)
	if err != nil {
		return 0, err
	}
	var n int64
	err = s.inTx(ctx, "prune "+gun+"/"+role, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM tuf_files WHERE gun = ? AND role = ?
			AND version NOT IN (SELECT version FROM tuf_files WHERE gun = ? AND role = ? ORDER BY version DESC LIMIT ?)
			AND version NOT IN (SELECT value FROM json_each(?))`, gun, role, gun, role, max(keep, 1), string(list))
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("sqlite: prune %s/%s: %w", gun, role, err)
	}
	return n, nil
}
