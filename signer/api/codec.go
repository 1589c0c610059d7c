package api

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"unicode/utf8"
)

// The signing calls' bodies (SignRequest, SignBatchRequest,
// SignBatchesRequest and their responses) are read and written here by
// hand rather than through encoding/json's reflection: they are what every
// publish sends, and decoding them was the signer's largest cost after the
// signatures themselves. The JSON is the same as encoding/json's for these
// types (byte slices as standard base64). The reader is at least as strict
// as encoding/json with DisallowUnknownFields, and stricter where that is
// lenient: member names match exactly (not case-insensitively), a member
// may appear once, and nothing may follow the value. Strings with escapes
// or invalid UTF-8 are decoded by encoding/json itself, so they mean
// exactly what they meant before.

var errTrailing = errors.New("data after the JSON value")

// MarshalJSON implements json.Marshaler.
func (r SignRequest) MarshalJSON() ([]byte, error) { return r.AppendJSON(nil), nil }

// UnmarshalJSON implements json.Unmarshaler, strictly (see codec.go).
func (r *SignRequest) UnmarshalJSON(b []byte) error {
	return parseAll(b, func(p *parser) error { return p.signRequest(r) })
}

// AppendJSON appends r's JSON to b.
func (r SignRequest) AppendJSON(b []byte) []byte {
	b = append(b, `{"gun":`...)
	b = appendString(b, r.GUN)
	b = append(b, `,"role":`...)
	b = appendString(b, r.Role)
	b = append(b, `,"key_id":`...)
	b = appendString(b, r.KeyID)
	b = append(b, `,"payload":`...)
	b = appendBytes(b, r.Payload)
	return append(b, '}')
}

// MarshalJSON implements json.Marshaler.
func (r SignBatchRequest) MarshalJSON() ([]byte, error) { return r.AppendJSON(nil), nil }

// UnmarshalJSON implements json.Unmarshaler, strictly (see codec.go).
func (r *SignBatchRequest) UnmarshalJSON(b []byte) error {
	return parseAll(b, func(p *parser) error { return p.signBatchRequest(&r.Requests) })
}

// AppendJSON appends r's JSON to b.
func (r SignBatchRequest) AppendJSON(b []byte) []byte {
	b = append(b, `{"requests":`...)
	b = appendRequests(b, r.Requests)
	return append(b, '}')
}

// MarshalJSON implements json.Marshaler.
func (r SignBatchesRequest) MarshalJSON() ([]byte, error) { return r.AppendJSON(nil), nil }

// UnmarshalJSON implements json.Unmarshaler, strictly (see codec.go).
func (r *SignBatchesRequest) UnmarshalJSON(b []byte) error {
	return parseAll(b, func(p *parser) error { return p.signBatchesRequest(r) })
}

// AppendJSON appends r's JSON to b.
func (r SignBatchesRequest) AppendJSON(b []byte) []byte {
	b = append(b, `{"batches":`...)
	if r.Batches == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, '[')
		for i, x := range r.Batches {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, '{')
			if x.RequestID != "" {
				b = append(b, `"request_id":`...)
				b = appendString(b, x.RequestID)
				b = append(b, ',')
			}
			b = append(b, `"requests":`...)
			b = appendRequests(b, x.Requests)
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	return append(b, '}')
}

// MarshalJSON implements json.Marshaler.
func (r SignResponse) MarshalJSON() ([]byte, error) { return r.AppendJSON(nil), nil }

// UnmarshalJSON implements json.Unmarshaler, strictly (see codec.go).
func (r *SignResponse) UnmarshalJSON(b []byte) error {
	return parseAll(b, func(p *parser) error {
		return p.object(func(name string) error {
			if name != "signature" {
				return unknownField(name)
			}
			v, err := p.bytes()
			r.Signature = v
			return err
		})
	})
}

// AppendJSON appends r's JSON to b.
func (r SignResponse) AppendJSON(b []byte) []byte {
	b = append(b, `{"signature":`...)
	b = appendBytes(b, r.Signature)
	return append(b, '}')
}

