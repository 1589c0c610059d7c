package signetcli

import (
	"strings"
	"testing"
	"time"

	"github.com/signetdev/signet/client"
	"github.com/signetdev/signet/internal/testserver"
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

// TestResignExpiredTargets: when targets has expired, resolve and status
// say to run `signet resign`; resign renews it (verified in every respect
// but its expiry) and the repository resolves again. Root, timestamp and
// snapshot are refused with who renews them; bad arguments are usage
// errors.
func TestResignExpiredTargets(t *testing.T) {
	t.Parallel()
	srv := testserver.Start(t)
	gun := "registry.example.com/team/resign"
	dev := &cli{t: t, server: srv.URL, trustDir: t.TempDir()}
	if code, _, e := dev.run("init", gun); code != exitOK {
		t.Fatal(e)
	}
	if code, _, e := dev.run("sign", gun+":1.0", "--digest", digest1, "--size", "1"); code != exitOK {
		t.Fatal(e)
	}
	skew := client.TargetsLifetime + 24*time.Hour
	srv.SetClockSkew(skew)
	later := &cli{t: t, server: srv.URL, trustDir: dev.trustDir, now: func() time.Time { return time.Now().Add(skew) }}
	if code, _, e := later.run("resolve", gun+":1.0"); code != exitTrust || !strings.Contains(e, "signet resign "+gun+" targets") {
		t.Fatalf("resolve with targets expired: exit %d: %s", code, e)
	}
	if code, out, _ := later.run("status", gun); code != exitTrust || !strings.Contains(out, "signet resign "+gun+" targets") {
		t.Fatalf("status: exit %d: %s", code, out)
	}
	if code, out, e := later.run("resign", gun); code != exitOK || !strings.Contains(out, "published as targets") {
		t.Fatalf("resign: exit %d: %s %s", code, out, e)
	}
	if code, out, e := later.run("resolve", gun+":1.0"); code != exitOK || !strings.Contains(out, digest1) {
		t.Fatalf("resolve after resign: exit %d: %s %s", code, out, e)
	}
	if code, out, e := later.run("status", gun); code != exitOK || strings.Contains(out, "EXPIRED") {
		t.Fatalf("status after resign: exit %d: %s %s", code, out, e)
	}
	if code, _, e := later.run("resign", gun, "timestamp"); code != exitError || !strings.Contains(e, "the server") {
		t.Fatalf("resign timestamp: exit %d: %s", code, e)
	}
	for _, args := range [][]string{{"resign"}, {"resign", "not a gun"}} {
		if code, _, e := later.run(args...); code != exitUsage {
			t.Fatalf("%v: exit %d, want usage (2): %s", args, code, e)
		}
	}
}
