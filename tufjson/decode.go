// Package tufjson decodes targets-type TUF metadata (targets and delegated
// roles) in one pass, together with the canonical JSON of its "signed"
// object, and verifies signatures over those bytes: what go-tuf's
// metadata.Targets().FromBytes, cjson.EncodeCanonical and
// Metadata.VerifyDelegate compute, without their repeated decoding and
// re-encoding (go-tuf decodes a targets file five times over, and
// re-encodes it through three more passes for every key that may sign it),
// which made a publish into a 10,000-tag repository cost over 100 ms of
// CPU.
//
// Exactness is the contract: for every input, DecodeTargets returns the
// metadata go-tuf's FromBytes returns (or its error), and Canonical the
// bytes cjson.EncodeCanonical(Meta.Signed) returns; VerifyDelegate accepts
// exactly what go-tuf's VerifyDelegate accepts. The fast path reads only a
// strict form that go-tuf's own encoder writes (known members, each once,
// printable-ASCII strings without escapes, lower-case hex, unsigned
// integers, expiry times that re-encode to themselves) and hands anything
// else to go-tuf: a target entry or a delegations object it does not read
// itself is decoded and canonicalised by go-tuf alone, and any other
// departure, or any error, sends the whole file to go-tuf's FromBytes.
// Differential tests and a fuzz test hold both paths to the same results.
//
// It imports go-tuf, cjson and sigstore's verifiers only. Decoded values
// are read-only once returned and then safe for concurrent use.
package tufjson

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/secure-systems-lab/go-securesystemslib/cjson"
	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// Targets is one decoded targets-type role.
type Targets struct {
	// Meta is what metadata.Targets().FromBytes returns for the bytes.
	Meta *metadata.Metadata[metadata.TargetsType]

	once      sync.Once
	canonical []byte
	err       error
}

// Canonical returns the canonical JSON of Meta.Signed, the bytes its
// signatures sign (cjson.EncodeCanonical(Meta.Signed)), computed at most
// once. The caller must not modify them.
func (t *Targets) Canonical() ([]byte, error) {
	t.once.Do(func() {
		if t.canonical == nil {
			t.canonical, t.err = cjson.EncodeCanonical(t.Meta.Signed)
		}
	})
	return t.canonical, t.err
}

// WithSignatures returns t with its signatures replaced by sigs, sharing
// its decoded role and canonical form (to check signatures one by one).
func (t *Targets) WithSignatures(sigs []metadata.Signature) (*Targets, error) {
	canon, err := t.Canonical()
	if err != nil {
		return nil, err
	}
	m := *t.Meta
	m.Signatures = sigs
	return &Targets{Meta: &m, canonical: canon}, nil
}

// DecodeTargets decodes data as go-tuf's metadata.Targets().FromBytes
// does, returning its error unchanged for data it refuses. Where go-tuf
// panics (it does on a null target entry), DecodeTargets returns an error.
//
// When the "signed" object of data is already in canonical form (as
// go-tuf's encoder and every signet client write it), Canonical returns
// that part of data itself rather than a copy: the caller must not modify
// data once it is decoded.
func DecodeTargets(data []byte) (*Targets, error) {
	if t := fastTargets(data); t != nil {
		return t, nil
	}
	m, err := goTUFTargets(data)
	if err != nil {
		return nil, err
	}
	return &Targets{Meta: m}, nil
}

// DecodeTargetsOf is DecodeTargets(data) for a caller that needs only the
// entries called names (a resolve of one tag): the same result or error,
// but for Meta.Signed.Targets, which holds only those of names that data
// lists. Every entry is still read, checked and part of the canonical form
// exactly as DecodeTargets does it; the others are just not kept (the
// decoded entries of a 100,000-tag role take about 50 MB).
func DecodeTargetsOf(data []byte, names ...string) (*Targets, error) {
	if names == nil {
		names = []string{} // nil: every entry (decoder.only)
	}
	if t := fastTargetsOf(data, names); t != nil {
		return t, nil
	}
	m, err := goTUFTargets(data)
	if err != nil {
		return nil, err
	}
	t := &Targets{Meta: m}
	_, _ = t.Canonical() // of every entry, before the others are left out
	maps.DeleteFunc(m.Signed.Targets, func(name string, _ *metadata.TargetFiles) bool { return !slices.Contains(names, name) })
	return t, nil
}

