package tufrepo

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"sort"
	"strings"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"
	"github.com/theupdateframework/go-tuf/v2/metadata/trustedmetadata"

	"github.com/signetdev/signet/server/store"
	"github.com/signetdev/signet/signer"
	"github.com/signetdev/signet/tufjson"
	"github.com/signetdev/signet/tufrules"
)

// Result describes a stored publish.
type Result struct {
	// Versions maps every stored role (uploaded and server-made) to its new
	// version.
	Versions map[string]int64
}

// Publish validates files (role name → the exact uploaded bytes) against the
// current state of gun and, if every TUF rule holds, stores them together
// with a new server-made snapshot (when the root names the server's snapshot
// key) and a new timestamp, in one store transaction. A refused publish
// stores nothing; the error is an *Error with a Code.
//
// Validation runs against a fresh read of the store and the write is
// decided by the store's version guard, so publishes from any number of
// replicas are safe: a publish that loses a race for a server-made version is
// validated again against the new state (its own roles may still be newer),
// and refused with CodeVersionConflict if they no longer are.
func (r *Repo) Publish(ctx context.Context, gun string, files map[string][]byte) (*Result, error) {
	if len(files) == 0 {
		return nil, refuse(CodeMissingRole, "", "nothing to publish")
	}
	var lastErr error
	for range maxPublishAttempts {
		p, err := r.prepare(ctx, gun, files, false)
		if errors.Is(err, errMoved) {
			lastErr = err
			continue
		}
		if err != nil {
			return nil, err
		}
		if err := p.sign(ctx); err != nil {
			return nil, err
		}
		conflict, err := r.commit(ctx, gun, p)
		if err != nil {
			return nil, err
		}
		if conflict == nil {
			return p.result, nil
		}
		lastErr = conflict
	}
	return nil, &Error{Code: CodeVersionConflict, Msg: "concurrent publishes to this repository kept conflicting; fetch the latest metadata and retry", Err: lastErr}
}

// commit stores a prepared publish. A non-nil conflict means it lost a race
// for a server-made version and stored nothing: validate again.
func (r *Repo) commit(ctx context.Context, gun string, p *prepared) (conflict, err error) {
	err = r.store.UpdateMany(ctx, gun, p.updates)
	r.invalidate(gun)
	switch {
	case errors.Is(err, store.ErrVersionExists):
		return err, nil
	case err != nil:
		return nil, storeErr(fmt.Errorf("tufrepo: publish %s: %w", gun, err))
	}
	r.remember(gun, p)
	r.log.InfoContext(ctx, "published", "gun", gun, "versions", p.result.Versions)
	return nil, nil
}

// remember keeps what a stored publish verified and built for the next
// publish into gun: its root, the snapshot it made, and its uploaded roles
// that delegate (the next publish of one of their delegates reads them as
// stored roles). Both are keyed by the sha256 of the stored bytes.
func (r *Repo) remember(gun string, p *prepared) {
	if p.built != nil {
		r.snapshots.put(gun, p.builtSHA, p.built)
	}
	for _, u := range p.updates {
		if u.Role == metadata.ROOT && p.root != nil {
			r.roots.put(u.SHA256, p.root)
		}
		if t := p.up.decoded[u.Role]; t != nil && t.Meta.Signed.Delegations != nil {
			r.parsed.put(u.SHA256, len(u.Data), t)
		}
	}
}

type prepared struct {
	updates []store.Update
	result  *Result
	// sign completes updates with the server's signatures (snapshot,
	// timestamp); it is called only once the publish is to be stored.
	sign func(context.Context) error
	// roles reports, in partial mode, every uploaded targets-type role and
	// the distinct keys that signed it; complete is false when one of them
	// is below its threshold (then updates must not be stored).
	roles    []StagedRole
	complete bool
	// up is the upload, root the verified root if it brought one; built
	// is the server-made snapshot (builtSHA the sha256 of its bytes): kept
	// by commit for the next publish.
	up       *uploads
	root     *metadata.Metadata[metadata.RootType]
	built    *metadata.Metadata[metadata.SnapshotType]
	builtSHA string
}