// MarshalJSON implements json.Marshaler.
func (r SignBatchResponse) MarshalJSON() ([]byte, error) { return r.AppendJSON(nil), nil }

// UnmarshalJSON implements json.Unmarshaler, strictly (see codec.go).
func (r *SignBatchResponse) UnmarshalJSON(b []byte) error {
	return parseAll(b, func(p *parser) error {
		return p.object(func(name string) error {
			if name != "signatures" {
				return unknownField(name)
			}
			return p.byteSlices(&r.Signatures)
		})
	})
}

// AppendJSON appends r's JSON to b.
func (r SignBatchResponse) AppendJSON(b []byte) []byte {
	b = append(b, `{"signatures":`...)
	b = appendByteSlices(b, r.Signatures)
	return append(b, '}')
}

// MarshalJSON implements json.Marshaler.
func (r SignBatchesResponse) MarshalJSON() ([]byte, error) { return r.AppendJSON(nil) }

// UnmarshalJSON implements json.Unmarshaler, strictly (see codec.go).
func (r *SignBatchesResponse) UnmarshalJSON(b []byte) error {
	return parseAll(b, func(p *parser) error { return p.signBatchesResponse(r) })
}

// AppendJSON appends r's JSON to b.
func (r SignBatchesResponse) AppendJSON(b []byte) ([]byte, error) {
	b = append(b, `{"results":`...)
	if r.Results == nil {
		return append(b, "null}"...), nil
	}
	b = append(b, '[')
	for i, x := range r.Results {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '{')
		comma := false
		if x.Signatures != nil {
			b = append(b, `"signatures":`...)
			b = appendByteSlices(b, x.Signatures)
			comma = true
		}
		if x.Status != 0 {
			if comma {
				b = append(b, ',')
			}
			b = append(b, `"status":`...)
			b = strconv.AppendInt(b, int64(x.Status), 10)
			comma = true
		}
		if x.Error != nil {
			if comma {
				b = append(b, ',')
			}
			e, err := json.Marshal(x.Error) // refusals only: not worth a hand-written form
			if err != nil {
				return nil, err
			}
			b = append(b, `"error":`...)
			b = append(b, e...)
		}
		b = append(b, '}')
	}
	return append(b, "]}"...), nil
}

func appendRequests(b []byte, reqs []SignRequest) []byte {
	if reqs == nil {
		return append(b, "null"...)
	}
	b = append(b, '[')
	for i, r := range reqs {
		if i > 0 {
			b = append(b, ',')
		}
		b = r.AppendJSON(b)
	}
	return append(b, ']')
}

func appendByteSlices(b []byte, v [][]byte) []byte {
	if v == nil {
		return append(b, "null"...)
	}
	b = append(b, '[')
	for i, s := range v {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendBytes(b, s)
	}
	return append(b, ']')
}

func appendBytes(b, v []byte) []byte {
	if v == nil {
		return append(b, "null"...)
	}
	b = append(b, '"')
	b = base64.StdEncoding.AppendEncode(b, v)
	return append(b, '"')
}

// appendString appends s as a JSON string: as it is when it needs no
// escape (GUNs, roles, key IDs, request IDs), else as encoding/json
// writes it.
func appendString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x80 || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(s) // a string always marshals
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// parser reads one JSON value of a known shape from b.
type parser struct {
	b []byte
	i int
}

func parseAll(b []byte, value func(*parser) error) error {
	p := &parser{b: b}
	if err := value(p); err != nil {
		return err
	}
	if p.ws(); p.i != len(p.b) {
		return p.fail(errTrailing)
	}
	return nil
}

func (p *parser) fail(err error) error {
	return fmt.Errorf("offset %d: %w", p.i, err)
}

func unknownField(name string) error { return fmt.Errorf("json: unknown field %q", name) }

