package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/signetdev/signet/server/store"
)

var _ store.StagedStore = (*Store)(nil)

// CreateStaged implements store.StagedStore.
func (s *Store) CreateStaged(ctx context.Context, st *store.Staged) error {
	return s.CreateStagedWithin(ctx, st, store.StagedQuota{})
}

// CreateStagedWithin implements store.StagedStore.
func (s *Store) CreateStagedWithin(ctx context.Context, st *store.Staged, q store.StagedQuota) error {
	now := s.now().UTC()
	return s.inTx(ctx, "stage "+st.GUN, func(tx *sql.Tx) error {
		var n int
		var gunBytes, principalBytes int64
		if err := tx.QueryRowContext(ctx, `SELECT count(*), COALESCE(SUM(length(data)), 0) FROM staged_changes WHERE gun = ?`, st.GUN).Scan(&n, &gunBytes); err != nil {
			return fmt.Errorf("sqlite: stage %s: %w", st.GUN, err)
		}
		if n >= store.MaxStagedPerGUN {
			return fmt.Errorf("sqlite: stage %s: %w", st.GUN, store.ErrTooManyStaged)
		}
		var mine int
		if st.Principal != "" && (q.PerPrincipal > 0 || q.CountPerPrincipal > 0) {
			if err := tx.QueryRowContext(ctx, `SELECT COALESCE(SUM(length(data)), 0), COALESCE(SUM(gun = ?), 0) FROM staged_changes WHERE principal = ?`,
				st.GUN, st.Principal).Scan(&principalBytes, &mine); err != nil {
				return fmt.Errorf("sqlite: stage %s: %w", st.GUN, err)
			}
		}
		if err := store.CheckStagedQuota(q, st, gunBytes, principalBytes, mine); err != nil {
			return fmt.Errorf("sqlite: stage %s: %w", st.GUN, err)
		}
		res, err := tx.ExecContext(ctx, `INSERT INTO staged_changes (gun, id, revision, data, created_at, expires, principal) VALUES (?, ?, 1, ?, ?, ?, ?)
			ON CONFLICT DO NOTHING`, st.GUN, st.ID, st.Data, nanos(now), nanos(st.Expires), st.Principal)
		if err != nil {
			return fmt.Errorf("sqlite: stage %s/%s: %w", st.GUN, st.ID, err)
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			return fmt.Errorf("sqlite: stage %s/%s: %w", st.GUN, st.ID, store.ErrStagedConflict)
		}
		st.Revision, st.CreatedAt = 1, fromNanos(nanos(now))
		return nil
	})
}

// UpdateStaged implements store.StagedStore.
func (s *Store) UpdateStaged(ctx context.Context, st *store.Staged) error {
	res, err := s.db.ExecContext(ctx, `UPDATE staged_changes SET data = ?, revision = revision + 1 WHERE gun = ? AND id = ? AND revision = ?`,
		st.Data, st.GUN, st.ID, st.Revision)
	if err != nil {
		return fmt.Errorf("sqlite: update staged %s/%s: %w", st.GUN, st.ID, err)
	}
	if err := s.matched(ctx, res, st.GUN, st.ID, "update"); err != nil {
		return err
	}
	st.Revision++
	return nil
}

// matched tells why a guarded write matched no row, if it did not.
func (s *Store) matched(ctx context.Context, res sql.Result, gun, id, what string) error {
	if n, err := res.RowsAffected(); err == nil && n > 0 {
		return nil
	}
	if _, err := s.GetStaged(ctx, gun, id); err != nil {
		return fmt.Errorf("sqlite: %s staged %s/%s: %w", what, gun, id, err)
	}
	return fmt.Errorf("sqlite: %s staged %s/%s: %w", what, gun, id, store.ErrStagedConflict)
}

const stagedColumns = `gun, id, revision, data, created_at, expires, principal`

func scanStaged(scan func(...any) error) (*store.Staged, error) {
	var (
		st               store.Staged
		created, expires int64
	)
	if err := scan(&st.GUN, &st.ID, &st.Revision, &st.Data, &created, &expires, &st.Principal); err != nil {
		return nil, err
	}
	st.CreatedAt, st.Expires = fromNanos(created), fromNanos(expires)
	return &st, nil
}

// GetStaged implements store.StagedStore.
func (s *Store) GetStaged(ctx context.Context, gun, id string) (*store.Staged, error) {
	st, err := scanStaged(s.db.QueryRowContext(ctx, `SELECT `+stagedColumns+` FROM staged_changes WHERE gun = ? AND id = ?`, gun, id).Scan)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("sqlite: staged %s/%s: %w", gun, id, store.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("sqlite: staged %s/%s: %w", gun, id, err)
	}
	return st, nil
}

// ListStaged implements store.StagedStore.
func (s *Store) ListStaged(ctx context.Context, gun string) ([]*store.Staged, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+stagedColumns+` FROM staged_changes WHERE gun = ? ORDER BY created_at, id`, gun)
	if err != nil {
		return nil, fmt.Errorf("sqlite: list staged %s: %w", gun, err)
	}
	defer rows.Close()
	var out []*store.Staged
	for rows.Next() {
		st, err := scanStaged(rows.Scan)
		if err != nil {
			return nil, fmt.Errorf("sqlite: list staged %s: %w", gun, err)
		}
		out = append(out, st)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: list staged %s: %w", gun, err)
	}
	return out, nil
}

// DeleteStaged implements store.StagedStore.
func (s *Store) DeleteStaged(ctx context.Context, gun, id string, revision int64) error {
	res, err := s.db.ExecContext(ctx, `DELETE FROM staged_changes WHERE gun = ? AND id = ? AND (? = 0 OR revision = ?)`, gun, id, revision, revision)
	if err != nil {
		return fmt.Errorf("sqlite: delete staged %s/%s: %w", gun, id, err)
	}
	return s.matched(ctx, res, gun, id, "delete")
}

// PublishStaged implements store.StagedStore.
func (s *Store) PublishStaged(ctx context.Context, gun, id string, revision int64, updates []store.Update) error {
	return s.inTx(ctx, "publish staged "+gun, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM staged_changes WHERE gun = ? AND id = ? AND revision = ?`, gun, id, revision)
		if err != nil {
			return fmt.Errorf("sqlite: publish staged %s/%s: %w", gun, id, err)
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			// Decided inside the transaction: the immediate lock is held.
			var exists int
			if err := tx.QueryRowContext(ctx, `SELECT 1 FROM staged_changes WHERE gun = ? AND id = ?`, gun, id).Scan(&exists); errors.Is(err, sql.ErrNoRows) {
				return fmt.Errorf("sqlite: publish staged %s/%s: %w", gun, id, store.ErrNotFound)
			}
			return fmt.Errorf("sqlite: publish staged %s/%s: %w", gun, id, store.ErrStagedConflict)
		}
		return s.updateTx(ctx, tx, gun, updates)
	})
}

// DeleteExpiredStaged implements store.StagedStore.
func (s *Store) DeleteExpiredStaged(ctx context.Context, before time.Time) (int64, error) {
	res, err := s.db.ExecContext(ctx, `DELETE FROM staged_changes WHERE expires < ?`, nanos(before))
	if err != nil {
		return 0, fmt.Errorf("sqlite: delete expired staged changes: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("sqlite: delete expired staged changes: %w", err)
	}
	return n, nil
}