// uploads are the parsed files of one publish: each is decoded once, and
// a targets-type role's canonical form (what its signatures sign) is
// computed once, however many delegators verify it.
type uploads struct {
	raw      map[string][]byte
	root     *metadata.Metadata[metadata.RootType]
	snapshot *metadata.Metadata[metadata.SnapshotType]
	targets  map[string]*metadata.Metadata[metadata.TargetsType] // "targets" and delegated roles
	decoded  map[string]*tufjson.Targets                         // the same roles, with their canonical form
}

func parseUploads(files map[string][]byte) (*uploads, error) {
	u := &uploads{raw: files, targets: map[string]*metadata.Metadata[metadata.TargetsType]{}, decoded: map[string]*tufjson.Targets{}}
	for name, data := range files {
		var err error
		switch name {
		case metadata.TIMESTAMP:
			return nil, refuse(CodeUnknownRole, name, "timestamp is made and signed by the server; do not upload it")
		case metadata.ROOT:
			u.root, err = metadata.Root().FromBytes(data)
		case metadata.SNAPSHOT:
			u.snapshot, err = metadata.Snapshot().FromBytes(data)
		default:
			if err := ValidateRoleName(name); err != nil {
				return nil, err
			}
			var t *tufjson.Targets
			if t, err = tufjson.DecodeTargets(data); err == nil {
				u.targets[name], u.decoded[name] = t.Meta, t
			}
		}
		if err != nil {
			return nil, &Error{Code: CodeMalformed, Role: name, Msg: "not valid TUF " + kindOf(name) + " metadata: " + err.Error(), Err: err}
		}
	}
	return u, nil
}

func kindOf(role string) string {
	switch role {
	case metadata.ROOT, metadata.SNAPSHOT, metadata.TIMESTAMP:
		return role
	}
	return metadata.TARGETS
}

// ValidateRoleName accepts the names of uploadable targets-type roles:
// "targets" and delegated role names (tufrules.ValidateRoleName).
func ValidateRoleName(name string) error {
	if name == metadata.TARGETS {
		return nil
	}
	if err := tufrules.ValidateRoleName(name); err != nil {
		return refuse(CodeUnknownRole, name, "not a valid role name: %v", err)
	}
	return nil
}

