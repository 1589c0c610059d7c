package signetcli

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/signetdev/signet/client"
	"github.com/signetdev/signet/tufedit"
)

// rootCmd is the offline root ceremony (issue 5). Only `publish` needs the
// network.
func (a *app) rootCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "root", Short: "Offline root key ceremony: init, sign, verify, rotate, resign, publish"}

	var keys, threshold, targetsThreshold int
	var tsFile, snapFile, out string
	var targetsFiles []string
	initCmd := &cobra.Command{
		Use: "init GUN --keys N --threshold K --timestamp-key FILE --snapshot-key FILE [--targets-key FILE… --targets-threshold K] --out root.json", Args: exactArgs(1),
		Short: "Make N root keys (encrypted files) and an unsigned root.json; works with no network",
		RunE: func(cmd *cobra.Command, args []string) error {
			if tsFile == "" || snapFile == "" || out == "" {
				return usageError{errors.New("--timestamp-key FILE and --snapshot-key FILE (from `signet key fetch GUN timestamp|snapshot`) and --out FILE are required")}
			}
			plan := tufedit.RootPlan{Keys: keys, Threshold: threshold, TargetsThreshold: targetsThreshold}
			var err error
			if plan.Timestamp, err = readPublicKey(tsFile); err != nil {
				return err
			}
			if plan.Snapshot, err = readPublicKey(snapFile); err != nil {
				return err
			}
			if plan.TargetsKeys, err = readPublicKeys(targetsFiles); err != nil {
				return err
			}
			plan.Expires = a.clock().Add(client.RootLifetime)
			root, err := tufedit.NewRoot(cmd.Context(), plan, client.KeyGen(a.keyStore()))
			if err != nil {
				return err
			}
			if err := os.WriteFile(out, root, 0o644); err != nil {
				return err
			}
			return a.print(map[string]any{"gun": args[0], "file": out, "threshold": threshold, "keys": keys}, func(w io.Writer) {
				fmt.Fprintf(w, "wrote unsigned %s for %s (%d of %d root keys must sign it: signet root sign %s --key FILE)\n", out, args[0], threshold, keys, out)
			})
		},
	}
	initCmd.Flags().IntVar(&keys, "keys", 3, "root keys to make (N)")
	initCmd.Flags().IntVar(&threshold, "threshold", 2, "root signatures required (K)")
	initCmd.Flags().StringVar(&tsFile, "timestamp-key", "", "the server's timestamp key (signet key fetch GUN timestamp)")
	initCmd.Flags().StringVar(&snapFile, "snapshot-key", "", "the server's snapshot key (signet key fetch GUN snapshot); required: the server makes snapshots")
	initCmd.Flags().StringArrayVar(&targetsFiles, "targets-key", nil, "targets public key file (TUF key JSON, PEM or x509 certificate); default: make one here")
	initCmd.Flags().IntVar(&targetsThreshold, "targets-threshold", 1, "targets signatures required; above 1, tag changes are staged until enough holders approve")
	initCmd.Flags().StringVar(&out, "out", "root.json", "where to write the unsigned root")

	var keyFile, signPrevious string
	sign := &cobra.Command{
		Use: "sign root.json --key FILE [--previous old-root.json]", Args: exactArgs(1), Short: "Add one root key's signature, offline",
		RunE: func(_ *cobra.Command, args []string) error {
			if keyFile == "" {
				return usageError{errors.New("--key FILE is required")}
			}
			data, err := os.ReadFile(args[0])
			if err != nil {
				return err
			}
			var prev [][]byte
			if signPrevious != "" {
				p, err := os.ReadFile(signPrevious)
				if err != nil {
					return err
				}
				prev = append(prev, p)
			}
			signed, err := a.signRoot(data, keyFile, prev...)
			if err != nil {
				return err
			}
			if err := os.WriteFile(args[0], signed, 0o644); err != nil {
				return err
			}
			rep, err := tufedit.VerifyRoot(signed, nil)
			if err != nil {
				return err
			}
			n := 0
			for _, k := range rep.Keys {
				if k.Signed {
					n++
				}
			}
			return a.print(map[string]any{"file": args[0], "version": rep.Version, "signatures": n, "threshold": rep.Threshold}, func(w io.Writer) {
				fmt.Fprintf(w, "signed %s (root v%d) with %s: %d of %d required root signatures\n", args[0], rep.Version, keyFile, n, rep.Threshold)
			})
		},
	}
	sign.Flags().StringVar(&keyFile, "key", "", "encrypted root key file")
	sign.Flags().StringVar(&signPrevious, "previous", "", "the root this one replaces: its root keys may sign too (a rotation needs a threshold of them)")

	var previous string
	verify := &cobra.Command{
		Use: "verify root.json [--previous old-root.json]", Args: exactArgs(1), Short: "Show who signed and whether the thresholds are met",
		RunE: func(_ *cobra.Command, args []string) error {
			data, err := os.ReadFile(args[0])
			if err != nil {
				return err
			}
			var prev []byte
			if previous != "" {
				if prev, err = os.ReadFile(previous); err != nil {
					return err
				}
			}
			rep, err := tufedit.VerifyRoot(data, prev)
			if err != nil {
				return err
			}
			if err := a.print(rep, func(w io.Writer) {
				tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
				fmt.Fprintf(tw, "root v%d, threshold %d\n", rep.Version, rep.Threshold)
				for _, k := range rep.Keys {
					fmt.Fprintf(tw, "%s\tsigned: %v\n", k.ID, k.Signed)
				}
				tw.Flush()
				for _, e := range rep.Errors {
					fmt.Fprintln(w, "✗", e)
				}
			}); err != nil {
				return err
			}
			if !rep.SelfOK || (prev != nil && !rep.PreviousOK) {
				return fmt.Errorf("%w: %s is not signed to its thresholds yet", client.ErrThreshold, args[0])
			}
			return nil
		},
	}
	verify.Flags().StringVar(&previous, "previous", "", "the root this one replaces (checks its threshold too)")

	var addKeys, removeKeys []string
	var newThreshold int
	var expires time.Duration
	next := func(use, short string, rotate bool) *cobra.Command {
		c := &cobra.Command{
			Use: use, Args: exactArgs(1), Short: short,
			RunE: func(_ *cobra.Command, args []string) error {
				data, err := os.ReadFile(args[0])
				if err != nil {
					return err
				}
				ch := tufedit.RootChange{Expires: a.clock().Add(expires)}
				if rotate {
					ch.RemoveKeys, ch.Threshold = removeKeys, newThreshold
					if ch.AddKeys, err = readPublicKeys(addKeys); err != nil {
						return err
					}
				}
				n, err := tufedit.NextRoot(data, ch)
				if err != nil {
					return err
				}
				if err := os.WriteFile(out, n, 0o644); err != nil {
					return err
				}
				return a.print(map[string]any{"file": out}, func(w io.Writer) {
					fmt.Fprintf(w, "wrote unsigned %s: sign it with a threshold of the old root's keys and of its own\n", out)
				})
			},
		}
		c.Flags().StringVar(&out, "out", "root.next.json", "where to write the next root")
		c.Flags().DurationVar(&expires, "expires", client.RootLifetime, "lifetime of the next root")
		if rotate {
			c.Flags().StringArrayVar(&addKeys, "add-key", nil, "public root key file (TUF key JSON, PEM or x509 certificate) to add")
			c.Flags().StringArrayVar(&removeKeys, "remove-key", nil, "root key ID to remove")
			c.Flags().IntVar(&newThreshold, "threshold", 0, "new root threshold (default: unchanged)")
		}
		return c
	}

	publish := &cobra.Command{
		Use: "publish GUN root.json", Args: exactArgs(2), Short: "Upload a signed root (no root private key needed here)",
		RunE: a.withClient(func(cmd *cobra.Command, args []string, c *client.Client) error {
			data, err := os.ReadFile(args[1])
			if err != nil {
				return err
			}
			if err := c.RootPublish(cmd.Context(), args[0], data); err != nil {
				return err
			}
			return a.print(map[string]any{"gun": args[0], "published": metadata.ROOT}, func(w io.Writer) {
				fmt.Fprintf(w, "published the root of %s\n", args[0])
			})
		}),
	}
	cmd.AddCommand(initCmd, sign, verify, next("rotate root.json", "Make the next root version with keys added or removed, or a new threshold", true),
		next("resign root.json", "Make the next root version with a new expiry", false), publish)
	return cmd
}

