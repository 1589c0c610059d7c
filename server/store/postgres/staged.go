package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/signetdev/signet/server/store"
)

var _ store.StagedStore = (*Store)(nil)

// CreateStaged implements store.StagedStore.
func (s *Store) CreateStaged(ctx context.Context, st *store.Staged) error {
	return s.CreateStagedWithin(ctx, st, store.StagedQuota{})
}

// CreateStagedWithin implements store.StagedStore. The counts and the
// insert run under the GUN's advisory lock (and the principal's, taken
// after it, always in this order), so the bounds hold across replicas.
func (s *Store) CreateStagedWithin(ctx context.Context, st *store.Staged, q store.StagedQuota) error {
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var n int
		var gunBytes, principalBytes int64
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended($1, 0))`, st.GUN); err != nil {
			return err
		}
		if err := tx.QueryRow(ctx, `SELECT count(*), COALESCE(SUM(octet_length(data)), 0) FROM staged_changes WHERE gun = $1`, st.GUN).Scan(&n, &gunBytes); err != nil {
			return err
		}
		if n >= store.MaxStagedPerGUN {
			return store.ErrTooManyStaged
		}
		var mine int
		if st.Principal != "" && (q.PerPrincipal > 0 || q.CountPerPrincipal > 0) {
			if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended('principal:' || $1, 0))`, st.Principal); err != nil {
				return err
			}
			if err := tx.QueryRow(ctx, `SELECT COALESCE(SUM(octet_length(data)), 0), count(*) FILTER (WHERE gun = $2) FROM staged_changes WHERE principal = $1`,
				st.Principal, st.GUN).Scan(&principalBytes, &mine); err != nil {
				return err
			}
		}
		if err := store.CheckStagedQuota(q, st, gunBytes, principalBytes, mine); err != nil {
			return err
		}
		return tx.QueryRow(ctx, `INSERT INTO staged_changes (gun, id, revision, data, expires, principal) VALUES ($1, $2, 1, $3, $4, $5)
			ON CONFLICT DO NOTHING RETURNING created_at`, st.GUN, st.ID, st.Data, st.Expires, st.Principal).Scan(&st.CreatedAt)
	})
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return fmt.Errorf("postgres: stage %s/%s: %w", st.GUN, st.ID, store.ErrStagedConflict)
	case errors.Is(err, store.ErrTooManyStaged), errors.Is(err, store.ErrStagedQuota):
		return fmt.Errorf("postgres: stage %s: %w", st.GUN, err)
	case err != nil:
		return fmt.Errorf("postgres: stage %s/%s: %w", st.GUN, st.ID, translate(err))
	}
	st.Revision, st.CreatedAt = 1, st.CreatedAt.UTC()
	return nil
}

// UpdateStaged implements store.StagedStore.
func (s *Store) UpdateStaged(ctx context.Context, st *store.Staged) error {
	tag, err := s.pool.Exec(ctx, `UPDATE staged_changes SET data = $4, revision = revision + 1
		WHERE gun = $1 AND id = $2 AND revision = $3`, st.GUN, st.ID, st.Revision, st.Data)
	if err != nil {
		return fmt.Errorf("postgres: update staged %s/%s: %w", st.GUN, st.ID, translate(err))
	}
	if tag.RowsAffected() == 0 {
		return s.missedStaged(ctx, st.GUN, st.ID, "update")
	}
	st.Revision++
	return nil
}

// missedStaged tells why a guarded write matched no row.
func (s *Store) missedStaged(ctx context.Context, gun, id, what string) error {
	if _, err := s.GetStaged(ctx, gun, id); err != nil {
		return fmt.Errorf("postgres: %s staged %s/%s: %w", what, gun, id, err)
	}
	return fmt.Errorf("postgres: %s staged %s/%s: %w", what, gun, id, store.ErrStagedConflict)
}

const stagedColumns = `gun, id, revision, data, created_at, expires, principal`

func scanStaged(row pgx.Row) (*store.Staged, error) {
	var st store.Staged
	if err := row.Scan(&st.GUN, &st.ID, &st.Revision, &st.Data, &st.CreatedAt, &st.Expires, &st.Principal); err != nil {
		return nil, err
	}
	st.CreatedAt, st.Expires = st.CreatedAt.UTC(), st.Expires.UTC()
	return &st, nil
}

// GetStaged implements store.StagedStore.
func (s *Store) GetStaged(ctx context.Context, gun, id string) (*store.Staged, error) {
	st, err := scanStaged(s.pool.QueryRow(ctx, `SELECT `+stagedColumns+` FROM staged_changes WHERE gun = $1 AND id = $2`, gun, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("postgres: staged %s/%s: %w", gun, id, store.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("postgres: staged %s/%s: %w", gun, id, translate(err))
	}
	return st, nil
}

// ListStaged implements store.StagedStore.
func (s *Store) ListStaged(ctx context.Context, gun string) ([]*store.Staged, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+stagedColumns+` FROM staged_changes WHERE gun = $1 ORDER BY created_at, id`, gun)
	if err != nil {
		return nil, fmt.Errorf("postgres: list staged %s: %w", gun, translate(err))
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*store.Staged, error) { return scanStaged(r) })
	if err != nil {
		return nil, fmt.Errorf("postgres: list staged %s: %w", gun, translate(err))
	}
	return out, nil
}

// DeleteStaged implements store.StagedStore.
func (s *Store) DeleteStaged(ctx context.Context, gun, id string, revision int64) error {
	tag, err := s.pool.Exec(ctx, `DELETE FROM staged_changes WHERE gun = $1 AND id = $2 AND ($3 = 0 OR revision = $3)`, gun, id, revision)
	if err != nil {
		return fmt.Errorf("postgres: delete staged %s/%s: %w", gun, id, translate(err))
	}
	if tag.RowsAffected() == 0 {
		return s.missedStaged(ctx, gun, id, "delete")
	}
	return nil
}

// PublishStaged implements store.StagedStore.
func (s *Store) PublishStaged(ctx context.Context, gun, id string, revision int64, updates []store.Update) error {
	errGone := errors.New("staged change not at revision")
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `DELETE FROM staged_changes WHERE gun = $1 AND id = $2 AND revision = $3`, gun, id, revision)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return errGone
		}
		return updateTx(ctx, tx, gun, updates)
	})
	if errors.Is(err, errGone) {
		return s.missedStaged(ctx, gun, id, "publish")
	}
	if err != nil && errors.Is(translate(err), store.ErrVersionExists) {
		return s.collision(ctx, gun, updates)
	}
	return updateErr(gun, err)
}

// DeleteExpiredStaged implements store.StagedStore.
func (s *Store) DeleteExpiredStaged(ctx context.Context, before time.Time) (int64, error) {
	tag, err := s.pool.Exec(ctx, `DELETE FROM staged_changes WHERE expires < $1`, before)
	if err != nil {
		return 0, fmt.Errorf("postgres: delete expired staged changes: %w", translate(err))
	}
	return tag.RowsAffected(), nil
}
