package main

import (
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/signetdev/signet/client"
)

// readKeys reads public keys (TUF key JSON, PEM or an x509 certificate).
func readKeys(files []string) ([]*metadata.Key, error) {
	var keys []*metadata.Key
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		k, err := client.ParsePublicKey(data)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", f, err)
		}
		keys = append(keys, k)
	}
	return keys, nil
}

// edit publishes an edit of delegator's delegations and reports it.
func (a *app) edit(cmd *cobra.Command, gun, delegator, what string, fn func(*metadata.TargetsType) error) error {
	c, err := a.client()
	if err != nil {
		return err
	}
	out, err := c.EditDelegations(cmd.Context(), gun, delegator, fn)
	if err != nil {
		return err
	}
	return a.print(map[string]any{"gun": gun, "change": what, "roles": out.Roles, "published": out.Published, "staged": out.Staged}, func(w io.Writer) {
		fmt.Fprintf(w, "%s\n", what)
		if out.Staged != nil {
			pending := slices.Sorted(maps.Keys(out.Staged.Pending()))
			fmt.Fprintf(w, "staged as change %s, not yet in effect: waiting for the key holders of %s to approve\n", out.Staged.ID, strings.Join(pending, ", "))
			fmt.Fprintf(w, "(a new or changed delegation is published signed by its own keys, which this trust directory does not hold); they run: signet approve %s %s\n", gun, out.Staged.ID)
			return
		}
		fmt.Fprintf(w, "published %s\n", strings.Join(out.Roles, ", "))
	})
}

func (a *app) delegationCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "delegation", Short: "Delegate tags to other keys (TUF delegated targets roles)"}
	var (
		keyFiles, paths []string
		threshold       int
		terminating     bool
		delegator       string
	)
	add := &cobra.Command{
		Use:   "add GUN NAME --key PUB…",
		Short: "Delegate paths (default: all tags) to a new role signed by the given public keys",
		Args:  exactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(keyFiles) == 0 {
				return usageError{errors.New("delegation add needs --key PUB (TUF key JSON, PEM or x509 certificate)")}
			}
			keys, err := readKeys(keyFiles)
			if err != nil {
				return err
			}
			spec := client.DelegationSpec{Name: args[1], Keys: keys, Paths: paths, Threshold: threshold, Terminating: terminating}
			return a.edit(cmd, args[0], delegator, fmt.Sprintf("%s delegates to %s", delegator, args[1]), func(t *metadata.TargetsType) error {
				return client.AddDelegation(t, spec)
			})
		},
	}
	add.Flags().StringSliceVar(&keyFiles, "key", nil, "public key file of the role (repeatable)")
	add.Flags().StringSliceVar(&paths, "paths", nil, `tag patterns the role may sign, TUF globs (default "*": all)`)
	add.Flags().IntVar(&threshold, "threshold", 1, "signatures needed (distinct keys)")
	add.Flags().BoolVar(&terminating, "terminating", false, "a tag matching these paths is looked up in this role only")

	var addKeys, removeKeys []string
	var newThreshold int
	edit := &cobra.Command{
		Use:   "edit GUN NAME [--add-key PUB] [--remove-key KEYID] [--threshold K]",
		Short: "Add or remove keys of a delegation, or change its threshold",
		Args:  exactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(addKeys)+len(removeKeys) == 0 && newThreshold == 0 {
				return usageError{errors.New("delegation edit needs --add-key, --remove-key or --threshold")}
			}
			keys, err := readKeys(addKeys)
			if err != nil {
				return err
			}
			return a.edit(cmd, args[0], delegator, "changed "+args[1], func(t *metadata.TargetsType) error {
				if len(keys) > 0 {
					if err := client.AddDelegationKeys(t, args[1], keys...); err != nil {
						return err
					}
				}
				if newThreshold > 0 && newThreshold < currentThreshold(t, args[1]) {
					// Lower first, so that removing keys can fit.
					if err := client.SetDelegationThreshold(t, args[1], newThreshold); err != nil {
						return err
					}
				}
				if len(removeKeys) > 0 {
					if err := client.RemoveDelegationKeys(t, args[1], removeKeys...); err != nil {
						return err
					}
				}
				if newThreshold > 0 {
					return client.SetDelegationThreshold(t, args[1], newThreshold)
				}
				return nil
			})
		},
	}
	edit.Flags().StringSliceVar(&addKeys, "add-key", nil, "public key file to add (repeatable)")
	edit.Flags().StringSliceVar(&removeKeys, "remove-key", nil, "key ID to remove (repeatable)")
	edit.Flags().IntVar(&newThreshold, "threshold", 0, "new threshold")

	remove := &cobra.Command{
		Use:   "remove GUN NAME",
		Short: "Remove a delegation: its tags no longer resolve",
		Args:  exactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.edit(cmd, args[0], delegator, fmt.Sprintf("%s no longer delegates to %s", delegator, args[1]), func(t *metadata.TargetsType) error {
				return client.RemoveDelegation(t, args[1])
			})
		},
	}
	list := &cobra.Command{
		Use:   "list GUN",
		Short: "List the delegations, in resolution order",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ds, err := a.delegations(cmd, args[0], delegator)
			if err != nil {
				return err
			}
			return a.printDelegations(ds)
		},
	}
	for _, c := range []*cobra.Command{add, edit, remove, list} {
		c.Flags().StringVar(&delegator, "delegator", metadata.TARGETS, "the role that delegates")
	}
	cmd.AddCommand(add, edit, remove, list)
	return cmd
}

