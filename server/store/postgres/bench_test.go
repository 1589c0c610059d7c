package postgres_test

import (
	"context"
	"testing"

	"github.com/signetdev/signet/internal/pgtest"
	"github.com/signetdev/signet/server/store"
	"github.com/signetdev/signet/server/store/postgres"
	"github.com/signetdev/signet/server/tufrepo/tufrepotest"
)

// BenchmarkPublish is tufrepo's publish benchmark on Postgres: one tag
// into flat repositories of 10, 1,000 and 10,000 tags, the write
// transaction included.
func BenchmarkPublish(b *testing.B) {
	tufrepotest.BenchmarkPublish(b, func(t testing.TB) store.MetaStore {
		s, err := postgres.Open(context.Background(), pgtest.NewDatabase(t, "server", migrate))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	})
}
