// Package migrate moves what Notary v1 / Docker Content Trust vouched for
// into Signet: it verifies a GUN's Notary trust data with package notary,
// maps every tag to a Signet target with the same manifest digest and size,
// mirrors the delegation structure (targets/releases and per-signer roles,
// with the same public keys) or flattens it into targets, imports Notary's
// encrypted private keys into Signet's key store, and publishes through the
// client library: one upload per repository where the server's limits
// allow, and a staged change for roles whose keys the trust directory
// lacks.
//
// It owns the mapping and the report; it must not import server packages
// or reach into the client's internals (only client's exported API). A
// Migrator is not safe for concurrent use; run one per process.
package migrate

import (
	"context"
	"crypto"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"slices"
	"strings"

	"github.com/opencontainers/go-digest"
	"github.com/theupdateframework/go-tuf/v2/metadata"
	"github.com/youmark/pkcs8"

	"github.com/signetdev/signet/client"
	"github.com/signetdev/signet/notary"
	"github.com/signetdev/signet/tufedit"
)

// Outcomes of a row.
const (
	Migrated     = "migrated"
	AlreadyThere = "already there"
	WouldMigrate = "would migrate"
	Skipped      = "skipped"
	StagedFor    = "staged for"
)

// DefaultMaxUploadBytes is the default budget of one publish: well under
// signet-server's default --max-body (16 MiB) and --max-role-size (5 MB
// per role is checked separately).
const DefaultMaxUploadBytes = 4 << 20

// maxRoleBytes is signet-server's default --max-role-size.
const maxRoleBytes = 5_000_000

// Options configure a Migrator.
type Options struct {
	// Client publishes into Signet; its key store receives imported keys.
	Client *client.Client
	// Source serves the Notary metadata.
	Source notary.Source
	// Anchor returns the trust anchor of a GUN (the root the Notary client
	// pinned, a root file or certificate, or TOFU).
	Anchor func(gun string) (notary.Anchor, error)
	// Verify options other than the anchor (clock, AllowExpired).
	Verify notary.Options
	// Keys are Notary's encrypted private keys (a trust directory's
	// private/), and NotaryPassphrase opens them by role ("root",
	// "targets", "snapshot" or "delegation").
	Keys             []notary.PrivateKeyFile
	NotaryPassphrase func(role string) ([]byte, error)
	// SignetPassphrase is the passphrase function of the Signet key store
	// (imported keys are stored encrypted under it).
	SignetPassphrase client.PassphraseFunc
	// Flatten signs every tag into targets instead of mirroring the
	// delegations.
	Flatten bool
	// DryRun verifies and plans; it changes nothing (no key import, no
	// publish).
	DryRun bool
	// Init creates the Signet repository (a new root key, the Notary
	// targets key as targets key) when no Signet root is pinned for it.
	Init bool
	// MaxUploadBytes bounds one publish; default DefaultMaxUploadBytes.
	MaxUploadBytes int
	// Progress, if set, is told after each published batch.
	Progress func(gun string, done, total int)
	Logger   *slog.Logger
}

// Row is one tag listing of one Notary role and what became of it.
type Row struct {
	GUN        string `json:"gun"`
	Tag        string `json:"tag"`
	Digest     string `json:"digest"`
	Size       int64  `json:"size"`
	NotaryRole string `json:"notary_role"`
	SignetRole string `json:"signet_role,omitempty"`
	Outcome    string `json:"outcome"`
	Reason     string `json:"reason,omitempty"`
}

// GUNReport is what happened to one repository.
type GUNReport struct {
	GUN string `json:"gun"`
	// Error is set when the GUN was refused (verification failed, Signet
	// side conflicts) or its publish failed: nothing of it was published.
	Error string `json:"error,omitempty"`
	// RootChain are the Notary root versions verified from the anchor.
	RootChain []int64  `json:"root_chain,omitempty"`
	Warnings  []string `json:"warnings,omitempty"`
	Notes     []string `json:"notes,omitempty"`
	// KeysImported are Signet key IDs imported from Notary key files.
	KeysImported []string `json:"keys_imported,omitempty"`
	// Created: the Signet repository was created (engines must pin its
	// new root: signet trust show GUN).
	Created bool `json:"created,omitempty"`
	// Staged is the staged change waiting for delegates, and who must
	// approve it (role → signatures missing).
	Staged    string         `json:"staged,omitempty"`
	StagedFor map[string]int `json:"staged_for,omitempty"`
	// Approvers are, per staged role, the Signet key IDs that may sign it:
	// whoever holds one approves (signet approve GUN ID).
	Approvers   map[string][]string `json:"approvers,omitempty"`
	Publishes   int                 `json:"publishes"`
	Rows        []Row               `json:"rows"`
	DryRun      bool                `json:"dry_run,omitempty"`
	Delegations []string            `json:"delegations,omitempty"`
}