// prepare validates files and builds everything a publish stores. In
// partial mode (staged changes), uploaded targets-type roles may be signed
// by fewer keys than their threshold, as long as every signature on them
// verifies; prepared.complete says whether all thresholds are met.
func (r *Repo) prepare(ctx context.Context, gun string, files map[string][]byte, partial bool) (*prepared, error) {
	now := r.now().UTC()
	up, err := parseUploads(files)
	if err != nil {
		return nil, err
	}
	s, err := r.newState(ctx, gun, up)
	if err != nil {
		return nil, err
	}

	trusted, err := r.trustRoot(s, now)
	if err != nil {
		return nil, err
	}
	root := trusted.Root
	keys, err := r.serverKeys(ctx, gun, up.root != nil)
	if err != nil {
		return nil, err
	}
	tsKeys, ok := signingKeys(&root.Signed, keys, metadata.TIMESTAMP)
	if !ok && up.root == nil {
		// A key list from before another replica made the key: ask again.
		if keys, err = r.serverKeys(ctx, gun, true); err != nil {
			return nil, err
		}
		tsKeys, ok = signingKeys(&root.Signed, keys, metadata.TIMESTAMP)
	}
	if !ok {
		return nil, refuse(CodeServerKey, metadata.ROOT, "root does not name the server's timestamp key (threshold %d); fetch it with GET /v2/%s/_trust/tuf/timestamp.key and list it under roles.timestamp", root.Signed.Roles[metadata.TIMESTAMP].Threshold, gun)
	}
	snapKeys, serverSnapshot := signingKeys(&root.Signed, keys, metadata.SNAPSHOT)

	verify, err := r.planTargets(s, root)
	if err != nil {
		return nil, err
	}

	res := &Result{Versions: map[string]int64{}}
	var updates []store.Update
	if up.root != nil {
		updates = append(updates, update(metadata.ROOT, up.root.Signed.Version, up.root.Signed.Expires, files[metadata.ROOT]))
	}
	for name, m := range up.targets {
		updates = append(updates, update(name, m.Signed.Version, m.Signed.Expires, files[name]))
	}

	// Validate everything first: the signer is asked for nothing until the
	// publish is known to be good, so a refused publish costs no online
	// signature and the signer's audit log holds only what was stored.
	oldSnap, err := s.snapshot()
	if err != nil {
		return nil, err
	}
	prevTS, err := s.storedVersion(metadata.TIMESTAMP)
	if err != nil {
		return nil, err
	}
	var (
		snap        *metadata.Metadata[metadata.SnapshotType] // server-made, signed last
		snapBytes   []byte                                    // client-made or unchanged
		snapVersion int64
	)
	switch {
	case serverSnapshot && up.snapshot != nil:
		return nil, refuse(CodeInvalid, metadata.SNAPSHOT, "snapshot is managed by the server for this repository (root names the server's snapshot key); do not upload it")
	case serverSnapshot:
		if snap, err = r.nextSnapshot(oldSnap, up, now); err != nil {
			return nil, err
		}
		snapVersion = snap.Signed.Version
		trusted.Timestamp = r.nextTimestamp(prevTS, snapVersion, nil, now)
		trusted.Snapshot = snap
	case up.snapshot != nil:
		if err := checkClientSnapshot(up, oldSnap); err != nil {
			return nil, err
		}
		snapBytes, snapVersion = files[metadata.SNAPSHOT], up.snapshot.Signed.Version
		updates = append(updates, update(metadata.SNAPSHOT, up.snapshot.Signed.Version, up.snapshot.Signed.Expires, snapBytes))
	case len(up.targets) > 0 || oldSnap == nil:
		return nil, refuse(CodeMissingRole, metadata.SNAPSHOT, "root does not name the server's snapshot key, so the publish must include a snapshot signed by the repository's snapshot key")
	default: // a root-only publish: the snapshot stays
		cur, err := s.current(metadata.SNAPSHOT)
		if err != nil {
			return nil, err
		}
		if cur == nil {
			return nil, errMoved
		}
		snapBytes, snapVersion = cur.Data, cur.Version
	}
	if snapBytes != nil {
		// A snapshot signed elsewhere (the developer's, or the stored one
		// under a new root) is verified as a client will verify it.
		trusted.Timestamp = r.nextTimestamp(prevTS, snapVersion, snapBytes, now)
		if _, err := trusted.UpdateSnapshot(snapBytes, false); err != nil {
			return nil, fromTUF(metadata.SNAPSHOT, err)
		}
	}
	if err := checkDelegatedPublished(up, trusted.Snapshot.Signed.Meta); err != nil {
		return nil, err
	}
	if n := len(trusted.Snapshot.Signed.Meta); n > tufrules.MaxRolesPerRepository+1 {
		return nil, refuse(CodeInvalid, metadata.SNAPSHOT, "the repository would hold %d roles (at most %d)", n-1, tufrules.MaxRolesPerRepository)
	}
	p := &prepared{updates: updates, result: res, complete: true, up: up}
	if up.root != nil {
		p.root = root
	}
	if err := s.verifyTargets(trusted, verify, partial, p); err != nil {
		return nil, err
	}
	p.sign = func(ctx context.Context) error {
		return r.signPrepared(ctx, gun, p, snap, snapBytes, snapVersion, snapKeys, tsKeys, prevTS, now)
	}
	return p, nil
}

