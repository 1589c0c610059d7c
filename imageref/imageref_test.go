package imageref_test

import (
	"testing"

	"github.com/signetdev/signet/imageref"
)

const sum = "sha256:5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03"

func TestParse(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in                string
		name, tag, digest string
		familiar          string
	}{
		{in: "alpine", name: "docker.io/library/alpine", familiar: "alpine"},
		{in: "alpine:3.19", name: "docker.io/library/alpine", tag: "3.19", familiar: "alpine:3.19"},
		{in: "docker.io/alpine:3.19", name: "docker.io/library/alpine", tag: "3.19", familiar: "alpine:3.19"},
		{in: "index.docker.io/library/alpine", name: "docker.io/library/alpine", familiar: "alpine"},
		{in: "user/app:1", name: "docker.io/user/app", tag: "1", familiar: "user/app:1"},
		{in: "registry.example.com/team/app:1.2", name: "registry.example.com/team/app", tag: "1.2", familiar: "registry.example.com/team/app:1.2"},
		{in: "localhost/app", name: "localhost/app", familiar: "localhost/app"},
		{in: "127.0.0.1:5000/team/app:v1", name: "127.0.0.1:5000/team/app", tag: "v1", familiar: "127.0.0.1:5000/team/app:v1"},
		{in: "alpine@" + sum, name: "docker.io/library/alpine", digest: sum, familiar: "alpine@" + sum},
		{in: "registry.example.com/team/app:1.2@" + sum, name: "registry.example.com/team/app", tag: "1.2", digest: sum, familiar: "registry.example.com/team/app:1.2@" + sum},
	} {
		r, err := imageref.Parse(tc.in)
		if err != nil {
			t.Errorf("Parse(%q): %v", tc.in, err)
			continue
		}
		if r.Name != tc.name || r.Tag != tc.tag || r.Digest.String() != tc.digest {
			t.Errorf("Parse(%q) = %+v, want name %s tag %q digest %q", tc.in, r, tc.name, tc.tag, tc.digest)
		}
		if got := r.Familiar(); got != tc.familiar {
			t.Errorf("Parse(%q).Familiar() = %q, want %q", tc.in, got, tc.familiar)
		}
		if again, err := imageref.Parse(r.String()); err != nil || again != r {
			t.Errorf("Parse(%q).String() = %q does not parse back: %+v %v", tc.in, r.String(), again, err)
		}
	}
}

func TestParseRefuses(t *testing.T) {
	t.Parallel()
	for _, in := range []string{"", "UPPER/app:1", "app:bad tag", "REGISTRY.example.com/team/app:1", "app@sha256:abc", "app@md5:00", "-app", "app:", "registry.example.com/team/app:1@"} {
		if r, err := imageref.Parse(in); err == nil {
			t.Errorf("Parse(%q) = %+v, want an error", in, r)
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"alpine", "user/app:1", "registry.example.com/team/app:1.2@" + sum} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := imageref.Parse(s)
		if err != nil {
			return
		}
		again, err := imageref.Parse(r.String())
		if err != nil || again != r {
			t.Fatalf("Parse(%q) = %+v; its String %q parses to %+v, %v", s, r, r.String(), again, err)
		}
	})
}