// ErrGoTUFPanic reports metadata that made go-tuf's decoding panic.
var ErrGoTUFPanic = errors.New("tufjson: malformed metadata (go-tuf cannot decode it)")

func goTUFTargets(data []byte) (m *metadata.Metadata[metadata.TargetsType], err error) {
	defer func() {
		if r := recover(); r != nil {
			m, err = nil, fmt.Errorf("%w: %v", ErrGoTUFPanic, r)
		}
	}()
	return metadata.Targets().FromBytes(data)
}

// errDecline stops the fast path: go-tuf decides.
var errDecline = errors.New("tufjson: not in the strict form")

// fastTargets decodes data in the strict form, or returns nil.
func fastTargets(data []byte) *Targets { return fastTargetsOf(data, nil) }

// fastTargetsOf decodes data in the strict form keeping the entries called
// only (every entry when only is nil), or returns nil.
func fastTargetsOf(data []byte, only []string) *Targets {
	if uint64(len(data)) >= math.MaxUint32 {
		return nil // target offsets are 32-bit
	}
	d := &decoder{data: data, only: only}
	t, err := d.document()
	if err != nil {
		return nil
	}
	return t
}

type decoder struct {
	data []byte
	i    int
	// arena holds the canonical forms of target entries whose text in
	// data is not canonical, and, at its end, the entry being read.
	arena []byte
	// Slabs the target entries are carved from: one allocation for many.
	files []metadata.TargetFiles
	bytes []byte
	// only, when not nil, names the target entries to keep (DecodeTargetsOf);
	// the others are read into scratch and scratchBytes, reused.
	only         []string
	scratch      metadata.TargetFiles
	scratchBytes []byte
}

// keeps reports whether the entry called name is kept.
func (d *decoder) keeps(name []byte) bool {
	if d.only == nil {
		return true
	}
	for _, n := range d.only {
		if string(name) == n {
			return true
		}
	}
	return false
}

// scratchHash returns n bytes for a hash of an entry that is not kept,
// apart from the entry's other hashes (scratchBytes restarts per entry).
func (d *decoder) scratchHash(n int) []byte {
	if cap(d.scratchBytes)-len(d.scratchBytes) < n {
		d.scratchBytes = make([]byte, 0, max(2*cap(d.scratchBytes), n, 128))
	}
	b := d.scratchBytes[len(d.scratchBytes) : len(d.scratchBytes)+n : len(d.scratchBytes)+n]
	d.scratchBytes = d.scratchBytes[:len(d.scratchBytes)+n]
	return b
}

// newFile returns a zero TargetFiles from the slab.
func (d *decoder) newFile() *metadata.TargetFiles {
	if len(d.files) == cap(d.files) {
		d.files = make([]metadata.TargetFiles, 0, 256)
	}
	d.files = d.files[:len(d.files)+1]
	return &d.files[len(d.files)-1]
}

// newBytes returns n bytes from the slab, capped so that an append to
// them cannot reach their neighbours.
func (d *decoder) newBytes(n int) []byte {
	if n == 0 || n > 1024 {
		return make([]byte, n) // empty, not nil: as go-tuf decodes ""
	}
	if cap(d.bytes)-len(d.bytes) < n {
		d.bytes = make([]byte, 0, 16<<10)
	}
	b := d.bytes[len(d.bytes) : len(d.bytes)+n : len(d.bytes)+n]
	d.bytes = d.bytes[:len(d.bytes)+n]
	return b
}

func (d *decoder) space() {
	for d.i < len(d.data) {
		switch d.data[d.i] {
		case ' ', '\t', '\n', '\r':
			d.i++
		default:
			return
		}
	}
}

// next skips white space and reports the next byte (0 at the end).
func (d *decoder) next() byte {
	d.space()
	if d.i >= len(d.data) {
		return 0
	}
	return d.data[d.i]
}

func (d *decoder) expect(c byte) error {
	if d.next() != c {
		return errDecline
	}
	d.i++
	return nil
}

