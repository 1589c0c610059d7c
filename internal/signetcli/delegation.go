package signetcli

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"github.com/theupdateframework/go-tuf/v2/metadata"
	"golang.org/x/term"

	"github.com/signetdev/signet/client"
	"github.com/signetdev/signet/tufedit"
)

// edit publishes an edit of delegator's delegations and reports it. When
// the edit would make tags stop resolving (or resolve elsewhere), it lists
// them and asks first (--yes answers for scripts); afterwards it says what
// stopped resolving. A staged edit returns stagedError: nothing changed yet.
func (a *app) edit(cmd *cobra.Command, c *client.Client, gun, delegator, what string, fn func(*metadata.TargetsType) error) error {
	lost, err := c.Unresolved(cmd.Context(), gun, delegator, fn)
	if err != nil {
		return err
	}
	var names []string
	for _, t := range lost {
		names = append(names, t.Tag)
	}
	if len(lost) > 0 {
		var b strings.Builder
		fmt.Fprintf(&b, "this change (%s) makes %d tag(s) stop resolving (or resolve to another digest):\n", what, len(lost))
		for _, t := range lost {
			fmt.Fprintf(&b, "  %s:%s → %s (%s)\n", gun, t.Tag, t.Digest, t.Role)
		}
		if err := a.confirm(b.String()); err != nil {
			return err
		}
	}
	out, err := c.EditDelegations(cmd.Context(), gun, delegator, fn)
	if err != nil {
		return err
	}
	res := outcomeJSON{GUN: gun, Change: what, Roles: out.Roles, Published: out.Published, Staged: out.Staged}
	if out.Staged == nil {
		res.Unresolved = names
	}
	if err := a.print(res, func(w io.Writer) {
		if out.Staged != nil {
			fmt.Fprintf(w, "staged as change %s: %s (signed as %s); waiting for approval: %s\n", out.Staged.ID, what, strings.Join(out.Roles, ", "), waiting(out.Staged))
			fmt.Fprintf(w, "until then nothing changed (a revoked key stays trusted; a new or changed delegation is published signed by its own keys, which this trust directory does not hold); they run: signet approve %s %s\n", gun, out.Staged.ID)
			return
		}
		fmt.Fprintf(w, "%s; published %s\n", what, strings.Join(out.Roles, ", "))
		if len(names) > 0 {
			fmt.Fprintf(w, "no longer resolve: %s\n", strings.Join(names, " "))
		}
	}); err != nil {
		return err
	}
	if out.Staged != nil {
		return stagedError{gun, out.Staged.ID}
	}
	return nil
}

// confirm shows what is about to happen and asks to go on: --yes answers
// yes; without a terminal to ask on, it refuses (usage error).
func (a *app) confirm(what string) error {
	fmt.Fprint(a.stderr, what)
	if a.yes {
		return nil
	}
	f, ok := a.stdin.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return usageError{errors.New("not confirmed: run it again with --yes to go ahead")}
	}
	fmt.Fprint(a.stderr, "Go ahead? [y/N] ")
	line, _ := bufio.NewReader(f).ReadString('\n')
	if ans := strings.ToLower(strings.TrimSpace(line)); ans != "y" && ans != "yes" {
		return errors.New("not confirmed: nothing changed")
	}
	return nil
}

