package signer_test

import (
	"errors"
	"testing"

	"github.com/signetdev/signet/signer"
)

func TestCheckPayloadRole(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		role, payload string
		ok            bool
	}{
		{"timestamp", `{"_type":"timestamp","version":1}`, true},
		{"snapshot", `{"_type":"snapshot","meta":{"targets.json":{"version":1}}}`, true},
		{"timestamp", `{"_type":"targets","version":1}`, false},
		{"timestamp", `{"_type":"root"}`, false},
		{"snapshot", `{"_type":"timestamp"}`, false},
		{"timestamp", `{"version":1}`, false},
		{"timestamp", `{"_type":"timestamp","_type":"targets"}`, false},
		{"timestamp", `{"_type":"timestamp"} {"_type":"targets"}`, false},
		{"timestamp", `["_type","timestamp"]`, false},
		{"timestamp", `{"_type":1}`, false},
		{"timestamp", ``, false},
		{"timestamp", `{"_type":"timestamp"`, false},
		{"targets", `{"_type":"targets"}`, false},
	} {
		err := signer.CheckPayloadRole(tc.role, []byte(tc.payload))
		if (err == nil) != tc.ok {
			t.Errorf("%s %s: %v", tc.role, tc.payload, err)
		}
		if err != nil && !errors.Is(err, signer.ErrRoleMismatch) && !errors.Is(err, signer.ErrUnsupportedRole) {
			t.Errorf("%s %s: error %v is neither ErrRoleMismatch nor ErrUnsupportedRole", tc.role, tc.payload, err)
		}
	}
}

func FuzzCheckPayloadRole(f *testing.F) {
	f.Add(`{"_type":"timestamp","version":1}`)
	f.Add(`{"_type":"snapshot"}`)
	f.Add(`{"a":{"_type":"timestamp"}}`)
	f.Fuzz(func(t *testing.T, payload string) {
		for _, role := range []string{"timestamp", "snapshot"} {
			if signer.CheckPayloadRole(role, []byte(payload)) == nil && signer.CheckPayloadRole(otherRole(role), []byte(payload)) == nil {
				t.Fatalf("payload %q accepted for both roles", payload)
			}
		}
	})
}

func otherRole(r string) string {
	if r == "timestamp" {
		return "snapshot"
	}
	return "timestamp"
}
