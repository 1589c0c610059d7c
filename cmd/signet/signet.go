// Command signet signs image tags on push and verifies them on pull.
//
//	signet init GUN [--bins N]
//	signet sign REF… [--role NAME] [--digest sha256:… --size N] [--from FILE]
//	signet unsign REF… [--role NAME]
//	signet resolve REF               prints GUN@sha256:…
//	signet verify REF --digest sha256:…
//	signet list GUN
//	signet key generate|list|import|export
//	signet trust pin GUN --root FILE
//	signet trust show GUN
//	signet key fetch GUN timestamp|snapshot --out FILE
//	signet root init|sign|verify|rotate|resign|publish   (offline ceremony)
//	signet status GUN
//	signet delegation add|remove|list GUN …  (--add-key, --remove-key, --threshold)
//	signet signer add|remove|list GUN …
//	signet staged list|show|withdraw GUN [ID];  signet approve GUN ID
//	signet repo shard GUN --bins N
//	signet policy check FILE REF… [--digest sha256:…] [--namespace NS]
//
// Global flags --server (SIGNET_SERVER), --trust-dir (SIGNET_TRUST_DIR,
// default ~/.signet), -o json. SIGNET_TOKEN is sent as a bearer token; for
// a server behind a registry's token service, credentials come from
// SIGNET_REGISTRY_AUTH (user:password) or the Docker config, and go only to
// an https realm on the registry's host or in SIGNET_REGISTRY_AUTH_HOSTS.
// Passphrases come from SIGNET_ROOT_PASSPHRASE, SIGNET_TARGETS_PASSPHRASE,
// SIGNET_DELEGATION_PASSPHRASE, or a prompt on a terminal.
//
// Exit codes:
//
//	0  success (verify: the digest matches)
//	1  error (network, server refusal, local files)
//	2  usage error
//	3  not signed, or verify found another digest
//	4  trust failure: no pinned root, expired, rollback, threshold, tampered
//	5  staged: the change waits for more signatures and is NOT in effect
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/signetdev/signet/internal/signetcli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(signetcli.Run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr, os.Getenv))
}
