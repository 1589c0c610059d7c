package tufrepo

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/signetdev/signet/server/store"
)

// NeedsRefresh reports whether a timestamp expiring at expires has reached
// half of its lifetime and should be re-signed.
func (r *Repo) NeedsRefresh(expires time.Time) bool {
	return expires.Sub(r.now()) <= r.timestampLifetime/2
}

// Refresh re-signs gun's timestamp once it has reached half of its lifetime,
// and its server-made snapshot once that has, storing both in one
// transaction. It reports whether it stored anything. When another process
// refreshed first, Refresh stores nothing and returns false, nil: every
// version has exactly one timestamp.
func (r *Repo) Refresh(ctx context.Context, gun string) (bool, error) {
	now := r.now().UTC()
	s, err := r.newState(ctx, gun, nil)
	if err != nil {
		return false, err
	}
	cur := map[string]*store.Meta{}
	for _, role := range []string{metadata.ROOT, metadata.SNAPSHOT, metadata.TIMESTAMP} {
		m, err := s.current(role)
		if errors.Is(err, errMoved) {
			return false, nil // written or deleted meanwhile: nothing to refresh now
		}
		if err != nil {
			return false, err
		}
		if m == nil {
			return false, refuse(CodeNotFound, role, "no trust data for %s", gun)
		}
		cur[role] = m
	}
	tsDue := r.NeedsRefresh(cur[metadata.TIMESTAMP].Expires)
	snapDue := cur[metadata.SNAPSHOT].Expires.Sub(now) <= r.snapshotLifetime/2
	if !tsDue && !snapDue {
		return false, nil
	}
	root, err := metadata.Root().FromBytes(cur[metadata.ROOT].Data)
	if err != nil {
		return false, fmt.Errorf("tufrepo: stored root of %s does not parse: %w", gun, err)
	}
	keys, err := r.serverKeys(ctx, gun, false)
	if err != nil {
		return false, err
	}
	tsKeys, ok := signingKeys(&root.Signed, keys, metadata.TIMESTAMP)
	if !ok {
		if keys, err = r.serverKeys(ctx, gun, true); err != nil {
			return false, err
		}
		tsKeys, ok = signingKeys(&root.Signed, keys, metadata.TIMESTAMP)
	}
	if !ok {
		return false, fmt.Errorf("tufrepo: refresh %s: the server no longer holds the timestamp key its root names", gun)
	}
	snapKeys, serverSnapshot := signingKeys(&root.Signed, keys, metadata.SNAPSHOT)
	snapDue = snapDue && serverSnapshot // a developer-made snapshot is the developer's to renew
	if !tsDue && !snapDue {
		return false, nil
	}
	var (
		updates []store.Update
		jobs    []signJob
		snap    *metadata.Metadata[metadata.SnapshotType]
	)
	snapBytes, snapVersion := cur[metadata.SNAPSHOT].Data, cur[metadata.SNAPSHOT].Version
	if snapDue {
		if snap, err = metadata.Snapshot().FromBytes(snapBytes); err != nil {
			return false, fmt.Errorf("tufrepo: stored snapshot of %s does not parse: %w", gun, err)
		}
		snap.Signed.Version++
		snap.Signed.Expires = now.Add(r.snapshotLifetime)
		snapVersion, snapBytes = snap.Signed.Version, nil // signed with the timestamp
		j, err := job(metadata.SNAPSHOT, snap, snapKeys)
		if err != nil {
			return false, err
		}
		jobs = append(jobs, j)
	}
	ts := r.nextTimestamp(cur[metadata.TIMESTAMP].Version, snapVersion, snapBytes, now)
	tsJob, err := job(metadata.TIMESTAMP, ts, tsKeys)
	if err != nil {
		return false, err
	}
	if err := signAll(ctx, r.signer, gun, append(jobs, tsJob)...); err != nil {
		return false, err
	}
	if snap != nil {
		b, err := jobs[0].encode()
		if err != nil {
			return false, err
		}
		updates = append(updates, update(metadata.SNAPSHOT, snap.Signed.Version, snap.Signed.Expires, b))
	}
	tsBytes, err := tsJob.encode()
	if err != nil {
		return false, err
	}
	updates = append(updates, update(metadata.TIMESTAMP, ts.Signed.Version, ts.Signed.Expires, tsBytes))
	err = r.store.UpdateMany(ctx, gun, updates)
	r.invalidate(gun)
	if err != nil {
		if errors.Is(err, store.ErrVersionExists) {
			return false, nil
		}
		return false, storeErr(fmt.Errorf("tufrepo: refresh %s: %w", gun, err))
	}
	r.log.InfoContext(ctx, "re-signed timestamp", "gun", gun, "version", ts.Signed.Version)
	return true, nil
}

// Sweep refreshes up to limit repositories whose timestamp has reached half
// of its lifetime. It returns how many it refreshed and the first error;
// one repository's failure does not stop the others.
func (r *Repo) Sweep(ctx context.Context, limit int) (int, error) {
	guns, err := r.store.Expiring(ctx, metadata.TIMESTAMP, r.now().Add(r.timestampLifetime/2), limit)
	if err != nil {
		return 0, storeErr(fmt.Errorf("tufrepo: sweep: %w", err))
	}
	var (
		n     int
		first error
	)
	for _, gun := range guns {
		ok, err := r.Refresh(ctx, gun)
		if err != nil {
			r.log.WarnContext(ctx, "timestamp refresh failed", "gun", gun, "err", err)
			if first == nil {
				first = err
			}
			continue
		}
		if ok {
			n++
		}
	}
	return n, first
}
