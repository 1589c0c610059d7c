package signer

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
)

// CheckPayloadRole refuses (ErrRoleMismatch) a payload that is not the
// canonical JSON of a TUF "signed" object of the given role: it must be one
// JSON object, with exactly one "_type" member, equal to role, and nothing
// after it. A member whose name only case-folds to "_type" (which Go's
// encoding/json, and so go-tuf, would also read as the type) is refused as
// ambiguous. This is what binds an online key to its role: a timestamp key
// never signs targets, root or snapshot metadata.
//
// It runs on every payload the signer signs (twice: in the API and in the
// key store), so it validates the payload once with json.Valid and then
// walks only the top-level members of the object, decoding a member name
// only when it holds an escape.
func CheckPayloadRole(role string, payload []byte) error {
	if err := CheckRole(role); err != nil {
		return err
	}
	if !json.Valid(payload) {
		return fmt.Errorf("%w: malformed payload", ErrRoleMismatch)
	}
	// From here on payload is one valid JSON value, possibly with white
	// space around it: the scan below relies on that.
	i := skipSpace(payload, 0)
	if payload[i] != '{' {
		return fmt.Errorf("%w: payload is not a JSON object", ErrRoleMismatch)
	}
	var typ []byte // the _type value's string token, quotes included
	seen := 0
	for i++; ; {
		i = skipSpace(payload, i)
		switch payload[i] {
		case '}':
			if seen != 1 {
				return fmt.Errorf("%w: payload has %d _type members, the key signs only %s", ErrRoleMismatch, seen, role)
			}
			t, err := typeValue(typ)
			if err != nil {
				return err
			}
			if t != role {
				return fmt.Errorf("%w: payload is %q metadata, the key signs only %s", ErrRoleMismatch, t, role)
			}
			return nil
		case ',':
			i++
			continue
		}
		end := stringEnd(payload, i)
		isType, err := isTypeMember(payload[i:end])
		if err != nil {
			return err
		}
		i = skipSpace(payload, end) + 1 // the colon
		i = skipSpace(payload, i)
		vend := valueEnd(payload, i)
		if isType {
			seen++
			typ = payload[i:vend]
		}
		i = vend
	}
}

// isTypeMember reports whether the member name token tok is "_type", and
// refuses one that only case-folds to it (encoding/json, and so go-tuf,
// would read it as the type too). A name without escapes is compared as
// it is, without decoding (nor allocating).
func isTypeMember(tok []byte) (bool, error) {
	body := tok[1 : len(tok)-1]
	if bytes.IndexByte(body, '\\') >= 0 {
		name, err := memberName(tok)
		if err != nil {
			return false, fmt.Errorf("%w: malformed payload: %v", ErrRoleMismatch, err)
		}
		body = []byte(name)
	}
	// bytes.EqualFold folds exactly as strings.EqualFold does.
	if !bytes.EqualFold(body, typeName) {
		return false, nil
	}
	if string(body) != "_type" {
		return false, fmt.Errorf("%w: ambiguous member %q", ErrRoleMismatch, body)
	}
	return true, nil
}

var typeName = []byte("_type")

// typeValue decodes the _type value's token: a string without escapes is
// taken as it is; anything else goes through encoding/json, as before.
func typeValue(tok []byte) (string, error) {
	if len(tok) >= 2 && tok[0] == '"' && bytes.IndexByte(tok, '\\') < 0 {
		return string(tok[1 : len(tok)-1]), nil
	}
	var t string
	if err := json.Unmarshal(tok, &t); err != nil {
		return "", fmt.Errorf("%w: _type is not a string", ErrRoleMismatch)
	}
	return t, nil
}

// memberName decodes a JSON string token, unescaping only when needed.
func memberName(tok []byte) (string, error) {
	body := tok[1 : len(tok)-1]
	if bytes.IndexByte(body, '\\') < 0 {
		return string(body), nil
	}
	var s string
	err := json.Unmarshal(tok, &s)
	return s, err
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// stringEnd returns the index just after the string that starts at b[i]
// (a quote) in valid JSON.
func stringEnd(b []byte, i int) int {
	for i++; b[i] != '"'; i++ {
		if b[i] == '\\' {
			i++
		}
	}
	return i + 1
}

// valueEnd returns the index just after the value that starts at b[i] in
// valid JSON.
func valueEnd(b []byte, i int) int {
	switch b[i] {
	case '"':
		return stringEnd(b, i)
	case '{', '[':
		depth := 0
		for {
			switch b[i] {
			case '"':
				i = stringEnd(b, i)
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1
				}
			}
			i++
		}
	}
	for i < len(b) && !strings.ContainsRune(",}] \t\r\n", rune(b[i])) {
		i++ // a number, true, false or null
	}
	return i
}
