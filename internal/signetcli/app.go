// Package signetcli is the signet command tree (cobra): every command of
// the signet CLI, its global settings, its exit codes and its error output.
// cmd/signet is its main; cmd/docker-signet grafts the same tree under the
// Docker CLI plugin. It must not import server, signer or anything of
// Docker's engine client. An app (one command line) is not safe for
// concurrent use; separate Run calls are independent.
package signetcli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/spf13/cobra"
	"github.com/theupdateframework/go-tuf/v2/metadata"
	"golang.org/x/term"

	"github.com/signetdev/signet/client"
	"github.com/signetdev/signet/imageref"
	buildinfo "github.com/signetdev/signet/internal/cli"
	"github.com/signetdev/signet/tufedit"
)

// Exit codes.
const (
	exitOK        = 0
	exitError     = 1
	exitUsage     = 2
	exitNotSigned = 3
	exitTrust     = 4
	exitStaged    = 5
)

type app struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	getenv         func(string) string
	server         string
	trustDir       string
	output         string
	values         map[string]*string // global settings by flag name (config.go)
	configFile     string
	yes            bool
	started        bool             // a command's RunE was reached: cobra accepted the command line
	scryptCost     int              // tests lower it
	now            func() time.Time // tests move the clock; nil: time.Now
	engine         Engine           // docker-signet's engine: adds pull and push (plugin.go)
	cl             *client.Client   // built by client(), once
}

// Run runs the signet command line args (without the program name) and
// returns its exit code (the exit* constants, documented in cmd/signet).
func Run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, getenv func(string) string) int {
	a := &app{stdin: stdin, stdout: stdout, stderr: stderr, getenv: getenv}
	return a.execute(ctx, args)
}

// execute runs the command line and reports an error once, on stderr: as
// "signet: …", or with -o json as {"error":{"code","exit","message"}}.
func (a *app) execute(ctx context.Context, args []string) int {
	root := a.command()
	root.SetArgs(args)
	root.SetIn(a.stdin)
	root.SetOut(a.stdout)
	root.SetErr(a.stderr)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return exitOK
	}
	return a.report(err)
}

// report writes err once on stderr and returns its exit code.
func (a *app) report(err error) int {
	if !a.started {
		// Cobra refused the command line (unknown command, bad flag or
		// argument) before any command ran.
		var ue usageError
		if !errors.As(err, &ue) {
			err = usageError{fmt.Errorf("%w; see signet --help", err)}
		}
	}
	code := exitCode(err)
	if a.output == "" && a.values != nil {
		a.output = *a.values["output"] // cobra stopped before the settings were resolved
	}
	if a.output == "json" {
		enc := json.NewEncoder(a.stderr)
		_ = enc.Encode(map[string]any{"error": map[string]any{"code": exitNames[code], "exit": code, "message": err.Error()}})
		return code
	}
	fmt.Fprintln(a.stderr, "signet:", err)
	return code
}

// exitNames are the stable codes of errors in JSON output.
var exitNames = map[int]string{exitError: "error", exitUsage: "usage", exitNotSigned: "not_signed", exitTrust: "trust", exitStaged: "staged"}

// exitCode maps an error to the documented exit codes.
func exitCode(err error) int {
	var ue usageError
	var te *client.TrustError
	var se stagedError
	switch {
	case errors.As(err, &se):
		return exitStaged
	case errors.As(err, &ue), errors.Is(err, tufedit.ErrNotRootKey):
		return exitUsage
	case errors.Is(err, client.ErrNotSigned), errors.Is(err, errMismatch):
		return exitNotSigned
	case errors.As(err, &te), errors.Is(err, client.ErrNoTrust), errors.Is(err, client.ErrThreshold), errors.Is(err, client.ErrExpired):
		return exitTrust
	}
	return exitError
}

type usageError struct{ error }

var errMismatch = errors.New("digest mismatch")

