package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/signetdev/signet/server/store"
)

// Retention. Every version of every role is kept until pruned; Prune
// applies this rule, per repository:
//
//   - every root version is kept (clients walk the chain of roots from
//     the one they trust, 1.root.json onwards);
//   - of timestamp and snapshot, the newest keep versions, and every
//     snapshot version one of the kept timestamps lists;
//   - of targets and every delegated role, the newest keep versions, and
//     every version one of the kept snapshots lists.
//
// So what a client can be sent to from any kept timestamp (a proxy may
// still serve one for its max-age) is still there. Roles no kept snapshot
// lists any more (a removed delegation) are left alone. Other replicas may
// serve a pruned version from memory until they evict it.

// DefaultKeepVersions is how many versions of each role Prune keeps
// besides what the rule above protects.
const DefaultKeepVersions = 10

// PruneResult counts what Prune removed.
type PruneResult struct {
	Repositories int
	Removed      int64
}

// Prune applies the retention rule to every repository of st, keeping the
// newest keep versions of each role: at least 2, so that a publish racing
// the prune cannot remove the snapshot a just-fetched timestamp lists. It stops at the first
// error, after logging what it removed so far.
func Prune(ctx context.Context, st store.MetaStore, keep int, log *slog.Logger) (PruneResult, error) {
	var res PruneResult
	p, ok := st.(store.Pruner)
	if !ok {
		return res, errors.New("server: this store cannot prune")
	}
	keep = max(keep, 2)
	after := ""
	for {
		guns, err := p.GUNs(ctx, after, 500)
		if err != nil {
			return res, err
		}
		if len(guns) == 0 {
			return res, nil
		}
		for _, gun := range guns {
			n, err := pruneGUN(ctx, st, p, gun, keep)
			res.Removed += n
			if err != nil {
				return res, fmt.Errorf("server: prune %s: %w", gun, err)
			}
			res.Repositories++
			if n > 0 {
				log.InfoContext(ctx, "pruned", "gun", gun, "removed", n)
			}
		}
		after = guns[len(guns)-1]
	}
}

// newest returns the newest keep versions of gun's role that are stored.
func newest[T metadata.Roles](ctx context.Context, st store.MetaStore, gun, role string, keep int, parse func([]byte) (*metadata.Metadata[T], error)) ([]*metadata.Metadata[T], error) {
	cur, err := st.GetCurrent(ctx, gun, role)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []*metadata.Metadata[T]
	for v := cur.Version; v > 0 && v > cur.Version-int64(keep); v-- {
		m, err := st.GetVersion(ctx, gun, role, v)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		md, err := parse(m.Data)
		if err != nil {
			return nil, fmt.Errorf("%s v%d does not parse: %w", role, v, err)
		}
		out = append(out, md)
	}
	return out, nil
}

func pruneGUN(ctx context.Context, st store.MetaStore, p store.Pruner, gun string, keep int) (int64, error) {
	timestamps, err := newest(ctx, st, gun, metadata.TIMESTAMP, keep, func(b []byte) (*metadata.Metadata[metadata.TimestampType], error) {
		return metadata.Timestamp().FromBytes(b)
	})
	if err != nil {
		return 0, err
	}
	snapshots, err := newest(ctx, st, gun, metadata.SNAPSHOT, keep, func(b []byte) (*metadata.Metadata[metadata.SnapshotType], error) {
		return metadata.Snapshot().FromBytes(b)
	})
	if err != nil {
		return 0, err
	}
	// Snapshots the kept timestamps list are kept too, and so is what
	// they list.
	var snapProtect []int64
	for _, ts := range timestamps {
		if mf := ts.Signed.Meta[metadata.SNAPSHOT+".json"]; mf != nil {
			snapProtect = append(snapProtect, mf.Version)
			if !containsVersion(snapshots, mf.Version) {
				m, err := st.GetVersion(ctx, gun, metadata.SNAPSHOT, mf.Version)
				if err == nil {
					if sm, err := metadata.Snapshot().FromBytes(m.Data); err == nil {
						snapshots = append(snapshots, sm)
					}
				}
			}
		}
	}
	protect := map[string][]int64{}
	for _, sm := range snapshots {
		for name, mf := range sm.Signed.Meta {
			role := strings.TrimSuffix(name, ".json")
			protect[role] = append(protect[role], mf.Version)
		}
	}
	var removed int64
	prune := func(role string, protect []int64) error {
		n, err := p.PruneVersions(ctx, gun, role, keep, protect)
		removed += n
		return err
	}
	if err := prune(metadata.TIMESTAMP, nil); err != nil {
		return removed, err
	}
	if len(snapshots) > 0 {
		if err := prune(metadata.SNAPSHOT, snapProtect); err != nil {
			return removed, err
		}
	}
	for role, versions := range protect {
		if role == metadata.ROOT {
			continue
		}
		if err := prune(role, versions); err != nil {
			return removed, err
		}
	}
	return removed, nil
}

func containsVersion(list []*metadata.Metadata[metadata.SnapshotType], v int64) bool {
	for _, m := range list {
		if m.Signed.Version == v {
			return true
		}
	}
	return false
}
