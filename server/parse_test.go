package server

import (
	"bytes"
	"fmt"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/signetdev/signet/server/tufrepo"
)

func TestParseFile(t *testing.T) {
	t.Parallel()
	sum := strings.Repeat("ab", 32)
	for _, tc := range []struct {
		in   string
		want fileRef
		ok   bool
	}{
		{"timestamp.json", fileRef{role: "timestamp"}, true},
		{"3.root.json", fileRef{role: "root", version: 3}, true},
		{"12.targets%2Freleases.json", fileRef{role: "targets/releases", version: 12}, true},
		{"targets/releases.json", fileRef{role: "targets/releases"}, true},
		{"targets." + sum + ".json", fileRef{role: "targets", checksum: sum}, true},
		{"0.root.json", fileRef{}, false},
		{"99999999999999999999.root.json", fileRef{}, false},
		{"root.xml", fileRef{}, false},
		{"..%2Fetc.json", fileRef{}, false},
		{"%zz.json", fileRef{}, false},
		{".json", fileRef{}, false},
	} {
		got, err := parseFile(tc.in)
		if (err == nil) != tc.ok || (tc.ok && got != tc.want) {
			t.Errorf("%q: %+v %v", tc.in, got, err)
		}
	}
}

func FuzzParseFile(f *testing.F) {
	for _, s := range []string{"timestamp.json", "1.root.json", "2.targets%2Fa.json", "targets.abc.json", "..json"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ref, err := parseFile(s)
		if err != nil {
			return
		}
		if ref.role == "" || strings.Contains(ref.role, "..") || ref.version < 0 {
			t.Fatalf("%q parsed to %+v", s, ref)
		}
	})
}

func TestValidateGUN(t *testing.T) {
	t.Parallel()
	for gun, ok := range map[string]bool{
		"registry.example.com/team/app": true,
		"localhost:5000/app":            true,
		"app":                           true,
		"../x":                          false,
		"Registry.example.com/app":      false,
		"registry.example.com/app/":     false,
		"registry.example.com//app":     false,
		"registry.example.com/app:tag":  false,
		"":                              false,
		"r.example.com/" + strings.Repeat("a", 286): false,
	} {
		if err := ValidateGUN(gun); (err == nil) != ok {
			t.Errorf("%q: %v", gun, err)
		}
	}
}

func FuzzValidateGUN(f *testing.F) {
	f.Add("registry.example.com/team/app")
	f.Add("../x")
	f.Fuzz(func(t *testing.T, gun string) {
		if ValidateGUN(gun) == nil && (len(gun) > 255 || strings.Contains(gun, "..") || strings.ContainsAny(gun, "%?#\\ ") || strings.Contains(gun, "/_trust/")) {
			t.Fatalf("accepted %q", gun)
		}
	})
}

// FuzzReadUpload feeds arbitrary multipart bodies to the publish parser: it
// must never panic and must never accept a part that is not a valid role.
func FuzzReadUpload(f *testing.F) {
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	w, _ := mw.CreateFormFile("files", "targets/releases")
	_, _ = w.Write([]byte(`{"signed":{}}`))
	_ = mw.Close()
	f.Add(buf.Bytes(), mw.Boundary())
	f.Add([]byte("--x\r\nContent-Disposition: form-data; name=\"files\"; filename=\"../root\"\r\n\r\n{}\r\n--x--\r\n"), "x")
	s := New(nil, nil, WithLimits(Limits{MaxBody: 1 << 16, RootMax: 1 << 12, SnapshotMax: 1 << 12, TargetsMax: 1 << 12}))
	f.Fuzz(func(t *testing.T, body []byte, boundary string) {
		r := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(body))
		r.Header.Set("Content-Type", "multipart/form-data; boundary="+boundary)
		files, err := s.readUpload(httptest.NewRecorder(), r)
		if err != nil {
			return
		}
		for role, data := range files {
			if !isTopLevel(role) && tufrepo.ValidateRoleName(role) != nil {
				t.Fatalf("accepted role %q", role)
			}
			if int64(len(data)) > s.roleLimit(role) {
				t.Fatalf("accepted %d bytes for %s", len(data), role)
			}
		}
	})
}

// TestGUNMemo: the memo of accepted names answers as ValidateGUN does,
// keeps no refused name, and stays within its bound.
func TestGUNMemo(t *testing.T) {
	t.Parallel()
	var g gunMemo
	for range 2 {
		if err := g.check("registry.example.com/team/app"); err != nil {
			t.Fatal(err)
		}
		if err := g.check("Registry.example.com/team/app"); err == nil {
			t.Fatal("an upper-case name accepted")
		}
	}
	for i := range maxValidGUNs + 10 {
		if err := g.check(fmt.Sprintf("registry.example.com/app-%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	n := 0
	g.names.Range(func(any, any) bool { n++; return true })
	if n > maxValidGUNs {
		t.Fatalf("memo holds %d names, bound %d", n, maxValidGUNs)
	}
}