// Failed reports whether the GUN was refused or failed.
func (r *GUNReport) Failed() bool { return r.Error != "" }

// Migrator migrates GUNs.
type Migrator struct {
	o   Options
	log *slog.Logger
}

// New returns a Migrator.
func New(o Options) (*Migrator, error) {
	if o.Client == nil || o.Source == nil || o.Anchor == nil {
		return nil, errors.New("migrate: Client, Source and Anchor are required")
	}
	if o.MaxUploadBytes <= 0 {
		o.MaxUploadBytes = DefaultMaxUploadBytes
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Migrator{o: o, log: log}, nil
}

// Migrate migrates one GUN. It never returns a half-done GUN silently: a
// GUN that does not verify, or whose Signet side conflicts, is reported
// with Error and nothing of it is published.
func (m *Migrator) Migrate(ctx context.Context, gun string) *GUNReport {
	rep := &GUNReport{GUN: gun, DryRun: m.o.DryRun, Rows: []Row{}}
	if err := m.migrate(ctx, gun, rep); err != nil {
		rep.Error = err.Error()
		for i := range rep.Rows {
			// Rows already published (or staged) by an earlier, independent
			// step keep their outcome; the rest were not migrated.
			if r := &rep.Rows[i]; r.Outcome == "" || r.Outcome == WouldMigrate {
				r.Outcome, r.Reason = Skipped, "not migrated: "+err.Error()
			}
		}
		m.log.WarnContext(ctx, "notary migration refused", "gun", gun, "err", err)
	}
	return rep
}

// ErrConflict: the Signet repository already holds something that the
// migration would contradict.
var ErrConflict = errors.New("the Signet repository conflicts with the Notary data")

// tagRE is the tag grammar of image references.
var tagRE = regexp.MustCompile(`^[\w][\w.-]{0,127}$`)

// prefixRE matches path prefixes made only of characters tags may hold.
var prefixRE = regexp.MustCompile(`^[\w.-]+$`)

// plan is what one GUN's migration publishes.
type plan struct {
	// roles: Signet role → tags to add, in Notary's order.
	adds map[string][]client.Change
	// delegations to create, in pre-order.
	specs []spec
	// rows index: (role, tag) → row index
	rowAt map[[2]string]int
}

type spec struct {
	delegator string
	tufedit.DelegationSpec
	keyIDs []string
}

func (m *Migrator) migrate(ctx context.Context, gun string, rep *GUNReport) error {
	anchor, err := m.o.Anchor(gun)
	if err != nil {
		return err
	}
	vo := m.o.Verify
	vo.Anchor = anchor
	repo, err := notary.Verify(ctx, m.o.Source, gun, vo)
	if err != nil {
		return err
	}
	rep.RootChain, rep.Warnings = repo.RootChain, repo.Warnings
	p, err := m.plan(repo, rep)
	if err != nil {
		return err
	}
	st, err := m.signetState(ctx, gun, rep)
	if err != nil {
		return err
	}
	if err := m.diff(st, p, rep); err != nil {
		return err
	}
	held, err := m.keys(ctx, repo, rep)
	if err != nil {
		return err
	}
	return m.publish(ctx, gun, repo, st, p, held, rep)
}

// plan maps the verified Notary repository onto Signet roles and rows.
func (m *Migrator) plan(repo *notary.Repository, rep *GUNReport) (*plan, error) {
	p := &plan{adds: map[string][]client.Change{}, rowAt: map[[2]string]int{}}
	// Docker's client read targets/releases first, then targets; other
	// roles (only notary lookup read them) follow in Notary's walk.
	order := []*notary.Role{}
	if r := repo.Role(tufedit.ReleasesRole); r != nil {
		order = append(order, r)
	}
	for _, r := range repo.Roles {
		if r.Name != tufedit.ReleasesRole {
			order = append(order, r)
		}
	}
	type win struct {
		role string
		fm   notary.FileMeta
	}
	winner := map[string]win{}
	for _, r := range order {
		for tag, fm := range r.Targets {
			if _, ok := winner[tag]; !ok {
				winner[tag] = win{r.Name, fm}
			}
		}
	}
	mapped := map[string]bool{notary.RoleTargets: true} // Notary roles that have a Signet role
	if !m.o.Flatten {
		for _, r := range repo.Roles[1:] {
			sp, note, err := mapDelegation(r)
			if err != nil {
				return nil, err
			}
			if note != "" {
				rep.Notes = append(rep.Notes, note)
			}
			if sp == nil || !mapped[r.Delegator] {
				continue
			}
			mapped[r.Name] = true
			p.specs = append(p.specs, *sp)
			rep.Delegations = append(rep.Delegations, fmt.Sprintf("%s → %s: keys %s, threshold %d, paths %s", sp.delegator, sp.Name, strings.Join(shortIDs(sp.keyIDs), ","), sp.Threshold, strings.Join(sp.Paths, ",")))
		}
	}
	for _, r := range repo.Roles {
		for _, tag := range sortedTags(r.Targets) {
			fm := r.Targets[tag]
			row := Row{GUN: repo.GUN, Tag: tag, Size: fm.Length, NotaryRole: r.Name}
			sum, ok := fm.Hashes["sha256"]
			w := winner[tag]
			switch {
			case !ok || len(sum) != 32:
				row.Outcome, row.Reason = Skipped, "no sha256 digest"
			case !tagRE.MatchString(tag):
				row.Outcome, row.Reason = Skipped, "not a valid image tag"
			case fm.Length <= 0:
				row.Outcome, row.Reason = Skipped, "no size"
			default:
				row.Digest = digest.NewDigestFromEncoded(digest.SHA256, hex.EncodeToString(sum)).String()
			}
			if row.Outcome == "" && w.role != r.Name && (hex.EncodeToString(w.fm.Hashes["sha256"]) != hex.EncodeToString(sum) || w.fm.Length != fm.Length) {
				row.Outcome, row.Reason = Skipped, fmt.Sprintf("conflict: %s lists another digest, and Docker used %s's", w.role, w.role)
				rep.Notes = append(rep.Notes, fmt.Sprintf("conflict on %s: %s and %s list different digests; kept %s's, as Docker's client did", tag, w.role, r.Name, w.role))
			}
			if row.Outcome == "" {
				switch {
				case m.o.Flatten && w.role != r.Name:
					row.Outcome, row.Reason = Skipped, "flattened: the same digest migrates from "+w.role
				case m.o.Flatten:
					row.SignetRole = notary.RoleTargets
				case !mapped[r.Name]:
					row.Outcome, row.Reason = Skipped, "its delegation matches no image tag"
				default:
					row.SignetRole = r.Name
				}
			}
			if row.Outcome == "" {
				p.rowAt[[2]string{row.SignetRole, tag}] = len(rep.Rows)
				p.adds[row.SignetRole] = append(p.adds[row.SignetRole], client.Change{Tag: tag, Digest: digest.Digest(row.Digest), Size: fm.Length})
			}
			rep.Rows = append(rep.Rows, row)
		}
	}
	return p, nil
}

// mapDelegation turns a Notary delegation into a Signet one: the same
// name, keys and threshold; each path prefix P becomes the TUF path
// pattern "P*", which for image tags (no "/", no glob characters) means
// the same. A prefix with characters no tag can hold matches no tag and is
// dropped; a delegation left with none is not mirrored (note says so).
func mapDelegation(r *notary.Role) (*spec, string, error) {
	var paths []string
	for _, pre := range r.Paths {
		if pre != "" && !prefixRE.MatchString(pre) {
			continue
		}
		paths = append(paths, pre+"*")
	}
	if len(paths) == 0 {
		return nil, fmt.Sprintf("%s is not mirrored: its path prefixes %q match no image tag", r.Name, r.Paths), nil
	}
	if slices.Contains(paths, "*") {
		paths = []string{"*"}
	}
	sp := &spec{delegator: r.Delegator, DelegationSpec: tufedit.DelegationSpec{Name: r.Name, Paths: paths, Threshold: r.Threshold}}
	seen := map[string]bool{}
	for _, id := range r.KeyIDs {
		k, err := tufKey(r.Keys[id])
		if err != nil {
			return nil, "", fmt.Errorf("%s key %s: %w", r.Name, id, err)
		}
		kid, err := k.ID()
		if err != nil {
			return nil, "", err
		}
		if seen[kid] {
			continue
		}
		seen[kid] = true
		sp.Keys = append(sp.Keys, k)
		sp.keyIDs = append(sp.keyIDs, kid)
	}
	if sp.Threshold > len(sp.Keys) {
		return nil, "", fmt.Errorf("%s: threshold %d over %d distinct keys", r.Name, sp.Threshold, len(sp.Keys))
	}
	return sp, "", nil
}

// tufKey converts a Notary key (an x509 certificate's key, or a bare one)
// into a TUF 1.0 key.
func tufKey(k notary.PublicKey) (*metadata.Key, error) {
	pub, err := k.Public()
	if err != nil {
		return nil, err
	}
	return metadata.KeyFromPublicKey(pub)
}

func sortedTags(t map[string]notary.FileMeta) []string {
	out := make([]string, 0, len(t))
	for k := range t {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func shortIDs(ids []string) []string {
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = id[:min(12, len(id))]
	}
	return out
}

// keys imports the Notary private keys of this GUN's targets and
// delegation roles into the Signet key store (a dry run only opens them)
// and returns the Signet key IDs this trust directory then holds.
func (m *Migrator) keys(ctx context.Context, repo *notary.Repository, rep *GUNReport) (map[string]bool, error) {
	held := map[string]bool{}
	have, err := m.o.Client.Keys().List(ctx)
	if err != nil {
		return nil, err
	}
	for _, k := range have {
		held[k.ID] = true
	}
	// Which key material signs which role, by fingerprint.
	wanted := map[string]string{}
	for _, r := range repo.Roles {
		for _, id := range r.KeyIDs {
			if fp, err := r.Keys[id].Fingerprint(); err == nil {
				if _, ok := wanted[fp]; !ok {
					wanted[fp] = r.Name
				}
			}
		}
	}
	for _, f := range m.o.Keys {
		if f.GUN != "" && f.GUN != repo.GUN {
			continue
		}
		switch f.Role {
		case notary.RoleRoot, notary.RoleSnapshot, notary.RoleTimestamp:
			continue // Signet makes its own root; the server holds snapshot and timestamp keys
		}
		kind := f.Role
		if kind != notary.RoleTargets {
			kind = "delegation"
		}
		if m.o.NotaryPassphrase == nil {
			rep.Notes = append(rep.Notes, fmt.Sprintf("Notary key %s (%s) not opened: no Notary passphrase given", f.ID[:min(12, len(f.ID))], f.Role))
			continue
		}
		pass, err := m.o.NotaryPassphrase(kind)
		if err != nil {
			rep.Notes = append(rep.Notes, fmt.Sprintf("Notary key %s (%s) not opened: %v", f.ID[:min(12, len(f.ID))], f.Role, err))
			continue
		}
		priv, err := f.Decrypt(pass)
		if err != nil {
			rep.Notes = append(rep.Notes, err.Error())
			continue
		}
		pk, err := metadata.KeyFromPublicKey(priv.Public())
		if err != nil {
			continue
		}
		fp, err := notary.Fingerprint(priv.Public())
		if err != nil {
			continue
		}
		role, ok := wanted[fp]
		if !ok {
			continue // a key of another repository or role
		}
		id, err := pk.ID()
		if err != nil {
			return nil, err
		}
		if held[id] {
			continue
		}
		if !m.o.DryRun {
			if err := m.importKey(ctx, role, priv); err != nil {
				return nil, err
			}
		}
		held[id] = true
		rep.KeysImported = append(rep.KeysImported, id)
	}
	return held, nil
}

// importKey stores priv in the Signet key store for role, encrypted with
// the Signet passphrase of that role.
func (m *Migrator) importKey(ctx context.Context, role string, priv crypto.Signer) error {
	if m.o.SignetPassphrase == nil {
		return errors.New("migrate: no Signet passphrase to store imported keys with")
	}
	pass, err := m.o.SignetPassphrase(role, "")
	if err != nil {
		return err
	}
	der, err := pkcs8.MarshalPrivateKey(priv, pass, &pkcs8.Opts{Cipher: pkcs8.AES256CBC, KDFOpts: pkcs8.PBKDF2Opts{SaltSize: 16, IterationCount: 10000, HMACHash: crypto.SHA256}})
	if err != nil {
		return fmt.Errorf("migrate: re-encrypt a %s key: %w", role, err)
	}
	if _, err := m.o.Client.Keys().Import(ctx, role, pem.EncodeToMemory(&pem.Block{Type: "ENCRYPTED PRIVATE KEY", Bytes: der})); err != nil {
		return fmt.Errorf("migrate: import a %s key: %w", role, err)
	}
	return nil
}