// signRoot adds the signature of the root key in keyFile to root (which
// replaces previous). A key file whose header names a key that is no root
// key is refused before its passphrase is asked for.
func (a *app) signRoot(root []byte, keyFile string, previous ...[]byte) ([]byte, error) {
	pub, err := client.KeyFilePublic(keyFile)
	if err != nil {
		return nil, err
	}
	if pub != nil {
		if _, err := tufedit.CheckRootKey(root, pub, previous...); err != nil {
			return nil, fmt.Errorf("%s: %w", keyFile, err)
		}
	}
	pass, err := a.passphrase(metadata.ROOT, keyFile)
	if err != nil {
		return nil, err
	}
	s, err := client.OpenKeyFile(keyFile, pass)
	if err != nil {
		return nil, err
	}
	signed, err := tufedit.SignRoot(root, s, previous...)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", keyFile, err)
	}
	return signed, nil
}

// keyFetchCmd writes a server key to a file for the ceremony machine.
func (a *app) keyFetchCmd() *cobra.Command {
	var out string
	cmd := &cobra.Command{
		Use: "fetch GUN ROLE --out FILE", Args: exactArgs(2), Short: "Write the server's timestamp or snapshot public key to a file",
		RunE: a.withClient(func(cmd *cobra.Command, args []string, c *client.Client) error {
			k, err := c.ServerKey(cmd.Context(), args[0], args[1])
			if err != nil {
				return err
			}
			data, err := json.MarshalIndent(k, "", "  ")
			if err != nil {
				return err
			}
			if out == "" {
				out = args[1] + ".key.json"
			}
			if err := os.WriteFile(out, data, 0o644); err != nil {
				return err
			}
			id, _ := k.ID()
			return a.print(map[string]string{"gun": args[0], "role": args[1], "keyid": id, "file": out}, func(w io.Writer) {
				fmt.Fprintf(w, "wrote the %s key %s of %s to %s\n", args[1], id, args[0], out)
			})
		}),
	}
	cmd.Flags().StringVar(&out, "out", "", "file to write (default ROLE.key.json)")
	return cmd
}

