package migrate

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/signetdev/signet/client"
	"github.com/signetdev/signet/notary"
	"github.com/signetdev/signet/tufedit"
)

// state is the Signet repository as it is before the migration.
type state struct {
	exists bool
	// targetsKeys and targetsThreshold are the root's targets role.
	targetsKeys      []string
	targetsThreshold int
	// roles: published role → its tags; versions: → its version.
	roles    map[string]map[string]*metadata.TargetFiles
	versions map[string]int64
	// delegations: delegated role → its delegation and delegator.
	delegations map[string]metadata.DelegatedRole
	delegator   map[string]string
}

// signetState reads the Signet repository (after a full TUF update).
func (m *Migrator) signetState(ctx context.Context, gun string, rep *GUNReport) (*state, error) {
	c := m.o.Client
	st := &state{roles: map[string]map[string]*metadata.TargetFiles{}, versions: map[string]int64{}, delegations: map[string]metadata.DelegatedRole{}, delegator: map[string]string{}}
	if _, err := c.PinnedRoot(gun); errors.Is(err, client.ErrNoTrust) {
		if !m.o.Init {
			return nil, fmt.Errorf("no Signet root is pinned for %s: create the Signet repository with --init (a new root key, Notary's targets key kept), or by a key ceremony (signet root init … --targets-key) and pin its root (signet trust pin)", gun)
		}
		rep.Notes = append(rep.Notes, "the Signet repository does not exist yet: it is created with a new root (engines must pin it)")
		return st, nil
	} else if err != nil {
		return nil, err
	}
	tm, err := c.Update(ctx, gun)
	if err != nil {
		return nil, fmt.Errorf("read the Signet repository: %w", err)
	}
	st.exists = true
	tr := tm.Root.Signed.Roles[metadata.TARGETS]
	st.targetsKeys, st.targetsThreshold = tr.KeyIDs, tr.Threshold
	t := tm.Targets[metadata.TARGETS]
	if t.Signed.Delegations != nil && t.Signed.Delegations.SuccinctRoles != nil {
		return nil, fmt.Errorf("%w: the Signet repository is sharded into hashed bins; migrating into it is not supported (migrate into an unsharded repository, then signet repo shard)", ErrConflict)
	}
	type item struct {
		name string
		m    *metadata.Metadata[metadata.TargetsType]
	}
	stack := []item{{metadata.TARGETS, t}}
	for len(stack) > 0 && len(st.roles) < notary.MaxRoles {
		it := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		st.roles[it.name], st.versions[it.name] = it.m.Signed.Targets, it.m.Signed.Version
		if it.m.Signed.Delegations == nil {
			continue
		}
		var next []item
		for _, d := range it.m.Signed.Delegations.Roles {
			if _, dup := st.delegations[d.Name]; dup {
				continue
			}
			st.delegations[d.Name], st.delegator[d.Name] = d, it.name
			if _, ok := tm.Snapshot.Signed.Meta[d.Name+".json"]; !ok {
				continue
			}
			rm, err := c.Role(ctx, gun, d.Name)
			if err != nil {
				return nil, fmt.Errorf("read Signet role %s: %w", d.Name, err)
			}
			next = append(next, item{d.Name, rm})
		}
		slices.Reverse(next)
		stack = append(stack, next...)
	}
	return st, nil
}

