package tufjson_test

import (
	"bytes"
	"crypto/sha512"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/secure-systems-lab/go-securesystemslib/cjson"
	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/signetdev/signet/internal/tuftest"
	"github.com/signetdev/signet/tufjson"
)

// sameAsGoTUF checks DecodeTargets against go-tuf on data: the same error
// or none, the same metadata, the same canonical bytes.
func sameAsGoTUF(t testing.TB, data []byte) {
	t.Helper()
	want, wantErr, panicked := goTUF(data)
	got, err := tufjson.DecodeTargets(data)
	if panicked {
		if !errors.Is(err, tufjson.ErrGoTUFPanic) {
			t.Fatalf("%.200q: go-tuf panics, DecodeTargets says %v", data, err)
		}
		if _, err := tufjson.DecodeTargetsOf(data, "tag-1"); !errors.Is(err, tufjson.ErrGoTUFPanic) {
			t.Fatalf("%.200q: go-tuf panics, DecodeTargetsOf says %v", data, err)
		}
		return
	}
	if (err != nil) != (wantErr != nil) {
		t.Fatalf("%.200q: DecodeTargets error %v, go-tuf's %v", data, err, wantErr)
	}
	if err != nil {
		if err.Error() != wantErr.Error() {
			t.Fatalf("%.200q: error %q, go-tuf's %q", data, err, wantErr)
		}
		if _, err := tufjson.DecodeTargetsOf(data, "tag-1"); err == nil || err.Error() != wantErr.Error() {
			t.Fatalf("%.200q: DecodeTargetsOf error %v, go-tuf's %q", data, err, wantErr)
		}
		return
	}
	if !reflect.DeepEqual(got.Meta, want) {
		g, _ := json.Marshal(got.Meta)
		w, _ := json.Marshal(want)
		t.Fatalf("%.200q: decoded differently from go-tuf:\n got %.500s\nwant %.500s", data, g, w)
	}
	wantCanon, wantCanonErr := cjson.EncodeCanonical(want.Signed)
	canon, canonErr := got.Canonical()
	if (canonErr != nil) != (wantCanonErr != nil) || !bytes.Equal(canon, wantCanon) {
		t.Fatalf("%.200q: canonical form\n got %.500s (%v)\nwant %.500s (%v)", data, canon, canonErr, wantCanon, wantCanonErr)
	}
	sameEntriesOf(t, data, want, wantCanon, wantCanonErr)
}

// sameEntriesOf checks DecodeTargetsOf on data that go-tuf decodes as
// want: the same metadata but for the entries left out, the same
// canonical form (of every entry).
func sameEntriesOf(t testing.TB, data []byte, want *metadata.Metadata[metadata.TargetsType], wantCanon []byte, wantCanonErr error) {
	t.Helper()
	for _, names := range [][]string{{"tag-1"}, {"tag-0", "absent", "with space/and.dots_~"}, {}} {
		got, err := tufjson.DecodeTargetsOf(data, names...)
		if err != nil {
			t.Fatalf("%.200q: DecodeTargetsOf(%q) error %v, go-tuf none", data, names, err)
		}
		only := *want
		only.Signed.Targets = maps.Clone(want.Signed.Targets)
		maps.DeleteFunc(only.Signed.Targets, func(name string, _ *metadata.TargetFiles) bool { return !slices.Contains(names, name) })
		if !reflect.DeepEqual(got.Meta, &only) {
			g, _ := json.Marshal(got.Meta)
			w, _ := json.Marshal(&only)
			t.Fatalf("%.200q: DecodeTargetsOf(%q) decoded differently from go-tuf:\n got %.500s\nwant %.500s", data, names, g, w)
		}
		canon, canonErr := got.Canonical()
		if (canonErr != nil) != (wantCanonErr != nil) || !bytes.Equal(canon, wantCanon) {
			t.Fatalf("%.200q: DecodeTargetsOf(%q) canonical form\n got %.500s (%v)\nwant %.500s (%v)", data, names, canon, canonErr, wantCanon, wantCanonErr)
		}
	}
}

func goTUF(data []byte) (m *metadata.Metadata[metadata.TargetsType], err error, panicked bool) {
	defer func() {
		if recover() != nil {
			panicked = true
		}
	}()
	m, err = metadata.Targets().FromBytes(data)
	return m, err, false
}