// signPrepared asks the signer, in one call, for the server-made snapshot
// (if any) and the timestamp of a validated publish, and completes its
// updates. It runs only for a publish that will be stored. A timestamp
// signed together with its snapshot lists the snapshot's version only
// (TUF 1.0 makes its length and hashes optional, as python-tuf's
// repositories do): both are signed by this server's online keys at once,
// and the snapshot's own signature protects its content.
func (r *Repo) signPrepared(ctx context.Context, gun string, p *prepared, snap *metadata.Metadata[metadata.SnapshotType], snapBytes []byte, snapVersion int64, snapKeys, tsKeys []signer.KeyInfo, prevTS int64, now time.Time) error {
	ts := r.nextTimestamp(prevTS, snapVersion, snapBytes, now)
	tsJob, err := job(metadata.TIMESTAMP, ts, tsKeys)
	if err != nil {
		return err
	}
	jobs := []signJob{tsJob}
	if snap != nil {
		snapJob, err := job(metadata.SNAPSHOT, snap, snapKeys)
		if err != nil {
			return err
		}
		jobs = append(jobs, snapJob)
	}
	if err := signAll(ctx, r.signer, gun, jobs...); err != nil {
		return err
	}
	if snap != nil {
		if snapBytes, err = jobs[1].encode(); err != nil {
			return err
		}
		u := update(metadata.SNAPSHOT, snap.Signed.Version, snap.Signed.Expires, snapBytes)
		p.updates = append(p.updates, u)
		p.built, p.builtSHA = snap, u.SHA256
	}
	tsBytes, err := tsJob.encode()
	if err != nil {
		return err
	}
	p.updates = append(p.updates, update(metadata.TIMESTAMP, ts.Signed.Version, ts.Signed.Expires, tsBytes))
	for _, u := range p.updates {
		p.result.Versions[u.Role] = u.Version
	}
	return nil
}

// trustRoot loads the stored root, or the uploaded one (as the next link of
// the chain, or as the first root of a new repository), into a go-tuf
// trusted set.
func (r *Repo) trustRoot(s *state, now time.Time) (*trustedmetadata.TrustedMetadata, error) {
	old, stored := s.head(metadata.ROOT)
	newRoot := s.up.root
	var (
		trusted *trustedmetadata.TrustedMetadata
		err     error
	)
	switch {
	case newRoot == nil && !stored:
		return nil, refuse(CodeMissingRole, metadata.ROOT, "%s has no trust data yet: the first publish must include root", s.gun)
	case newRoot != nil && stored && newRoot.Signed.Version <= old.Version:
		return nil, refuse(CodeVersionConflict, metadata.ROOT, "version %d is not newer than the stored version %d", newRoot.Signed.Version, old.Version)
	case newRoot != nil && !stored:
		if newRoot.Signed.Version < 1 {
			return nil, refuse(CodeBadVersion, metadata.ROOT, "version must be at least 1")
		}
		if trusted, err = trustedmetadata.New(s.up.raw[metadata.ROOT]); err != nil {
			return nil, fromTUF(metadata.ROOT, err)
		}
	default:
		var fetchErr error // the root could not be read (not: it does not verify)
		data := func() ([]byte, error) {
			m, err := s.current(metadata.ROOT)
			if err == nil && m == nil {
				err = errMoved
			}
			if err != nil {
				fetchErr = err
				return nil, err
			}
			return m.Data, nil
		}
		if trusted, err = r.roots.trusted(old.SHA256, data); err != nil {
			if fetchErr != nil {
				return nil, fetchErr
			}
			return nil, fmt.Errorf("tufrepo: stored root of %s v%d does not verify: %w", s.gun, old.Version, err)
		}
		if newRoot != nil {
			if _, err := trusted.UpdateRoot(s.up.raw[metadata.ROOT]); err != nil {
				return nil, fromTUF(metadata.ROOT, err)
			}
		}
	}
	trusted.RefTime = now
	if newRoot != nil {
		if err := tufrules.CheckRoot(&trusted.Root.Signed); err != nil {
			return nil, refuse(CodeInvalid, metadata.ROOT, "%v", err)
		}
	}
	if trusted.Root.Signed.IsExpired(now) {
		return nil, refuse(CodeExpired, metadata.ROOT, "expired on %s", trusted.Root.Signed.Expires.Format(time.RFC3339))
	}
	return trusted, nil
}

