package signetcli

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"github.com/theupdateframework/go-tuf/v2/metadata"
	"golang.org/x/term"

	"github.com/signetdev/signet/client"
	"github.com/signetdev/signet/tufedit"
)

// keyJSON is the JSON shape of a held key.
type keyJSON struct {
	ID           string          `json:"id"`
	Role         string          `json:"role"`
	Public       *metadata.Key   `json:"public,omitempty"`
	Repositories []client.KeyUse `json:"repositories"`
}

// readPublicKey reads a public key file (--key, --add-key, --timestamp-key
// …): TUF key JSON, a PEM public key or an x509 certificate, of a
// supported type and size, and never a private key (tufedit.ParsePublicKey).
func readPublicKey(path string) (*metadata.Key, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	k, err := tufedit.ParsePublicKey(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return k, nil
}

// readPublicKeys reads public key files (readPublicKey).
func readPublicKeys(paths []string) ([]*metadata.Key, error) {
	var keys []*metadata.Key
	for _, p := range paths {
		k, err := readPublicKey(p)
		if err != nil {
			return nil, err
		}
		keys = append(keys, k)
	}
	return keys, nil
}

// requiredKeys reads the --key files of verb, which needs at least one.
func requiredKeys(verb string, paths []string) ([]*metadata.Key, error) {
	if len(paths) == 0 {
		return nil, usageError{fmt.Errorf("%s needs --key PUB (TUF key JSON, PEM or x509 certificate)", verb)}
	}
	return readPublicKeys(paths)
}

// heldKey resolves a KEYID argument (a full ID or a unique prefix of at
// least 8 hex characters) among c's keys; a bad one is a usage error.
func (a *app) heldKey(cmd *cobra.Command, c *client.Client, arg string) (string, error) {
	id, err := c.HeldKeyID(cmd.Context(), arg)
	if errors.Is(err, client.ErrAmbiguousKeyID) {
		return "", usageError{fmt.Errorf("%w (in %s)", err, a.trustDir)}
	}
	return id, err
}

// heldFileKey is heldKey for verbs that edit the key file itself (verb
// names the command in the refusal).
func (a *app) heldFileKey(cmd *cobra.Command, c *client.Client, arg, verb string) (*client.FileKeyStore, string, error) {
	id, err := a.heldKey(cmd, c, arg)
	if err != nil {
		return nil, "", err
	}
	fs, ok := c.Keys().(*client.FileKeyStore)
	if !ok {
		return nil, "", fmt.Errorf("%s works on the file key store only", verb)
	}
	return fs, id, nil
}

// printNewKey reports a key just generated or imported (done: "" or
// "imported "): no repository names it yet.
func (a *app) printNewKey(k *client.KeyInfo, done string) error {
	return a.print(keyJSON{ID: k.ID, Role: k.Role, Public: k.Public, Repositories: []client.KeyUse{}}, func(w io.Writer) { fmt.Fprintf(w, "%s%s %s\n", done, k.ID, k.Role) })
}

func (a *app) keyCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "key", Short: "Manage private keys in the trust directory (KEYID: the full ID or a unique prefix of 8+ hex digits)"}
	var role string
	gen := &cobra.Command{
		Use: "generate", Short: "Generate a key (ed25519, encrypted PKCS#8)", Args: exactArgs(0),
		RunE: a.withClient(func(cmd *cobra.Command, _ []string, c *client.Client) error {
			k, err := c.Keys().Generate(cmd.Context(), role)
			if err != nil {
				return err
			}
			return a.printNewKey(k, "")
		}),
	}
	gen.Flags().StringVar(&role, "role", metadata.TARGETS, "role the key is for: root, targets or delegation")
	list := &cobra.Command{
		Use: "list", Short: "List held keys: ID, role, and the pinned repositories whose metadata name them", Args: exactArgs(0),
		RunE: a.withClient(func(cmd *cobra.Command, _ []string, c *client.Client) error {
			keys, err := c.Keys().List(cmd.Context())
			if err != nil {
				return err
			}
			uses, err := c.KeyUses()
			if err != nil {
				return err
			}
			rows := []keyJSON{}
			for _, k := range keys {
				u := uses[k.ID]
				if u == nil {
					u = []client.KeyUse{}
				}
				rows = append(rows, keyJSON{ID: k.ID, Role: k.Role, Public: k.Public, Repositories: u})
			}
			return a.print(rows, func(w io.Writer) {
				// No header: "KEYID ROLE GUNS" lines, as scripts read them.
				tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
				for _, r := range rows {
					var guns []string
					for _, u := range r.Repositories {
						guns = append(guns, u.GUN+" ("+u.Role+")")
					}
					if len(guns) == 0 {
						guns = []string{"-"}
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\n", r.ID, r.Role, strings.Join(guns, ","))
				}
				tw.Flush()
			})
		}),
	}
	export := &cobra.Command{
		Use: "export KEYID", Short: "Write a key (still encrypted) to standard output", Args: exactArgs(1),
		RunE: a.withClient(func(cmd *cobra.Command, args []string, c *client.Client) error {
			id, err := a.heldKey(cmd, c, args[0])
			if err != nil {
				return err
			}
			pem, err := c.Keys().Export(cmd.Context(), id)
			if err != nil {
				return err
			}
			_, err = a.stdout.Write(pem)
			return err
		}),
	}
	public := &cobra.Command{
		Use: "public KEYID", Short: "Print a held key's public key (TUF key JSON), for signet signer add or delegation add", Args: exactArgs(1),
		RunE: a.withClient(func(cmd *cobra.Command, args []string, c *client.Client) error {
			id, err := a.heldKey(cmd, c, args[0])
			if err != nil {
				return err
			}
			keys, err := c.Keys().List(cmd.Context())
			if err != nil {
				return err
			}
			for _, k := range keys {
				if k.ID == id && k.Public != nil {
					b, err := json.Marshal(k.Public)
					if err != nil {
						return err
					}
					_, err = fmt.Fprintf(a.stdout, "%s\n", b)
					return err
				}
			}
			return fmt.Errorf("key %s keeps no public key in its file (written by an old signet): %w", id, client.ErrNoKey)
		}),
	}
	var importRole string
	imp := &cobra.Command{
		Use: "import FILE", Aliases: []string{"load"} /* docker trust key load */, Short: "Import an encrypted PKCS#8 PEM key", Args: exactArgs(1),
		RunE: a.withClient(func(cmd *cobra.Command, args []string, c *client.Client) error {
			data, err := os.ReadFile(args[0])
			if err != nil {
				return err
			}
			k, err := c.Keys().Import(cmd.Context(), importRole, data)
			if err != nil {
				return err
			}
			return a.printNewKey(k, "imported ")
		}),
	}
	imp.Flags().StringVar(&importRole, "role", metadata.TARGETS, "role the key is for")
	remove := &cobra.Command{
		Use: "remove KEYID", Short: "Delete a held key file (a key a pinned repository still names needs --yes)", Args: exactArgs(1),
		RunE: a.withClient(func(cmd *cobra.Command, args []string, c *client.Client) error {
			fs, id, err := a.heldFileKey(cmd, c, args[0], "key remove")
			if err != nil {
				return err
			}
			uses, err := c.KeyUses()
			if err != nil {
				return err
			}
			if u := uses[id]; len(u) > 0 {
				var b strings.Builder
				fmt.Fprintf(&b, "key %s is still named by:\n", id)
				for _, x := range u {
					fmt.Fprintf(&b, "  %s (%s)\n", x.GUN, x.Role)
				}
				b.WriteString("without it this trust directory cannot sign for them (export it first to keep a copy)\n")
				if err := a.confirm(b.String()); err != nil {
					return err
				}
			}
			if err := fs.Remove(cmd.Context(), id); err != nil {
				return err
			}
			return a.print(map[string]string{"removed": id}, func(w io.Writer) { fmt.Fprintf(w, "removed key %s\n", id) })
		}),
	}
	passwd := &cobra.Command{
		Use: "passwd KEYID", Short: "Change a held key's passphrase (new one from SIGNET_NEW_PASSPHRASE or the terminal)", Args: exactArgs(1),
		RunE: a.withClient(func(cmd *cobra.Command, args []string, c *client.Client) error {
			fs, id, err := a.heldFileKey(cmd, c, args[0], "key passwd")
			if err != nil {
				return err
			}
			newPass, err := a.newPassphrase(id)
			if err != nil {
				return err
			}
			if err := fs.ChangePassphrase(cmd.Context(), id, newPass); err != nil {
				return err
			}
			return a.print(map[string]string{"changed": id}, func(w io.Writer) { fmt.Fprintf(w, "changed the passphrase of key %s\n", id) })
		}),
	}
	cmd.AddCommand(gen, list, public, export, imp, remove, passwd, a.keyRotateCmd(), a.keyFetchCmd())
	return cmd
}