func (a *app) delegationCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "delegation", Short: "Delegate tags to other keys (TUF delegated targets roles)"}
	var (
		keyFiles, paths []string
		threshold       int
		terminating     bool
		delegator       string
	)
	add := a.editVerb("add GUN NAME --key PUB…", "Delegate paths (default: all tags) to a new role signed by the given public keys", &delegator,
		func(args []string) (string, func(*metadata.TargetsType) error, error) {
			if !strings.HasPrefix(args[1], metadata.TARGETS+"/") {
				// Notary's rule: a delegated role is named under targets/.
				return "", nil, usageError{fmt.Errorf("delegation name %q must start with targets/ (e.g. targets/%s)", args[1], args[1])}
			}
			keys, err := requiredKeys("delegation add", keyFiles)
			if err != nil {
				return "", nil, err
			}
			spec := tufedit.DelegationSpec{Name: args[1], Keys: keys, Paths: paths, Threshold: threshold, Terminating: terminating}
			return fmt.Sprintf("%s delegates to %s", delegator, args[1]), func(t *metadata.TargetsType) error { return tufedit.AddDelegation(t, spec) }, nil
		})
	add.Flags().StringSliceVar(&keyFiles, "key", nil, "public key file of the role (repeatable)")
	add.Flags().StringSliceVar(&paths, "paths", nil, `tag patterns the role may sign, TUF globs (default "*": all)`)
	add.Flags().IntVar(&threshold, "threshold", 1, "signatures needed (distinct keys)")
	add.Flags().BoolVar(&terminating, "terminating", false, "a tag matching these paths is looked up in this role only")

	var addKeys, removeKeys []string
	var newThreshold int
	edit := a.editVerb("edit GUN NAME [--add-key PUB] [--remove-key KEYID] [--threshold K]", "Add or remove keys of a delegation, or change its threshold", &delegator,
		func(args []string) (string, func(*metadata.TargetsType) error, error) {
			if len(addKeys)+len(removeKeys) == 0 && newThreshold == 0 {
				return "", nil, usageError{errors.New("delegation edit needs --add-key, --remove-key or --threshold")}
			}
			keys, err := readPublicKeys(addKeys)
			if err != nil {
				return "", nil, err
			}
			return "changed " + args[1], func(t *metadata.TargetsType) error { return editDelegation(t, args[1], keys, removeKeys, newThreshold) }, nil
		})
	edit.Flags().StringSliceVar(&addKeys, "add-key", nil, "public key file to add (repeatable)")
	edit.Flags().StringSliceVar(&removeKeys, "remove-key", nil, "key ID (or a unique prefix of 8+ hex digits) to remove (repeatable)")
	edit.Flags().IntVar(&newThreshold, "threshold", 0, "new threshold")

	remove := a.editVerb("remove GUN NAME", "Remove a delegation: its tags no longer resolve", &delegator,
		func(args []string) (string, func(*metadata.TargetsType) error, error) {
			return fmt.Sprintf("%s no longer delegates to %s", delegator, args[1]), func(t *metadata.TargetsType) error { return tufedit.RemoveDelegation(t, args[1]) }, nil
		})
	list := a.listVerb("List the delegations, in resolution order", &delegator, tufedit.ListDelegations)
	for _, c := range []*cobra.Command{add, edit, remove, list} {
		c.Flags().StringVar(&delegator, "delegator", metadata.TARGETS, "the role that delegates")
	}
	cmd.AddCommand(add, edit, remove, list)
	return cmd
}

// editDelegation is delegation edit's change to the delegation name of t:
// it adds keys, lowers the threshold first when that lets the removal of
// removeKeys (key IDs or unique prefixes, as delegation list prints them)
// fit, removes them, then sets threshold (if > 0).
func editDelegation(t *metadata.TargetsType, name string, keys []*metadata.Key, removeKeys []string, threshold int) error {
	if len(keys) > 0 {
		if err := tufedit.AddDelegationKeys(t, name, keys...); err != nil {
			return err
		}
	}
	if threshold > 0 && threshold < delegation(t, name).Threshold {
		// Lower first, so that removing keys can fit.
		if err := tufedit.SetDelegationThreshold(t, name, threshold); err != nil {
			return err
		}
	}
	if len(removeKeys) > 0 {
		var full []string
		for _, p := range removeKeys {
			id, err := client.MatchKeyID(p, delegation(t, name).KeyIDs)
			if err != nil {
				return usageError{fmt.Errorf("--remove-key of %s: %w", name, err)}
			}
			full = append(full, id)
		}
		if err := tufedit.RemoveDelegationKeys(t, name, full...); err != nil {
			return err
		}
	}
	if threshold > 0 {
		return tufedit.SetDelegationThreshold(t, name, threshold)
	}
	return nil
}

// delegation describes t's delegation name; zero if there is none.
func delegation(t *metadata.TargetsType, name string) tufedit.DelegationInfo {
	for _, d := range tufedit.ListDelegations(t) {
		if d.Name == name {
			return d
		}
	}
	return tufedit.DelegationInfo{}
}

// editVerb is a command GUN NAME that edits the delegations *delegator
// makes (delegation add, edit, remove; signer add, remove): change checks
// the command line and returns what the edit does, in words, and the edit.
func (a *app) editVerb(use, short string, delegator *string, change func(args []string) (string, func(*metadata.TargetsType) error, error)) *cobra.Command {
	return &cobra.Command{
		Use: use, Short: short, Args: exactArgs(2),
		RunE: a.withClient(func(cmd *cobra.Command, args []string, c *client.Client) error {
			what, fn, err := change(args)
			if err != nil {
				return err
			}
			return a.edit(cmd, c, args[0], *delegator, what, fn)
		}),
	}
}

