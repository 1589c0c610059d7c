package client_test

import (
	"context"
	"testing"
)

// TestWarmUpdateFetchesTimestampOnce: a warm engine asks whether
// timestamp.json changed with a conditional GET; when it did, the update
// uses the timestamp that answer carried instead of fetching it again.
func TestWarmUpdateFetchesTimestampOnce(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	h := newBadRepo(t, true)
	tag(h.roles["targets"], "1.0", "one")
	h.publish()
	c := h.engine()
	if _, err := c.Resolve(ctx, gun+":1.0"); err != nil {
		t.Fatal(err)
	}
	tag(h.roles["targets"], "1.1", "two")
	h.publish()
	h.mu.Lock()
	before := len(h.requests)
	h.mu.Unlock()
	if _, err := c.Resolve(ctx, gun+":1.1"); err != nil {
		t.Fatal(err)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, r := range h.requests[before:] {
		if r == "timestamp.json" {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("timestamp.json fetched %d times after a publish (requests %q), want once", n, h.requests[before:])
	}
}