// nextSnapshot builds the server-made snapshot: the previous one's meta
// (a role once listed stays listed, so clients never see it vanish) with the
// uploaded roles' new versions, lengths and hashes. prev is shared and
// left as it is.
func (r *Repo) nextSnapshot(prev *metadata.Metadata[metadata.SnapshotType], up *uploads, now time.Time) (*metadata.Metadata[metadata.SnapshotType], error) {
	snap := metadata.Snapshot(now.Add(r.snapshotLifetime))
	snap.Signed.Meta = map[string]*metadata.MetaFiles{}
	if prev != nil {
		snap.Signed.Meta = maps.Clone(prev.Signed.Meta)
		snap.Signed.Version = prev.Signed.Version + 1
	}
	for name, m := range up.targets {
		data := up.raw[name]
		snap.Signed.Meta[metaName(name)] = &metadata.MetaFiles{
			Version: m.Signed.Version,
			Length:  int64(len(data)),
			Hashes:  metadata.Hashes{"sha256": sum256(data)},
		}
	}
	if _, ok := snap.Signed.Meta[metaName(metadata.TARGETS)]; !ok {
		return nil, refuse(CodeMissingRole, metadata.TARGETS, "the first publish must include targets")
	}
	return snap, nil
}

// checkClientSnapshot checks a developer-made snapshot against the stored
// one (old, nil if none) and the upload: newer version, every uploaded role
// at its uploaded version, every other role at its stored version, nothing
// dropped.
func checkClientSnapshot(up *uploads, old *metadata.Metadata[metadata.SnapshotType]) error {
	snap := up.snapshot.Signed
	prev := map[string]*metadata.MetaFiles{}
	if old != nil {
		if snap.Version <= old.Signed.Version {
			return refuse(CodeVersionConflict, metadata.SNAPSHOT, "version %d is not newer than the stored version %d", snap.Version, old.Signed.Version)
		}
		prev = old.Signed.Meta
	}
	for name, m := range up.targets {
		mf, ok := snap.Meta[metaName(name)]
		if !ok {
			return refuse(CodeSnapshot, metadata.SNAPSHOT, "does not list uploaded role %s", name)
		}
		if mf.Version != m.Signed.Version {
			return refuse(CodeSnapshot, metadata.SNAPSHOT, "lists %s version %d, but version %d was uploaded", name, mf.Version, m.Signed.Version)
		}
	}
	for file, mf := range snap.Meta {
		if _, ok := up.targets[strings.TrimSuffix(file, ".json")]; ok {
			continue
		}
		p, ok := prev[file]
		if !ok {
			return refuse(CodeSnapshot, metadata.SNAPSHOT, "lists %s, which is neither stored nor uploaded", file)
		}
		if mf.Version != p.Version {
			return refuse(CodeSnapshot, metadata.SNAPSHOT, "lists %s version %d, but the stored version is %d", file, mf.Version, p.Version)
		}
	}
	for file := range prev {
		if _, ok := snap.Meta[file]; !ok {
			return refuse(CodeSnapshot, metadata.SNAPSHOT, "drops %s, which the previous snapshot lists", file)
		}
	}
	if _, ok := snap.Meta[metaName(metadata.TARGETS)]; !ok {
		return refuse(CodeSnapshot, metadata.SNAPSHOT, "does not list targets.json")
	}
	return nil
}

// nextTimestamp builds the timestamp that follows version prev: for a
// snapshot given as signed bytes it lists their version, length and hash;
// for a server-made snapshot signed with it (snapBytes nil), its version.
func (r *Repo) nextTimestamp(prev, snapVersion int64, snapBytes []byte, now time.Time) *metadata.Metadata[metadata.TimestampType] {
	ts := metadata.Timestamp(now.Add(r.timestampLifetime))
	ts.Signed.Version = prev + 1
	mf := &metadata.MetaFiles{Version: snapVersion}
	if snapBytes != nil {
		mf.Length = int64(len(snapBytes))
		mf.Hashes = metadata.Hashes{"sha256": sum256(snapBytes)}
	}
	ts.Signed.Meta = map[string]*metadata.MetaFiles{metaName(metadata.SNAPSHOT): mf}
	return ts
}

// sortByDepth orders roles so that every delegator comes before the roles
// it delegates to.
func sortByDepth(v []*node) {
	sort.SliceStable(v, func(i, j int) bool { return len(v[i].chain) < len(v[j].chain) })
}