// diff drops from p what the Signet repository already has, and refuses
// what it would contradict.
func (m *Migrator) diff(st *state, p *plan, rep *GUNReport) error {
	var specs []spec
	for _, sp := range p.specs {
		d, ok := st.delegations[sp.Name]
		if !ok {
			specs = append(specs, sp)
			continue
		}
		paths := slices.Clone(d.Paths)
		slices.Sort(paths)
		want := slices.Clone(sp.Paths)
		slices.Sort(want)
		ids := slices.Clone(d.KeyIDs)
		slices.Sort(ids)
		wantIDs := slices.Clone(sp.keyIDs)
		slices.Sort(wantIDs)
		if st.delegator[sp.Name] != sp.delegator || d.Threshold != sp.Threshold || !slices.Equal(paths, want) || !slices.Equal(ids, wantIDs) {
			return fmt.Errorf("%w: Signet's %s already delegates %s with other keys, threshold or paths than Notary's (reconcile with signet delegation edit, or use --flatten)", ErrConflict, st.delegator[sp.Name], sp.Name)
		}
	}
	p.specs = specs
	for role, changes := range p.adds {
		var keep []client.Change
		for _, ch := range changes {
			i := p.rowAt[[2]string{role, ch.Tag}]
			row := &rep.Rows[i]
			sum, _ := hex.DecodeString(ch.Digest.Encoded())
			if cur, ok := st.roles[role][ch.Tag]; ok && bytes.Equal(cur.Hashes["sha256"], sum) && cur.Length == ch.Size {
				row.Outcome = AlreadyThere
				continue
			}
			if other := conflicting(st, ch.Tag, sum, ch.Size); other != "" {
				row.Outcome, row.Reason = Skipped, fmt.Sprintf("Signet's %s already lists %s with another digest; not overwritten (signet unsign it first to migrate Notary's)", other, ch.Tag)
				continue
			}
			keep = append(keep, ch)
		}
		p.adds[role] = keep
	}
	return nil
}

// conflicting names a Signet role that lists tag with another digest or
// size.
func conflicting(st *state, tag string, sum []byte, size int64) string {
	for _, role := range slices.Sorted(maps.Keys(st.roles)) {
		if cur, ok := st.roles[role][tag]; ok && (!bytes.Equal(cur.Hashes["sha256"], sum) || cur.Length != size) {
			return role
		}
	}
	return ""
}

// group is one change set and the Signet roles it covers.
type group struct {
	roles []string
	specs []spec
	// keys: role → the Signet key IDs that may sign it.
	keys map[string][]string
}

func (m *Migrator) publish(ctx context.Context, gun string, repo *notary.Repository, st *state, p *plan, held map[string]bool, rep *GUNReport) error {
	heldCount := func(ids []string) int {
		n := 0
		for _, id := range ids {
			if held[id] {
				n++
			}
		}
		return n
	}
	// Which roles this trust directory can sign now (group a), and which
	// wait for their delegates (group b, staged).
	a, b := group{keys: map[string][]string{}}, group{keys: map[string][]string{}}
	for _, g := range []*group{&a, &b} {
		g.keys[metadata.TARGETS] = st.targetsKeys
		for name, d := range st.delegations {
			g.keys[name] = d.KeyIDs
		}
		for _, sp := range p.specs {
			g.keys[sp.Name] = sp.keyIDs
		}
	}
	inA := map[string]bool{metadata.TARGETS: true}
	for _, sp := range p.specs {
		if inA[sp.delegator] && heldCount(sp.keyIDs) >= sp.Threshold {
			inA[sp.Name] = true
			a.specs = append(a.specs, sp)
		} else {
			b.specs = append(b.specs, sp)
		}
	}
	newRole := map[string]bool{}
	for _, sp := range p.specs {
		newRole[sp.Name] = true
	}
	for _, role := range m.roleOrder(repo, p) {
		if len(p.adds[role]) == 0 && !newRole[role] {
			continue
		}
		inGroupA := inA[role]
		if d, ok := st.delegations[role]; ok && !newRole[role] {
			inGroupA = inA[st.delegator[role]] && heldCount(d.KeyIDs) >= d.Threshold
			if st.delegator[role] != metadata.TARGETS && !inA[st.delegator[role]] {
				inGroupA = heldCount(d.KeyIDs) >= d.Threshold
			}
		}
		if inGroupA {
			a.roles = append(a.roles, role)
		} else {
			b.roles = append(b.roles, role)
		}
	}
	pending := 0
	for _, r := range rep.Rows {
		if r.Outcome == "" {
			pending++
		}
	}
	if pending == 0 && len(p.specs) == 0 {
		return nil // nothing to do: a re-run
	}
	if m.o.DryRun {
		for i := range rep.Rows {
			if r := &rep.Rows[i]; r.Outcome == "" {
				r.Outcome = WouldMigrate
				if slices.Contains(b.roles, r.SignetRole) {
					r.Outcome = "would be " + StagedFor + " " + r.SignetRole
				}
			}
		}
		return nil
	}
	if !st.exists {
		targetsKeys, threshold, err := m.create(ctx, gun, repo, held, rep)
		if err != nil {
			return err
		}
		st.targetsKeys, st.targetsThreshold = targetsKeys, threshold
		for _, id := range targetsKeys {
			held[id] = true
		}
	}
	// Group a: published now (staged only if this directory lacks the
	// targets key), in as few uploads as the server's limits allow.
	var published []map[string][]client.Change
	var stagedA string
	if len(a.roles) > 0 || len(a.specs) > 0 {
		var err error
		if published, stagedA, err = m.publishA(ctx, gun, a, p, heldCount(st.targetsKeys) >= st.targetsThreshold, rep); err != nil {
			return err
		}
	}
	if len(b.roles) > 0 || len(b.specs) > 0 {
		if err := m.stageB(ctx, gun, b, p, st, rep.Publishes == 0, rep); err != nil {
			// Never half-migrated: take back what this run published or
			// staged before.
			var rerr error
			switch {
			case stagedA != "":
				rerr = m.o.Client.Withdraw(ctx, gun, stagedA)
				rep.Staged, rep.StagedFor, rep.Approvers = "", nil, nil
			case len(published) > 0:
				rerr = m.undo(ctx, gun, a, published)
			}
			if rerr != nil {
				return fmt.Errorf("%w; undoing the rest of this run also failed: %v (re-run the migration to complete it)", err, rerr)
			}
			for i := range rep.Rows {
				if o := rep.Rows[i].Outcome; o == Migrated || strings.HasPrefix(o, StagedFor) {
					rep.Rows[i].Outcome = ""
				}
			}
			if stagedA != "" || len(published) > 0 {
				return fmt.Errorf("%w (what this run had published was undone)", err)
			}
			return err
		}
	}
	return nil
}

