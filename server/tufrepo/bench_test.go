package tufrepo_test

import (
	"testing"

	"github.com/signetdev/signet/server/store"
	"github.com/signetdev/signet/server/store/memstore"
	"github.com/signetdev/signet/server/tufrepo/tufrepotest"
)

// BenchmarkPublish measures the server-side cost of publishing one tag into
// flat repositories of 10, 1,000 and 10,000 tags on the memory store
// (validation, snapshot and timestamp signing, no database). The same
// benchmark runs on Postgres and SQLite in their packages.
func BenchmarkPublish(b *testing.B) {
	tufrepotest.BenchmarkPublish(b, func(testing.TB) store.MetaStore { return memstore.New() })
}
