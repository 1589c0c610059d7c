package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/signetdev/signet/internal/testserver"
)

const app = "registry.example.com/team/app"

func TestRun(t *testing.T) {
	t.Parallel()
	srv := testserver.Start(t)
	repo := srv.Init(t, app)
	repo.Sign("1.0")
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "root.json"), repo.Root, 0o600); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "policy.yaml")
	if err := os.WriteFile(file, fmt.Appendf(nil, "server: {url: %s}\ntrust_dir: trust\nrules: [{match: %s, require: signed, root: root.json}]\n", srv.URL, app), 0o600); err != nil {
		t.Fatal(err)
	}
	env := func(k string) string {
		if k == "SIGNET_POLICY" {
			return file
		}
		return ""
	}
	d10 := testserver.Digest("1.0")
	desc := func(d digest.Digest) string {
		return fmt.Sprintf(`{"mediaType":%q,"digest":%q,"size":1234}`, ocispec.MediaTypeImageManifest, d)
	}
	for _, tc := range []struct {
		name  string
		args  []string
		stdin string
		code  int
		out   string
	}{
		{"allow", []string{"-name", app + ":1.0", "-digest", d10.String(), "-stdin-media-type", ocispec.MediaTypeDescriptor}, desc(d10), exitAllow, "signet: allow: " + app + ":1.0 is signed by targets"},
		{"deny", []string{"-name", app + ":2.0", "-digest", d10.String(), "-stdin-media-type", ocispec.MediaTypeDescriptor}, desc(d10), exitDeny, "signet: deny: " + app + ":2.0 is not signed"},
		{"descriptor names another digest", []string{"-name", app + ":1.0", "-digest", d10.String(), "-stdin-media-type", ocispec.MediaTypeDescriptor}, desc(digest.FromString("x")), exitUndecided, "not -digest"},
		{"descriptor is not JSON", []string{"-name", app + ":1.0", "-digest", d10.String(), "-stdin-media-type", ocispec.MediaTypeDescriptor}, "nope", exitUndecided, "not JSON"},
		{"another stdin media type is left aside", []string{"-name", app + ":1.0", "-digest", d10.String(), "-stdin-media-type", "application/x-future"}, "whatever", exitAllow, "allow"},
		{"no digest", []string{"-name", app + ":1.0"}, "", exitUndecided, "-name and -digest are required"},
		{"bad digest", []string{"-name", app + ":1.0", "-digest", "sha256:zz"}, "", exitUndecided, "-digest"},
		{"unknown flag", []string{"-nmae", app}, "", exitUndecided, "flag provided but not defined"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			code := run(context.Background(), tc.args, strings.NewReader(tc.stdin), &out, &errb, env)
			if code != tc.code || !strings.Contains(out.String(), tc.out) || strings.Count(out.String(), "\n") != 1 {
				t.Fatalf("exit %d (want %d), stdout %q (want %q), stderr %s", code, tc.code, out.String(), tc.out, errb.String())
			}
		})
	}
}