func signedTargets(t testing.TB, tags int, edit func(*metadata.Metadata[metadata.TargetsType])) []byte {
	t.Helper()
	m := metadata.Targets(time.Date(2027, 3, 1, 12, 0, 0, 0, time.UTC))
	m.Signed.Version = 7
	for i := range tags {
		m.Signed.Targets[fmt.Sprintf("tag-%d", i)] = tuftest.Target(fmt.Sprint("manifest ", i))
	}
	if edit != nil {
		edit(m)
	}
	return tuftest.Sign(t, m, tuftest.NewKey(t), tuftest.NewKey(t))
}

// strictForms are written by go-tuf's own encoder: the fast path must take
// every one of them (or it would silently never run).
func strictForms(t testing.TB) map[string][]byte {
	k := tuftest.NewKey(t)
	return map[string][]byte{
		"empty":   signedTargets(t, 0, nil),
		"one tag": signedTargets(t, 1, nil),
		"many":    signedTargets(t, 300, nil),
		"two hashes": signedTargets(t, 3, func(m *metadata.Metadata[metadata.TargetsType]) {
			s := sha512.Sum512([]byte("x"))
			m.Signed.Targets["tag-1"].Hashes["sha512"] = s[:]
		}),
		"custom target": signedTargets(t, 3, func(m *metadata.Metadata[metadata.TargetsType]) {
			c := json.RawMessage(`{"b":[1,2,{"c":"<&>"}],"a":"é\u2028"}`)
			m.Signed.Targets["tag-2"].Custom = &c
		}),
		"odd names": signedTargets(t, 2, func(m *metadata.Metadata[metadata.TargetsType]) {
			m.Signed.Targets["with space/and.dots_~"] = tuftest.Target("space")
		}),
		"delegations": signedTargets(t, 2, func(m *metadata.Metadata[metadata.TargetsType]) {
			m.Signed.Delegations = &metadata.Delegations{
				Keys:  map[string]*metadata.Key{k.ID: k.Public},
				Roles: []metadata.DelegatedRole{{Name: "releases", KeyIDs: []string{k.ID}, Threshold: 1, Paths: []string{"v*", "a\\b"}}},
			}
		}),
		"bins": signedTargets(t, 0, func(m *metadata.Metadata[metadata.TargetsType]) {
			m.Signed.Delegations = &metadata.Delegations{
				Keys:          map[string]*metadata.Key{k.ID: k.Public},
				SuccinctRoles: &metadata.SuccinctRoles{KeyIDs: []string{k.ID}, Threshold: 1, BitLength: 8, NamePrefix: "bin"},
			}
		}),
		"fraction of a second": signedTargets(t, 1, func(m *metadata.Metadata[metadata.TargetsType]) {
			m.Signed.Expires = time.Date(2027, 3, 1, 12, 0, 0, 500_000_000, time.UTC)
		}),
		"unsigned": func() []byte {
			m := metadata.Targets(time.Date(2027, 3, 1, 12, 0, 0, 0, time.UTC))
			b, err := m.ToBytes(true)
			if err != nil {
				t.Fatal(err)
			}
			return b
		}(),
	}
}

func TestStrictFormsTakeTheFastPath(t *testing.T) {
	t.Parallel()
	for name, data := range strictForms(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			sameAsGoTUF(t, data)
			if !tufjson.Fast(data) {
				t.Fatalf("%s went to go-tuf", name)
			}
			if !tufjson.FastOf(data, "tag-1") || !tufjson.FastOf(data) {
				t.Fatalf("%s went to go-tuf with DecodeTargetsOf", name)
			}
		})
	}
}

