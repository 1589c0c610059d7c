package signetcli

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/opencontainers/go-digest"
	"github.com/spf13/cobra"
	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/signetdev/signet/client"
)

func (a *app) signCmd() *cobra.Command {
	var (
		dgst, role, from string
		size             int64
	)
	cmd := &cobra.Command{
		Use:   "sign REF…",
		Short: "Sign tags in one publish: digests and sizes come from the registry, from --digest and --size, or from --from FILE",
		Long: `Sign one or more tags of one repository in a single publish.

Each REF's digest and size are read from the registry, unless --digest and
--size are given (one REF only) or --from FILE lists "REF DIGEST SIZE" per
line ("-" reads standard input; blank lines and # comments are skipped).

Without --role, each tag goes to the first delegation (in TUF's resolution
order) that may sign it and whose key this trust directory holds, else to
targets. When a role needs more signatures than the keys held here, the
change is staged on the server for the other key holders: signet approve.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			changes, gun, err := a.signChanges(cmd, args, dgst, size, from)
			if err != nil {
				return err
			}
			return a.publish(cmd, gun, role, changes)
		},
	}
	cmd.Flags().StringVar(&dgst, "digest", "", "manifest digest (sha256:…) to sign without asking the registry (one REF)")
	cmd.Flags().Int64Var(&size, "size", 0, "manifest size in bytes, with --digest")
	cmd.Flags().StringVar(&role, "role", "", "sign into this role (targets or a delegation); default: picked per tag")
	cmd.Flags().StringVar(&from, "from", "", `file of "REF DIGEST SIZE" lines to sign in one publish ("-": standard input)`)
	return cmd
}

// publish applies changes to role ("": picked per tag) of gun in one
// publish and reports the outcome (sign, unsign).
func (a *app) publish(cmd *cobra.Command, gun, role string, changes []client.Change) error {
	c, err := a.client()
	if err != nil {
		return err
	}
	out, err := c.PublishAs(cmd.Context(), gun, role, changes)
	if err != nil {
		return err
	}
	return a.printOutcome(gun, out, changes)
}

func (a *app) resignCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "resign GUN [ROLE…]",
		Args:  minArgs(1),
		Short: "Re-sign roles (default: targets) with a new expiry, their tags unchanged; how an expired role is renewed",
		Long: `Publish the next version of each ROLE (targets, the default, or delegated
roles such as targets/releases), unchanged but for a new expiry, signed by
the keys this trust directory holds (staged for the other key holders when
the role needs more signatures: signet approve).

This is how a role that has expired is renewed: while it is expired,
resolves of the repository fail (exit 4). Its current version is verified
in every respect but its expiry before it is re-signed. Any sign or unsign
into a role re-signs it as well. Root is renewed in the offline ceremony
(signet root resign); timestamp and snapshot by signet-server itself.`,
		RunE: a.withClient(func(cmd *cobra.Command, args []string, c *client.Client) error {
			gun, roles := args[0], args[1:]
			if err := client.ValidateGUN(gun); err != nil {
				return usageError{err}
			}
			if len(roles) == 0 {
				roles = []string{metadata.TARGETS}
			}
			out, err := c.Renew(cmd.Context(), gun, roles)
			if err != nil {
				return err
			}
			return a.printOutcome(gun, out, nil)
		}),
	}
}

// signChanges collects the tags to sign; all must be of one repository.
func (a *app) signChanges(cmd *cobra.Command, args []string, dgst string, size int64, from string) ([]client.Change, string, error) {
	var changes []client.Change
	var gun string
	add := func(ref string, d digest.Digest, size int64) error {
		tag, err := sameRepo(&gun, ref)
		if err != nil {
			return err
		}
		changes = append(changes, client.Change{Tag: tag, Digest: d, Size: size})
		return nil
	}
	if from != "" {
		lines, err := a.readSignList(from)
		if err != nil {
			return nil, "", err
		}
		for _, l := range lines {
			if err := add(l.ref, l.digest, l.size); err != nil {
				return nil, "", err
			}
		}
	}
	if size != 0 && dgst == "" {
		return nil, "", usageError{errors.New("--size goes with --digest (without them, the registry gives both)")}
	}
	if dgst != "" {
		d, err := parseDigest(dgst)
		if err != nil {
			return nil, "", err
		}
		if size <= 0 || len(args) != 1 {
			return nil, "", usageError{errors.New("--digest sha256:… needs --size N (the manifest's size in bytes, > 0) and exactly one REF")}
		}
		return changes, gun, add(args[0], d, size)
	}
	for _, ref := range args {
		r, err := name.ParseReference(ref)
		if err != nil {
			return nil, "", usageError{err}
		}
		fmt.Fprintf(a.stderr, "reading %s from the registry…\n", ref)
		desc, err := remote.Head(r, remote.WithContext(cmd.Context()), remote.WithAuthFromKeychain(authn.DefaultKeychain))
		if err != nil {
			return nil, "", fmt.Errorf("read %s from the registry: %w", ref, err)
		}
		if err := add(ref, digest.Digest(desc.Digest.String()), desc.Size); err != nil {
			return nil, "", err
		}
	}
	if len(changes) == 0 {
		return nil, "", usageError{errors.New("nothing to sign: give REF… or --from FILE")}
	}
	return changes, gun, nil
}

// sameRepo parses ref and returns its tag; every ref of one publish must
// name the repository *gun (set by the first).
func sameRepo(gun *string, ref string) (string, error) {
	g, tag, err := parseRef(ref)
	if err != nil {
		return "", err
	}
	if *gun != "" && g != *gun {
		return "", usageError{fmt.Errorf("one publish changes one repository: %s and %s differ", *gun, g)}
	}
	*gun = g
	return tag, nil
}

type signLine struct {
	ref    string
	digest digest.Digest
	size   int64
}

func (a *app) readSignList(path string) ([]signLine, error) {
	var r io.Reader = a.stdin
	if path != "-" {
		f, err := os.Open(path)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		r = f
	}
	var out []signLine
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Fields(line)
		if len(f) != 3 {
			return nil, usageError{fmt.Errorf("%s:%d: want REF DIGEST SIZE", path, n)}
		}
		d, err := parseDigest(f[1])
		if err != nil {
			return nil, usageError{fmt.Errorf("%s:%d: %w", path, n, err)}
		}
		size, err := strconv.ParseInt(f[2], 10, 64)
		if err != nil || size <= 0 {
			return nil, usageError{fmt.Errorf("%s:%d: size %q is not a positive number", path, n, f[2])}
		}
		out = append(out, signLine{f[0], d, size})
	}
	return out, sc.Err()
}

// changeJSON is the JSON shape of one tag change.
type changeJSON struct {
	Tag    string `json:"tag"`
	Digest string `json:"digest,omitempty"`
	Size   int64  `json:"size,omitempty"`
	Remove bool   `json:"remove,omitempty"`
}

// outcomeJSON is the JSON shape of a publish, for every command that
// publishes (sign, unsign, delegation, signer, approve).
type outcomeJSON struct {
	GUN       string               `json:"gun"`
	Change    string               `json:"change,omitempty"`
	Roles     []string             `json:"roles"`
	Published map[string]int64     `json:"published,omitempty"`
	Staged    *client.StagedChange `json:"staged,omitempty"`
	Changes   []changeJSON         `json:"changes,omitempty"`
	// NotInEffect: signed tags that resolve elsewhere (an earlier role lists them).
	NotInEffect []string `json:"not_in_effect,omitempty"`
	// Unresolved: tags that stopped resolving with this change.
	Unresolved []string `json:"unresolved,omitempty"`
	// Expired: roles that have expired and that the change did not re-sign.
	Expired []string `json:"expired,omitempty"`
}

// stagedError ends a command whose change is staged, not in effect: exit
// code 5.
type stagedError struct{ gun, id string }

func (e stagedError) Error() string {
	return fmt.Sprintf("staged as change %s of %s: NOT in effect until approved (signet approve %s %s)", e.id, e.gun, e.gun, e.id)
}

// waiting describes who must still sign a staged change.
func waiting(st *client.StagedChange) string {
	var parts []string
	for _, r := range st.Roles {
		if n := r.Threshold - len(r.SignedBy); n > 0 {
			parts = append(parts, fmt.Sprintf("%d more signature(s) by a key holder of %s", n, r.Role))
		}
	}
	sort.Strings(parts)
	return strings.Join(parts, ", ")
}

// printOutcome reports a publish: which roles signed, and whether it was
// published or staged for more signatures (then it returns stagedError).
// It warns about signed tags that resolves find elsewhere (an earlier role
// shadows the signature) and roles left expired, as the client predicted
// them from the state it published.
func (a *app) printOutcome(gun string, out *client.Outcome, changes []client.Change) error {
	res := outcomeJSON{GUN: gun, Roles: out.Roles, Published: out.Published, Staged: out.Staged, Expired: out.Expired}
	for _, ch := range changes {
		j := changeJSON{Tag: ch.Tag, Remove: ch.Remove}
		if !ch.Remove {
			j.Digest, j.Size = ch.Digest.String(), ch.Size
		}
		res.Changes = append(res.Changes, j)
	}
	var notInEffect []string
	if out.Staged == nil {
		notInEffect = shadowed(out)
		for _, t := range out.Shadowed {
			res.NotInEffect = append(res.NotInEffect, t.Tag)
		}
	}
	if err := a.print(res, func(w io.Writer) {
		for _, ch := range changes {
			if ch.Remove {
				fmt.Fprintf(w, "removed %s:%s\n", gun, ch.Tag)
			} else {
				fmt.Fprintf(w, "signed %s:%s → %s (%d bytes)\n", gun, ch.Tag, ch.Digest, ch.Size)
			}
		}
		if out.Staged != nil {
			fmt.Fprintf(w, "signed as %s; staged as change %s: waiting for approval: %s\n", strings.Join(out.Roles, ", "), out.Staged.ID, waiting(out.Staged))
			fmt.Fprintf(w, "not in effect until they run: signet approve %s %s\n", gun, out.Staged.ID)
			return
		}
		fmt.Fprintf(w, "published as %s\n", strings.Join(out.Roles, ", "))
	}); err != nil {
		return err
	}
	for _, sh := range notInEffect {
		fmt.Fprintf(a.stderr, "warning: %s\n", sh)
	}
	for _, role := range out.Expired {
		fmt.Fprintf(a.stderr, "warning: %s has expired and this change does not re-sign it: resolves through it fail until its key holders run: signet resign %s %s\n", role, gun, role)
	}
	if out.Staged != nil {
		return stagedError{gun, out.Staged.ID}
	}
	return nil
}

// shadowed describes the signed tags that a resolve finds elsewhere after
// the publish (an earlier role in resolution order lists them, so the new
// signature does not take effect).
func shadowed(out *client.Outcome) []string {
	var msgs []string
	for _, t := range out.Shadowed {
		if t.Role == "" {
			msgs = append(msgs, fmt.Sprintf("%s: signed, but no role a resolve visits lists it, so it does not resolve", t.Tag))
			continue
		}
		msgs = append(msgs, fmt.Sprintf("%s: the signature does not take effect: %s, earlier in resolution order, lists it as %s, and resolves return that (unsign it there, or sign with --role %s)", t.Tag, t.Role, t.Digest, t.Role))
	}
	return msgs
}

func (a *app) unsignCmd() *cobra.Command {
	var role string
	cmd := &cobra.Command{
		Use:     "unsign REF…",
		Aliases: []string{"revoke"}, // docker trust revoke
		Short:   "Remove tags' signatures in one publish",
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return usageError{errors.New("unsign takes REF…")}
			}
			var changes []client.Change
			var gun string
			for _, ref := range args {
				tag, err := sameRepo(&gun, ref)
				if err != nil {
					return err
				}
				changes = append(changes, client.Change{Tag: tag, Remove: true})
			}
			return a.publish(cmd, gun, role, changes)
		},
	}
	cmd.Flags().StringVar(&role, "role", "", "remove from this role; default: the role that lists each tag")
	return cmd
}