// str reads a string of printable ASCII without escapes and returns its
// content: the decoded string and its JSON text, quotes left out, are the
// same bytes.
func (d *decoder) str() ([]byte, error) {
	if d.next() != '"' {
		return nil, errDecline
	}
	start := d.i + 1
	for j := start; j < len(d.data); j++ {
		switch c := d.data[j]; {
		case c == '"':
			d.i = j + 1
			return d.data[start:j], nil
		case c < 0x20 || c > 0x7e || c == '\\':
			return nil, errDecline
		}
	}
	return nil, errDecline
}

// uint reads an unsigned integer of at most 18 digits, in JSON's grammar
// (no leading zero), not followed by a fraction or exponent.
func (d *decoder) uint() (int64, []byte, error) {
	d.space()
	start := d.i
	var v int64
	for d.i < len(d.data) && d.data[d.i] >= '0' && d.data[d.i] <= '9' {
		v = v*10 + int64(d.data[d.i]-'0')
		d.i++
	}
	n := d.i - start
	if n == 0 || n > 18 || n > 1 && d.data[start] == '0' {
		return 0, nil, errDecline
	}
	if d.i < len(d.data) {
		switch d.data[d.i] {
		case '.', 'e', 'E':
			return 0, nil, errDecline
		}
	}
	return v, d.data[start:d.i], nil
}

// object reads an object whose member names are strict strings, calling
// member for each with the decoder at its value. The callers decline a
// name seen twice (encoding/json keeps the last; go-tuf's maps of
// unrecognised fields would differ).
func (d *decoder) object(member func(name []byte) error) error {
	if err := d.expect('{'); err != nil {
		return err
	}
	if d.next() == '}' {
		d.i++
		return nil
	}
	for {
		name, err := d.str()
		if err != nil {
			return err
		}
		if err := d.expect(':'); err != nil {
			return err
		}
		if err := member(name); err != nil {
			return err
		}
		switch d.next() {
		case ',':
			d.i++
		case '}':
			d.i++
			return nil
		default:
			return errDecline
		}
	}
}

// skip passes over any JSON value and returns its text. It only finds the
// value's end; encoding/json validates the text when it is decoded.
func (d *decoder) skip() ([]byte, error) {
	d.space()
	start, depth := d.i, 0
	for d.i < len(d.data) {
		switch c := d.data[d.i]; c {
		case '"':
			for d.i++; d.i < len(d.data) && d.data[d.i] != '"'; d.i++ {
				if d.data[d.i] == '\\' {
					d.i++
				}
			}
			if d.i >= len(d.data) {
				return nil, errDecline
			}
			d.i++
		case '{', '[':
			depth++
			d.i++
		case '}', ']':
			if depth == 0 {
				return d.span(start) // the end of a literal in its container
			}
			depth--
			d.i++
		case ',', ' ', '\t', '\n', '\r':
			if depth == 0 {
				return d.span(start)
			}
			d.i++
		default:
			d.i++ // part of a literal or a number
			continue
		}
		if depth == 0 {
			return d.span(start) // a string, object or array ended
		}
	}
	if depth != 0 {
		return nil, errDecline
	}
	return d.span(start)
}

func (d *decoder) span(start int) ([]byte, error) {
	if d.i == start {
		return nil, errDecline
	}
	return d.data[start:d.i], nil
}

// once marks a member as seen, declining a second one.
func once(seen *bool) error {
	if *seen {
		return errDecline
	}
	*seen = true
	return nil
}

// document reads {"signed": …, "signatures": […]}.
func (d *decoder) document() (*Targets, error) {
	m := &metadata.Metadata[metadata.TargetsType]{UnrecognizedFields: map[string]any{}}
	var signed []byte
	var gotSigned, gotSigs bool
	err := d.object(func(name []byte) error {
		switch string(name) {
		case "signed":
			if err := once(&gotSigned); err != nil {
				return err
			}
			var err error
			signed, err = d.signed(&m.Signed)
			return err
		case "signatures":
			if err := once(&gotSigs); err != nil {
				return err
			}
			var err error
			m.Signatures, err = d.signatures()
			return err
		}
		return errDecline
	})
	if err != nil || !gotSigned || !gotSigs {
		return nil, errDecline
	}
	if d.next() != 0 {
		return nil, errDecline // trailing data: encoding/json refuses it
	}
	return &Targets{Meta: m, canonical: signed}, nil
}