// TestDeparturesMatchGoTUF edits go-tuf's output into forms the fast path
// must either read exactly as go-tuf does or leave to go-tuf.
func TestDeparturesMatchGoTUF(t *testing.T) {
	t.Parallel()
	base := string(signedTargets(t, 3, nil))
	sig := func(i int) string { // the i-th signature object's text
		var m struct{ Signatures []json.RawMessage }
		if err := json.Unmarshal([]byte(base), &m); err != nil {
			t.Fatal(err)
		}
		return string(m.Signatures[i])
	}
	edits := map[string]func(string) string{
		"indented": func(s string) string {
			var b bytes.Buffer
			if err := json.Indent(&b, []byte(s), " ", "\t"); err != nil {
				t.Fatal(err)
			}
			return b.String()
		},
		"surrounding space": func(s string) string { return " \n" + s + "\r\n\t" },
		"trailing data":     func(s string) string { return s + "x" },
		"second document":   func(s string) string { return s + s },
		"truncated":         func(s string) string { return s[:len(s)-1] },
		"unknown top-level field": func(s string) string {
			return strings.Replace(s, `{"signatures"`, `{"x":{"y":[1,"]"]},"signatures"`, 1)
		},
		"unknown signed field": func(s string) string {
			return strings.Replace(s, `"_type":"targets"`, `"_type":"targets","x-custom":[true,null]`, 1)
		},
		"unknown target field":  func(s string) string { return strings.Replace(s, `"length":`, `"extra":{"a":1},"length":`, 1) },
		"case-folded field":     func(s string) string { return strings.Replace(s, `"version":7`, `"Version":7`, 1) },
		"case-folded duplicate": func(s string) string { return strings.Replace(s, `"version":7`, `"version":7,"VERSION":9`, 1) },
		"duplicate version":     func(s string) string { return strings.Replace(s, `"version":7`, `"version":7,"version":8`, 1) },
		"duplicate target": func(s string) string {
			return strings.Replace(s, `"tag-0":`, `"tag-1":{"hashes":{"sha256":"00"},"length":1},"tag-0":`, 1)
		},
		"duplicate target, not kept": func(s string) string {
			return strings.Replace(s, `"tag-0":`, `"tag-2":{"hashes":{"sha256":"00"},"length":1},"tag-0":`, 1)
		},
		"duplicate target, kept after": func(s string) string {
			return strings.Replace(s, `"tag-2":`, `"tag-1":{"hashes":{"sha256":"00"},"length":1},"tag-2":`, 1)
		},
		"duplicate hash": func(s string) string { return strings.Replace(s, `"hashes":{`, `"hashes":{"sha256":"00",`, 1) },
		"duplicate signature": func(s string) string {
			return strings.Replace(s, `"signatures":[`, `"signatures":[`+sig(0)+`,`, 1)
		},
		"upper-case hash":      func(s string) string { return strings.Replace(s, `"sha256":"`, `"sha256":"ABCDEF`, 1) },
		"upper-case signature": func(s string) string { return strings.Replace(s, `"sig":"`, `"sig":"ABCDEF`, 1) },
		"odd hex":              func(s string) string { return strings.Replace(s, `"sha256":"`, `"sha256":"a`, 1) },
		"not hex":              func(s string) string { return strings.Replace(s, `"sha256":"`, `"sha256":"zz`, 1) },
		"escaped name":         func(s string) string { return strings.Replace(s, `"tag-0"`, `"tag\u002d0"`, 1) },
		"escaped type":         func(s string) string { return strings.Replace(s, `"_type":"targets"`, `"_type":"targ\u0065ts"`, 1) },
		"escaped hash":         func(s string) string { return strings.Replace(s, `"sha256":"`, `"sha256":"\u0030\u0030`, 1) },
		"html in a name":       func(s string) string { return strings.Replace(s, `"tag-0"`, `"a\u003cb\u003e\u0026c"`, 1) },
		"unicode name":         func(s string) string { return strings.Replace(s, `"tag-0"`, `"tag-é"`, 1) },
		"invalid utf-8 name":   func(s string) string { return strings.Replace(s, `"tag-0"`, "\"tag-\xff\"", 1) },
		"control character":    func(s string) string { return strings.Replace(s, `"tag-0"`, "\"tag-\x01\"", 1) },
		"root type":            func(s string) string { return strings.Replace(s, `"_type":"targets"`, `"_type":"root"`, 1) },
		"no type":              func(s string) string { return strings.Replace(s, `"_type":"targets",`, ``, 1) },
		"numeric type":         func(s string) string { return strings.Replace(s, `"_type":"targets"`, `"_type":1`, 1) },
		"no version":           func(s string) string { return strings.Replace(s, `"version":7,`, ``, 1) },
		"negative version":     func(s string) string { return strings.Replace(s, `"version":7`, `"version":-7`, 1) },
		"float version":        func(s string) string { return strings.Replace(s, `"version":7`, `"version":7.0`, 1) },
		"exponent version":     func(s string) string { return strings.Replace(s, `"version":7`, `"version":7e0`, 1) },
		"leading zero":         func(s string) string { return strings.Replace(s, `"version":7`, `"version":07`, 1) },
		"huge version":         func(s string) string { return strings.Replace(s, `"version":7`, `"version":99999999999999999999`, 1) },
		"string version":       func(s string) string { return strings.Replace(s, `"version":7`, `"version":"7"`, 1) },
		"zero length":          func(s string) string { return strings.Replace(s, `"length":`, `"length":0,"x":`, 1) },
		"negative length":      func(s string) string { return strings.Replace(s, `"length":`, `"length":-`, 1) },
		"no length": func(s string) string {
			i := strings.Index(s, `,"length":`)
			j := i + strings.IndexByte(s[i:], '}')
			return s[:i] + s[j:]
		},
		"empty hashes": func(s string) string { return strings.Replace(s, `"hashes":{`, `"hashes":{},"h":{`, 1) },
		"null hashes":  func(s string) string { return strings.Replace(s, `"hashes":{`, `"hashes":null,"h":{`, 1) },
		"null target":  func(s string) string { return strings.Replace(s, `"targets":{`, `"targets":{"nil":null,`, 1) },
		"null targets": func(s string) string { return strings.Replace(s, `"targets":{`, `"targets":null,"t":{`, 1) },
		"null delegations": func(s string) string {
			return strings.Replace(s, `"_type":"targets"`, `"_type":"targets","delegations":null`, 1)
		},
		"empty delegations": func(s string) string {
			return strings.Replace(s, `"_type":"targets"`, `"_type":"targets","delegations":{}`, 1)
		},
		"broken delegations": func(s string) string {
			return strings.Replace(s, `"_type":"targets"`, `"_type":"targets","delegations":{"keys":[}`, 1)
		},
		"string delegations": func(s string) string {
			return strings.Replace(s, `"_type":"targets"`, `"_type":"targets","delegations":"}"`, 1)
		},
		"offset expiry": func(s string) string {
			return strings.Replace(s, `"expires":"2027-03-01T12:00:00Z"`, `"expires":"2027-03-01T13:00:00+01:00"`, 1)
		},
		"lower-case expiry": func(s string) string {
			return strings.Replace(s, `"expires":"2027-03-01T12:00:00Z"`, `"expires":"2027-03-01t12:00:00z"`, 1)
		},
		"zero fraction": func(s string) string { return strings.Replace(s, `12:00:00Z"`, `12:00:00.000Z"`, 1) },
		"bad expiry": func(s string) string {
			return strings.Replace(s, `"expires":"2027-03-01T12:00:00Z"`, `"expires":"soon"`, 1)
		},
		"no signatures":    func(s string) string { return strings.Replace(s, `"signatures":[`, `"s":[`, 1) },
		"null signatures":  func(s string) string { return strings.Replace(s, `"signatures":[`, `"signatures":null,"s":[`, 1) },
		"signature extra":  func(s string) string { return strings.Replace(s, `"keyid":`, `"x":1,"keyid":`, 1) },
		"signature no sig": func(s string) string { return strings.Replace(s, `"sig":"`, `"s":"`, 1) },
		"array document":   func(s string) string { return "[" + s + "]" },
		"spaces inside":    func(s string) string { return strings.ReplaceAll(strings.ReplaceAll(s, ":", " : "), ",", " ,\n") },
		"float in custom":  func(s string) string { return strings.Replace(s, `"length":`, `"custom":{"f":1.5},"length":`, 1) },
		"escapes in custom": func(s string) string {
			return strings.Replace(s, `"length":`, `"custom":{"f":"\"}\\\u0041"},"length":`, 1)
		},
		// The canonical form is the document's own text only while that
		// text is canonical: each of these departs from it in one place.
		"space in one entry": func(s string) string { return strings.Replace(s, `"length":`, `"length": `, 1) },
		"unsorted targets": func(s string) string {
			return strings.Replace(s, `"tag-0":`, `"tag-9":{"hashes":{"sha256":"00"},"length":1},"tag-0":`, 1)
		},
		"unsorted hashes": func(s string) string {
			return strings.Replace(s, `"hashes":{"sha256":"`, `"hashes":{"sha512":"00","sha256":"`, 1)
		},
		"unsorted members": func(s string) string {
			return strings.Replace(strings.Replace(s, `"_type":"targets",`, ``, 1), `"version":7}`, `"version":7,"_type":"targets"}`, 1)
		},
		"space at the end of signed": func(s string) string { return strings.Replace(s, `"version":7}`, `"version":7 }`, 1) },
		"space at the start of signed": func(s string) string {
			return strings.Replace(s, `"signed":{`, `"signed": { `, 1)
		},
		"null custom":         func(s string) string { return strings.Replace(s, `"length":`, `"custom":null,"length":`, 1) },
		"custom then invalid": func(s string) string { return strings.Replace(s, `"length":`, `"custom":{"f":tru},"length":`, 1) },
	}
	for name, edit := range edits {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			sameAsGoTUF(t, []byte(edit(base)))
		})
	}
}

