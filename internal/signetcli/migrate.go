package signetcli

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/signetdev/signet/client"
	"github.com/signetdev/signet/notary"
	"github.com/signetdev/signet/notary/migrate"
)

// migrateFlags are the flags of signet migrate notary.
type migrateFlags struct {
	from, fromDir, notaryDir, root string
	dryRun, allowExpired, tofu     bool
	flatten, all, init             bool
	batchBytes                     int
	verifyAt                       string
}

func (a *app) migrateCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "migrate", Short: "Move trust data from another system into Signet"}
	cmd.AddCommand(a.migrateNotaryCmd())
	return cmd
}

func (a *app) migrateNotaryCmd() *cobra.Command {
	var f migrateFlags
	cmd := &cobra.Command{
		Use:   "notary GUN… (--from URL | --from-dir DIR)",
		Short: "Move signed tags from Notary v1 / Docker Content Trust into Signet",
		Long: `Verify a repository's Notary v1 trust data (root chain from the pinned root,
signatures to threshold, snapshot and timestamp hashes, delegation paths,
expiry) and publish every tag it vouched for into Signet with the same
digest and size. Delegations (targets/releases, per-signer roles) are
mirrored with the same public keys unless --flatten; Notary's encrypted
private keys in the trust directory are imported into Signet's key store
(passphrases from NOTARY_{ROOT,TARGETS,SNAPSHOT,DELEGATION}_PASSPHRASE or
DOCKER_CONTENT_TRUST_{ROOT,REPOSITORY}_PASSPHRASE); roles whose keys are
missing are staged for their holders to approve. A repository that does not
verify is reported and skipped; nothing of it is published.

The trust anchor is, in order: --root FILE (a Notary root.json or the root
certificate), the root pinned in the trust directory (--from-dir of a
~/.docker/trust or ~/.notary, or --notary-dir), or with
--trust-on-first-use the first root the source serves.

Exit status: 0 when every repository was migrated (or, with --dry-run,
would be), 1 when any was refused or failed (the report says why), 2 for
usage errors.`,
		RunE: a.withClient(func(cmd *cobra.Command, args []string, c *client.Client) error {
			return a.migrateNotary(cmd.Context(), c, f, args)
		}),
	}
	fl := cmd.Flags()
	fl.StringVar(&f.from, "from", "", "notary-server URL (e.g. https://notary.docker.io)")
	fl.StringVar(&f.fromDir, "from-dir", "", "a Notary/Docker client trust directory, or a directory of server files <gun>/<role>.<version>.json")
	fl.StringVar(&f.notaryDir, "notary-dir", "", "a Notary/Docker client trust directory whose pinned roots and keys to use with --from")
	fl.StringVar(&f.root, "root", "", "trust anchor: a Notary root.json or root certificate (PEM)")
	fl.BoolVar(&f.dryRun, "dry-run", false, "verify and print the plan; change nothing")
	fl.BoolVar(&f.allowExpired, "allow-expired", false, "migrate expired Notary metadata (signatures are still checked)")
	fl.BoolVar(&f.tofu, "trust-on-first-use", false, "with no pinned root, trust the first root the source serves (insecure)")
	fl.BoolVar(&f.flatten, "flatten", false, "sign every tag with the targets key instead of mirroring delegations")
	fl.BoolVar(&f.all, "all", false, "migrate every repository found in the trust directory")
	fl.BoolVar(&f.init, "init", false, "create the Signet repository (a new root key; Notary's targets key kept) if no Signet root is pinned")
	fl.IntVar(&f.batchBytes, "batch-bytes", migrate.DefaultMaxUploadBytes, "largest publish, in bytes; bigger migrations go in batches")
	fl.StringVar(&f.verifyAt, "verify-at", "", "check expiry as of this RFC 3339 time instead of now")
	_ = fl.MarkHidden("verify-at")
	return cmd
}