// signatures reads [{"keyid": …, "sig": …}, …], declining a key ID that
// signs twice (go-tuf refuses it).
func (d *decoder) signatures() ([]metadata.Signature, error) {
	if err := d.expect('['); err != nil {
		return nil, err
	}
	sigs := []metadata.Signature{}
	if d.next() == ']' {
		d.i++
		return sigs, nil
	}
	for {
		var s metadata.Signature
		var gotID, gotSig bool
		err := d.object(func(name []byte) error {
			switch string(name) {
			case "keyid":
				if err := once(&gotID); err != nil {
					return err
				}
				id, err := d.str()
				s.KeyID = string(id)
				return err
			case "sig":
				if err := once(&gotSig); err != nil {
					return err
				}
				h, err := d.str()
				if err != nil {
					return err
				}
				s.Signature, err = decodeHex(h, false, make([]byte, len(h)/2))
				return err
			}
			return errDecline
		})
		if err != nil || !gotID || !gotSig {
			return nil, errDecline
		}
		if slices.ContainsFunc(sigs, func(o metadata.Signature) bool { return o.KeyID == s.KeyID }) {
			return nil, errDecline
		}
		s.UnrecognizedFields = map[string]any{}
		sigs = append(sigs, s)
		switch d.next() {
		case ',':
			d.i++
		case ']':
			d.i++
			return sigs, nil
		default:
			return nil, errDecline
		}
	}
}

// signed reads the "signed" object into t and returns its canonical JSON:
// its own text in data when that is canonical, else a new encoding.
func (d *decoder) signed(t *metadata.TargetsType) ([]byte, error) {
	d.space()
	start := d.i
	var typ, spec, expires, version []byte
	var targets []target
	var delegations []byte // canonical
	var gotDelegations, gotTargets bool
	err := d.object(func(name []byte) error {
		var err error
		switch string(name) {
		case "_type":
			if typ != nil {
				return errDecline
			}
			if typ, err = d.str(); err == nil && string(typ) != metadata.TARGETS {
				return errDecline // go-tuf names the wrong type
			}
		case "spec_version":
			if spec != nil {
				return errDecline
			}
			spec, err = d.str()
			t.SpecVersion = string(spec)
		case "version":
			if version != nil {
				return errDecline
			}
			t.Version, version, err = d.uint()
		case "expires":
			if expires != nil {
				return errDecline
			}
			if expires, err = d.str(); err == nil {
				t.Expires, err = decodeTime(expires)
			}
		case "targets":
			if err := once(&gotTargets); err != nil {
				return err
			}
			t.Targets, targets, err = d.targets()
		case "delegations":
			if err := once(&gotDelegations); err != nil {
				return err
			}
			t.Delegations, delegations, err = d.delegations()
		default:
			return errDecline
		}
		return err
	})
	if err != nil || typ == nil || spec == nil || version == nil || expires == nil || !gotTargets {
		return nil, errDecline
	}
	t.Type = metadata.TARGETS
	t.UnrecognizedFields = map[string]any{}

	// The canonical form: members sorted, strings as they are (strict
	// strings need no escaping), no white space. It is written through a
	// canonWriter over the object's own text, which copies nothing while
	// that text is the canonical form.
	n := 128 + len(delegations) + len(spec) + len(expires)
	for _, tg := range targets {
		n += int(tg.nameHi-tg.nameLo+4) + int(tg.hi-tg.lo)
	}
	w := canonWriter{text: d.data[start:d.i], size: n}
	w.str(`{"_type":"targets",`)
	if gotDelegations {
		w.str(`"delegations":`)
		w.bytes(delegations)
		w.str(",")
	}
	w.str(`"expires":"`)
	w.bytes(expires)
	w.str(`","spec_version":"`)
	w.bytes(spec)
	w.str(`","targets":{`)
	byName := func(a, b target) int { return bytes.Compare(d.name(a), d.name(b)) }
	if !slices.IsSortedFunc(targets, byName) {
		slices.SortFunc(targets, byName)
	}
	// targets declines a name seen twice among the entries it keeps; this
	// finds the others (encoding/json keeps the last: go-tuf decides).
	for i := 1; i < len(targets); i++ {
		if bytes.Equal(d.name(targets[i-1]), d.name(targets[i])) {
			return nil, errDecline
		}
	}
	for i, tg := range targets {
		if i > 0 {
			w.str(",")
		}
		w.str(`"`)
		w.bytes(d.name(tg))
		w.str(`":`)
		if tg.inData {
			w.bytes(d.data[tg.lo:tg.hi])
		} else {
			w.bytes(d.arena[tg.lo:tg.hi])
		}
	}
	w.str(`},"version":`)
	w.bytes(version)
	w.str("}")
	return w.result(), nil
}