// TestCanonicalTextIsNotCopied: a role whose signed object is already in
// canonical form (go-tuf's encoder writes it so) gets that text as its
// canonical form, not a copy of it (a 100,000-tag role is 10 MB), capped
// so that appending to it cannot write into the document.
func TestCanonicalTextIsNotCopied(t *testing.T) {
	t.Parallel()
	for name, data := range strictForms(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			orig := bytes.Clone(data)
			got, err := tufjson.DecodeTargets(data)
			if err != nil {
				t.Fatal(err)
			}
			canon, err := got.Canonical()
			if err != nil {
				t.Fatal(err)
			}
			i := bytes.Index(data, canon)
			if i < 0 {
				// Indented (unsigned), or go-tuf's encoder escaped HTML
				// in custom where cjson does not (custom target).
				if name != "unsigned" && name != "custom target" {
					t.Fatalf("the signed text of %s is not canonical", name)
				}
				return
			}
			if &data[i] != &canon[0] {
				t.Fatalf("the canonical form is a copy, not the document's text")
			}
			if cap(canon) != len(canon) {
				t.Fatalf("the canonical form has room (cap %d, len %d) to write into the document", cap(canon), len(canon))
			}
			_ = append(canon, 'x')
			if !bytes.Equal(data, orig) {
				t.Fatal("appending to the canonical form changed the document")
			}
		})
	}
}

