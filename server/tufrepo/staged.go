package tufrepo

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"
	"github.com/theupdateframework/go-tuf/v2/metadata/trustedmetadata"

	"github.com/signetdev/signet/server/store"
	"github.com/signetdev/signet/tufjson"
	"github.com/signetdev/signet/tufrules"
)

// K-of-n signing of targets and delegated roles. A staged change is a
// publish that is valid in every respect except that some of its roles
// carry fewer signatures than their threshold. The first signer stages it;
// others fetch it, check what it changes, sign the same "signed" object and
// approve; the approval that completes every threshold publishes the change
// (with the usual full validation) and removes it in one store transaction.
//
// A staged change records the stored version of each role it is based on;
// once any of them changes, the change is stale and refused: it would
// otherwise undo the publish that happened in between. Root changes are not
// staged: their signatures are collected offline (signet root sign).

// DefaultStagedLifetime bounds how long a staged change waits for
// signatures; it never outlives the metadata it holds.
const DefaultStagedLifetime = 7 * 24 * time.Hour

// StagedRole is one role of a staged change and its signatures so far.
type StagedRole struct {
	Role        string
	Version     int64
	BaseVersion int64
	Threshold   int
	// SignedBy lists the key IDs whose signatures verify, one per
	// distinct public key, sorted.
	SignedBy []string
}

// StagedChange is a staged change (the server answers it as
// api.StagedChange).
type StagedChange struct {
	ID      string
	Created time.Time
	Expires time.Time
	Roles   []StagedRole
	// Files are the partially signed roles (role name → metadata JSON);
	// only set by GetStaged.
	Files map[string][]byte
	// Published is set when the change met every threshold and was
	// published: every stored role and its new version.
	Published map[string]int64
}

// stagedDoc is what the store keeps of a staged change. Its JSON is a
// stored format (stagedDocJSON): renaming a field there breaks the staged
// changes of every running deployment.
type stagedDoc struct {
	Files map[string][]byte
	Roles []StagedRole
}

type stagedDocJSON struct {
	Files map[string][]byte `json:"files"`
	Roles []stagedRoleJSON  `json:"roles"`
}

type stagedRoleJSON struct {
	Role        string   `json:"role"`
	Version     int64    `json:"version"`
	BaseVersion int64    `json:"base_version"`
	Threshold   int      `json:"threshold"`
	SignedBy    []string `json:"signed_by"`
}

func (d stagedDoc) MarshalJSON() ([]byte, error) {
	j := stagedDocJSON{Files: d.Files, Roles: make([]stagedRoleJSON, len(d.Roles))}
	for i, r := range d.Roles {
		j.Roles[i] = stagedRoleJSON(r)
	}
	return json.Marshal(j)
}

func (d *stagedDoc) UnmarshalJSON(b []byte) error {
	var j stagedDocJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	d.Files, d.Roles = j.Files, make([]StagedRole, len(j.Roles))
	for i, r := range j.Roles {
		d.Roles[i] = StagedRole(r)
	}
	return nil
}

// WithStagedLifetime sets how long staged changes wait for signatures.
func WithStagedLifetime(d time.Duration) Option { return func(r *Repo) { r.stagedLifetime = d } }

// checkStageable accepts uploads of targets-type roles only.
func checkStageable(files map[string][]byte) error {
	if len(files) == 0 {
		return refuse(CodeMissingRole, "", "nothing to stage")
	}
	for role := range files {
		switch role {
		case metadata.ROOT:
			return refuse(CodeUnsupported, role, "root changes are not staged: collect root signatures offline (signet root sign) and publish the signed root")
		case metadata.SNAPSHOT, metadata.TIMESTAMP:
			return refuse(CodeUnsupported, role, "staged changes hold targets and delegated roles only; snapshot and timestamp are made by the server")
		}
	}
	return nil
}