func (a *app) command() *cobra.Command {
	root := &cobra.Command{
		Use:           "signet",
		Short:         "Sign image tags on push and verify them on pull (TUF content trust)",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.Version = buildinfo.Version("signet")
	root.SetVersionTemplate("{{.Version}}\n")
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	root.PersistentPreRunE = func(cmd *cobra.Command, _ []string) error {
		a.started = true
		return a.resolveSettings(cmd)
	}
	root.Long = root.Short + "\n" + envHelp
	a.addSettings(root)
	pf := root.PersistentFlags()
	pf.BoolVarP(&a.yes, "yes", "y", false, "answer yes to confirmation prompts (changes that make tags stop resolving, approve)")

	root.AddCommand(a.initCmd(), a.signCmd(), a.unsignCmd(), a.resignCmd(), a.resolveCmd(), a.verifyCmd(), a.listCmd(), a.keyCmd(), a.trustCmd(),
		a.rootCmd(), a.statusCmd(), a.delegationCmd(), a.signerCmd(), a.stagedCmd(), a.approveCmd(), a.repoCmd())
	root.AddCommand(a.migrateCmd())
	root.AddCommand(a.policyCmd())
	root.AddCommand(a.inspectCmd())
	if a.engine != nil {
		root.AddCommand(a.engineCmds()...)
	}
	root.AddCommand(a.versionCmd(root))
	strictGroups(root) // after every registration
	normaliseGUNs(root)
	return root
}

func (a *app) versionCmd(root *cobra.Command) *cobra.Command {
	return &cobra.Command{Use: "version", Short: "Print signet's version, commit and Go version", Args: exactArgs(0),
		RunE: func(*cobra.Command, []string) error {
			return a.print(map[string]string{"version": root.Version}, func(w io.Writer) { fmt.Fprintln(w, root.Version) })
		}}
}

// normaliseGUNs makes every command whose first argument is a GUN (its Use
// reads "verb GUN …") take it in Docker's normalised form, as references
// are (imageref: alpine ≡ docker.io/library/alpine), so that one
// repository has one name everywhere. A GUN with a tag or digest, or that
// is no repository name, is a usage error.
func normaliseGUNs(cmd *cobra.Command) {
	for _, sub := range cmd.Commands() {
		normaliseGUNs(sub)
	}
	f := strings.Fields(cmd.Use)
	if len(f) < 2 || f[1] != "GUN" || cmd.RunE == nil {
		return
	}
	run := cmd.RunE
	cmd.RunE = func(c *cobra.Command, args []string) error {
		if len(args) > 0 {
			gun, err := normaliseGUN(args[0])
			if err != nil {
				return err
			}
			args[0] = gun
		}
		return run(c, args)
	}
}

// normaliseGUN returns the repository name arg stands for, normalised.
func normaliseGUN(arg string) (string, error) {
	r, err := imageref.Parse(arg)
	if err != nil || r.Tag != "" || r.Digest != "" {
		return "", usageError{fmt.Errorf("%q is not a repository name (a GUN such as registry.example.com/team/app, without tag or digest)", arg)}
	}
	if err := client.ValidateGUN(r.Name); err != nil {
		return "", usageError{err}
	}
	return r.Name, nil
}

// strictGroups makes every command group (key, trust, root, …) refuse an
// unknown subcommand as a usage error (exit 2) instead of printing help
// with exit 0; a group given nothing prints its help.
func strictGroups(cmd *cobra.Command) {
	for _, sub := range cmd.Commands() {
		strictGroups(sub)
	}
	if !cmd.HasSubCommands() || cmd.Runnable() || !cmd.HasParent() {
		return
	}
	strictGroup(cmd)
}

// strictGroup makes the group cmd refuse an unknown subcommand.
func strictGroup(cmd *cobra.Command) {
	cmd.Args = cobra.ArbitraryArgs
	cmd.RunE = func(c *cobra.Command, args []string) error {
		if len(args) > 0 {
			return usageError{fmt.Errorf("unknown command %q for %q; see %s --help", args[0], c.CommandPath(), c.CommandPath())}
		}
		return c.Help()
	}
}

// client returns the command line's client, built on first use from the
// settings (server, trust directory, TLS, token): one per command line.
func (a *app) client() (*client.Client, error) {
	if a.cl != nil {
		return a.cl, nil
	}
	hc, err := a.httpClient()
	if err != nil {
		return nil, err
	}
	c, err := client.New(client.Options{Server: a.server, TrustDir: a.trustDir, HTTPClient: hc, Token: a.getenv("SIGNET_TOKEN"), Keys: a.keyStore(),
		Keychain: a.keychain(), RegistryAuthHosts: splitList(a.getenv("SIGNET_REGISTRY_AUTH_HOSTS")), Now: a.now})
	if err != nil {
		return nil, err
	}
	a.cl = c
	return c, nil
}

// withClient is the RunE of a command that works with the client (the
// server, or the trust directory's pins, cache and keys): run gets it.
// Commands that need neither (version; root init, sign, verify, rotate,
// resign) do without, so they need no server, TLS or token settings.
func (a *app) withClient(run func(cmd *cobra.Command, args []string, c *client.Client) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		c, err := a.client()
		if err != nil {
			return err
		}
		return run(cmd, args, c)
	}
}

