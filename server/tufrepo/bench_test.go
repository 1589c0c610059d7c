package tufrepo_test

import (
	"testing"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/signetdev/signet/internal/tuftest"
)

// BenchmarkPublishOneTag measures the server-side cost of publishing one
// new tag (validation, snapshot and timestamp signing) on the memory store.
func BenchmarkPublishOneTag(b *testing.B) {
	f := newFixture(b, true)
	f.initial()
	for i := 0; b.Loop(); i++ {
		f.dev.Bump()
		f.dev.AddTag("latest", string(rune(i)))
		data := tuftest.Sign(b, f.dev.Targets, f.dev.TargetsKeys...)
		if _, err := f.publish(map[string][]byte{metadata.TARGETS: data}); err != nil {
			b.Fatal(err)
		}
	}
}