// newPassphrase reads SIGNET_NEW_PASSPHRASE, or asks twice on a terminal.
func (a *app) newPassphrase(keyID string) ([]byte, error) {
	if p := a.getenv("SIGNET_NEW_PASSPHRASE"); p != "" {
		return []byte(p), nil
	}
	f, ok := a.stdin.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return nil, usageError{errors.New("no new passphrase: set SIGNET_NEW_PASSPHRASE")}
	}
	fmt.Fprintf(a.stderr, "New passphrase for key %s: ", short(keyID))
	p1, err := term.ReadPassword(int(f.Fd()))
	fmt.Fprintln(a.stderr)
	if err != nil {
		return nil, err
	}
	fmt.Fprint(a.stderr, "Again: ")
	p2, err := term.ReadPassword(int(f.Fd()))
	fmt.Fprintln(a.stderr)
	if err != nil {
		return nil, err
	}
	if string(p1) != string(p2) {
		return nil, errors.New("the passphrases differ; nothing changed")
	}
	return p1, nil
}

// keyRotateCmd is Notary's `key rotate GUN ROLE`, shaped for offline root
// keys: it makes the new key (targets: here; timestamp, snapshot: on the
// server) and writes the next, unsigned root naming it, for the root key
// holders to sign (signet root sign) and publish (signet root publish). The
// old key stays in force until that root is published.
func (a *app) keyRotateCmd() *cobra.Command {
	var rootFile, out string
	cmd := &cobra.Command{
		Use:   "rotate GUN ROLE --root root.json [--out root.next.json]",
		Short: "Rotate the targets key (here) or the server's timestamp or snapshot key, and write the next root to sign",
		Args:  exactArgs(2),
		RunE: a.withClient(func(cmd *cobra.Command, args []string, c *client.Client) error {
			gun, role := args[0], args[1]
			if role != metadata.TARGETS && role != metadata.TIMESTAMP && role != metadata.SNAPSHOT {
				return usageError{fmt.Errorf("key rotate: ROLE is targets, timestamp or snapshot, not %q (root keys: signet root rotate; delegations: signet delegation edit)", role)}
			}
			if rootFile == "" {
				return usageError{errors.New("--root root.json (the repository's current root) is required")}
			}
			data, err := os.ReadFile(rootFile)
			if err != nil {
				return err
			}
			var k *metadata.Key
			if role == metadata.TARGETS {
				ki, err := c.Keys().Generate(cmd.Context(), metadata.TARGETS)
				if err != nil {
					return err
				}
				k = ki.Public
			} else if k, err = c.RotateServerKey(cmd.Context(), gun, role); err != nil {
				return err
			}
			next, err := tufedit.NextRoot(data, tufedit.RootChange{Replace: map[string][]*metadata.Key{role: {k}}, Expires: c.Now().Add(client.RootLifetime)})
			if err != nil {
				return err
			}
			if err := os.WriteFile(out, next, 0o644); err != nil {
				return err
			}
			id, _ := k.ID()
			return a.print(map[string]string{"gun": gun, "role": role, "keyid": id, "root": out}, func(w io.Writer) {
				fmt.Fprintf(w, "new %s key %s; wrote the unsigned next root %s\n", role, id, out)
				fmt.Fprintf(w, "sign it with a threshold of the root keys (signet root sign %s --key FILE), then: signet root publish %s %s\n", out, gun, out)
				if role == metadata.TARGETS {
					fmt.Fprintln(w, "publish it from this trust directory: it holds the new targets key, which re-signs targets in the same publish")
				}
			})
		}),
	}
	cmd.Flags().StringVar(&rootFile, "root", "", "the repository's current root.json")
	cmd.Flags().StringVar(&out, "out", "root.next.json", "where to write the next, unsigned root")
	return cmd
}