// keyStore is the trust directory's key store, all that the offline root
// ceremony needs (no server, TLS or token settings).
func (a *app) keyStore() *client.FileKeyStore {
	return client.NewFileKeyStore(filepath.Join(a.trustDir, "private"), a.passphrase, a.scryptCost)
}

// clock is the command line's clock: tests move it.
func (a *app) clock() time.Time {
	if a.now != nil {
		return a.now()
	}
	return time.Now()
}

// keychain supplies registry credentials for servers that ask for registry
// tokens: SIGNET_REGISTRY_AUTH (user:password) first, then the Docker
// config (~/.docker/config.json and its credential helpers). They go only
// to an https token service on the registry's host or in
// SIGNET_REGISTRY_AUTH_HOSTS (client/challenge.go). SIGNET_AUTH is the
// server's auth mode and means nothing here.
func (a *app) keychain() authn.Keychain {
	if user, pass, ok := strings.Cut(a.getenv("SIGNET_REGISTRY_AUTH"), ":"); ok {
		return authn.NewMultiKeychain(basicKeychain{user, pass}, authn.DefaultKeychain)
	}
	return authn.DefaultKeychain
}

type basicKeychain struct{ user, pass string }

func (k basicKeychain) Resolve(authn.Resource) (authn.Authenticator, error) {
	return authn.FromConfig(authn.AuthConfig{Username: k.user, Password: k.pass}), nil
}

// passphrase reads SIGNET_<ROLE>_PASSPHRASE or prompts on a terminal.
func (a *app) passphrase(role, keyID string) ([]byte, error) {
	kind := strings.ToUpper(role)
	if role != metadata.ROOT && role != metadata.TARGETS {
		kind = "DELEGATION"
	}
	if p := a.getenv("SIGNET_" + kind + "_PASSPHRASE"); p != "" {
		return []byte(p), nil
	}
	f, ok := a.stdin.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return nil, fmt.Errorf("no passphrase for the %s key: set SIGNET_%s_PASSPHRASE", role, kind)
	}
	fmt.Fprintf(a.stderr, "Passphrase for the %s key %s: ", role, short(keyID))
	p, err := term.ReadPassword(int(f.Fd()))
	fmt.Fprintln(a.stderr)
	return p, err
}

func short(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

func (a *app) print(v any, text func(w io.Writer)) error {
	if a.output == "json" {
		enc := json.NewEncoder(a.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	text(a.stdout)
	return nil
}

func exactArgs(n int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != n {
			return usageError{fmt.Errorf("%s takes %d argument(s); see --help", cmd.CommandPath(), n)}
		}
		return nil
	}
}

func minArgs(n int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) < n {
			return usageError{fmt.Errorf("%s takes at least %d argument(s); see --help", cmd.CommandPath(), n)}
		}
		return nil
	}
}