// listVerb is a command GUN that lists the delegations of *delegator that
// pick picks (delegation list, signer list), with the staged changes to
// them.
func (a *app) listVerb(short string, delegator *string, pick func(*metadata.TargetsType) []tufedit.DelegationInfo) *cobra.Command {
	return &cobra.Command{
		Use: "list GUN", Short: short, Args: exactArgs(1),
		RunE: a.withClient(func(cmd *cobra.Command, args []string, c *client.Client) error {
			m, err := c.Role(cmd.Context(), args[0], *delegator)
			if err != nil {
				return err
			}
			return a.printDelegations(cmd, c, args[0], *delegator, pick(&m.Signed))
		}),
	}
}

// delegationJSON is the JSON shape of one delegation.
type delegationJSON struct {
	Role        string   `json:"role"`
	Threshold   int      `json:"threshold"`
	KeyIDs      []string `json:"keyids"`
	Paths       []string `json:"paths,omitempty"`
	HashPrefix  []string `json:"path_hash_prefixes,omitempty"`
	Terminating bool     `json:"terminating"`
}

// pendingJSON is a staged change to the delegations, not in effect yet.
type pendingJSON struct {
	ID      string   `json:"id"`
	Changes []string `json:"changes"`
	Waiting string   `json:"waiting"`
}

// pending returns the staged changes of gun that change delegator's
// delegations: they are not in effect until approved.
func (a *app) pending(cmd *cobra.Command, c *client.Client, gun, delegator string) ([]pendingJSON, error) {
	list, err := c.ListStaged(cmd.Context(), gun)
	if err != nil {
		return nil, err
	}
	out := []pendingJSON{}
	for _, st := range list {
		touches := false
		for _, r := range st.Roles {
			touches = touches || r.Role == delegator
		}
		if !touches {
			continue
		}
		rv, err := c.ReviewStaged(cmd.Context(), gun, st.ID)
		if err != nil {
			return nil, err
		}
		if len(rv.Delegations) > 0 {
			out = append(out, pendingJSON{ID: st.ID, Changes: rv.Delegations, Waiting: waiting(&st)})
		}
	}
	return out, nil
}

func (a *app) printDelegations(cmd *cobra.Command, c *client.Client, gun, delegator string, ds []tufedit.DelegationInfo) error {
	pend, err := a.pending(cmd, c, gun, delegator)
	if err != nil {
		return err
	}
	rows := []delegationJSON{}
	for _, d := range ds {
		rows = append(rows, delegationJSON{Role: d.Name, Threshold: d.Threshold, KeyIDs: d.KeyIDs, Paths: d.Paths, HashPrefix: d.PathHashPrefixes, Terminating: d.Terminating})
	}
	return a.print(map[string]any{"delegations": rows, "pending": pend}, func(w io.Writer) {
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ROLE\tTHRESHOLD\tKEYS\tPATHS\tTERMINATING")
		for _, d := range ds {
			ids := make([]string, len(d.KeyIDs))
			for i, id := range d.KeyIDs {
				ids[i] = short(id)
			}
			fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%v\n", d.Name, d.Threshold, strings.Join(ids, ","), strings.Join(append(d.Paths, d.PathHashPrefixes...), ","), d.Terminating)
		}
		tw.Flush()
		for _, p := range pend {
			fmt.Fprintf(w, "PENDING (staged change %s, not in effect; waiting for %s):\n", p.ID, p.Waiting)
			for _, ch := range p.Changes {
				fmt.Fprintf(w, "  %s\n", ch)
			}
		}
	})
}

func (a *app) signerCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "signer", Short: "Manage who may sign tags (as docker trust signer did)"}
	var keyFiles []string
	targets := metadata.TARGETS // the signer roles are delegations of targets
	add := a.editVerb("add GUN NAME --key PUB…", "Let NAME sign any tag: the key goes into targets/releases and a role targets/NAME", &targets,
		func(args []string) (string, func(*metadata.TargetsType) error, error) {
			keys, err := requiredKeys("signer add", keyFiles)
			if err != nil {
				return "", nil, err
			}
			return "added signer " + args[1], func(t *metadata.TargetsType) error { return tufedit.AddSigner(t, args[1], keys...) }, nil
		})
	add.Flags().StringSliceVar(&keyFiles, "key", nil, "public key file of the signer (repeatable)")
	remove := a.editVerb("remove GUN NAME", "Revoke a signer: their keys leave targets/releases and their role is removed", &targets,
		func(args []string) (string, func(*metadata.TargetsType) error, error) {
			return "removed signer " + args[1], func(t *metadata.TargetsType) error { return tufedit.RemoveSigner(t, args[1]) }, nil
		})
	list := a.listVerb("List who may sign", &targets, tufedit.ListSigners)
	cmd.AddCommand(add, remove, list)
	return cmd
}