func (a *app) migrateNotary(ctx context.Context, c *client.Client, f migrateFlags, guns []string) error {
	if (f.from == "") == (f.fromDir == "") {
		return usageError{errors.New("give exactly one of --from URL or --from-dir DIR")}
	}
	if f.all == (len(guns) > 0) {
		return usageError{errors.New("give GUNs or --all")}
	}
	var (
		err      error
		src      notary.Source
		trustDir *notary.TrustDir
	)
	switch {
	case f.from != "":
		// One token per GUN (the client's token code, as for signet-server).
		var mu sync.Mutex
		clients := map[string]*http.Client{}
		src = notary.Server{URL: f.from, HTTPClient: func(ctx context.Context, gun string) (*http.Client, error) {
			mu.Lock()
			defer mu.Unlock()
			if hc, ok := clients[gun]; ok {
				return hc, nil
			}
			base, err := a.httpClient()
			if err != nil {
				return nil, err
			}
			hc, err := client.RegistryTokenClient(ctx, base, f.from, gun, "pull", a.keychain(), splitList(a.getenv("SIGNET_REGISTRY_AUTH_HOSTS"))...)
			if err == nil {
				clients[gun] = hc
			}
			return hc, err
		}}
	case notary.IsTrustDir(f.fromDir):
		td := notary.TrustDir{Dir: f.fromDir}
		src, trustDir = td, &td
	default:
		src = notary.ServerDir{Dir: f.fromDir}
	}
	if f.notaryDir != "" {
		if trustDir != nil {
			return usageError{errors.New("--notary-dir goes with --from or a directory of server files; --from-dir is already a trust directory")}
		}
		trustDir = &notary.TrustDir{Dir: f.notaryDir}
	}
	if f.all {
		if trustDir == nil {
			return usageError{errors.New("--all needs a trust directory (--from-dir or --notary-dir)")}
		}
		if guns, err = trustDir.GUNs(); err != nil {
			return err
		}
		if len(guns) == 0 {
			return fmt.Errorf("no repositories in %s", trustDir.Dir)
		}
	}
	for _, g := range guns {
		if !notary.ValidGUN(g) {
			return usageError{fmt.Errorf("%q is not a repository name (GUN, e.g. registry.example.com/team/app)", g)}
		}
	}
	var given notary.Anchor
	if f.root != "" {
		if given, err = readAnchor(f.root); err != nil {
			return err
		}
	}
	anchor := func(gun string) (notary.Anchor, error) {
		if f.root != "" {
			return given, nil
		}
		if trustDir != nil {
			root, err := trustDir.PinnedRoot(gun)
			if err == nil {
				return notary.Anchor{Root: root}, nil
			}
			if !errors.Is(err, notary.ErrNotFound) {
				return notary.Anchor{}, err
			}
		}
		if f.tofu {
			return notary.Anchor{TOFU: true}, nil
		}
		return notary.Anchor{}, fmt.Errorf("no trust anchor for %s: no root pinned for it in a trust directory; give --root FILE (the Notary root.json or root certificate engines trusted), --notary-dir DIR, or, knowingly, --trust-on-first-use", gun)
	}
	now := time.Now
	if f.verifyAt != "" {
		at, err := time.Parse(time.RFC3339, f.verifyAt)
		if err != nil {
			return usageError{fmt.Errorf("--verify-at: %w", err)}
		}
		now = func() time.Time { return at }
	}
	var keys []notary.PrivateKeyFile
	if trustDir != nil {
		if keys, err = notary.ReadPrivateKeys(trustDir.Dir); err != nil {
			return err
		}
	}
	o := migrate.Options{
		Client: c, Source: src, Anchor: anchor,
		Verify: notary.Options{Now: now, AllowExpired: f.allowExpired},
		Keys:   keys, NotaryPassphrase: a.notaryPassphrase, SignetPassphrase: a.passphrase,
		Flatten: f.flatten, DryRun: f.dryRun, Init: f.init, MaxUploadBytes: f.batchBytes,
	}
	if isTerminal(a.stderr) {
		o.Progress = func(gun string, done, total int) {
			fmt.Fprintf(a.stderr, "%s: %d/%d tags published\n", gun, done, total)
		}
	}
	m, err := migrate.New(o)
	if err != nil {
		return err
	}
	var reports []*migrate.GUNReport
	failed := 0
	for _, gun := range guns {
		rep := m.Migrate(ctx, gun)
		if f.tofu {
			for _, w := range rep.Warnings {
				if strings.HasPrefix(w, "TRUST ON FIRST USE") {
					fmt.Fprintln(a.stderr, "WARNING:", w)
				}
			}
		}
		if rep.Failed() {
			failed++
		}
		reports = append(reports, rep)
	}
	if err := a.print(reports, func(w io.Writer) { printReports(w, reports) }); err != nil {
		return err
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d repositories were not migrated (see the report)", failed, len(guns))
	}
	return nil
}

