package main

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/docker/cli/cli/command"
	"github.com/moby/moby/client"
	"github.com/opencontainers/go-digest"
)

// engine is signetcli.Engine over the Docker CLI's API client: the engine
// of the CLI's context (DOCKER_HOST, --context, TLS), with the registry
// credentials of the CLI's config.
type engine struct {
	cli *command.DockerCli
}

// pushResult is the aux message of a push's JSON stream: what the
// registry stored (the engine's PushResult; docker trust push read it).
type pushResult struct {
	Tag    string `json:"Tag"`
	Digest string `json:"Digest"`
	Size   int64  `json:"Size"`
}

func (e *engine) auth(ref string) (string, error) {
	a, err := command.RetrieveAuthTokenFromImage(e.cli.ConfigFile(), ref)
	if err != nil {
		return "", fmt.Errorf("registry credentials for %s: %w", ref, err)
	}
	return a, nil
}

func (e *engine) Pull(ctx context.Context, ref string) error {
	auth, err := e.auth(ref)
	if err != nil {
		return err
	}
	resp, err := e.cli.Client().ImagePull(ctx, ref, client.ImagePullOptions{RegistryAuth: auth})
	if err != nil {
		return fmt.Errorf("pull %s: %w", ref, err)
	}
	defer resp.Close()
	for msg, err := range resp.JSONMessages(ctx) {
		if err != nil {
			return fmt.Errorf("pull %s: %w", ref, err)
		}
		if msg.Error != nil {
			return fmt.Errorf("pull %s: %s", ref, msg.Error.Message)
		}
		e.progress(msg.ID, msg.Status)
	}
	return nil
}

func (e *engine) Tag(ctx context.Context, source, target string) error {
	if _, err := e.cli.Client().ImageTag(ctx, client.ImageTagOptions{Source: source, Target: target}); err != nil {
		return fmt.Errorf("tag %s as %s: %w", source, target, err)
	}
	return nil
}

// Push pushes ref and returns the digest and size in the push's aux
// message. A push that reports no such message (or two different ones)
// is an error: nothing is signed on a guess.
func (e *engine) Push(ctx context.Context, ref string) (digest.Digest, int64, error) {
	auth, err := e.auth(ref)
	if err != nil {
		return "", 0, err
	}
	resp, err := e.cli.Client().ImagePush(ctx, ref, client.ImagePushOptions{RegistryAuth: auth})
	if err != nil {
		return "", 0, fmt.Errorf("push %s: %w", ref, err)
	}
	defer resp.Close()
	var got *pushResult
	for msg, err := range resp.JSONMessages(ctx) {
		if err != nil {
			return "", 0, fmt.Errorf("push %s: %w", ref, err)
		}
		if msg.Error != nil {
			return "", 0, fmt.Errorf("push %s: %s", ref, msg.Error.Message)
		}
		if msg.Aux != nil {
			var r pushResult
			if json.Unmarshal(*msg.Aux, &r) == nil && r.Digest != "" {
				if got != nil && *got != r {
					return "", 0, fmt.Errorf("push %s: the engine reported two results (%s and %s): nothing signed", ref, got.Digest, r.Digest)
				}
				got = &r
			}
			continue
		}
		e.progress(msg.ID, msg.Status)
	}
	if got == nil {
		return "", 0, fmt.Errorf("push %s: the engine reported no digest for the push: nothing signed", ref)
	}
	d, err := digest.Parse(got.Digest)
	if err != nil {
		return "", 0, fmt.Errorf("push %s: the engine reported digest %q: %w", ref, got.Digest, err)
	}
	return d, got.Size, nil
}

// progress prints one status line of a pull or push on stderr (stdout
// carries the command's result).
func (e *engine) progress(id, status string) {
	switch {
	case status == "":
	case id != "":
		fmt.Fprintf(e.cli.Err(), "%s: %s\n", id, status)
	default:
		fmt.Fprintln(e.cli.Err(), status)
	}
}