func (a *app) stagedCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "staged", Short: "Changes waiting for more signatures (k-of-n signing)"}
	list := &cobra.Command{
		Use: "list GUN", Short: "List staged changes", Args: exactArgs(1),
		RunE: a.withClient(func(cmd *cobra.Command, args []string, c *client.Client) error {
			list, err := c.ListStaged(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			// A change is stale when a role it changes moved on since it was
			// staged: approving it can only fail; withdraw it and stage again.
			current := map[string]int64{}
			st, err := c.Status(cmd.Context(), args[0])
			if err != nil {
				return fmt.Errorf("staged changes of %s: the current versions to compare with: %w", args[0], err)
			}
			for _, r := range st {
				current[r.Role] = r.Version
			}
			type row struct {
				client.StagedChange
				Stale bool `json:"stale"`
			}
			rows := []row{}
			for _, ch := range list {
				stale := false
				for _, r := range ch.Roles {
					stale = stale || r.BaseVersion != current[r.Role]
				}
				rows = append(rows, row{ch, stale})
			}
			return a.print(rows, func(w io.Writer) {
				tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "ID\tROLE\tVERSION\tSIGNED\tEXPIRES\t")
				for _, st := range rows {
					note := ""
					if st.Stale {
						note = "STALE: the role changed since; withdraw it (signet staged withdraw) and stage again"
					}
					for _, r := range st.Roles {
						fmt.Fprintf(tw, "%s\t%s\t%d\t%d/%d\t%s\t%s\n", st.ID, r.Role, r.Version, len(r.SignedBy), r.Threshold, st.Expires.Format("2006-01-02 15:04"), note)
					}
				}
				tw.Flush()
			})
		}),
	}
	show := &cobra.Command{
		Use: "show GUN ID", Short: "Show exactly what a staged change changes", Args: exactArgs(2),
		RunE: a.withClient(func(cmd *cobra.Command, args []string, c *client.Client) error {
			rv, err := c.ReviewStaged(cmd.Context(), args[0], args[1])
			if err != nil {
				return err
			}
			return a.printReview(rv)
		}),
	}
	withdraw := &cobra.Command{
		Use: "withdraw GUN ID", Short: "Withdraw a staged change", Args: exactArgs(2),
		RunE: a.withClient(func(cmd *cobra.Command, args []string, c *client.Client) error {
			if err := c.Withdraw(cmd.Context(), args[0], args[1]); err != nil {
				return err
			}
			return a.print(map[string]string{"withdrawn": args[1]}, func(w io.Writer) { fmt.Fprintf(w, "withdrew %s\n", args[1]) })
		}),
	}
	cmd.AddCommand(list, show, withdraw)
	return cmd
}

func (a *app) printReview(rv *client.Review) error {
	type tagJSON struct {
		Role string      `json:"role"`
		Tag  string      `json:"tag"`
		Old  *targetJSON `json:"old,omitempty"`
		New  *targetJSON `json:"new,omitempty"`
	}
	tags := []tagJSON{}
	for _, t := range rv.Tags {
		j := tagJSON{Role: t.Role, Tag: t.Tag}
		if t.Old != nil {
			o := toJSON(t.Old)
			j.Old = &o
		}
		if t.New != nil {
			n := toJSON(t.New)
			j.New = &n
		}
		tags = append(tags, j)
	}
	dels := rv.Delegations
	if dels == nil {
		dels = []string{}
	}
	return a.print(map[string]any{"change": rv.Change, "tags": tags, "delegations": dels}, func(w io.Writer) {
		st := rv.Change
		fmt.Fprintf(w, "staged change %s, created %s, expires %s\n", st.ID, st.Created.Format("2006-01-02 15:04"), st.Expires.Format("2006-01-02 15:04"))
		for _, r := range st.Roles {
			fmt.Fprintf(w, "  %s v%d (based on v%d): %d of %d signatures\n", r.Role, r.Version, r.BaseVersion, len(r.SignedBy), r.Threshold)
		}
		for _, t := range rv.Tags {
			switch {
			case t.Old == nil:
				fmt.Fprintf(w, "  + %s %s → %s (%d bytes)\n", t.Role, t.Tag, t.New.Digest, t.New.Size)
			case t.New == nil:
				fmt.Fprintf(w, "  - %s %s (was %s)\n", t.Role, t.Tag, t.Old.Digest)
			default:
				fmt.Fprintf(w, "  ~ %s %s %s → %s\n", t.Role, t.Tag, t.Old.Digest, t.New.Digest)
			}
		}
		for _, d := range rv.Delegations {
			fmt.Fprintf(w, "  * %s\n", d)
		}
	})
}

