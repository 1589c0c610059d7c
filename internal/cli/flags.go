// Package cli holds what the signet binaries share at their composition
// roots: flags overridden by SIGNET_* environment variables, and loggers.
// Only cmd/* imports it. Nothing here is safe for concurrent use.
package cli

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"regexp"
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
				err = fmt.Errorf("invalid value %q in %s: %w", Mask(v), EnvName(prefix, f.Name), e)
			}
		}
	})
	if err != nil {
		fmt.Fprintln(fs.Output(), err)
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

// Commander is implemented by configs of binaries that have subcommands
// besides serving: Commands lists them, one "name  what it does" a line,
// for --help.
type Commander interface {
	Commands() []string
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
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: %s [flags]            serve\n", name)
		cmds := []string{"config     print the effective configuration (secrets masked)", "version    print the version"}
		if c, ok := cfg.(Commander); ok {
			cmds = append(c.Commands(), cmds...)
		}
		fmt.Fprintf(stderr, "       %s COMMAND [flags]\n\nCommands:\n", name)
		for _, c := range cmds {
			fmt.Fprintf(stderr, "  %s\n", c)
		}
		fmt.Fprintf(stderr, "\nFlags (each also %s<FLAG> in the environment, upper case, dashes as underscores):\n", prefix)
		fs.PrintDefaults()
	}
	printOnly := len(args) > 0 && args[0] == "config"
	if printOnly {
		args = args[1:]
	}
	if err := Parse(fs, args, prefix, getenv); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		// "signet-server migarte" must not start serving.
		fmt.Fprintf(stderr, "%s: unknown command or argument %q; run %s --help for the commands and flags\n", name, fs.Arg(0), name)
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

// List is a repeatable flag that also takes comma-separated values (so
// that one environment variable can carry several), each checked by Check
// if set. Its String is the values joined by commas, so that the effective
// configuration shows it as configured.
type List struct {
	Values *[]string
	Check  func(string) error
}

// String implements flag.Value.
func (l List) String() string {
	if l.Values == nil {
		return ""
	}
	return strings.Join(*l.Values, ",")
}

// Set implements flag.Value.
func (l List) Set(v string) error {
	for p := range strings.SplitSeq(v, ",") {
		if p = strings.TrimSpace(p); p == "" {
			continue
		}
		if l.Check != nil {
			if err := l.Check(p); err != nil {
				return err
			}
		}
		*l.Values = append(*l.Values, p)
	}
	return nil
}

// Items returns the values (Effective prints them as a YAML list).
func (l List) Items() []string {
	if l.Values == nil {
		return nil
	}
	return *l.Values
}

const masked = "xxxxx"

// secretNames are words that, in a URL query parameter's or key=value
// pair's name, say the value is a secret.
var secretNames = []string{"password", "passwd", "passphrase", "pwd", "secret", "credential", "apikey", "api_key", "token"}

func secretName(name string) bool {
	name = strings.ToLower(name)
	for _, s := range secretNames {
		if strings.Contains(name, s) {
			return true
		}
	}
	return false
}

// secretFlag reports whether a flag's name says it holds a secret: its
// last dash-separated word is one of these (pkcs11-pin, not
// passphrase-alias or tokens, which name files and labels).
func secretFlag(name string) bool {
	last := name[strings.LastIndexByte(name, '-')+1:]
	switch last {
	case "password", "passphrase", "secret", "pin", "credentials":
		return true
	}
	return false
}

var apiToken = regexp.MustCompile(`\bsgt_[0-9a-f]{16,}`)

// keyValueSecret finds name=value pairs whose name says secret, as in
// libpq connection strings ("host=db password=…").
var keyValueSecret = regexp.MustCompile(`(?i)\b([a-z_]*(?:password|passwd|pwd|secret|token)[a-z_]*)\s*=\s*('[^']*'|[^\s&;]+)`)

// Mask hides what in v looks like a credential: a URL's password, URL
// query parameters and key=value pairs named like secrets (password=,
// sslpassword=, token=…), signet API tokens (sgt_…) and PEM private keys.
func Mask(v string) string {
	if strings.Contains(v, "PRIVATE KEY") {
		return masked
	}
	v = apiToken.ReplaceAllString(v, masked)
	if u, err := url.Parse(v); err == nil && u.Scheme != "" && u.Opaque == "" {
		changed := false
		if u.User != nil {
			if _, ok := u.User.Password(); ok {
				u.User, changed = url.UserPassword(u.User.Username(), masked), true
			}
		}
		if q := u.Query(); u.RawQuery != "" {
			for k := range q {
				if secretName(k) {
					q[k], changed = []string{masked}, true
				}
			}
			u.RawQuery = q.Encode()
		}
		if changed {
			return u.String()
		}
		return v
	}
	return keyValueSecret.ReplaceAllString(v, "${1}="+masked)
}

// Effective prints every flag's effective value as YAML that --config reads
// back ("name: value" lines, lists as YAML lists), masking credentials
// (see Mask) and any flag whose name says it holds a secret. A masked
// value reads back as the mask, not the secret: give secrets through the
// environment or files.
func Effective(w io.Writer, fs *flag.FlagSet) {
	fs.VisitAll(func(f *flag.Flag) {
		if f.Name == "config" {
			return
		}
		if l, ok := f.Value.(interface{ Items() []string }); ok {
			items := make([]string, 0, len(l.Items()))
			for _, it := range l.Items() {
				items = append(items, Mask(it))
			}
			fmt.Fprintf(w, "%s: %s\n", f.Name, quote(items))
			return
		}
		v := Mask(f.Value.String())
		if secretFlag(f.Name) && v != "" {
			v = masked
		}
		fmt.Fprintf(w, "%s: %s\n", f.Name, quote(v))
	})
}

// quote renders v as JSON, which YAML reads as a double-quoted scalar or a
// flow sequence.
func quote(v any) string {
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return `""`
	}
	return strings.TrimSuffix(b.String(), "\n")
}

