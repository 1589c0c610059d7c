package signetcli

import (
	"fmt"
	"io"
	"path/filepath"

	"github.com/opencontainers/go-digest"
	"github.com/spf13/cobra"

	"github.com/signetdev/signet/client"
	"github.com/signetdev/signet/policy"
)

// policyCmd is `signet policy check FILE REF…`: what the policy decides for
// each reference, as the containerd verifier and the admission webhook
// would decide it.
func (a *app) policyCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "policy", Short: "Test a pull policy before deploying it"}
	var pulled, namespace string
	check := &cobra.Command{
		Use:   "check FILE REF…",
		Short: "Print the policy's decision for each image reference (exit 0: all allowed, 3: some denied, 1: some undecided)",
		Long: `Print the policy's decision for each image reference: allow (with the
digest to pull, the signed tag and the role that vouched), deny with the
reason, or error (the trust server could not be asked and no verified state
is young enough; a hook denies then too). The policy's own server, TLS and
trust_dir settings are used; --trust-dir (or SIGNET_TRUST_DIR), if given,
replaces trust_dir, to try a policy away from the node.`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) < 2 {
				return usageError{fmt.Errorf("%s takes a policy file and at least one reference; see --help", cmd.CommandPath())}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := a.loadPolicy(cmd, args[0])
			if err != nil {
				return err
			}
			if pulled != "" {
				if _, err := digest.Parse(pulled); err != nil {
					return usageError{fmt.Errorf("--digest %q: %w", pulled, err)}
				}
			}
			var out []policy.Decision
			var denied, failed int
			for _, ref := range args[1:] {
				d := p.Check(cmd.Context(), policy.Request{Ref: ref, Digest: digest.Digest(pulled), Namespace: namespace})
				out = append(out, d)
				switch d.Verdict {
				case policy.Allow:
				case policy.Error:
					failed++
				default:
					denied++
				}
			}
			err = a.print(out, func(w io.Writer) {
				for _, d := range out {
					printDecision(w, d)
				}
			})
			if err != nil {
				return err
			}
			if denied+failed > 0 {
				return policyRefused{denied: denied, failed: failed, total: len(out), file: filepath.Base(args[0])}
			}
			return nil
		},
	}
	check.Flags().StringVar(&pulled, "digest", "", "the digest being pulled (as containerd passes it): each tag must vouch for it")
	check.Flags().StringVar(&namespace, "namespace", "", "the Kubernetes namespace of the pull (as the admission webhook passes it)")
	cmd.AddCommand(check)
	return cmd
}

// loadPolicy loads the pull policy in file, with its own server, TLS and
// trust directory; a --trust-dir (or SIGNET_TRUST_DIR) given replaces the
// policy's.
func (a *app) loadPolicy(cmd *cobra.Command, file string) (*policy.Policy, error) {
	f, err := policy.Load(file)
	if err != nil {
		return nil, err
	}
	var opts []policy.Option
	if cmd.Flags().Changed("trust-dir") || a.getenv("SIGNET_TRUST_DIR") != "" {
		opts = append(opts, policy.WithTrustDir(a.trustDir))
	}
	return policy.New(f, opts...)
}

func printDecision(w io.Writer, d policy.Decision) {
	switch {
	case d.Allowed() && d.Digest != "":
		fmt.Fprintf(w, "allow %s as %s@%s: %s\n", d.Ref, d.Name, d.Digest, d.Reason)
	default:
		v := d.Verdict
		if v == "" {
			v = policy.Deny
		}
		fmt.Fprintf(w, "%s %s: %s\n", v, d.Ref, d.Reason)
	}
}

// policyRefused is the command's error when not every reference is
// allowed: exit 3 when all were decided, 1 when some could not be.
type policyRefused struct {
	denied, failed, total int
	file                  string
}

func (e policyRefused) Error() string {
	if e.failed > 0 {
		return fmt.Sprintf("%s: %d of %d references denied, %d undecided (trust server unreachable?)", e.file, e.denied+e.failed, e.total, e.failed)
	}
	return fmt.Sprintf("%s: %d of %d references denied", e.file, e.denied, e.total)
}

// Is makes a decided refusal exit like an unsigned tag (3).
func (e policyRefused) Is(t error) bool { return e.failed == 0 && t == client.ErrNotSigned }
