// Command docker-signet is a Docker CLI plugin: `docker signet …` signs
// image tags on push and verifies them on pull with Signet, for the flow
// Docker Content Trust (DOCKER_CONTENT_TRUST=1, docker trust) gave.
//
//	docker signet pull REF      resolve the tag, pull NAME@sha256:…, tag it NAME:TAG
//	docker signet push REF      push, then sign the digest the registry stored
//	docker signet sign REF      sign an image already in the registry
//	docker signet inspect REF… [--pretty]
//	docker signet revoke REF    (signet unsign)
//	docker signet signer add|remove|list, key generate|load|list, trust pin, …
//
// Every command but pull and push is the signet CLI's own
// (internal/signetcli): one command tree, the same flags, settings and
// exit codes. Install the binary as ~/.docker/cli-plugins/docker-signet
// (or in a directory of the Docker config's cliPluginsExtraDirs). It talks
// to the engine through the Docker CLI's own API client, so DOCKER_HOST,
// --context and the registry credentials of the Docker config apply.
// DOCKER_CONTENT_TRUST_SERVER, DOCKER_CONTENT_TRUST_ROOT_PASSPHRASE and
// DOCKER_CONTENT_TRUST_REPOSITORY_PASSPHRASE are fallbacks for
// SIGNET_SERVER and the key passphrases (signetcli.DockerEnv).
package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/docker/cli/cli"
	"github.com/docker/cli/cli-plugins/metadata"
	"github.com/docker/cli/cli-plugins/plugin"
	"github.com/docker/cli/cli/command"
	"github.com/spf13/cobra"

	buildinfo "github.com/signetdev/signet/internal/cli"
	"github.com/signetdev/signet/internal/signetcli"
)

func main() {
	os.Exit(run())
}

func run() int {
	dockerCli, err := command.NewDockerCli()
	if err != nil {
		fmt.Fprintln(os.Stderr, "docker-signet:", err)
		return 1
	}
	p := signetcli.NewPlugin(dockerCli.In(), dockerCli.Out(), dockerCli.Err(), signetcli.DockerEnv(os.Getenv), &engine{cli: dockerCli})
	graft(p.Root)
	err = plugin.RunPlugin(dockerCli, p.Root, metadata.Metadata{
		SchemaVersion:    "0.1.0",
		Vendor:           "Signet",
		Version:          buildinfo.Version("docker-signet"),
		ShortDescription: "Sign images on push and verify them on pull (Signet, TUF content trust)",
		URL:              "https://github.com/signetdev/signet",
	})
	var se cli.StatusError
	if errors.As(err, &se) {
		// The Docker CLI framework refused the command line (a bad global
		// flag) before signet's tree ran.
		fmt.Fprintln(dockerCli.Err(), se)
		return max(se.StatusCode, 1)
	}
	return p.Exit(err)
}

// graft prepares signet's root command to run as the plugin's command: the
// Docker CLI's own set-up (config, context, API client) runs first, as
// the plugin framework requires of a command with a PersistentPreRunE.
func graft(root *cobra.Command) {
	root.Use = "signet"
	pre := root.PersistentPreRunE
	root.PersistentPreRunE = func(cmd *cobra.Command, args []string) error {
		if err := plugin.PersistentPreRunE(cmd, args); err != nil {
			return err
		}
		return pre(cmd, args)
	}
}
