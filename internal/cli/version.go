package cli

import (
	"fmt"
	"runtime/debug"
	"strings"
)

// Version describes the running binary from its build information: the
// module version ("(devel)" for a build from a checkout), the VCS commit
// and time (with "+dirty" for uncommitted changes) and the Go version, e.g.
//
//	signet v1.2.0 (commit 55142a9c1f0e, 2026-12-01T19:00:00Z) go1.26.8
func Version(name string) string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return name + " (no build information)"
	}
	version := bi.Main.Version
	if version == "" {
		version = "(devel)"
	}
	var commit, when string
	dirty := false
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			commit = s.Value
		case "vcs.time":
			when = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s", name, version)
	if commit != "" {
		if len(commit) > 12 {
			commit = commit[:12]
		}
		if dirty {
			commit += "+dirty"
		}
		fmt.Fprintf(&b, " (commit %s", commit)
		if when != "" {
			fmt.Fprintf(&b, ", %s", when)
		}
		b.WriteString(")")
	}
	fmt.Fprintf(&b, " %s", bi.GoVersion)
	return b.String()
}

// IsVersionArg reports whether args ask for the version: "version",
// "--version" or "-version" as the first argument.
func IsVersionArg(args []string) bool {
	return len(args) > 0 && (args[0] == "version" || args[0] == "--version" || args[0] == "-version")
}
