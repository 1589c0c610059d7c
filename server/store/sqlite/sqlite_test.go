package sqlite_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/signetdev/signet/server/store"
	"github.com/signetdev/signet/server/store/sqlite"
	"github.com/signetdev/signet/server/store/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.MetaStore {
		s, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "sub", "signet.db"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	})
}

func TestReopenKeepsData(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "signet.db")
	s, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	u := storetest.Upd("root", 1, time.Now().Add(time.Hour))
	if err := s.UpdateMany(ctx, "example.com/a", []store.Update{u}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	m, err := s.GetCurrent(ctx, "example.com/a", "root")
	if err != nil || string(m.Data) != string(u.Data) {
		t.Fatalf("after reopen: %v %v", m, err)
	}
}