func currentThreshold(t *metadata.TargetsType, name string) int {
	for _, d := range client.ListDelegations(t) {
		if d.Name == name {
			return d.Threshold
		}
	}
	return 0
}

// delegations returns the verified delegations of delegator.
func (a *app) delegations(cmd *cobra.Command, gun, delegator string) ([]client.DelegationInfo, error) {
	c, err := a.client()
	if err != nil {
		return nil, err
	}
	m, err := c.Role(cmd.Context(), gun, delegator)
	if err != nil {
		return nil, err
	}
	return client.ListDelegations(&m.Signed), nil
}

func (a *app) printDelegations(ds []client.DelegationInfo) error {
	if ds == nil {
		ds = []client.DelegationInfo{}
	}
	return a.print(ds, func(w io.Writer) {
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
	})
}

func (a *app) signerCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "signer", Short: "Manage who may sign tags (as docker trust signer did)"}
	var keyFiles []string
	add := &cobra.Command{
		Use:   "add GUN NAME --key PUB…",
		Short: "Let NAME sign any tag: the key goes into targets/releases and a role targets/NAME",
		Args:  exactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(keyFiles) == 0 {
				return usageError{errors.New("signer add needs --key PUB")}
			}
			keys, err := readKeys(keyFiles)
			if err != nil {
				return err
			}
			return a.edit(cmd, args[0], metadata.TARGETS, "added signer "+args[1], func(t *metadata.TargetsType) error {
				return client.AddSigner(t, args[1], keys...)
			})
		},
	}
	add.Flags().StringSliceVar(&keyFiles, "key", nil, "public key file of the signer (repeatable)")
	remove := &cobra.Command{
		Use:   "remove GUN NAME",
		Short: "Revoke a signer: their keys leave targets/releases and their role is removed",
		Args:  exactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.edit(cmd, args[0], metadata.TARGETS, "removed signer "+args[1], func(t *metadata.TargetsType) error {
				return client.RemoveSigner(t, args[1])
			})
		},
	}
	list := &cobra.Command{
		Use:   "list GUN",
		Short: "List who may sign",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			m, err := c.Role(cmd.Context(), args[0], metadata.TARGETS)
			if err != nil {
				return err
			}
			return a.printDelegations(client.ListSigners(&m.Signed))
		},
	}
	cmd.AddCommand(add, remove, list)
	return cmd
}

func (a *app) stagedCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "staged", Short: "Changes waiting for more signatures (k-of-n signing)"}
	list := &cobra.Command{
		Use: "list GUN", Short: "List staged changes", Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
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
		},
	}
	show := &cobra.Command{
		Use: "show GUN ID", Short: "Show exactly what a staged change changes", Args: exactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			rv, err := c.ReviewStaged(cmd.Context(), args[0], args[1])
			if err != nil {
				return err
			}
			return a.printReview(rv)
		},
	}
	withdraw := &cobra.Command{
		Use: "withdraw GUN ID", Short: "Withdraw a staged change", Args: exactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			if err := c.Withdraw(cmd.Context(), args[0], args[1]); err != nil {
				return err
			}
			return a.print(map[string]string{"withdrawn": args[1]}, func(w io.Writer) { fmt.Fprintf(w, "withdrew %s\n", args[1]) })
		},
	}
	cmd.AddCommand(list, show, withdraw)
	return cmd
}

func (a *app) printReview(rv *client.Review) error {
	return a.print(map[string]any{"change": rv.Change, "tags": rv.Tags, "delegations": rv.Delegations}, func(w io.Writer) {
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
		Short: "Review a staged change and add this trust directory's signatures to it",
		Args:  exactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			rv, err := c.ReviewStaged(cmd.Context(), args[0], args[1])
			if err != nil {
				return err
			}
			if a.output != "json" {
				if err := a.printReview(rv); err != nil {
					return err
				}
			}
			st, err := c.Approve(cmd.Context(), args[0], rv)
			if err != nil {
				return err
			}
			return a.print(st, func(w io.Writer) {
				if st.Published != nil {
					fmt.Fprintf(w, "approved: every threshold is met; published %v\n", st.Published)
					return
				}
				fmt.Fprintf(w, "approved; still needs")
				for role, n := range st.Pending() {
					fmt.Fprintf(w, " %d more signature(s) of %s", n, role)
				}
				fmt.Fprintln(w)
			})
		},
	}
}

func (a *app) repoCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "repo", Short: "Repository layout"}
	var bins int
	shard := &cobra.Command{
		Use:   "shard GUN --bins N",
		Short: "Spread a repository's tags over N hashed bins (TAP 15), so resolves and publishes stay small",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.shard(cmd, args[0], bins)
		},
	}
	shard.Flags().IntVar(&bins, "bins", 256, "number of bins, a power of two")
	cmd.AddCommand(shard)
	return cmd
}

func (a *app) shard(cmd *cobra.Command, gun string, bins int) error {
	c, err := a.client()
	if err != nil {
		return err
	}
	out, err := c.Shard(cmd.Context(), gun, bins)
	if err != nil {
		return err
	}
	return a.print(map[string]any{"gun": gun, "bins": bins, "published": out.Published}, func(w io.Writer) {
		fmt.Fprintf(w, "%s now keeps its tags in %d hashed bins (%s-*)\n", gun, bins, client.BinsPrefix)
	})
}
