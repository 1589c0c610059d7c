package tufrepo_test

import (
	"fmt"
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

// BenchmarkPublishOneTagOf1000 publishes one more tag into targets that
// already lists 1,000 (the signing of the upload is not timed).
func BenchmarkPublishOneTagOf1000(b *testing.B) {
	f := newFixture(b, true)
	for i := range 1000 {
		f.dev.AddTag(fmt.Sprintf("tag-%04d", i), fmt.Sprint(i))
	}
	f.initial()
	for i := 0; b.Loop(); i++ {
		b.StopTimer()
		f.dev.Bump()
		f.dev.AddTag("latest", fmt.Sprint("x", i))
		data := tuftest.Sign(b, f.dev.Targets, f.dev.TargetsKeys...)
		b.StartTimer()
		if _, err := f.publish(map[string][]byte{metadata.TARGETS: data}); err != nil {
			b.Fatal(err)
		}
	}
}