// roleOrder lists the Signet roles that receive tags: targets, then the
// delegations in Notary's walk.
func (m *Migrator) roleOrder(repo *notary.Repository, p *plan) []string {
	var out []string
	for _, r := range repo.Roles {
		if _, ok := p.adds[r.Name]; ok || r.Name == notary.RoleTargets {
			out = append(out, r.Name)
			continue
		}
		if slices.ContainsFunc(p.specs, func(s spec) bool { return s.Name == r.Name }) {
			out = append(out, r.Name)
		}
	}
	return out
}

// changeSet builds the change set of g with the given tag changes per role.
func changeSet(g group, adds map[string][]client.Change, withSpecs bool) client.ChangeSet {
	var cs client.ChangeSet
	if withSpecs {
		for _, sp := range g.specs {
			ds := sp.DelegationSpec
			cs.Delegations = append(cs.Delegations, client.DelegationEdit{Delegator: sp.delegator, Edit: func(t *metadata.TargetsType) error {
				return tufedit.AddDelegation(t, ds)
			}})
		}
	}
	for _, role := range g.roles {
		if ch := adds[role]; len(ch) > 0 || withSpecs && slices.ContainsFunc(g.specs, func(s spec) bool { return s.Name == role }) {
			cs.Roles = append(cs.Roles, client.RoleChanges{Role: role, Changes: ch})
		}
	}
	return cs
}

// estimate is a generous size of one tag in a TUF targets role.
func estimate(ch client.Change) int { return len(ch.Tag) + 160 }

