package signer_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/signetdev/signet/signer"
)

func TestCheckPayloadRole(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, role, payload string
		want                error // nil: accepted
	}{
		{"timestamp", "timestamp", `{"_type":"timestamp","version":1}`, nil},
		{"snapshot", "snapshot", `{"_type":"snapshot","meta":{"targets.json":{"version":1}}}`, nil},
		{"surrounding whitespace", "timestamp", " {\"_type\":\"timestamp\"}\n", nil},
		{"targets as timestamp", "timestamp", `{"_type":"targets","version":1}`, signer.ErrRoleMismatch},
		{"root as timestamp", "timestamp", `{"_type":"root"}`, signer.ErrRoleMismatch},
		{"timestamp as snapshot", "snapshot", `{"_type":"timestamp"}`, signer.ErrRoleMismatch},
		{"missing _type", "timestamp", `{"version":1}`, signer.ErrRoleMismatch},
		{"nested _type only", "timestamp", `{"a":{"_type":"timestamp"}}`, signer.ErrRoleMismatch},
		{"duplicate _type", "timestamp", `{"_type":"timestamp","_type":"targets"}`, signer.ErrRoleMismatch},
		{"duplicate _type, same value", "timestamp", `{"_type":"timestamp","_type":"timestamp"}`, signer.ErrRoleMismatch},
		{"escaped duplicate", "timestamp", `{"_type":"timestamp","\u005ftype":"targets"}`, signer.ErrRoleMismatch},
		{"case-folded duplicate", "timestamp", `{"_type":"timestamp","_TYPE":"targets"}`, signer.ErrRoleMismatch},
		{"case-folded only", "timestamp", `{"_Type":"timestamp"}`, signer.ErrRoleMismatch},
		{"second value", "timestamp", `{"_type":"timestamp"} {"_type":"targets"}`, signer.ErrRoleMismatch},
		{"trailing garbage", "timestamp", `{"_type":"timestamp"}x`, signer.ErrRoleMismatch},
		{"array", "timestamp", `["_type","timestamp"]`, signer.ErrRoleMismatch},
		{"string", "timestamp", `"timestamp"`, signer.ErrRoleMismatch},
		{"null", "timestamp", `null`, signer.ErrRoleMismatch},
		{"number _type", "timestamp", `{"_type":1}`, signer.ErrRoleMismatch},
		{"null _type", "timestamp", `{"_type":null}`, signer.ErrRoleMismatch},
		{"empty", "timestamp", ``, signer.ErrRoleMismatch},
		{"truncated", "timestamp", `{"_type":"timestamp"`, signer.ErrRoleMismatch},
		{"bad member value", "timestamp", `{"_type":"timestamp","v":tru}`, signer.ErrRoleMismatch},
		{"braces and quotes in strings", "timestamp", `{"a":"}\"{","b":[1,{"c":"]"}],"_type":"timestamp","n":-1.5e3}`, nil},
		{"escaped _type name", "timestamp", `{"\u005ftype":"timestamp"}`, nil},
		{"escaped role value", "timestamp", `{"_type":"time\u0073tamp"}`, nil},
		{"_type inside a string", "timestamp", `{"x":"\"_type\":\"timestamp\""}`, signer.ErrRoleMismatch},
		{"empty object", "timestamp", `{}`, signer.ErrRoleMismatch},
		{"invalid escape in a name", "timestamp", `{"\x":1,"_type":"timestamp"}`, signer.ErrRoleMismatch},
		{"targets role", "targets", `{"_type":"targets"}`, signer.ErrUnsupportedRole},
		{"root role", "root", `{"_type":"root"}`, signer.ErrUnsupportedRole},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := signer.CheckPayloadRole(tc.role, []byte(tc.payload))
			if tc.want == nil && err != nil {
				t.Fatalf("refused: %v", err)
			}
			if tc.want != nil && !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
}

