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
func CheckPayloadRole(role string, payload []byte) error {
	if err := CheckRole(role); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(payload))
	tok, err := dec.Token()
	if err != nil || tok != json.Delim('{') {
		return fmt.Errorf("%w: payload is not a JSON object", ErrRoleMismatch)
	}
	var typ string
	seen := 0
	for dec.More() {
		k, err := dec.Token()
		if err != nil {
			return fmt.Errorf("%w: malformed payload: %v", ErrRoleMismatch, err)
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return fmt.Errorf("%w: malformed payload: %v", ErrRoleMismatch, err)
		}
		if name, _ := k.(string); strings.EqualFold(name, "_type") {
			seen++
			if name != "_type" {
				return fmt.Errorf("%w: ambiguous member %q", ErrRoleMismatch, name)
			}
			if err := json.Unmarshal(v, &typ); err != nil {
				return fmt.Errorf("%w: _type is not a string", ErrRoleMismatch)
			}
		}
	}
	if _, err := dec.Token(); err != nil {
		return fmt.Errorf("%w: malformed payload: %v", ErrRoleMismatch, err)
	}
	if dec.More() || dec.InputOffset() != int64(len(bytes.TrimRight(payload, " \t\r\n"))) {
		return fmt.Errorf("%w: trailing data after the payload", ErrRoleMismatch)
	}
	if seen != 1 || typ != role {
		return fmt.Errorf("%w: payload is %q metadata, the key signs only %s", ErrRoleMismatch, typ, role)
	}
	return nil
}
