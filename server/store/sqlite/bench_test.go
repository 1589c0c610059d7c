package sqlite_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/signetdev/signet/server/store"
	"github.com/signetdev/signet/server/store/sqlite"
	"github.com/signetdev/signet/server/tufrepo/tufrepotest"
)

// BenchmarkPublish is tufrepo's publish benchmark on SQLite: one tag into
// flat repositories of 10, 1,000 and 10,000 tags, the write transaction
// included.
func BenchmarkPublish(b *testing.B) {
	tufrepotest.BenchmarkPublish(b, func(t testing.TB) store.MetaStore {
		s, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "signet.db"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	})
}
