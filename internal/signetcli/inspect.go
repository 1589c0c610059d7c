package signetcli

import (
	"errors"
	"fmt"
	"io"
	"slices"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/signetdev/signet/client"
	"github.com/signetdev/signet/imageref"
	"github.com/signetdev/signet/tufedit"
)

// inspectJSON is one repository as `signet inspect` shows it: the shape of
// `docker trust inspect`, in lower case.
type inspectJSON struct {
	Name               string          `json:"name"`
	SignedTags         []signedTagJSON `json:"signed_tags"`
	Signers            []keysJSON      `json:"signers"`
	AdministrativeKeys []keysJSON      `json:"administrative_keys"`
}

type signedTagJSON struct {
	SignedTag string   `json:"signed_tag"`
	Digest    string   `json:"digest"`
	Size      int64    `json:"size"`
	Signers   []string `json:"signers"`
}

type keysJSON struct {
	Name      string      `json:"name"`
	Threshold int         `json:"threshold"`
	Keys      []keyIDJSON `json:"keys"`
}

type keyIDJSON struct {
	ID string `json:"id"`
}

func keyList(ids []string) []keyIDJSON {
	out := []keyIDJSON{}
	for _, id := range ids {
		out = append(out, keyIDJSON{ID: id})
	}
	return out
}

// inspectCmd is `signet inspect REF…`, what `docker trust inspect` showed:
// the signed tags with digests and the role that vouches, the signers
// (targets/releases and targets/<name>) with their keys, and the root and
// targets ("repository") keys — all from verified metadata.
func (a *app) inspectCmd() *cobra.Command {
	var pretty bool
	cmd := &cobra.Command{
		Use:   "inspect REF…",
		Short: "Show signed tags, digests, signers and keys of repositories (as docker trust inspect did; JSON unless --pretty)",
		RunE: a.withClient(func(cmd *cobra.Command, args []string, c *client.Client) error {
			if len(args) == 0 {
				return usageError{errors.New("inspect takes REF… (a repository, or a tag of one)")}
			}
			var out []inspectJSON
			for _, arg := range args {
				r, err := imageref.Parse(arg)
				if err != nil || r.Digest != "" {
					return usageError{fmt.Errorf("%q is not a repository or a tag of one", arg)}
				}
				one, err := a.inspect(cmd, c, r.Name, r.Tag)
				if err != nil {
					return err
				}
				out = append(out, *one)
			}
			if !pretty || a.output == "json" {
				return a.printJSON(out)
			}
			for _, r := range out {
				printInspect(a.stdout, r)
			}
			return nil
		}),
	}
	cmd.Flags().BoolVar(&pretty, "pretty", false, "print tables for people instead of JSON")
	return cmd
}

func (a *app) inspect(cmd *cobra.Command, c *client.Client, gun, tag string) (*inspectJSON, error) {
	ctx := cmd.Context()
	trusted, err := c.Update(ctx, gun)
	if err != nil {
		return nil, err
	}
	all, err := c.Targets(ctx, gun)
	if err != nil {
		return nil, err
	}
	r := &inspectJSON{Name: gun, SignedTags: []signedTagJSON{}, Signers: []keysJSON{}}
	for _, t := range all {
		if tag == "" || t.Tag == tag {
			r.SignedTags = append(r.SignedTags, signedTagJSON{SignedTag: t.Tag, Digest: t.Digest.String(), Size: t.Size, Signers: []string{t.Role}})
		}
	}
	if tag != "" && len(r.SignedTags) == 0 {
		return nil, fmt.Errorf("%s:%s: %w", gun, tag, client.ErrNotSigned)
	}
	targets := trusted.Targets[metadata.TARGETS]
	if targets == nil {
		return nil, fmt.Errorf("inspect %s: no trusted targets metadata", gun)
	}
	for _, s := range tufedit.ListSigners(&targets.Signed) {
		r.Signers = append(r.Signers, keysJSON{Name: s.Name, Threshold: s.Threshold, Keys: keyList(s.KeyIDs)})
	}
	for _, role := range []string{metadata.ROOT, metadata.TARGETS} {
		spec := trusted.Root.Signed.Roles[role]
		if spec == nil {
			continue
		}
		ids := slices.Clone(spec.KeyIDs)
		slices.Sort(ids)
		r.AdministrativeKeys = append(r.AdministrativeKeys, keysJSON{Name: role, Threshold: spec.Threshold, Keys: keyList(ids)})
	}
	return r, nil
}

func (a *app) printJSON(v any) error {
	saved := a.output
	a.output = "json"
	defer func() { a.output = saved }()
	return a.print(v, nil)
}

func printInspect(w io.Writer, r inspectJSON) {
	fmt.Fprintf(w, "\nSignatures for %s\n\n", r.Name)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SIGNED TAG\tDIGEST\tSIGNERS")
	for _, t := range r.SignedTags {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", t.SignedTag, t.Digest, t.Signers[0])
	}
	tw.Flush()
	if len(r.Signers) > 0 {
		fmt.Fprintf(w, "\nList of signers and their keys for %s\n\n", r.Name)
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "SIGNER\tTHRESHOLD\tKEYS")
		for _, s := range r.Signers {
			fmt.Fprintf(tw, "%s\t%d\t%s\n", s.Name, s.Threshold, joinKeys(s.Keys))
		}
		tw.Flush()
	}
	fmt.Fprintf(w, "\nAdministrative keys for %s\n\n", r.Name)
	for _, k := range r.AdministrativeKeys {
		fmt.Fprintf(w, "  %s keys (threshold %d):\t%s\n", k.Name, k.Threshold, joinKeys(k.Keys))
	}
}

func joinKeys(ks []keyIDJSON) string {
	s := ""
	for i, k := range ks {
		if i > 0 {
			s += ", "
		}
		s += short(k.ID)
	}
	return s
}