// Stage validates files like Publish, except that roles may be signed by
// fewer keys than their threshold. If every threshold is met anyway, the
// files are published at once (Published is set); otherwise the change is
// kept for approvals.
func (r *Repo) Stage(ctx context.Context, gun string, files map[string][]byte) (*StagedChange, error) {
	ss := r.store
	if err := checkStageable(files); err != nil {
		return nil, err
	}
	for range maxPublishAttempts {
		p, err := r.prepare(ctx, gun, files, true)
		if err != nil {
			return nil, err
		}
		if p.complete {
			if err := p.sign(ctx); err != nil {
				return nil, err
			}
			conflict, err := r.commit(ctx, gun, p)
			if err != nil {
				return nil, err
			}
			if conflict != nil {
				continue
			}
			return &StagedChange{Roles: p.roles, Published: p.result.Versions}, nil
		}
		if err := requireSignature(p.roles); err != nil { // stagelimits.go
			return nil, err
		}
		data, err := json.Marshal(stagedDoc{Files: files, Roles: p.roles})
		if err != nil {
			return nil, fmt.Errorf("tufrepo: encode staged change: %w", err)
		}
		st := &store.Staged{GUN: gun, ID: newStagedID(), Data: data, Expires: r.stagedExpiry(files)}
		if err := ss.CreateStaged(ctx, st); err != nil {
			if errors.Is(err, store.ErrTooManyStaged) {
				return nil, refuse(CodeTooManyStaged, "", "%s already holds %d staged changes; approve or withdraw some first", gun, store.MaxStagedPerGUN)
			}
			return nil, storeErr(fmt.Errorf("tufrepo: stage %s: %w", gun, err))
		}
		r.log.InfoContext(ctx, "staged", "gun", gun, "id", st.ID, "roles", p.roles)
		return &StagedChange{ID: st.ID, Created: st.CreatedAt, Expires: st.Expires, Roles: p.roles}, nil
	}
	return nil, refuse(CodeVersionConflict, "", "concurrent publishes to this repository kept conflicting; retry")
}

// stagedExpiry is the end of the staged lifetime, or the earliest expiry
// of the staged metadata if that comes first.
func (r *Repo) stagedExpiry(files map[string][]byte) time.Time {
	exp := r.now().Add(r.stagedLifetime)
	for _, data := range files {
		if m, err := metadata.Targets().FromBytes(data); err == nil && m.Signed.Expires.Before(exp) {
			exp = m.Signed.Expires
		}
	}
	return exp.UTC()
}

func newStagedID() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b) // never fails (crypto/rand)
	return hex.EncodeToString(b)
}

// loadStaged reads a staged change that has not expired.
func (r *Repo) loadStaged(ctx context.Context, ss store.StagedStore, gun, id string) (*store.Staged, *stagedDoc, error) {
	st, err := ss.GetStaged(ctx, gun, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil, refuse(CodeNotFound, "", "no staged change %s in %s (it may have been published or withdrawn)", id, gun)
	}
	if err != nil {
		return nil, nil, storeErr(fmt.Errorf("tufrepo: staged change %s/%s: %w", gun, id, err))
	}
	if !r.now().Before(st.Expires) {
		return nil, nil, refuse(CodeStagedExpired, "", "staged change %s expired on %s; stage the change again", id, st.Expires.Format(time.RFC3339))
	}
	var doc stagedDoc
	if err := json.Unmarshal(st.Data, &doc); err != nil {
		return nil, nil, fmt.Errorf("tufrepo: staged change %s/%s does not decode: %w", gun, id, err)
	}
	return st, &doc, nil
}

// GetStaged returns one staged change with its files.
func (r *Repo) GetStaged(ctx context.Context, gun, id string) (*StagedChange, error) {
	ss := r.store
	st, doc, err := r.loadStaged(ctx, ss, gun, id)
	if err != nil {
		return nil, err
	}
	return &StagedChange{ID: st.ID, Created: st.CreatedAt, Expires: st.Expires, Roles: doc.Roles, Files: doc.Files}, nil
}

