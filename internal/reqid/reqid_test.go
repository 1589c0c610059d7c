package reqid_test

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"

	"github.com/signetdev/signet/internal/reqid"
)

func TestHandlerAddsRequestID(t *testing.T) {
	t.Parallel()
	var b bytes.Buffer
	log := slog.New(reqid.Handler(slog.NewTextHandler(&b, nil))).With("component", "x")
	log.InfoContext(reqid.With(context.Background(), "abc-123"), "hello")
	log.InfoContext(context.Background(), "bye")
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], "request_id=abc-123") || strings.Contains(lines[1], "request_id") {
		t.Fatalf("log:\n%s", b.String())
	}
}

func TestValid(t *testing.T) {
	t.Parallel()
	for id, want := range map[string]bool{"abc-1_2.3": true, "": false, "a b": false, "a\nlevel=ERROR": false, strings.Repeat("a", 65): false} {
		if reqid.Valid(id) != want {
			t.Errorf("Valid(%q) != %v", id, want)
		}
	}
}
