// Command signet-containerd-verifier is an image verifier for containerd
// 2.x's bindir plugin (io.containerd.image-verifier.v1.bindir): before a
// transfer-service pull stores an image, containerd runs it as
//
//	signet-containerd-verifier -name REF -digest sha256:… -stdin-media-type application/vnd.oci.descriptor.v1+json
//
// with the image's OCI descriptor as JSON on standard input. It judges the
// pull with the Signet pull policy (SIGNET_POLICY, default
// /etc/signet/policy.yaml): exit 0 allows, any other status refuses (1:
// the policy denies; 2: it could not decide, or the policy or the
// invocation is broken). One line on standard output says why; containerd
// reports it with the refusal. Standard error carries a log line for
// containerd's debug log: names, digests and the decision, never a token
// or key.
//
// It answers well inside containerd's default 10 s per-verifier timeout:
// the policy bounds every network call (server.timeout, default 5 s), the
// whole run is capped at 8 s, and a watchdog refuses and exits if anything
// (a lock held by a stuck process, say) holds it longer. It is built for
// Linux, where containerd runs it.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/signetdev/signet/policy"
)

const (
	// defaultPolicy is where the policy lives on a node.
	defaultPolicy = "/etc/signet/policy.yaml"
	// budget caps a run; containerd kills a verifier after 10 s.
	budget = 8 * time.Second
	// maxStdin bounds the descriptor read (containerd caps its output
	// reads at 32 KiB; a descriptor is a few hundred bytes).
	maxStdin = 1 << 20
)

// Exit statuses.
const (
	exitAllow     = 0
	exitDeny      = 1
	exitUndecided = 2
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// The watchdog: whatever blocks, answer (refuse) before containerd's
	// timeout turns the pull into an error without a reason.
	time.AfterFunc(budget+500*time.Millisecond, func() {
		fmt.Fprintf(os.Stdout, "signet: error: no decision within %s; refusing\n", budget)
		os.Exit(exitUndecided)
	})
	os.Exit(run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr, os.Getenv))
}

func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, getenv func(string) string) int {
	log := slog.New(slog.NewTextHandler(stderr, nil)).With("component", "signet-containerd-verifier")
	refuse := func(code int, format string, a ...any) int {
		msg := strings.Join(strings.Fields(fmt.Sprintf(format, a...)), " ")
		fmt.Fprintln(stdout, "signet: "+msg)
		log.Warn("refused", "reason", msg)
		return code
	}
	fs := flag.NewFlagSet("signet-containerd-verifier", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	name := fs.String("name", "", "the image reference being pulled")
	dgst := fs.String("digest", "", "the resolved digest of the image being pulled")
	mediaType := fs.String("stdin-media-type", "", "media type of the JSON on standard input")
	if err := fs.Parse(args); err != nil {
		return refuse(exitUndecided, "error: %v (usage: -name REF -digest sha256:… -stdin-media-type TYPE)", err)
	}
	if *name == "" || *dgst == "" {
		return refuse(exitUndecided, "error: -name and -digest are required")
	}
	want, err := digest.Parse(*dgst)
	if err != nil {
		return refuse(exitUndecided, "error: -digest %q: %v", *dgst, err)
	}
	if err := checkDescriptor(stdin, *mediaType, want); err != nil {
		return refuse(exitUndecided, "error: %v", err)
	}

	ctx, cancel := context.WithTimeout(ctx, budget)
	defer cancel()
	file := getenv("SIGNET_POLICY")
	if file == "" {
		file = defaultPolicy
	}
	f, err := policy.Load(file)
	if err != nil {
		return refuse(exitUndecided, "error: cannot load the pull policy (SIGNET_POLICY): %v", err)
	}
	p, err := policy.New(f, policy.WithLogger(log), policy.WithOneShot()) // one image, then exit
	if err != nil {
		return refuse(exitUndecided, "error: %v", err)
	}
	start := time.Now()
	d := p.Check(ctx, policy.Request{Ref: *name, Digest: want})
	log.Info("decided", "name", *name, "digest", want.String(), "decision", string(d.Verdict), "rule", d.Rule, "role", d.Role, "took", time.Since(start).Round(time.Millisecond))
	fmt.Fprintln(stdout, "signet: "+d.String())
	switch d.Verdict {
	case policy.Allow:
		return exitAllow
	case policy.Error:
		return exitUndecided
	}
	return exitDeny
}

// checkDescriptor reads the descriptor containerd writes on standard input
// and checks it names the digest of -digest. Another media type (the
// protocol allows it to change) is drained and left aside: -name and
// -digest decide.
func checkDescriptor(stdin io.Reader, mediaType string, want digest.Digest) error {
	data, err := io.ReadAll(io.LimitReader(stdin, maxStdin+1))
	if err != nil {
		return fmt.Errorf("reading the descriptor on standard input: %w", err)
	}
	if len(data) > maxStdin {
		return errors.New("the descriptor on standard input is larger than 1 MiB")
	}
	if mediaType != ocispec.MediaTypeDescriptor {
		return nil
	}
	var desc ocispec.Descriptor
	if err := json.Unmarshal(data, &desc); err != nil {
		return fmt.Errorf("the descriptor on standard input is not JSON: %w", err)
	}
	if desc.Digest != want {
		return fmt.Errorf("the descriptor on standard input names %s, not -digest %s", desc.Digest, want)
	}
	return nil
}
