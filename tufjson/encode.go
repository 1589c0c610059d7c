package tufjson

import (
	"slices"
	"strconv"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// CanonicalSnapshot returns cjson.EncodeCanonical(s) for a snapshot the
// server builds, written directly instead of through go-tuf's encoder and
// a decode. ok is false for a snapshot holding anything this encoder does
// not write itself (unrecognised fields; a string outside printable ASCII
// or holding one of " \ < > &): the caller then uses cjson.
func CanonicalSnapshot(s *metadata.SnapshotType) (out []byte, ok bool) {
	if len(s.UnrecognizedFields) != 0 {
		return nil, false
	}
	return canonicalSigned(s.Type, s.SpecVersion, s.Version, s.Expires, s.Meta)
}

// CanonicalTimestamp is CanonicalSnapshot for a timestamp.
func CanonicalTimestamp(t *metadata.TimestampType) (out []byte, ok bool) {
	if len(t.UnrecognizedFields) != 0 {
		return nil, false
	}
	return canonicalSigned(t.Type, t.SpecVersion, t.Version, t.Expires, t.Meta)
}

// canonicalSigned writes {"_type","expires","meta","spec_version",
// "version"} in that (sorted) order. Within the strings it accepts, the
// canonical form and encoding/json's output are the same bytes, so
// Envelope can wrap it into what ToBytes writes.
func canonicalSigned(typ, spec string, version int64, expires time.Time, meta map[string]*metadata.MetaFiles) ([]byte, bool) {
	exp, err := expires.MarshalJSON()
	if err != nil || meta == nil || !plain(typ) || !plain(spec) {
		return nil, false
	}
	names := make([]string, 0, len(meta))
	n := 128 + len(typ) + len(spec)
	for name, mf := range meta {
		if mf == nil || len(mf.UnrecognizedFields) != 0 || !plain(name) {
			return nil, false
		}
		names = append(names, name)
		n += len(name) + 48 + len(mf.Hashes)*80
	}
	slices.Sort(names)
	out := make([]byte, 0, n)
	out = append(out, `{"_type":"`...)
	out = append(out, typ...)
	out = append(out, `","expires":`...)
	out = append(out, exp...)
	out = append(out, `,"meta":{`...)
	for i, name := range names {
		if i > 0 {
			out = append(out, ',')
		}
		mf := meta[name]
		out = append(out, '"')
		out = append(out, name...)
		out = append(out, `":{`...)
		// MetaFiles writes length and hashes only when set.
		if len(mf.Hashes) != 0 {
			algs := make([]string, 0, len(mf.Hashes))
			for alg := range mf.Hashes {
				if !plain(alg) {
					return nil, false
				}
				algs = append(algs, alg)
			}
			slices.Sort(algs)
			out = append(out, `"hashes":{`...)
			for j, alg := range algs {
				if j > 0 {
					out = append(out, ',')
				}
				out = append(out, '"')
				out = append(out, alg...)
				out = append(out, `":"`...)
				out = appendHex(out, mf.Hashes[alg])
				out = append(out, '"')
			}
			out = append(out, `},`...)
		}
		if mf.Length != 0 {
			out = append(out, `"length":`...)
			out = strconv.AppendInt(out, mf.Length, 10)
			out = append(out, ',')
		}
		out = append(out, `"version":`...)
		out = strconv.AppendInt(out, mf.Version, 10)
		out = append(out, '}')
	}
	out = append(out, `},"spec_version":"`...)
	out = append(out, spec...)
	out = append(out, `","version":`...)
	out = strconv.AppendInt(out, version, 10)
	return append(out, '}'), true
}

// Envelope returns what go-tuf's Metadata.ToBytes(false) writes for
// metadata whose "signed" object CanonicalSnapshot or CanonicalTimestamp
// encoded as signed, signed by sigs. ok is false for signatures it does
// not write itself (unrecognised fields, a key ID outside the strings
// canonicalSigned accepts): the caller then uses ToBytes.
func Envelope(signed []byte, sigs []metadata.Signature) (out []byte, ok bool) {
	out = make([]byte, 0, len(signed)+32+len(sigs)*200)
	out = append(out, `{"signatures":`...)
	if sigs == nil {
		out = append(out, "null"...)
	} else {
		out = append(out, '[')
		for i, s := range sigs {
			if len(s.UnrecognizedFields) != 0 || !plain(s.KeyID) {
				return nil, false
			}
			if i > 0 {
				out = append(out, ',')
			}
			out = append(out, `{"keyid":"`...)
			out = append(out, s.KeyID...)
			out = append(out, `","sig":"`...)
			out = appendHex(out, s.Signature)
			out = append(out, `"}`...)
		}
		out = append(out, ']')
	}
	out = append(out, `,"signed":`...)
	out = append(out, signed...)
	return append(out, '}'), true
}

// plain reports whether s is printable ASCII without the characters that
// canonical JSON escapes (" \) or encoding/json does (< > &): such a string
// is written as it is by both.
func plain(s string) bool {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c < 0x20 || c > 0x7e, c == '"', c == '\\', c == '<', c == '>', c == '&':
			return false
		}
	}
	return true
}

func appendHex(out, b []byte) []byte {
	const digits = "0123456789abcdef"
	for _, c := range b {
		out = append(out, digits[c>>4], digits[c&0xf])
	}
	return out
}