// ListStaged returns gun's staged changes that have not expired, oldest
// first, without their files.
func (r *Repo) ListStaged(ctx context.Context, gun string) ([]StagedChange, error) {
	ss := r.store
	list, err := ss.ListStaged(ctx, gun)
	if err != nil {
		return nil, storeErr(fmt.Errorf("tufrepo: list staged changes of %s: %w", gun, err))
	}
	out := []StagedChange{}
	now := r.now()
	for _, st := range list {
		if !now.Before(st.Expires) {
			continue
		}
		var doc stagedDoc
		if err := json.Unmarshal(st.Data, &doc); err != nil {
			return nil, fmt.Errorf("tufrepo: staged change %s/%s does not decode: %w", gun, st.ID, err)
		}
		out = append(out, StagedChange{ID: st.ID, Created: st.CreatedAt, Expires: st.Expires, Roles: doc.Roles})
	}
	return out, nil
}

// WithdrawStaged removes a staged change.
func (r *Repo) WithdrawStaged(ctx context.Context, gun, id string) error {
	err := r.store.DeleteStaged(ctx, gun, id, 0)
	if errors.Is(err, store.ErrNotFound) {
		return refuse(CodeNotFound, "", "no staged change %s in %s", id, gun)
	}
	if err != nil {
		return storeErr(fmt.Errorf("tufrepo: withdraw %s/%s: %w", gun, id, err))
	}
	return nil
}

// Approve adds the signatures in files (roles of the staged change, their
// "signed" objects unchanged) to staged change id. When every role then
// meets its threshold, the change is published and removed atomically and
// Published is set. Every signature must verify with a key of its role.
func (r *Repo) Approve(ctx context.Context, gun, id string, files map[string][]byte) (*StagedChange, error) {
	ss := r.store
	if err := checkStageable(files); err != nil {
		return nil, err
	}
	for range maxPublishAttempts {
		st, doc, err := r.loadStaged(ctx, ss, gun, id)
		if err != nil {
			return nil, err
		}
		merged, err := mergeSignatures(doc.Files, files)
		if err != nil {
			return nil, err
		}
		if err := r.checkBase(ctx, gun, id, doc.Roles); err != nil {
			return nil, err
		}
		p, err := r.prepare(ctx, gun, merged, true)
		if err != nil {
			return nil, err
		}
		// prepare read the store again: what it validated against must
		// still be what the change was staged on (a publish may have landed
		// since checkBase).
		for _, pr := range p.roles {
			if err := checkStale(id, doc.Roles, pr.Role, pr.BaseVersion); err != nil {
				return nil, err
			}
		}
		change := &StagedChange{ID: id, Created: st.CreatedAt, Expires: st.Expires, Roles: p.roles}
		if p.complete {
			if err := p.sign(ctx); err != nil {
				return nil, err
			}
			err := ss.PublishStaged(ctx, gun, id, st.Revision, p.updates)
			r.invalidate(gun)
			switch {
			case err == nil:
				change.Published = p.result.Versions
				r.log.InfoContext(ctx, "published staged change", "gun", gun, "id", id, "versions", p.result.Versions)
				return change, nil
			case errors.Is(err, store.ErrStagedConflict), errors.Is(err, store.ErrVersionExists), errors.Is(err, store.ErrNotFound):
				continue // someone approved or published meanwhile: look again
			default:
				return nil, storeErr(fmt.Errorf("tufrepo: publish staged change %s/%s: %w", gun, id, err))
			}
		}
		doc.Files, doc.Roles = merged, change.Roles
		if st.Data, err = json.Marshal(doc); err != nil {
			return nil, fmt.Errorf("tufrepo: encode staged change: %w", err)
		}
		err = ss.UpdateStaged(ctx, st)
		switch {
		case err == nil:
			r.log.InfoContext(ctx, "approved staged change", "gun", gun, "id", id, "roles", change.Roles)
			return change, nil
		case errors.Is(err, store.ErrStagedConflict), errors.Is(err, store.ErrNotFound):
			continue
		default:
			return nil, storeErr(fmt.Errorf("tufrepo: approve %s/%s: %w", gun, id, err))
		}
	}
	return nil, refuse(CodeVersionConflict, "", "concurrent approvals of staged change %s kept conflicting; retry", id)
}

