package main

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"

	"github.com/opencontainers/go-digest"
	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/signetdev/signet/client"
)

// signCLIFigure: `signet sign GUN:latest --digest … --size 1` in a 10-tag
// repository, timed from process start to exit, one at a time: with the
// CLI's real key file (encrypted PKCS#8, scrypt N=2^15), and from a copy of
// the trust directory whose key file is re-encrypted at N=2^10, which
// leaves the scrypt unlock out (about 1/32 of its cost). Beside them, the
// N=2^15 unlock alone, in-process. The CLI decrypts the key while it
// updates the repository's metadata, so the real-key figure can be less
// than the other two added up.
func (e *env) signCLIFigure(ctx context.Context, p plan) ([]Result, error) {
	const gun = "bench.example.com/cli-sign"
	dir := filepath.Join(e.tmp, "cli-sign")
	bin := filepath.Join(e.tmp, "signet")
	envFor := func(dir string) []string {
		return []string{"SIGNET_SERVER=http://" + e.pgServer.addr, "SIGNET_TRUST_DIR=" + dir,
			"SIGNET_ROOT_PASSPHRASE=bench root", "SIGNET_TARGETS_PASSPHRASE=bench targets"}
	}
	env := envFor(dir)
	if err := runCmd(ctx, env, bin, "init", gun); err != nil {
		return nil, err
	}
	var list strings.Builder
	for i := range 10 {
		fmt.Fprintf(&list, "%s:tag-%d %s 1\n", gun, i, digest.FromString(fmt.Sprint("cli tag ", i)))
	}
	listFile := filepath.Join(e.tmp, "cli-sign-tags.txt")
	if err := os.WriteFile(listFile, []byte(list.String()), 0o600); err != nil {
		return nil, err
	}
	if err := runCmd(ctx, env, bin, "sign", "--from", listFile); err != nil {
		return nil, err
	}

	keyDir := filepath.Join(dir, "private")
	keys, err := client.NewFileKeyStore(keyDir, nil, 0).List(ctx)
	if err != nil {
		return nil, err
	}
	var targetsKey string
	for _, k := range keys {
		if k.Role == metadata.TARGETS {
			targetsKey = k.ID
		}
	}
	if targetsKey == "" {
		return nil, fmt.Errorf("no targets key in %s", keyDir)
	}
	targetsPass := func(string, string) ([]byte, error) { return []byte("bench targets"), nil }
	cheapDir := filepath.Join(e.tmp, "cli-sign-cheap")
	if err := copyDir(dir, cheapDir); err != nil {
		return nil, err
	}
	pemKey, err := client.NewFileKeyStore(keyDir, targetsPass, 0).Export(ctx, targetsKey)
	if err != nil {
		return nil, err
	}
	if _, err := client.NewFileKeyStore(filepath.Join(cheapDir, "private"), targetsPass, 1<<10).Import(ctx, metadata.TARGETS, pemKey); err != nil {
		return nil, fmt.Errorf("re-encrypt the targets key at N=2^10: %w", err)
	}

	var n atomic.Int64
	sign := func(env []string) op {
		return func(ctx context.Context, _ int, _ *stopwatch) error {
			d := digest.FromString(fmt.Sprint("cli latest ", n.Add(1)))
			return runCmd(ctx, env, bin, "sign", gun+":latest", "--digest", d.String(), "--size", "1")
		}
	}
	runs := measure(ctx, p, 1, sign(env))
	cheapRuns := measure(ctx, p, 1, sign(envFor(cheapDir)))
	unlock := func(ctx context.Context, _ int, _ *stopwatch) error {
		_, err := client.NewFileKeyStore(keyDir, targetsPass, 0).Signer(ctx, targetsKey) // a fresh store: no cached key
		return err
	}
	unlockRuns := measure(ctx, p, 1, unlock)

	e2e := Result{Name: "`signet sign` one tag, end to end (process start to exit), 10-tag repo, key at scrypt N=2^15 p50", Unit: "ms"}
	summarize(&e2e, runs, nil, p50ms)
	cheap := Result{Name: "`signet sign` one tag, end to end, key at N=2^10 (the unlock left out) p50", Unit: "ms", Target: "<= 15 ms"}
	summarize(&cheap, cheapRuns, nil, p50ms)
	scrypt := Result{Name: "scrypt unlock of the targets key file (N=2^15), alone p50", Unit: "ms"}
	summarize(&scrypt, unlockRuns, nil, p50ms)
	return []Result{e2e, cheap, scrypt}, nil
}

// copyDir copies the regular files and directories under from to to.
func copyDir(from, to string) error {
	return filepath.WalkDir(from, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(from, path)
		if err != nil {
			return err
		}
		dst := filepath.Join(to, rel)
		if d.IsDir() {
			return os.MkdirAll(dst, 0o700)
		}
		if !d.Type().IsRegular() {
			return nil
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(dst, data, 0o600)
	})
}