func (a *app) approveCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "approve GUN ID",
		Short: "Review a staged change and, once confirmed (--yes), add this trust directory's signatures to it",
		Args:  exactArgs(2),
		RunE: a.withClient(func(cmd *cobra.Command, args []string, c *client.Client) error {
			rv, err := c.ReviewStaged(cmd.Context(), args[0], args[1])
			if err != nil {
				return err
			}
			if a.output != "json" {
				if err := a.printReview(rv); err != nil {
					return err
				}
			}
			if err := a.confirm(""); err != nil {
				return err
			}
			before := signatures(rv.Change)
			st, err := c.Approve(cmd.Context(), args[0], rv)
			if err != nil {
				return err
			}
			res := outcomeJSON{GUN: args[0], Change: "approve " + st.ID, Published: st.Published}
			if st.Published == nil {
				res.Staged = st
			}
			for _, r := range st.Roles {
				res.Roles = append(res.Roles, r.Role)
			}
			already := st.Published == nil && signatures(st) == before
			if err := a.print(res, func(w io.Writer) {
				switch {
				case st.Published != nil:
					fmt.Fprintf(w, "approved: every threshold is met; published %s\n", versions(st.Published))
				case already:
					fmt.Fprintf(w, "already signed by this trust directory: nothing changed; still waiting for %s\n", waiting(st))
				default:
					fmt.Fprintf(w, "approved; still waiting for %s\n", waiting(st))
				}
			}); err != nil {
				return err
			}
			if st.Published == nil {
				return stagedError{args[0], st.ID}
			}
			return nil
		}),
	}
}

// signatures counts the signatures of a staged change.
func signatures(st *client.StagedChange) int {
	n := 0
	for _, r := range st.Roles {
		n += len(r.SignedBy)
	}
	return n
}

// versions prints published versions as "snapshot v3, targets v4, …".
func versions(v map[string]int64) string {
	var parts []string
	for role, n := range v {
		parts = append(parts, fmt.Sprintf("%s v%d", role, n))
	}
	sort.Strings(parts)
	return strings.Join(parts, ", ")
}

func (a *app) repoCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "repo", Short: "Repository layout and deletion"}
	var bins int
	shard := &cobra.Command{
		Use:   "shard GUN --bins N",
		Short: "Spread a repository's tags over N hashed bins (TAP 15), so resolves and publishes stay small",
		Args:  exactArgs(1),
		RunE: a.withClient(func(cmd *cobra.Command, args []string, c *client.Client) error {
			return a.shard(cmd, c, args[0], bins)
		}),
	}
	shard.Flags().IntVar(&bins, "bins", 256, "number of bins, a power of two")
	del := &cobra.Command{
		Use:   "delete GUN",
		Short: "Delete a repository's trust data on the server (all versions, its server keys) and its pin here; asks first (--yes)",
		Args:  exactArgs(1),
		RunE: a.withClient(func(cmd *cobra.Command, args []string, c *client.Client) error {
			if err := client.ValidateGUN(args[0]); err != nil {
				return usageError{err}
			}
			if err := a.confirm(fmt.Sprintf("deleting every version of the trust data of %s on %s: every client that pinned its root stops resolving it\n", args[0], a.server)); err != nil {
				return err
			}
			if err := c.DeleteRepository(cmd.Context(), args[0]); err != nil {
				return err
			}
			unpinned := c.Unpin(args[0]) == nil
			return a.print(map[string]any{"deleted": args[0], "unpinned": unpinned}, func(w io.Writer) {
				fmt.Fprintf(w, "deleted the trust data of %s\n", args[0])
				if unpinned {
					fmt.Fprintf(w, "removed its pinned root from %s\n", a.trustDir)
				}
			})
		}),
	}
	cmd.AddCommand(shard, del)
	return cmd
}

func (a *app) shard(cmd *cobra.Command, c *client.Client, gun string, bins int) error {
	out, err := c.Shard(cmd.Context(), gun, bins)
	if err != nil {
		return err
	}
	return a.print(map[string]any{"gun": gun, "bins": bins, "published": out.Published}, func(w io.Writer) {
		fmt.Fprintf(w, "%s now keeps its tags in %d hashed bins (%s-*)\n", gun, bins, client.BinsPrefix)
	})
}