// checkBase refuses a staged change once any of its roles was published
// since it was staged. It runs before validation, so that a stale change
// gets this message rather than a version conflict.
func (r *Repo) checkBase(ctx context.Context, gun, id string, roles []StagedRole) error {
	for _, sr := range roles {
		cur, err := r.store.GetCurrent(ctx, gun, sr.Role)
		var v int64
		switch {
		case err == nil:
			v = cur.Version
		case !errors.Is(err, store.ErrNotFound):
			return storeErr(fmt.Errorf("tufrepo: read %s/%s: %w", gun, sr.Role, err))
		}
		if err := checkStale(id, roles, sr.Role, v); err != nil {
			return err
		}
	}
	return nil
}

// checkStale refuses role of staged change id if its stored version is no
// longer the one the change is based on.
func checkStale(id string, roles []StagedRole, role string, stored int64) error {
	for _, sr := range roles {
		if sr.Role == role && sr.BaseVersion != stored {
			return refuse(CodeStaleStaged, role, "staged change %s is based on version %d, but version %d has been published since; fetch the latest metadata and stage the change again", id, sr.BaseVersion, stored)
		}
	}
	return nil
}

// mergeSignatures adds the signatures of each approved role to the staged
// one. The approved "signed" object must be exactly the staged one.
func mergeSignatures(staged, approved map[string][]byte) (map[string][]byte, error) {
	merged := make(map[string][]byte, len(staged))
	for role, data := range staged {
		merged[role] = data
	}
	for role, data := range approved {
		base, ok := staged[role]
		if !ok {
			return nil, refuse(CodeInvalid, role, "is not part of this staged change")
		}
		st, err := tufjson.DecodeTargets(base)
		if err != nil {
			return nil, fmt.Errorf("tufrepo: staged %s does not parse: %w", role, err)
		}
		at, err := tufjson.DecodeTargets(data)
		if err != nil {
			return nil, &Error{Code: CodeMalformed, Role: role, Msg: "not valid TUF targets metadata: " + err.Error(), Err: err}
		}
		sm, am := st.Meta, at.Meta
		a, errA := at.Canonical()
		b, errB := st.Canonical()
		if err := errors.Join(errA, errB); err != nil {
			return nil, &Error{Code: CodeMalformed, Role: role, Msg: err.Error(), Err: err}
		}
		if string(a) != string(b) {
			return nil, refuse(CodeInvalid, role, "differs from the staged change; sign the staged metadata as it is (signet approve does)")
		}
		added := false
		for _, sig := range am.Signatures {
			if !slices.ContainsFunc(sm.Signatures, func(s metadata.Signature) bool { return s.KeyID == sig.KeyID }) {
				sm.Signatures = append(sm.Signatures, sig)
				added = true
			}
		}
		if !added {
			continue
		}
		if merged[role], err = sm.ToBytes(false); err != nil {
			return nil, fmt.Errorf("tufrepo: encode %s: %w", role, err)
		}
	}
	return merged, nil
}