func printReports(w io.Writer, reports []*migrate.GUNReport) {
	for i, rep := range reports {
		if i > 0 {
			fmt.Fprintln(w)
		}
		head := rep.GUN
		if rep.DryRun {
			head += " (dry run: nothing changed)"
		}
		fmt.Fprintln(w, head)
		if rep.Error != "" {
			fmt.Fprintln(w, "  REFUSED:", rep.Error)
		}
		for _, s := range rep.Warnings {
			fmt.Fprintln(w, "  warning:", s)
		}
		for _, s := range rep.Notes {
			fmt.Fprintln(w, "  note:", s)
		}
		for _, s := range rep.Delegations {
			fmt.Fprintln(w, "  delegation:", s)
		}
		for _, id := range rep.KeysImported {
			verb := "imported"
			if rep.DryRun {
				verb = "would import"
			}
			fmt.Fprintf(w, "  key %s Notary key %s\n", verb, short(id))
		}
		if len(rep.Rows) > 0 {
			tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "  TAG\tDIGEST\tSIZE\tNOTARY ROLE\tSIGNET ROLE\tOUTCOME")
			for _, r := range rep.Rows {
				out := r.Outcome
				if r.Reason != "" {
					out += ": " + r.Reason
				}
				fmt.Fprintf(tw, "  %s\t%s\t%d\t%s\t%s\t%s\n", r.Tag, r.Digest, r.Size, r.NotaryRole, or(r.SignetRole, "-"), out)
			}
			tw.Flush()
		}
		if rep.Staged != "" {
			fmt.Fprintf(w, "  staged change %s waits for:", rep.Staged)
			for _, role := range slices.Sorted(maps.Keys(rep.StagedFor)) {
				fmt.Fprintf(w, " %s (%d more signature(s), by a holder of key %s)", role, rep.StagedFor[role], strings.Join(shortAll(rep.Approvers[role]), " or "))
			}
			fmt.Fprintf(w, "\n  each delegate approves with: signet approve %s %s\n", rep.GUN, rep.Staged)
		}
		if rep.Created {
			fmt.Fprintf(w, "  created the Signet repository with a new root: engines must pin it (signet trust show %s > root.json; signet trust pin %s --root root.json)\n", rep.GUN, rep.GUN)
		}
	}
}

// readAnchor reads --root: a Notary root.json, or PEM certificates.
func readAnchor(path string) (notary.Anchor, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return notary.Anchor{}, err
	}
	if strings.HasPrefix(strings.TrimSpace(string(data)), "{") {
		if _, _, err := notary.ParseRoot(data); err != nil {
			return notary.Anchor{}, fmt.Errorf("--root %s: %w", path, err)
		}
		return notary.Anchor{Root: data}, nil
	}
	var certs []*x509.Certificate
	for rest := data; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return notary.Anchor{}, fmt.Errorf("--root %s: %w", path, err)
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		return notary.Anchor{}, fmt.Errorf("--root %s is neither a Notary root.json nor a PEM certificate", path)
	}
	return notary.Anchor{Certs: certs}, nil
}

// notaryPassphrase reads Notary's own passphrase variables (and Docker's),
// or prompts on a terminal.
func (a *app) notaryPassphrase(role string) ([]byte, error) {
	names := []string{"NOTARY_" + strings.ToUpper(role) + "_PASSPHRASE"}
	if role == "root" {
		names = append(names, "DOCKER_CONTENT_TRUST_ROOT_PASSPHRASE")
	} else {
		names = append(names, "DOCKER_CONTENT_TRUST_REPOSITORY_PASSPHRASE")
	}
	for _, n := range names {
		if p := a.getenv(n); p != "" {
			return []byte(p), nil
		}
	}
	f, ok := a.stdin.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return nil, fmt.Errorf("no Notary passphrase for %s keys: set %s", role, names[0])
	}
	fmt.Fprintf(a.stderr, "Notary passphrase for %s keys: ", role)
	p, err := term.ReadPassword(int(f.Fd()))
	fmt.Fprintln(a.stderr)
	return p, err
}

func shortAll(ids []string) []string {
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = short(id)
	}
	return out
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}