func (a *app) initCmd() *cobra.Command {
	var bins int
	cmd := &cobra.Command{
		Use:   "init GUN",
		Short: "Create a repository's trust data: root and targets keys, root.json, empty targets",
		Args:  exactArgs(1),
		RunE: a.withClient(func(cmd *cobra.Command, args []string, c *client.Client) error {
			// Everything that can be checked is checked before any key,
			// file or publish.
			if err := client.ValidateGUN(args[0]); err != nil {
				return usageError{err}
			}
			if cmd.Flags().Changed("bins") {
				if err := client.CheckBins(bins); err != nil {
					return usageError{err}
				}
			}
			if _, err := c.PinnedRoot(args[0]); err == nil {
				return usageError{fmt.Errorf("%s is already initialised in %s (its root is pinned); to start over, remove it first: signet trust remove %s", args[0], a.trustDir, args[0])}
			}
			if _, err := c.Init(cmd.Context(), args[0]); err != nil {
				return err
			}
			if bins > 0 {
				if err := a.shard(cmd, c, args[0], bins); err != nil {
					return err
				}
			}
			return a.print(map[string]string{"gun": args[0], "trust_dir": a.trustDir}, func(w io.Writer) {
				fmt.Fprintf(w, "initialised %s; its root is pinned in %s (copy it with `signet trust show %s`)\n", args[0], a.trustDir, args[0])
			})
		}),
	}
	cmd.Flags().IntVar(&bins, "bins", 0, "keep tags in this many hashed bins (a power of two; for repositories with many tags)")
	return cmd
}

func (a *app) resolveCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "resolve REF",
		Short: "Print the trusted digest of a tag as GUN@sha256:…",
		Args:  exactArgs(1),
		RunE: a.withClient(func(cmd *cobra.Command, args []string, c *client.Client) error {
			if _, _, err := parseRef(args[0]); err != nil {
				return err
			}
			// One reference, then the process ends: nothing to keep warm.
			t, err := c.ResolveOnce(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return a.print(toJSON(t), func(w io.Writer) { fmt.Fprintf(w, "%s@%s\n", t.GUN, t.Digest) })
		}),
	}
}