// canonWriter writes a canonical form that is usually text itself (the
// JSON it was decoded from): while what is written matches text, nothing
// is copied; at the first difference, what matched so far is copied into
// a buffer of size bytes and writing goes on there. Either way the result
// is exactly the bytes written.
type canonWriter struct {
	text []byte
	n    int // bytes of text matched, while out is nil
	out  []byte
	size int
}

func (w *canonWriter) bytes(b []byte) {
	if w.out == nil {
		if len(w.text)-w.n >= len(b) && bytes.Equal(w.text[w.n:w.n+len(b)], b) {
			w.n += len(b)
			return
		}
		w.diverge(len(b))
	}
	w.out = append(w.out, b...)
}

func (w *canonWriter) str(s string) {
	if w.out == nil {
		if len(w.text)-w.n >= len(s) && string(w.text[w.n:w.n+len(s)]) == s {
			w.n += len(s)
			return
		}
		w.diverge(len(s))
	}
	w.out = append(w.out, s...)
}

func (w *canonWriter) diverge(more int) {
	w.out = make([]byte, w.n, max(w.size, w.n+more))
	copy(w.out, w.text[:w.n])
}

// result returns the bytes written; a part of text is capped, so that an
// append to it cannot write into the text that follows.
func (w *canonWriter) result() []byte {
	if w.out == nil {
		return w.text[:w.n:w.n]
	}
	return w.out
}

// decodeTime decodes an expiry as go-tuf does (time.Time's JSON form) and
// declines one whose encoding is not itself, since the canonical form
// holds the re-encoded time.
func decodeTime(s []byte) (time.Time, error) {
	q := make([]byte, 0, len(s)+2)
	q = append(append(append(q, '"'), s...), '"')
	var t time.Time
	if err := t.UnmarshalJSON(q); err != nil {
		return time.Time{}, errDecline
	}
	back, err := t.MarshalJSON()
	if err != nil || !bytes.Equal(back, q) {
		return time.Time{}, errDecline
	}
	return t, nil
}

// target is one entry of "targets": its name, data[nameLo:nameHi], and
// its canonical JSON, data[lo:hi] when its text there is canonical
// (inData), else arena[lo:hi]. Offsets, not slices: a 100,000-tag role
// has 100,000 of them (the fast path declines data or an arena of 4 GiB
// or more).
type target struct {
	nameLo, nameHi, lo, hi uint32
	inData                 bool
}

func (d *decoder) name(t target) []byte { return d.data[t.nameLo:t.nameHi] }

// member reads the next member name of an object opened with expect('{'):
// ok is false after the closing brace. first is true for the first call.
func (d *decoder) member(first bool) (name []byte, ok bool, err error) {
	switch c := d.next(); {
	case c == '}':
		d.i++
		return nil, false, nil
	case first:
	case c == ',':
		d.i++
	default:
		return nil, false, errDecline
	}
	if name, err = d.str(); err != nil {
		return nil, false, err
	}
	if err := d.expect(':'); err != nil {
		return nil, false, err
	}
	return name, true, nil
}

