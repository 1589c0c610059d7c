package signetcli

import (
	"context"
	"fmt"
	"io"

	"github.com/opencontainers/go-digest"
	"github.com/spf13/cobra"

	"github.com/signetdev/signet/client"
	"github.com/signetdev/signet/policy"
)

// Engine is what `docker signet pull` and `docker signet push` need of a
// container engine. cmd/docker-signet implements it with the Docker CLI's
// own API client (its context, DOCKER_HOST, TLS and registry credentials).
type Engine interface {
	// Pull pulls ref (NAME@sha256:…) and returns when the pull is done.
	Pull(ctx context.Context, ref string) error
	// Tag gives the local image source the name target (NAME:TAG).
	Tag(ctx context.Context, source, target string) error
	// Push pushes ref (NAME:TAG) and returns the digest and size of the
	// manifest the registry stored, as the engine reported them.
	Push(ctx context.Context, ref string) (digest.Digest, int64, error)
}

// Plugin is the signet command tree as docker-signet runs it: every signet
// command, plus pull and push through engine, with the Docker Content
// Trust environment as fallbacks (DockerEnv). Root is grafted under the
// Docker CLI plugin's root command.
type Plugin struct {
	Root *cobra.Command
	a    *app
}

// NewPlugin returns the command tree of docker-signet. getenv is used as
// given: wrap it in DockerEnv for the DCT fallbacks.
func NewPlugin(stdin io.Reader, stdout, stderr io.Writer, getenv func(string) string, engine Engine) *Plugin {
	a := &app{stdin: stdin, stdout: stdout, stderr: stderr, getenv: getenv, engine: engine}
	root := a.command()
	strictGroup(root) // under the plugin's root, cobra no longer refuses unknown commands itself
	root.Long = "Sign image tags on push and verify them on pull (TUF content trust), through the Docker engine\n" + dockerEnvHelp + envHelp
	return &Plugin{Root: root, a: a}
}

// Exit reports err once on stderr, as signet does (text, or JSON with
// -o json), and returns the exit code; nil is 0.
func (p *Plugin) Exit(err error) int {
	if err == nil {
		return exitOK
	}
	return p.a.report(err)
}

// dockerEnv maps SIGNET_* variables to the Docker Content Trust variables
// that CI scripts written for `DOCKER_CONTENT_TRUST=1 docker push` set.
// Notary's repository key is Signet's targets key; docker trust used the
// same variable for delegation keys.
var dockerEnv = map[string]string{
	"SIGNET_SERVER":                "DOCKER_CONTENT_TRUST_SERVER",
	"SIGNET_ROOT_PASSPHRASE":       "DOCKER_CONTENT_TRUST_ROOT_PASSPHRASE",
	"SIGNET_TARGETS_PASSPHRASE":    "DOCKER_CONTENT_TRUST_REPOSITORY_PASSPHRASE",
	"SIGNET_DELEGATION_PASSPHRASE": "DOCKER_CONTENT_TRUST_REPOSITORY_PASSPHRASE",
}

const dockerEnvHelp = `
Docker Content Trust variables are fallbacks for the SIGNET_* ones (a SIGNET_* variable wins):
  DOCKER_CONTENT_TRUST_SERVER                  as SIGNET_SERVER
  DOCKER_CONTENT_TRUST_ROOT_PASSPHRASE         as SIGNET_ROOT_PASSPHRASE
  DOCKER_CONTENT_TRUST_REPOSITORY_PASSPHRASE   as SIGNET_TARGETS_PASSPHRASE and SIGNET_DELEGATION_PASSPHRASE
  SIGNET_POLICY                  pull policy file for docker signet pull (as --policy)
`

// DockerEnv returns getenv with the Docker Content Trust variables as
// fallbacks of the SIGNET_* ones they mean. Only docker-signet uses it:
// the signet CLI reads SIGNET_* alone.
func DockerEnv(getenv func(string) string) func(string) string {
	return func(k string) string {
		if v := getenv(k); v != "" {
			return v
		}
		if alt, ok := dockerEnv[k]; ok {
			return getenv(alt)
		}
		return ""
	}
}