// SplitCommand finds the subcommand in args, so that flags may come before
// or after it: the first argument that is neither a flag nor a flag's
// value, if it is one of names. It returns that name and args without it
// (the flags before it, then everything after it); with no subcommand, ""
// and args unchanged. A flag takes the next argument as its value unless it
// is written -flag=value, is a boolean flag of fs (the serving flags, the
// only boolean flags of these binaries: subcommands take none), or is
// -h/-help; an unknown flag is taken to have a value.
func SplitCommand(args []string, fs *flag.FlagSet, names ...string) (string, []string) {
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			break
		}
		if !strings.HasPrefix(a, "-") || a == "-" {
			for _, n := range names {
				if a == n {
					return n, append(append([]string{}, args[:i]...), args[i+1:]...)
				}
			}
			break
		}
		name, _, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if hasValue || name == "h" || name == "help" || isBoolFlag(fs, name) {
			continue
		}
		i++ // the flag's value
	}
	return "", args
}

// Command is SplitCommand for a binary that serves with cfg and has the
// subcommands names: it returns the subcommand and its arguments, or ""
// and the arguments to hand Serve (where "config" and "version", wherever
// they were given, come first).
func Command(cfg Config, args []string, names ...string) (string, []string) {
	fs := flag.NewFlagSet("", flag.ContinueOnError)
	cfg.Flags(fs)
	cmd, rest := SplitCommand(args, fs, append(names, "config", "version")...)
	if cmd == "config" || cmd == "version" {
		return "", append([]string{cmd}, rest...)
	}
	return cmd, rest
}

func isBoolFlag(fs *flag.FlagSet, name string) bool {
	f := fs.Lookup(name)
	if f == nil {
		return false
	}
	b, ok := f.Value.(interface{ IsBoolFlag() bool })
	return ok && b.IsBoolFlag()
}