// targets reads the "targets" object. An entry outside the strict form
// ({"hashes": {…}, "length": N}) is decoded and canonicalised by go-tuf.
// Entries' canonical forms go to the decoder's arena.
func (d *decoder) targets() (map[string]*metadata.TargetFiles, []target, error) {
	if err := d.expect('{'); err != nil {
		return nil, nil, err
	}
	// Sized once: grown entry by entry, the list and the map of a
	// 100,000-tag role allocated several times their final size. Every
	// strict entry has a length, so this counts them (and at most a few
	// more, in names or custom members).
	n := bytes.Count(d.data[d.i:], []byte(`"length"`))
	list := make([]target, 0, n)
	if d.only != nil {
		n = len(d.only) // the entries kept
	}
	out := make(map[string]*metadata.TargetFiles, n)
	for first := true; ; first = false {
		name, ok, err := d.member(first)
		if err != nil {
			return nil, nil, err
		}
		if !ok {
			return out, list, nil
		}
		keep, key := d.keeps(name), ""
		if keep {
			key = string(name)
			if _, dup := out[key]; dup {
				return nil, nil, errDecline
			}
		}
		d.space()
		start, lo := d.i, len(d.arena)
		tf, err := d.strictTarget(keep)
		if err != nil {
			d.i, d.arena = start, d.arena[:lo]
			if tf, err = d.goTUFTarget(); err != nil {
				return nil, nil, err
			}
		}
		if keep {
			tf.Path = key
			out[key] = tf
		}
		tg, err := d.keep(name, start, lo)
		if err != nil {
			return nil, nil, err
		}
		list = append(list, tg)
	}
}

// keep records the entry called name whose text is data[start:d.i] and
// whose canonical form was just appended to the arena at lo: when the two
// are the same bytes, the entry refers to data and the arena forgets it,
// so that a role in canonical form is not copied entry by entry.
func (d *decoder) keep(name []byte, start, lo int) (target, error) {
	// name is a part of data (str), which starts where the capacities say.
	nameLo := uint32(cap(d.data) - cap(name))
	t := target{nameLo: nameLo, nameHi: nameLo + uint32(len(name))}
	if !bytes.Equal(d.name(t), name) {
		return target{}, errDecline // not a part of data after all: go-tuf decides
	}
	if bytes.Equal(d.data[start:d.i], d.arena[lo:]) {
		d.arena = d.arena[:lo]
		t.lo, t.hi, t.inData = uint32(start), uint32(d.i), true
		return t, nil
	}
	if lo == 0 && cap(d.arena) < len(d.data) {
		// The first entry kept here: there may be many.
		a := make([]byte, len(d.arena), len(d.data))
		copy(a, d.arena)
		d.arena = a
	}
	if uint64(len(d.arena)) > math.MaxUint32 {
		return target{}, errDecline // canonical forms longer than their text
	}
	t.lo, t.hi = uint32(lo), uint32(len(d.arena))
	return t, nil
}

// strictTarget reads {"hashes": {ALG: HEX, …}, "length": N} in any order
// and appends its canonical form to the arena. An entry that is not kept
// is read into the decoder's scratch entry, as thoroughly.
func (d *decoder) strictTarget(keep bool) (*metadata.TargetFiles, error) {
	if err := d.expect('{'); err != nil {
		return nil, err
	}
	var tf *metadata.TargetFiles
	if keep {
		tf = d.newFile()
	} else {
		tf = &d.scratch
		tf.Length, d.scratchBytes = 0, d.scratchBytes[:0]
	}
	var length []byte
	type hash struct{ alg, hex []byte }
	var buf [2]hash
	hashes := buf[:0]
	gotHashes := false
	for first := true; ; first = false {
		name, ok, err := d.member(first)
		if err != nil {
			return nil, err
		}
		if !ok {
			break
		}
		switch string(name) {
		case "length":
			if length != nil {
				return nil, errDecline
			}
			if tf.Length, length, err = d.uint(); err != nil {
				return nil, err
			}
		case "hashes":
			if gotHashes {
				return nil, errDecline
			}
			gotHashes = true
			if err := d.expect('{'); err != nil {
				return nil, err
			}
			if keep || tf.Hashes == nil {
				tf.Hashes = metadata.Hashes{}
			} else {
				clear(tf.Hashes)
			}
			for first := true; ; first = false {
				alg, ok, err := d.member(first)
				if err != nil {
					return nil, err
				}
				if !ok {
					break
				}
				key := algName(alg)
				if _, dup := tf.Hashes[key]; dup {
					return nil, errDecline
				}
				h, err := d.str()
				if err != nil {
					return nil, err
				}
				out := d.scratchHash
				if keep {
					out = d.newBytes
				}
				if tf.Hashes[key], err = decodeHex(h, true, out(len(h)/2)); err != nil {
					return nil, err
				}
				hashes = append(hashes, hash{alg, h})
			}
		default:
			return nil, errDecline
		}
	}
	if length == nil || len(hashes) == 0 {
		return nil, errDecline
	}
	if keep {
		tf.UnrecognizedFields = map[string]any{}
	}
	if len(hashes) > 1 {
		slices.SortFunc(hashes, func(a, b hash) int { return bytes.Compare(a.alg, b.alg) })
	}
	out := append(d.arena, `{"hashes":{`...)
	for i, h := range hashes {
		if i > 0 {
			out = append(out, ',')
		}
		out = append(out, '"')
		out = append(out, h.alg...)
		out = append(out, `":"`...)
		out = append(out, h.hex...)
		out = append(out, '"')
	}
	out = append(out, `},"length":`...)
	out = append(out, length...)
	d.arena = append(out, '}')
	return tf, nil
}