func FuzzDecodeTargets(f *testing.F) {
	for name, data := range strictForms(f) {
		if name != "many" { // large seeds slow the mutator down to a crawl
			f.Add(data)
		}
	}
	f.Add([]byte(`{"signed":{"_type":"targets","spec_version":"1.0","version":1,"expires":"2030-01-01T00:00:00Z","targets":{}},"signatures":[]}`))
	f.Add([]byte(`{"signed":{"_type":"targets","spec_version":"1.0","version":1,"expires":"2030-01-01T00:00:00Z","targets":{"a":{"length":1,"hashes":{"sha256":"00"}}}},"signatures":[{"keyid":"k","sig":"00"}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		sameAsGoTUF(t, data)
	})
}

// BenchmarkDecodeTargets compares the fast path with go-tuf's decoding and
// canonical encoding of a 10,000-tag targets file.
func BenchmarkDecodeTargets(b *testing.B) {
	data := signedTargets(b, 10_000, nil)
	b.Run("tufjson", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		for b.Loop() {
			t, err := tufjson.DecodeTargets(data)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := t.Canonical(); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("go-tuf", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		for b.Loop() {
			m, err := metadata.Targets().FromBytes(data)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := cjson.EncodeCanonical(m.Signed); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// TestDecodeTargetsOfKeepsLittle: decoding a large role for one entry
// allocates a fraction of what decoding every entry does (each decoded
// entry is a TargetFiles with two maps). Not parallel: it reads the
// process's allocation count.
func TestDecodeTargetsOfKeepsLittle(t *testing.T) {
	data := signedTargets(t, 5_000, nil)
	allocated := func(decode func() (*tufjson.Targets, error)) uint64 {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		tg, err := decode()
		runtime.ReadMemStats(&after)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tg.Canonical(); err != nil {
			t.Fatal(err)
		}
		return after.TotalAlloc - before.TotalAlloc
	}
	all := allocated(func() (*tufjson.Targets, error) { return tufjson.DecodeTargets(data) })
	one := allocated(func() (*tufjson.Targets, error) { return tufjson.DecodeTargetsOf(data, "tag-7") })
	t.Logf("every entry: %d bytes, one: %d bytes (the role: %d)", all, one, len(data))
	if one > all/4 {
		t.Fatalf("DecodeTargetsOf allocated %d bytes, DecodeTargets %d", one, all)
	}
}
