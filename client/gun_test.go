package client_test

import (
	"strings"
	"testing"

	"github.com/signetdev/signet/client"
	"github.com/signetdev/signet/server"
)

// TestValidateGUNMatchesTheServer: the client refuses exactly the names the
// server refuses, so that a command fails before any side effect.
func TestValidateGUNMatchesTheServer(t *testing.T) {
	t.Parallel()
	for _, gun := range []string{
		"registry.example.com/team/app", "localhost:5000/app", "app", "docker.io/library/alpine",
		"Registry.example.com/team/app", "registry.example.com/Team/app", "registry.example.com/team/app:1.0",
		"registry.example.com/../app", "registry.example.com//app", "", "/app", "app/", "a b",
		"registry.example.com/team/app@sha256:" + strings.Repeat("a", 64), strings.Repeat("a", 256), strings.Repeat("a", 255),
	} {
		c, s := client.ValidateGUN(gun), server.ValidateGUN(gun)
		if (c == nil) != (s == nil) {
			t.Errorf("%q: client says %v, server says %v", gun, c, s)
		}
	}
}
