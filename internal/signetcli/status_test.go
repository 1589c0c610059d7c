package signetcli

import (
	"strings"
	"testing"
	"time"
)

// TestStatusShowsExpiredRoles: with roles expired, resolves fail (exit 4);
// status still shows every role, marks the expired ones and says how to
// recover, and exits 4.
func TestStatusShowsExpiredRoles(t *testing.T) {
	t.Parallel()
	srv := newServer(t)
	gun := "registry.example.com/team/expired"
	dev := &cli{t: t, server: srv, trustDir: t.TempDir()}
	if code, _, e := dev.run("init", gun); code != exitOK {
		t.Fatal(e)
	}
	later := &cli{t: t, server: srv, trustDir: dev.trustDir, now: func() time.Time { return time.Now().Add(100 * 24 * time.Hour) }}
	if code, _, _ := later.run("resolve", gun+":1.0"); code != exitTrust {
		t.Fatalf("resolve of expired metadata: exit %d", code)
	}
	code, out, e := later.run("status", gun)
	if code != exitTrust {
		t.Fatalf("status: exit %d: %s", code, e)
	}
	for _, want := range []string{"root", "timestamp", "snapshot", "targets"} {
		if !strings.Contains(out, want) {
			t.Fatalf("status does not show %s: %q", want, out)
		}
	}
	lines := strings.Split(out, "\n")
	for _, l := range lines {
		f := strings.Fields(l)
		if len(f) == 0 || f[0] == "ROLE" {
			continue
		}
		expired := strings.Contains(l, "EXPIRED")
		if (f[0] == "root") == expired {
			t.Fatalf("%s: expired marked %v: %q", f[0], expired, l)
		}
	}
	if !strings.Contains(out, "must publish a new version") || !strings.Contains(e, "expired") {
		t.Fatalf("no recovery hint: %q %q", out, e)
	}
	if code, out, _ := later.run("-o", "json", "status", gun); code != exitTrust || !strings.Contains(out, `"expired": true`) {
		t.Fatalf("json status: %d %s", code, out)
	}
	// Now: nothing expired, no EXPIRED rows, exit 0.
	if code, out, e := dev.run("status", gun); code != exitOK || strings.Contains(out, "EXPIRED") {
		t.Fatalf("status now: %d %q %s", code, out, e)
	}
}