func FuzzCheckPayloadRole(f *testing.F) {
	f.Add(`{"_type":"timestamp","version":1}`)
	f.Add(`{"_type":"snapshot","meta":{"targets.json":{"version":1}}}`)
	f.Add(`{"a":{"_type":"timestamp"}}`)
	f.Add(`{"_type":"timestamp","_TYPE":"targets"}`)
	f.Add(`{"a":"}\"{","b":[1,{"c":"]"}],"_type":"timestamp","n":-1.5e3}`)
	f.Add(`{"\u005ftype":"timestamp"}`)
	f.Add(` {"_type" : "snapshot" , "v":true} `)
	f.Add(`{"_type":"time\u0073tamp"}`)
	f.Add(`{"_type":null}`)
	f.Add(`{"_type":1,"x":"timestamp"}`)
	f.Add("{\"_type\":\"timestamp\xff\"}")
	f.Add(`{"_type":"timestamp","_type":"timestamp"}`)
	f.Add(`{"_\u0054YPE":"timestamp"}`)
	f.Fuzz(func(t *testing.T, payload string) {
		for _, role := range []string{"timestamp", "snapshot", "targets", "root"} {
			err := signer.CheckPayloadRole(role, []byte(payload))
			if ref := referenceCheckPayloadRole(role, []byte(payload)); (ref == nil) != (err == nil) {
				t.Fatalf("%s: %q: CheckPayloadRole says %v, the reference %v", role, payload, err, ref)
			}
			if err != nil {
				if !errors.Is(err, signer.ErrRoleMismatch) && !errors.Is(err, signer.ErrUnsupportedRole) {
					t.Fatalf("%s: unexpected error %v", role, err)
				}
				continue
			}
			if ref := referenceCheckPayloadRole(role, []byte(payload)); ref != nil {
				t.Fatalf("%s: accepted %q, which the reference refuses: %v", role, payload, ref)
			}
			// Accepted: one valid JSON object whose _type is role.
			var m map[string]json.RawMessage
			if err := json.Unmarshal([]byte(payload), &m); err != nil {
				t.Fatalf("%s: accepted %q, which is not one JSON object: %v", role, payload, err)
			}
			var typ string
			if err := json.Unmarshal(m["_type"], &typ); err != nil || typ != role {
				t.Fatalf("%s: accepted %q with _type %q", role, payload, typ)
			}
			// And Go's case-insensitive decoding (go-tuf's) reads the same.
			var s struct {
				Type string `json:"_type"`
			}
			if err := json.Unmarshal([]byte(payload), &s); err != nil || s.Type != role {
				t.Fatalf("%s: accepted %q, which go-tuf would read as %q", role, payload, s.Type)
			}
		}
	})
}

// referenceCheckPayloadRole is the first, slower implementation of
// CheckPayloadRole (a json.Decoder walking the top-level members): the
// fuzz test holds the fast one to exactly its verdicts.
func referenceCheckPayloadRole(role string, payload []byte) error {
	if err := signer.CheckRole(role); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(payload))
	tok, err := dec.Token()
	if err != nil || tok != json.Delim('{') {
		return fmt.Errorf("%w: payload is not a JSON object", signer.ErrRoleMismatch)
	}
	var typ string
	seen := 0
	for dec.More() {
		k, err := dec.Token()
		if err != nil {
			return fmt.Errorf("%w: malformed payload: %v", signer.ErrRoleMismatch, err)
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return fmt.Errorf("%w: malformed payload: %v", signer.ErrRoleMismatch, err)
		}
		if name, _ := k.(string); strings.EqualFold(name, "_type") {
			seen++
			if name != "_type" {
				return fmt.Errorf("%w: ambiguous member %q", signer.ErrRoleMismatch, name)
			}
			if err := json.Unmarshal(v, &typ); err != nil {
				return fmt.Errorf("%w: _type is not a string", signer.ErrRoleMismatch)
			}
		}
	}
	if _, err := dec.Token(); err != nil {
		return fmt.Errorf("%w: malformed payload: %v", signer.ErrRoleMismatch, err)
	}
	if dec.More() || dec.InputOffset() != int64(len(bytes.TrimRight(payload, " \t\r\n"))) {
		return fmt.Errorf("%w: trailing data after the payload", signer.ErrRoleMismatch)
	}
	if seen != 1 || typ != role {
		return fmt.Errorf("%w: payload is %q metadata, the key signs only %s", signer.ErrRoleMismatch, typ, role)
	}
	return nil
}