func (p *parser) ws() {
	for p.i < len(p.b) {
		switch p.b[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

// next skips white space and reports the next byte (0 at the end).
func (p *parser) next() byte {
	if p.ws(); p.i < len(p.b) {
		return p.b[p.i]
	}
	return 0
}

func (p *parser) expect(c byte) error {
	if p.next() != c {
		return p.fail(fmt.Errorf("want %q", c))
	}
	p.i++
	return nil
}

// null consumes a null and reports whether there was one.
func (p *parser) null() bool {
	if p.next() == 'n' && len(p.b)-p.i >= 4 && string(p.b[p.i:p.i+4]) == "null" {
		p.i += 4
		return true
	}
	return false
}

// object reads an object (or null, as no member), calling member with
// each member's name, the parser at its value. A name may appear once.
func (p *parser) object(member func(name string) error) error {
	if p.null() {
		return nil
	}
	if err := p.expect('{'); err != nil {
		return err
	}
	if p.next() == '}' {
		p.i++
		return nil
	}
	var seenAt [4]string
	seen := seenAt[:0]
	for {
		name, err := p.str()
		if err != nil {
			return err
		}
		for _, s := range seen {
			if s == name {
				return p.fail(fmt.Errorf("json: member %q twice", name))
			}
		}
		seen = append(seen, name)
		if err := p.expect(':'); err != nil {
			return err
		}
		if err := member(name); err != nil {
			return err
		}
		switch p.next() {
		case ',':
			p.i++
		case '}':
			p.i++
			return nil
		default:
			return p.fail(errors.New("want ',' or '}'"))
		}
	}
}

// array reads an array, calling elem for each element; null reads as no
// array (elem is not called, and null reports true).
func (p *parser) array(elem func() error) (null bool, err error) {
	if p.null() {
		return true, nil
	}
	if err := p.expect('['); err != nil {
		return false, err
	}
	if p.next() == ']' {
		p.i++
		return false, nil
	}
	for {
		if err := elem(); err != nil {
			return false, err
		}
		switch p.next() {
		case ',':
			p.i++
		case ']':
			p.i++
			return false, nil
		default:
			return false, p.fail(errors.New("want ',' or ']'"))
		}
	}
}

// rawString returns the next string token, quotes included, and whether
// it needs encoding/json to decode it (escapes, invalid UTF-8).
func (p *parser) rawString() ([]byte, bool, error) {
	if p.next() != '"' {
		return nil, false, p.fail(errors.New("want a string"))
	}
	start := p.i
	slow := false
	for p.i++; p.i < len(p.b); p.i++ {
		switch c := p.b[p.i]; {
		case c == '"':
			p.i++
			tok := p.b[start:p.i]
			if !slow && !utf8.Valid(tok) {
				slow = true
			}
			return tok, slow, nil
		case c == '\\':
			slow = true
			p.i++ // the escaped byte; encoding/json checks the escape
		case c < 0x20:
			return nil, false, p.fail(errors.New("control character in string"))
		}
	}
	return nil, false, p.fail(errors.New("unterminated string"))
}

// str reads a string (null reads as "").
func (p *parser) str() (string, error) {
	if p.null() {
		return "", nil
	}
	tok, slow, err := p.rawString()
	if err != nil {
		return "", err
	}
	if !slow {
		return string(tok[1 : len(tok)-1]), nil
	}
	var s string
	if err := json.Unmarshal(tok, &s); err != nil {
		return "", p.fail(err)
	}
	return s, nil
}

// bytes reads a base64 string as encoding/json reads a []byte (null reads
// as nil).
func (p *parser) bytes() ([]byte, error) {
	if p.null() {
		return nil, nil
	}
	tok, slow, err := p.rawString()
	if err != nil {
		return nil, err
	}
	if slow {
		var v []byte
		if err := json.Unmarshal(tok, &v); err != nil {
			return nil, p.fail(err)
		}
		return v, nil
	}
	s := tok[1 : len(tok)-1]
	v := make([]byte, base64.StdEncoding.DecodedLen(len(s)))
	n, err := base64.StdEncoding.Decode(v, s)
	if err != nil {
		return nil, p.fail(fmt.Errorf("json: base64: %w", err))
	}
	return v[:n], nil
}

// integer reads a JSON integer that fits an int.
func (p *parser) integer() (int, error) {
	p.ws()
	start := p.i
	if p.i < len(p.b) && p.b[p.i] == '-' {
		p.i++
	}
	digits := p.i
	for p.i < len(p.b) && p.b[p.i] >= '0' && p.b[p.i] <= '9' {
		p.i++
	}
	if p.i == digits || p.b[digits] == '0' && p.i-digits > 1 {
		return 0, p.fail(errors.New("want an integer"))
	}
	if p.i < len(p.b) && (p.b[p.i] == '.' || p.b[p.i] == 'e' || p.b[p.i] == 'E') {
		return 0, p.fail(errors.New("want an integer"))
	}
	return strconv.Atoi(string(p.b[start:p.i]))
}

// list reads an array of T into *out, each element with elem; null
// leaves *out as it is.
func list[T any](p *parser, out *[]T, elem func(*T) error) error {
	v := []T{}
	null, err := p.array(func() error {
		var x T
		err := elem(&x)
		v = append(v, x)
		return err
	})
	if !null {
		*out = v
	}
	return err
}

func (p *parser) byteSlices(out *[][]byte) error {
	return list(p, out, func(s *[]byte) (err error) {
		*s, err = p.bytes()
		return err
	})
}

func (p *parser) signRequest(r *SignRequest) error {
	return p.object(func(name string) error {
		var err error
		switch name {
		case "gun":
			r.GUN, err = p.str()
		case "role":
			r.Role, err = p.str()
		case "key_id":
			r.KeyID, err = p.str()
		case "payload":
			r.Payload, err = p.bytes()
		default:
			err = unknownField(name)
		}
		return err
	})
}

func (p *parser) requests(out *[]SignRequest) error { return list(p, out, p.signRequest) }

func (p *parser) signBatchRequest(out *[]SignRequest) error {
	return p.object(func(name string) error {
		if name != "requests" {
			return unknownField(name)
		}
		return p.requests(out)
	})
}

func (p *parser) signBatchesRequest(r *SignBatchesRequest) error {
	return p.object(func(name string) error {
		if name != "batches" {
			return unknownField(name)
		}
		return list(p, &r.Batches, p.signBatch)
	})
}

func (p *parser) signBatch(x *SignBatch) error {
	return p.object(func(name string) error {
		var err error
		switch name {
		case "request_id":
			x.RequestID, err = p.str()
		case "requests":
			err = p.requests(&x.Requests)
		default:
			err = unknownField(name)
		}
		return err
	})
}

func (p *parser) signBatchesResponse(r *SignBatchesResponse) error {
	return p.object(func(name string) error {
		if name != "results" {
			return unknownField(name)
		}
		return list(p, &r.Results, p.signBatchResult)
	})
}

func (p *parser) signBatchResult(x *SignBatchResult) error {
	return p.object(func(name string) error {
		var err error
		switch name {
		case "signatures":
			err = p.byteSlices(&x.Signatures)
		case "status":
			x.Status, err = p.integer()
		case "error":
			err = p.errorItem(&x.Error)
		default:
			err = unknownField(name)
		}
		return err
	})
}

func (p *parser) errorItem(out **ErrorItem) error {
	if p.null() {
		return nil
	}
	var e ErrorItem
	err := p.object(func(name string) error {
		var err error
		switch name {
		case "code":
			e.Code, err = p.str()
		case "message":
			e.Message, err = p.str()
		case "index":
			if p.null() {
				return nil
			}
			var i int
			i, err = p.integer()
			e.Index = &i
		default:
			err = unknownField(name)
		}
		return err
	})
	*out = &e
	return err
}
