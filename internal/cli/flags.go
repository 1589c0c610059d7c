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
	"net/url"
	"strings"

	"github.com/knadh/koanf/parsers/yaml"
	"github.com/knadh/koanf/providers/file"
	"github.com/knadh/koanf/v2"
)

// EnvName is the environment variable that sets a flag: the prefix
// (SIGNET_ for signet-server, SIGNET_SIGNER_ for signet-signer) and the
// flag's name in upper case with dashes as underscores.
func EnvName(prefix, flagName string) string {
	return prefix + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// Parse sets every flag of fs from, in order: its default; the YAML file
// named by --config (or the <prefix>CONFIG variable), whose keys are the
// flag names; its environment variable (looked up with getenv); and args.
// A later source wins. Unknown keys in the file are an error.
func Parse(fs *flag.FlagSet, args []string, prefix string, getenv func(string) string) error {
	if fs.Lookup("config") == nil {
		fs.String("config", "", "optional YAML configuration file whose keys are these flags' names (env "+prefix+"CONFIG)")
	}
	path := configArg(args)
	if path == "" {
		path = getenv(prefix + "CONFIG")
	}
	if path != "" {
		if err := loadFile(fs, path); err != nil {
			fmt.Fprintln(fs.Output(), err)
			return err
		}
	}
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

// Serve parses args into cfg (defaults, then the config file, then the
// environment with prefix, then flags), validates it, makes the logger and
// runs serve. With "config" as the first argument it prints the effective
// configuration (secrets masked) instead; with "version" (or --version) the
// binary's version (Version). It returns the exit code: 2 for a
// bad configuration, 1 if serve fails.
func Serve(ctx context.Context, name, prefix string, cfg Config, args []string, stdout, stderr io.Writer, getenv func(string) string,
	serve func(context.Context, *slog.Logger) error) int {
	if IsVersionArg(args) {
		fmt.Fprintln(stdout, Version(name))
		return 0
	}
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfg.Flags(fs)
	printOnly := len(args) > 0 && args[0] == "config"
	if printOnly {
		args = args[1:]
	}
	if err := Parse(fs, args, prefix, getenv); err != nil {
		return 2
	}
	if printOnly {
		Effective(stdout, fs)
		return 0
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

// configArg finds --config FILE or --config=FILE among args.
func configArg(args []string) string {
	for i, a := range args {
		name, value, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if !strings.HasPrefix(a, "-") || name != "config" {
			continue
		}
		if hasValue {
			return value
		}
		if i+1 < len(args) {
			return args[i+1]
		}
	}
	return ""
}

// loadFile applies a YAML configuration file to fs through koanf.
func loadFile(fs *flag.FlagSet, path string) error {
	k := koanf.New(".")
	if err := k.Load(file.Provider(path), yaml.Parser()); err != nil {
		return fmt.Errorf("config %s: %w", path, err)
	}
	for _, key := range k.Keys() {
		if fs.Lookup(key) == nil || key == "config" {
			return fmt.Errorf("config %s: unknown key %q (keys are the flag names, e.g. addr, db)", path, key)
		}
		values := []string{k.String(key)}
		if list := k.Strings(key); len(list) > 0 {
			values = list
		}
		for _, v := range values {
			if err := fs.Set(key, v); err != nil {
				return fmt.Errorf("config %s: %s: %w", path, key, err)
			}
		}
	}
	return nil
}

// Effective prints every flag's effective value, one "name: value" line
// each, masking the password of URLs and any flag whose name says it holds
// a secret.
func Effective(w io.Writer, fs *flag.FlagSet) {
	fs.VisitAll(func(f *flag.Flag) {
		v := f.Value.String()
		if u, err := url.Parse(v); err == nil && u.User != nil {
			if _, ok := u.User.Password(); ok {
				u.User = url.UserPassword(u.User.Username(), "xxxxx")
				v = u.String()
			}
		}
		for _, secret := range []string{"password", "passphrase", "secret", "pin"} {
			if strings.Contains(f.Name, secret) && v != "" {
				v = "xxxxx"
			}
		}
		fmt.Fprintf(w, "%s: %q\n", f.Name, v)
	})
}