// publishA publishes group a: in one upload when it fits MaxUploadBytes,
// else in batches; if a later batch fails, the earlier ones are undone by
// a compensating publish, so the repository ends as it was.
// It returns the batches it published, or the ID of the change it staged.
func (m *Migrator) publishA(ctx context.Context, gun string, g group, p *plan, targetsHeld bool, rep *GUNReport) ([]map[string][]client.Change, string, error) {
	c := m.o.Client
	var batches []map[string][]client.Change
	cur, size := map[string][]client.Change{}, 0
	total := 0
	for _, role := range g.roles {
		roleSize := 0
		for _, ch := range p.adds[role] {
			roleSize += estimate(ch)
			if targetsHeld && size+estimate(ch) > m.o.MaxUploadBytes && size > 0 {
				batches = append(batches, cur)
				cur, size = map[string][]client.Change{}, 0
			}
			cur[role] = append(cur[role], ch)
			size += estimate(ch)
			total++
		}
		if roleSize > maxRoleBytes {
			return nil, "", fmt.Errorf("%s would list %d tags (about %d bytes), above signet-server's default role size limit; use --flatten into a repository sharded with signet repo shard", role, len(p.adds[role]), roleSize)
		}
	}
	batches = append(batches, cur)
	done := 0
	stagedID := ""
	var published []map[string][]client.Change
	for i, batch := range batches {
		out, err := c.PublishChangeSet(ctx, gun, changeSet(g, batch, i == 0))
		if err != nil {
			if i > 0 {
				if rerr := m.undo(ctx, gun, g, published); rerr != nil {
					return nil, "", fmt.Errorf("batch %d of %d failed: %w; undoing the earlier batches also failed: %v (re-run the migration to complete it)", i+1, len(batches), err, rerr)
				}
				return nil, "", fmt.Errorf("batch %d of %d failed (the earlier batches were undone): %w", i+1, len(batches), err)
			}
			return nil, "", err
		}
		rep.Publishes++
		published = append(published, batch)
		outcome := Migrated
		if out.Staged != nil {
			stagedID = out.Staged.ID
			rep.Staged, rep.StagedFor, rep.Approvers = out.Staged.ID, out.Staged.Pending(), map[string][]string{}
			for role := range rep.StagedFor {
				rep.Approvers[role] = g.keys[role]
			}
			outcome = StagedFor + " " + strings.Join(slices.Sorted(maps.Keys(out.Staged.Pending())), ", ")
		}
		for role, chs := range batch {
			for _, ch := range chs {
				rep.Rows[p.rowAt[[2]string{role, ch.Tag}]].Outcome = outcome
			}
			done += len(chs)
		}
		if m.o.Progress != nil {
			m.o.Progress(gun, done, total)
		}
	}
	if stagedID != "" {
		published = nil
	}
	return published, stagedID, nil
}

// undo removes what the published batches of group g added: the
// delegations it created (with them, their tags) and its tags in roles
// that existed before.
func (m *Migrator) undo(ctx context.Context, gun string, g group, published []map[string][]client.Change) error {
	var cs client.ChangeSet
	created := map[string]bool{}
	for _, sp := range g.specs {
		created[sp.Name] = true
	}
	for _, sp := range slices.Backward(g.specs) {
		name := sp.Name
		if created[sp.delegator] {
			continue // goes with its delegator
		}
		cs.Delegations = append(cs.Delegations, client.DelegationEdit{Delegator: sp.delegator, Edit: func(t *metadata.TargetsType) error {
			return tufedit.RemoveDelegation(t, name)
		}})
	}
	for _, batch := range published {
		for role, chs := range batch {
			if created[role] {
				continue
			}
			var rm []client.Change
			for _, ch := range chs {
				rm = append(rm, client.Change{Tag: ch.Tag, Remove: true})
			}
			cs.Roles = append(cs.Roles, client.RoleChanges{Role: role, Changes: rm})
		}
	}
	if len(cs.Delegations) == 0 && len(cs.Roles) == 0 {
		return nil
	}
	_, err := m.o.Client.PublishChangeSet(ctx, gun, cs)
	return err
}

// stageB stages group b (roles whose keys this trust directory lacks) as
// one change for their delegates, unless one for the same roles already
// waits and is still current (unchanged is true when this run published
// nothing before it, and every role it is based on is at that version).
func (m *Migrator) stageB(ctx context.Context, gun string, g group, p *plan, st *state, unchanged bool, rep *GUNReport) error {
	c := m.o.Client
	staged, err := c.ListStaged(ctx, gun)
	if err != nil {
		return err
	}
	for _, s := range staged {
		names := map[string]bool{}
		current := unchanged
		for _, r := range s.Roles {
			names[r.Role] = true
			current = current && r.BaseVersion == st.versions[r.Role]
		}
		if slices.ContainsFunc(g.roles, func(r string) bool { return !names[r] }) {
			continue
		}
		if current {
			m.markStaged(g, p, rep, &s, AlreadyThere+" (staged as "+s.ID+")")
			return nil
		}
		rep.Notes = append(rep.Notes, fmt.Sprintf("staged change %s is stale (the repository changed since); a new one replaces it: signet staged withdraw %s %s", s.ID, gun, s.ID))
	}
	out, err := c.PublishChangeSet(ctx, gun, changeSet(g, p.adds, true))
	if err != nil {
		return fmt.Errorf("stage the roles whose keys this trust directory lacks (%s): %w", strings.Join(g.roles, ", "), err)
	}
	rep.Publishes++
	if out.Staged == nil {
		m.markStaged(g, p, rep, nil, Migrated)
		return nil
	}
	m.markStaged(g, p, rep, out.Staged, "")
	return nil
}