// verifyPartial checks an uploaded role of a staged change: every signature
// on it must verify with a key of the role. If the signatures meet the
// threshold it returns true and go-tuf verifies the role as usual;
// otherwise it checks what go-tuf would check after the signatures (the
// snapshot's entry for the role) and trusts the role for its delegations.
func (s *state) verifyPartial(trusted *trustedmetadata.TrustedMetadata, n *node, data []byte, p *prepared) (bool, error) {
	t := s.up.decoded[n.name]
	m := t.Meta
	keys, ids, threshold, err := delegationOf(trusted, n)
	if err != nil {
		return false, err
	}
	signedBy, err := signers(n.name, keys, ids, t)
	if err != nil {
		return false, err
	}
	base, err := s.storedVersion(n.name)
	if err != nil {
		return false, err
	}
	p.roles = append(p.roles, StagedRole{Role: n.name, Version: m.Signed.Version, BaseVersion: base, Threshold: threshold, SignedBy: signedBy})
	if len(signedBy) >= threshold {
		return true, nil
	}
	// A role may carry no signature yet: an owner who revokes a
	// delegate's key stages the delegated role re-signed by nobody, for the
	// remaining delegates to approve (no wedged repository, Notary #1500).
	p.complete = false
	mf := trusted.Snapshot.Signed.Meta[metaName(n.name)]
	if mf == nil || mf.Version != m.Signed.Version {
		return false, refuse(CodeSnapshot, n.name, "version %d is not the one the snapshot lists", m.Signed.Version)
	}
	if err := mf.VerifyLengthHashes(data); err != nil {
		return false, fromTUF(n.name, err)
	}
	trusted.Targets[n.name] = m
	return false, nil
}

// delegationOf returns the keys, key IDs and threshold n's delegator gives
// it.
func delegationOf(trusted *trustedmetadata.TrustedMetadata, n *node) (map[string]*metadata.Key, []string, int, error) {
	if n.delegator == metadata.ROOT {
		role := trusted.Root.Signed.Roles[metadata.TARGETS]
		return trusted.Root.Signed.Keys, role.KeyIDs, role.Threshold, nil
	}
	if d := trusted.Targets[n.delegator]; d != nil {
		if ids, threshold, ok := tufrules.Delegation(d.Signed.Delegations, n.name); ok {
			return d.Signed.Delegations.Keys, ids, threshold, nil
		}
	}
	return nil, nil, 0, refuse(CodeUnknownRole, n.name, "%s does not delegate to it", n.delegator)
}

// signers returns the key IDs, one per distinct public key, whose
// signatures on t verify; a signature by any other key, or one that does
// not verify, refuses the upload. Each signature is checked as go-tuf's
// VerifyDelegate checks it (tufjson, over t's canonical form computed
// once) against a delegation to that key alone.
func signers(role string, keys map[string]*metadata.Key, ids []string, t *tufjson.Targets) ([]string, error) {
	seen := map[string]bool{}
	var out []string
	for _, sig := range t.Meta.Signatures {
		k := keys[sig.KeyID]
		if k == nil || !slices.Contains(ids, sig.KeyID) {
			return nil, refuse(CodeSignature, role, "is signed by key %s, which is not a key of the role", sig.KeyID)
		}
		one := metadata.Targets(time.Time{})
		one.Signed.Delegations = &metadata.Delegations{
			Keys:  map[string]*metadata.Key{sig.KeyID: k},
			Roles: []metadata.DelegatedRole{{Name: role, KeyIDs: []string{sig.KeyID}, Threshold: 1, Paths: []string{"*"}}},
		}
		single, err := t.WithSignatures([]metadata.Signature{sig})
		if err == nil {
			err = tufjson.VerifyDelegate(one, role, single)
		}
		if err != nil {
			return nil, refuse(CodeSignature, role, "the signature by key %s does not verify", sig.KeyID)
		}
		fp, err := tufrules.Fingerprint(k)
		if err != nil {
			return nil, refuse(CodeInvalid, role, "key %s does not parse: %v", sig.KeyID, err)
		}
		if !seen[fp] {
			seen[fp] = true
			out = append(out, sig.KeyID)
		}
	}
	slices.Sort(out)
	return out, nil
}

// SweepStaged removes staged changes that expired before now.
func (r *Repo) SweepStaged(ctx context.Context) (int64, error) {
	ss := r.store
	n, err := ss.DeleteExpiredStaged(ctx, r.now())
	if err != nil {
		return 0, storeErr(fmt.Errorf("tufrepo: sweep staged changes: %w", err))
	}
	return n, nil
}