// algName returns alg as a string, without allocating for the usual names.
func algName(alg []byte) string {
	switch string(alg) {
	case "sha256":
		return "sha256"
	case "sha512":
		return "sha512"
	}
	return string(alg)
}

// goTUFTarget decodes the entry at the decoder with go-tuf's own
// TargetFiles decoding and appends its cjson canonical form to the arena.
func (d *decoder) goTUFTarget() (*metadata.TargetFiles, error) {
	raw, err := d.skip()
	if err != nil || bytes.Equal(raw, []byte("null")) {
		return nil, errDecline
	}
	tf := &metadata.TargetFiles{}
	if err := json.Unmarshal(raw, tf); err != nil {
		return nil, errDecline
	}
	canon, err := cjson.EncodeCanonical(tf)
	if err != nil {
		return nil, errDecline
	}
	d.arena = append(d.arena, canon...)
	return tf, nil
}

// delegations decodes the "delegations" object with go-tuf's own
// decoding and canonicalises it with cjson: it is small next to the
// targets, and its keys and roles are what go-tuf's rules read.
func (d *decoder) delegations() (*metadata.Delegations, []byte, error) {
	raw, err := d.skip()
	if err != nil || bytes.Equal(raw, []byte("null")) {
		return nil, nil, errDecline // null: go-tuf leaves it out of the canonical form
	}
	del := &metadata.Delegations{}
	if err := json.Unmarshal(raw, del); err != nil {
		return nil, nil, errDecline
	}
	canon, err := cjson.EncodeCanonical(del)
	if err != nil {
		return nil, nil, errDecline
	}
	return del, canon, nil
}

// decodeHex decodes an even-length hex string into out (len(h)/2 bytes);
// lower-case only when lower is set (a hash is re-encoded in lower case in the canonical form; a
// signature is not part of it).
func decodeHex(h []byte, lower bool, out []byte) (metadata.HexBytes, error) {
	if len(h)%2 != 0 || len(out) != len(h)/2 {
		return nil, errDecline
	}
	table := &hexLower
	if !lower {
		table = &hexAny
	}
	for i := range out {
		hi, lo := table[h[2*i]], table[h[2*i+1]]
		if hi|lo > 0xf {
			return nil, errDecline
		}
		out[i] = hi<<4 | lo
	}
	return out, nil
}

// hexLower and hexAny map a hex digit to its value, anything else to 0xff.
var hexLower, hexAny = hexTables()

func hexTables() (lower, anyCase [256]byte) {
	for c := range 256 {
		lower[c], anyCase[c] = 0xff, 0xff
	}
	for c := byte('0'); c <= '9'; c++ {
		lower[c], anyCase[c] = c-'0', c-'0'
	}
	for c := byte('a'); c <= 'f'; c++ {
		lower[c], anyCase[c] = c-'a'+10, c-'a'+10
		anyCase[c-'a'+'A'] = c - 'a' + 10
	}
	return lower, anyCase
}
