// Package cli holds what the signet binaries share at their composition
// roots: flags overridden by SIGNET_* environment variables, and loggers.
// Only cmd/* imports it. Nothing here is safe for concurrent use.
package cli

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"
)

// EnvName is the environment variable that sets a flag: the prefix
// (SIGNET_ for signet-server, SIGNET_SIGNER_ for signet-signer) and the
// flag's name in upper case with dashes as underscores.
func EnvName(prefix, flagName string) string {
	return prefix + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// Parse sets every flag of fs from its environment variable (looked up
// with getenv) and then from args, so that flags win over the environment
// and the environment over defaults.
func Parse(fs *flag.FlagSet, args []string, prefix string, getenv func(string) string) error {
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		if v := getenv(EnvName(prefix, f.Name)); v != "" && err == nil {
			if e := fs.Set(f.Name, v); e != nil {
				err = fmt.Errorf("%s: %w", EnvName(prefix, f.Name), e)
			}
		}
	})
	if err != nil {
		return err
	}
	return fs.Parse(args)
}

// NewLogger returns a JSON or text slog logger at level.
func NewLogger(w io.Writer, format, level string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("log level %q: %w", level, err)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("log format %q: want json or text", format)
}

// Config is a binary's configuration as Serve needs it.
type Config interface {
	Flags(fs *flag.FlagSet)
	Validate() error
	Logging() (format, level string)
}

// Serve parses args into cfg (defaults, then environment with prefix, then
// flags), validates it, makes the logger and runs serve. It returns the
// exit code: 2 for a bad configuration, 1 if serve fails.
func Serve(ctx context.Context, name, prefix string, cfg Config, args []string, stderr io.Writer, getenv func(string) string,
	serve func(context.Context, *slog.Logger) error) int {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfg.Flags(fs)
	if err := Parse(fs, args, prefix, getenv); err != nil {
		return 2
	}
	if err := cfg.Validate(); err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
		return 2
	}
	format, level := cfg.Logging()
	log, err := NewLogger(stderr, format, level)
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
		return 2
	}
	if err := serve(ctx, log); err != nil {
		log.Error(name+" stopped", "err", err)
		return 1
	}
	return 0
}