func (a *app) statusCmd() *cobra.Command {
	return &cobra.Command{
		Use: "status GUN", Args: exactArgs(1), Short: "Show when each role (delegations included) expires, warn within 30 days, and count staged changes",
		Long: `Show when each role of a repository expires (delegations and hashed bins
included), warn about developer-signed roles that expire within 30 days, and
count staged changes.

When a role has expired, resolves of the repository fail (exit 4); status
still shows every role, marks the expired ones EXPIRED, says how to recover
and exits 4.`,
		RunE: a.withClient(func(cmd *cobra.Command, args []string, c *client.Client) error {
			st, stErr := c.Status(cmd.Context(), args[0])
			if st == nil {
				return stErr
			}
			staged, err := c.ListStaged(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if staged == nil {
				staged = []client.StagedChange{}
			}
			if err := a.print(map[string]any{"roles": st, "staged": staged}, func(w io.Writer) {
				tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
				fmt.Fprintln(tw, "ROLE\tVERSION\tEXPIRES\t")
				for _, r := range st {
					warn := ""
					switch {
					case r.Expired:
						warn = "EXPIRED: " + recovery(args[0], r.Role)
					case r.Soon:
						warn = "⚠ expires within 30 days: re-sign it"
					}
					fmt.Fprintf(tw, "%s\t%d\t%s\t%s\n", r.Role, r.Version, r.Expires.UTC().Format(time.RFC3339), warn)
				}
				tw.Flush()
				if len(staged) > 0 {
					fmt.Fprintf(w, "%d staged change(s) wait for signatures: signet staged list %s\n", len(staged), args[0])
				}
			}); err != nil {
				return err
			}
			return stErr
		}),
	}
}

// recovery says how to renew an expired role.
func recovery(gun, role string) string {
	switch role {
	case metadata.ROOT:
		return "make the next root with `signet root resign root.json`, sign it with the root keys and `signet root publish " + gun + " root.next.json`"
	case metadata.TIMESTAMP, metadata.SNAPSHOT:
		return "signet-server re-signs it; check that the server and its signer are up"
	}
	return "its key holders must publish a new version of it: signet resign " + gun + " " + role
}
