package cli

import (
	"bytes"
	"context"
	"flag"
	"log/slog"
	"runtime"
	"strings"
	"testing"
)

type noConfig struct{}

func (noConfig) Flags(*flag.FlagSet)             {}
func (noConfig) Validate() error                 { return nil }
func (noConfig) Logging() (format, level string) { return "text", "info" }

// TestServeVersion: "version" and "--version" print the build's version
// and never start serving.
func TestServeVersion(t *testing.T) {
	t.Parallel()
	for _, arg := range []string{"version", "--version", "-version"} {
		var out bytes.Buffer
		served := false
		code := Serve(context.Background(), "signet-test", "X_", noConfig{}, []string{arg}, &out, &out, func(string) string { return "" },
			func(context.Context, *slog.Logger) error { served = true; return nil })
		if code != 0 || served || !strings.HasPrefix(out.String(), "signet-test ") || !strings.Contains(out.String(), runtime.Version()) {
			t.Fatalf("%s: exit %d, served %v, printed %q", arg, code, served, out.String())
		}
	}
}