func (a *app) verifyCmd() *cobra.Command {
	var want string
	cmd := &cobra.Command{
		Use:   "verify REF --digest sha256:…",
		Short: "Exit 0 only if REF's trusted digest is the given one",
		Args:  exactArgs(1),
		RunE: a.withClient(func(cmd *cobra.Command, args []string, c *client.Client) error {
			if want == "" {
				return usageError{errors.New("--digest is required")}
			}
			wantD, err := parseDigest(want)
			if err != nil {
				return err
			}
			if _, _, err := parseRef(args[0]); err != nil {
				return err
			}
			t, err := c.ResolveOnce(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if t.Digest != wantD {
				return fmt.Errorf("%w: %s is signed as %s, not %s", errMismatch, args[0], t.Digest, want)
			}
			return a.print(toJSON(t), func(w io.Writer) { fmt.Fprintf(w, "verified %s = %s (signed by %s)\n", args[0], t.Digest, t.Role) })
		}),
	}
	cmd.Flags().StringVar(&want, "digest", "", "the digest the tag must resolve to")
	return cmd
}

func (a *app) listCmd() *cobra.Command {
	var role string
	cmd := &cobra.Command{
		Use:   "list GUN",
		Short: "List every tag that resolves, with the role that vouches for it (delegations and hashed bins included)",
		Args:  exactArgs(1),
		RunE: a.withClient(func(cmd *cobra.Command, args []string, c *client.Client) error {
			all, err := c.Targets(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			rows := []targetJSON{}
			for _, t := range all {
				if role == "" || t.Role == role {
					rows = append(rows, toJSON(&t))
				}
			}
			return a.print(rows, func(w io.Writer) {
				tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
				fmt.Fprintln(tw, "TAG\tDIGEST\tSIZE\tROLE")
				for _, r := range rows {
					fmt.Fprintf(tw, "%s\t%s\t%d\t%s\n", r.Tag, r.Digest, r.Size, r.Role)
				}
				tw.Flush()
			})
		}),
	}
	cmd.Flags().StringVar(&role, "role", "", "only the tags this role vouches for (targets, targets/releases, bins-0a, …)")
	return cmd
}

// targetJSON is the one JSON shape of a trusted tag (resolve, verify, list).
type targetJSON struct {
	GUN    string `json:"gun"`
	Tag    string `json:"tag"`
	Digest string `json:"digest"`
	Size   int64  `json:"size"`
	Role   string `json:"role"`
}

func toJSON(t *client.Target) targetJSON {
	return targetJSON{GUN: t.GUN, Tag: t.Tag, Digest: t.Digest.String(), Size: t.Size, Role: t.Role}
}

func (a *app) trustCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "trust", Short: "Pin and show trusted roots"}
	var rootFile string
	pin := &cobra.Command{
		Use: "pin GUN --root FILE", Short: "Trust a repository's root.json (from its key ceremony or another machine)", Args: exactArgs(1),
		RunE: a.withClient(func(_ *cobra.Command, args []string, c *client.Client) error {
			if rootFile == "" {
				return usageError{errors.New("--root FILE is required")}
			}
			data, err := os.ReadFile(rootFile)
			if err != nil {
				return err
			}
			res, err := c.Pin(args[0], data)
			if err != nil {
				return err
			}
			return a.print(map[string]any{"gun": args[0], "version": res.Version, "replaced": res.Replaced}, func(w io.Writer) {
				if res.Replaced {
					fmt.Fprintf(w, "replaced the pinned root of %s (v%d) with v%d; removed the metadata cached under the old pin\n", args[0], res.Previous, res.Version)
					return
				}
				fmt.Fprintf(w, "pinned the root (v%d) of %s\n", res.Version, args[0])
			})
		}),
	}
	pin.Flags().StringVar(&rootFile, "root", "", "root.json to pin")
	show := &cobra.Command{
		Use: "show GUN", Short: "Print the pinned root.json", Args: exactArgs(1),
		RunE: a.withClient(func(_ *cobra.Command, args []string, c *client.Client) error {
			data, err := c.PinnedRoot(args[0])
			if err != nil {
				return err
			}
			_, err = a.stdout.Write(data)
			return err
		}),
	}
	list := &cobra.Command{
		Use: "list", Short: "List the repositories this trust directory trusts", Args: exactArgs(0),
		RunE: a.withClient(func(_ *cobra.Command, _ []string, c *client.Client) error {
			pins, err := c.Pins()
			if err != nil {
				return err
			}
			if pins == nil {
				pins = []client.PinInfo{}
			}
			return a.print(pins, func(w io.Writer) {
				tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
				fmt.Fprintln(tw, "GUN\tPINNED ROOT\tEXPIRES\tTRUSTED ROOT")
				for _, p := range pins {
					trusted := "-"
					if p.TrustedVersion > 0 {
						trusted = fmt.Sprintf("v%d", p.TrustedVersion)
					}
					fmt.Fprintf(tw, "%s\tv%d\t%s\t%s\n", p.GUN, p.PinnedVersion, p.PinnedExpires.UTC().Format(time.RFC3339), trusted)
				}
				tw.Flush()
			})
		}),
	}
	remove := &cobra.Command{
		Use: "remove GUN", Short: "Stop trusting a repository: remove its pinned root and cached metadata", Args: exactArgs(1),
		RunE: a.withClient(func(_ *cobra.Command, args []string, c *client.Client) error {
			if err := c.Unpin(args[0]); err != nil {
				return err
			}
			return a.print(map[string]string{"gun": args[0]}, func(w io.Writer) { fmt.Fprintf(w, "removed the pinned root of %s\n", args[0]) })
		}),
	}
	cmd.AddCommand(pin, show, list, remove)
	return cmd
}

// or returns v, or def when v is empty.
func or(v, def string) string {
	if v != "" {
		return v
	}
	return def
}