func (m *Migrator) markStaged(g group, p *plan, rep *GUNReport, s *client.StagedChange, outcome string) {
	if s != nil {
		rep.Staged, rep.StagedFor = s.ID, s.Pending()
		rep.Approvers = map[string][]string{}
		for role := range rep.StagedFor {
			rep.Approvers[role] = g.keys[role]
		}
	}
	for _, role := range g.roles {
		for _, ch := range p.adds[role] {
			o := outcome
			if o == "" {
				o = StagedFor + " " + role
			}
			rep.Rows[p.rowAt[[2]string{role, ch.Tag}]].Outcome = o
		}
	}
}

// create makes the Signet repository: one new root key (Signet's, in the
// key store; a ceremony can rotate in more), Notary's targets keys as the
// targets role when this directory holds enough of them (else a new
// targets key), and the server's timestamp and snapshot keys. It returns
// the targets key IDs and threshold.
func (m *Migrator) create(ctx context.Context, gun string, repo *notary.Repository, held map[string]bool, rep *GUNReport) ([]string, int, error) {
	c := m.o.Client
	ts, err := c.ServerKey(ctx, gun, metadata.TIMESTAMP)
	if err != nil {
		return nil, 0, err
	}
	snap, err := c.ServerKey(ctx, gun, metadata.SNAPSHOT)
	if err != nil {
		return nil, 0, err
	}
	plan := tufedit.RootPlan{Keys: 1, Threshold: 1, Timestamp: ts, Snapshot: snap, Expires: c.Now().Add(client.RootLifetime)}
	tr := repo.Roles[0]
	var notaryKeys []*metadata.Key
	heldN := 0
	for _, id := range tr.KeyIDs {
		k, err := tufKey(tr.Keys[id])
		if err != nil {
			return nil, 0, err
		}
		kid, _ := k.ID()
		if slices.ContainsFunc(notaryKeys, func(x *metadata.Key) bool { y, _ := x.ID(); return y == kid }) {
			continue
		}
		notaryKeys = append(notaryKeys, k)
		if held[kid] {
			heldN++
		}
	}
	if heldN >= tr.Threshold {
		// Notary's targets keys and threshold carry over.
		plan.TargetsKeys, plan.TargetsThreshold = notaryKeys, tr.Threshold
	} else {
		rep.Notes = append(rep.Notes, fmt.Sprintf("this trust directory holds %d of the %d Notary targets key(s) of %s that must sign: a new Signet targets key was generated", heldN, tr.Threshold, gun))
	}
	unsigned, err := tufedit.NewRoot(ctx, plan, client.KeyGen(c.Keys()))
	if err != nil {
		return nil, 0, err
	}
	root, err := metadata.Root().FromBytes(unsigned)
	if err != nil {
		return nil, 0, fmt.Errorf("migrate: %w", err)
	}
	for _, id := range root.Signed.Roles[metadata.ROOT].KeyIDs {
		s, err := c.Keys().Signer(ctx, id)
		if err != nil {
			return nil, 0, err
		}
		if _, err := root.Sign(s); err != nil {
			return nil, 0, fmt.Errorf("migrate: sign the new root with %s: %w", id, err)
		}
	}
	signed, err := root.ToBytes(true)
	if err != nil {
		return nil, 0, err
	}
	if err := c.RootPublish(ctx, gun, signed); err != nil {
		var se *client.ServerError
		if errors.As(err, &se) && se.Status == http.StatusConflict {
			return nil, 0, fmt.Errorf("%w: the Signet repository %s exists already: pin its root (signet trust pin %s --root root.json) and run again without --init: %w", ErrConflict, gun, gun, err)
		}
		return nil, 0, fmt.Errorf("create the Signet repository: %w", err)
	}
	rep.Created = true
	rep.Publishes++
	tr2 := root.Signed.Roles[metadata.TARGETS]
	return tr2.KeyIDs, tr2.Threshold, nil
}