// engineCmds are pull and push, the commands that need the engine.
func (a *app) engineCmds() []*cobra.Command {
	var policyFile string
	pull := &cobra.Command{
		Use:   "pull REF",
		Short: "Pull the signed digest of a tag and tag it locally (what DOCKER_CONTENT_TRUST=1 docker pull did)",
		Long: `Resolve REF's tag through Signet, pull exactly NAME@sha256:… from the
engine and tag it NAME:TAG locally. With a pull policy (--policy or
SIGNET_POLICY) the policy decides, with its own server, anchors and trust
directory; without one, the repository's root pinned in the trust
directory (signet trust pin) is the anchor. Anything but a signed tag is
refused with the reason, and nothing is pulled.`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			name, tag, dgst, role, err := a.decide(cmd, args[0], policyFile)
			if err != nil {
				return err
			}
			if dgst == "" {
				// require: none allowed a reference without a digest: pull it
				// as given (it is explicitly allow-listed as unsigned).
				if err := a.engine.Pull(cmd.Context(), args[0]); err != nil {
					return err
				}
				return a.print(map[string]string{"ref": args[0]}, func(w io.Writer) {
					fmt.Fprintf(w, "pulled %s unverified: the policy allows it unsigned\n", args[0])
				})
			}
			pinned := name + "@" + dgst.String()
			if err := a.engine.Pull(cmd.Context(), pinned); err != nil {
				return err
			}
			if tag != "" {
				if err := a.engine.Tag(cmd.Context(), pinned, name+":"+tag); err != nil {
					return err
				}
			}
			return a.print(map[string]string{"name": name, "tag": tag, "digest": dgst.String(), "role": role}, func(w io.Writer) {
				fmt.Fprintf(w, "pulled %s, tagged %s:%s (signed by %s)\n", pinned, name, tag, role)
			})
		},
	}
	pull.Flags().StringVar(&policyFile, "policy", "", "pull policy file (SIGNET_POLICY); default: the root pinned in the trust directory")

	var role string
	push := &cobra.Command{
		Use:   "push REF",
		Short: "Push a tag through the engine, then sign the digest the registry stored (what DOCKER_CONTENT_TRUST=1 docker push did)",
		Args:  exactArgs(1),
		RunE: a.withClient(func(cmd *cobra.Command, args []string, c *client.Client) error {
			gun, tag, err := parseRef(args[0])
			if err != nil {
				return err
			}
			d, size, err := a.engine.Push(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if err := d.Validate(); err != nil || d.Algorithm() != digest.SHA256 || size <= 0 {
				return fmt.Errorf("push of %s: the engine reported digest %q and size %d, not a sha256 digest and a size: nothing signed", args[0], d, size)
			}
			fmt.Fprintf(a.stderr, "pushed %s as %s (%d bytes); signing…\n", args[0], d, size)
			changes := []client.Change{{Tag: tag, Digest: d, Size: size}}
			out, err := c.PublishAs(cmd.Context(), gun, role, changes)
			if err != nil {
				return fmt.Errorf("pushed %s@%s, but signing failed: %w", gun, d, err)
			}
			return a.printOutcome(gun, out, changes)
		}),
	}
	push.Flags().StringVar(&role, "role", "", "sign into this role (targets or a delegation); default: picked as signet sign does")
	return []*cobra.Command{pull, push}
}

// decide returns what to pull for ref: the policy's decision with a policy
// file, else the tag resolved against the pinned root. A refusal is an
// error with the reason.
func (a *app) decide(cmd *cobra.Command, ref, file string) (name, tag string, d digest.Digest, role string, err error) {
	if file == "" {
		file = a.getenv("SIGNET_POLICY")
	}
	if file == "" {
		if _, _, err := parseRef(ref); err != nil {
			return "", "", "", "", err
		}
		c, err := a.client()
		if err != nil {
			return "", "", "", "", err
		}
		t, err := c.ResolveOnce(cmd.Context(), ref) // one pull, then the process ends
		if err != nil {
			return "", "", "", "", fmt.Errorf("refusing to pull %s: %w", ref, err)
		}
		return t.GUN, t.Tag, t.Digest, t.Role, nil
	}
	p, err := a.loadPolicy(cmd, file)
	if err != nil {
		return "", "", "", "", err
	}
	dec := p.Check(cmd.Context(), policy.Request{Ref: ref})
	if !dec.Allowed() {
		return "", "", "", "", pullRefused{dec}
	}
	return dec.Name, dec.Tag, dec.Digest, dec.Role, nil
}

// pullRefused is a policy's refusal: exit 3 when the policy denied, 1 when
// it could not decide.
type pullRefused struct{ d policy.Decision }

func (e pullRefused) Error() string { return "refusing to pull " + e.d.Ref + ": " + e.d.Reason }

func (e pullRefused) Is(t error) bool { return e.d.Verdict == policy.Deny && t == client.ErrNotSigned }

func (e pullRefused) Unwrap() error { return e.d.Err }
