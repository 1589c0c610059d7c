package client_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/signetdev/signet/api"
	"github.com/signetdev/signet/client"
)

// The server's codes map to sentinels: callers never match strings.
func TestServerErrorSentinels(t *testing.T) {
	conflict := fmt.Errorf("client: publish: %w", &client.ServerError{Status: 409, Code: api.CodeVersionConflict})
	if !errors.Is(conflict, client.ErrVersionConflict) || errors.Is(conflict, client.ErrStaleStaged) {
		t.Fatalf("409 VERSION_CONFLICT: %v", conflict)
	}
	stale := &client.ServerError{Status: 409, Code: api.CodeStaleStaged}
	if !errors.Is(stale, client.ErrStaleStaged) || errors.Is(stale, client.ErrVersionConflict) {
		t.Fatalf("409 STAGED_CHANGE_STALE: %v", stale)
	}
}
