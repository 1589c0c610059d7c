// Package storetest is the conformance suite every store.MetaStore passes:
// memstore, sqlite and postgres run the same tests. Only tests import it.
package storetest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/signetdev/signet/server/store"
)

// Run runs the suite; newStore returns an empty store for one test.
func Run(t *testing.T, newStore func(t *testing.T) store.MetaStore) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s store.MetaStore)
	}{
		{"UpdateManyAndGet", testUpdateManyAndGet},
		{"CurrentVersions", testCurrentVersions},
		{"ConflictStoresNothing", testConflictStoresNothing},
		{"RaceOneWinner", testRaceOneWinner},
		{"GUNsIndependent", testGUNsIndependent},
		{"Delete", testDelete},
		{"ChangesPaging", testChangesPaging},
		{"Expiring", testExpiring},
		{"CanceledContext", testCanceledContext},
		{"Staged", stagedTest(testStaged)},
		{"StagedRevisions", stagedTest(testStagedRevisions)},
		{"StagedPublish", stagedTest(testStagedPublish)},
		{"StagedRacePublish", stagedTest(testStagedRacePublish)},
		{"StagedBoundAndExpiry", stagedTest(testStagedBoundAndExpiry)},
		{"StagedQuotas", stagedTest(testStagedQuotas)},
		{"Prune", testPrune},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := newStore(t)
			tc.fn(t, s)
		})
	}
}

// Upd builds an update whose data names it.
func Upd(role string, version int64, expires time.Time) store.Update {
	data := fmt.Appendf(nil, `{"signed":{"_type":%q,"version":%d}}`, role, version)
	sum := sha256.Sum256(data)
	return store.Update{Role: role, Version: version, Data: data, SHA256: hex.EncodeToString(sum[:]), Expires: expires.UTC().Truncate(time.Microsecond)}
}

var ctx = context.Background()

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func checkMeta(t *testing.T, m *store.Meta, gun string, u store.Update) {
	t.Helper()
	if m.GUN != gun || m.Role != u.Role || m.Version != u.Version || m.SHA256 != u.SHA256 || !bytes.Equal(m.Data, u.Data) || !m.Expires.Equal(u.Expires) {
		t.Fatalf("got %s/%s v%d sha %s expires %s data %q; want %s/%s v%d sha %s expires %s data %q",
			m.GUN, m.Role, m.Version, m.SHA256, m.Expires, m.Data, gun, u.Role, u.Version, u.SHA256, u.Expires, u.Data)
	}
	if m.CreatedAt.IsZero() {
		t.Fatal("CreatedAt not set")
	}
}

func testUpdateManyAndGet(t *testing.T, s store.MetaStore) {
	exp := time.Now().Add(time.Hour)
	v1 := []store.Update{Upd("root", 1, exp), Upd("targets", 1, exp), Upd("snapshot", 1, exp), Upd("timestamp", 1, exp)}
	must(t, s.UpdateMany(ctx, "example.com/a", v1))
	v2 := []store.Update{Upd("targets", 2, exp), Upd("targets/releases", 1, exp), Upd("timestamp", 2, exp)}
	must(t, s.UpdateMany(ctx, "example.com/a", v2))

	m, err := s.GetCurrent(ctx, "example.com/a", "targets")
	must(t, err)
	checkMeta(t, m, "example.com/a", v2[0])
	m, err = s.GetVersion(ctx, "example.com/a", "targets", 1)
	must(t, err)
	checkMeta(t, m, "example.com/a", v1[1])
	m, err = s.GetChecksum(ctx, "example.com/a", "targets", v1[1].SHA256)
	must(t, err)
	checkMeta(t, m, "example.com/a", v1[1])
	m, err = s.GetCurrent(ctx, "example.com/a", "targets/releases")
	must(t, err)
	checkMeta(t, m, "example.com/a", v2[1])

	for name, get := range map[string]func() (*store.Meta, error){
		"unknown gun":      func() (*store.Meta, error) { return s.GetCurrent(ctx, "example.com/none", "root") },
		"unknown role":     func() (*store.Meta, error) { return s.GetCurrent(ctx, "example.com/a", "targets/none") },
		"unknown version":  func() (*store.Meta, error) { return s.GetVersion(ctx, "example.com/a", "root", 2) },
		"unknown checksum": func() (*store.Meta, error) { return s.GetChecksum(ctx, "example.com/a", "root", v1[1].SHA256) },
	} {
		if _, err := get(); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("%s: %v, want ErrNotFound", name, err)
		}
	}
	must(t, s.Ping(ctx))
}

// testCurrentVersions: CurrentVersions names, for every role, the version
// and sha256 GetCurrent returns; a refused update, another GUN and a
// deletion show in it as they do in GetCurrent.
func testCurrentVersions(t *testing.T, s store.MetaStore) {
	const gun = "example.com/a"
	got, err := s.CurrentVersions(ctx, gun)
	must(t, err)
	if len(got) != 0 {
		t.Fatalf("empty store: %v", got)
	}
	exp := time.Now().Add(time.Hour)
	must(t, s.UpdateMany(ctx, gun, []store.Update{Upd("root", 1, exp), Upd("targets", 1, exp), Upd("timestamp", 1, exp)}))
	must(t, s.UpdateMany(ctx, gun, []store.Update{Upd("targets", 3, exp), Upd("targets/x", 1, exp), Upd("timestamp", 2, exp)}))
	must(t, s.UpdateMany(ctx, "example.com/b", []store.Update{Upd("root", 5, exp), Upd("snapshot", 1, exp)}))
	if err := s.UpdateMany(ctx, gun, []store.Update{Upd("snapshot", 9, exp), Upd("targets", 3, exp)}); !errors.Is(err, store.ErrVersionExists) {
		t.Fatalf("conflicting update: %v", err)
	}
	got, err = s.CurrentVersions(ctx, gun)
	must(t, err)
	want := map[string]store.RoleVersion{}
	for _, role := range []string{"root", "targets", "targets/x", "timestamp"} {
		m, err := s.GetCurrent(ctx, gun, role)
		must(t, err)
		want[role] = store.RoleVersion{Version: m.Version, SHA256: m.SHA256}
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("CurrentVersions = %v, GetCurrent says %v", got, want)
	}
	if want["targets"].Version != 3 {
		t.Fatalf("targets at v%d, want 3", want["targets"].Version)
	}
	must(t, s.Delete(ctx, gun))
	got, err = s.CurrentVersions(ctx, gun)
	must(t, err)
	if len(got) != 0 {
		t.Fatalf("after delete: %v", got)
	}
	got, err = s.CurrentVersions(ctx, "example.com/b")
	must(t, err)
	if len(got) != 2 || got["root"].Version != 5 {
		t.Fatalf("other GUN: %v", got)
	}
}

func testConflictStoresNothing(t *testing.T, s store.MetaStore) {
	exp := time.Now().Add(time.Hour)
	must(t, s.UpdateMany(ctx, "example.com/a", []store.Update{Upd("root", 1, exp), Upd("targets", 1, exp), Upd("timestamp", 1, exp)}))
	before, err := s.Changes(ctx, 0, store.MaxChangesPage)
	must(t, err)
	err = s.UpdateMany(ctx, "example.com/a", []store.Update{Upd("targets/x", 1, exp), Upd("snapshot", 1, exp), Upd("targets", 1, exp), Upd("timestamp", 2, exp)})
	var vc *store.VersionConflictError
	if !errors.As(err, &vc) || !errors.Is(err, store.ErrVersionExists) || vc.Role != "targets" || vc.Version != 1 {
		t.Fatalf("conflict: %v", err)
	}
	for _, role := range []string{"targets/x", "snapshot"} {
		if _, err := s.GetCurrent(ctx, "example.com/a", role); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("%s stored by a refused update: %v", role, err)
		}
	}
	if m, _ := s.GetCurrent(ctx, "example.com/a", "timestamp"); m.Version != 1 {
		t.Error("timestamp stored by a refused update")
	}
	after, err := s.Changes(ctx, 0, store.MaxChangesPage)
	must(t, err)
	if len(after) != len(before) {
		t.Error("refused update recorded a change")
	}
}

func testRaceOneWinner(t *testing.T, s store.MetaStore) {
	exp := time.Now().Add(time.Hour)
	const n = 12
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		wins int
	)
	for i := range n {
		wg.Go(func() {
			u := Upd("targets", 1, exp)
			u.Data = fmt.Appendf(nil, "racer %d", i)
			err := s.UpdateMany(ctx, "example.com/race", []store.Update{u, Upd("timestamp", 1, exp)})
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				wins++
			case !errors.Is(err, store.ErrVersionExists):
				t.Errorf("racer %d: %v", i, err)
			}
		})
	}
	wg.Wait()
	if wins != 1 {
		t.Fatalf("%d winners", wins)
	}
	ch, err := s.Changes(ctx, 0, store.MaxChangesPage)
	must(t, err)
	if len(ch) != 1 {
		t.Fatalf("%d changes recorded", len(ch))
	}
}

func testGUNsIndependent(t *testing.T, s store.MetaStore) {
	exp := time.Now().Add(time.Hour)
	must(t, s.UpdateMany(ctx, "example.com/a", []store.Update{Upd("root", 1, exp)}))
	must(t, s.UpdateMany(ctx, "example.com/b", []store.Update{Upd("root", 1, exp)}))
	must(t, s.UpdateMany(ctx, "example.com/b", []store.Update{Upd("root", 2, exp)}))
	if m, _ := s.GetCurrent(ctx, "example.com/a", "root"); m.Version != 1 {
		t.Fatal("GUNs share versions")
	}
}

func testDelete(t *testing.T, s store.MetaStore) {
	exp := time.Now().Add(time.Hour)
	must(t, s.UpdateMany(ctx, "example.com/a", []store.Update{Upd("root", 1, exp), Upd("timestamp", 1, exp)}))
	must(t, s.UpdateMany(ctx, "example.com/b", []store.Update{Upd("root", 1, exp), Upd("timestamp", 1, exp)}))
	must(t, s.Delete(ctx, "example.com/a"))
	if _, err := s.GetCurrent(ctx, "example.com/a", "root"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("after delete: %v", err)
	}
	if _, err := s.GetCurrent(ctx, "example.com/b", "root"); err != nil {
		t.Fatalf("other GUN after delete: %v", err)
	}
	if guns, _ := s.Expiring(ctx, "timestamp", exp.Add(time.Hour), 10); len(guns) != 1 || guns[0] != "example.com/b" {
		t.Fatalf("expiring after delete: %v", guns)
	}
	if err := s.Delete(ctx, "example.com/a"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("second delete: %v", err)
	}
	ch, err := s.Changes(ctx, 0, 10)
	must(t, err)
	if len(ch) != 3 || ch[2].Category != store.ChangeDeletion || ch[2].GUN != "example.com/a" {
		t.Fatalf("changes: %+v", ch)
	}
	// A deleted repository can start again from version 1.
	must(t, s.UpdateMany(ctx, "example.com/a", []store.Update{Upd("root", 1, exp)}))
}

func testChangesPaging(t *testing.T, s store.MetaStore) {
	exp := time.Now().Add(time.Hour)
	for v := int64(1); v <= 5; v++ {
		must(t, s.UpdateMany(ctx, "example.com/a", []store.Update{Upd("targets", v, exp), Upd("timestamp", v, exp)}))
	}
	must(t, s.UpdateMany(ctx, "example.com/a", []store.Update{Upd("root", 1, exp)}))
	all, err := s.Changes(ctx, 0, 0)
	must(t, err)
	if len(all) != 6 {
		t.Fatalf("%d changes", len(all))
	}
	for i, c := range all {
		if i > 0 && c.ID <= all[i-1].ID {
			t.Fatal("changes not in ID order")
		}
		if c.Category != store.ChangeUpdate || c.GUN != "example.com/a" || c.CreatedAt.IsZero() {
			t.Fatalf("change %+v", c)
		}
	}
	if all[2].Version != 3 || all[2].SHA256 != Upd("timestamp", 3, exp).SHA256 || all[5].Version != 0 || all[5].SHA256 != "" {
		t.Fatalf("change versions: %+v", all)
	}
	page, err := s.Changes(ctx, all[1].ID, 2)
	must(t, err)
	if len(page) != 2 || page[0].ID != all[2].ID || page[1].ID != all[3].ID {
		t.Fatalf("page: %+v", page)
	}
	if rest, _ := s.Changes(ctx, all[5].ID, 10); len(rest) != 0 {
		t.Fatalf("after the last: %+v", rest)
	}
	if big, _ := s.Changes(ctx, 0, store.MaxChangesPage+50); len(big) != 6 {
		t.Fatal("over-large limit")
	}
}

func testExpiring(t *testing.T, s store.MetaStore) {
	now := time.Now().UTC()
	must(t, s.UpdateMany(ctx, "example.com/soon", []store.Update{Upd("timestamp", 1, now.Add(time.Minute))}))
	must(t, s.UpdateMany(ctx, "example.com/sooner", []store.Update{Upd("timestamp", 1, now.Add(time.Second))}))
	must(t, s.UpdateMany(ctx, "example.com/later", []store.Update{Upd("timestamp", 1, now.Add(48*time.Hour))}))
	// Superseded: the old version expired, the current one is fresh.
	must(t, s.UpdateMany(ctx, "example.com/renewed", []store.Update{Upd("timestamp", 1, now.Add(-time.Hour))}))
	must(t, s.UpdateMany(ctx, "example.com/renewed", []store.Update{Upd("timestamp", 2, now.Add(48*time.Hour))}))
	must(t, s.UpdateMany(ctx, "example.com/snap", []store.Update{Upd("snapshot", 1, now)}))
	guns, err := s.Expiring(ctx, "timestamp", now.Add(time.Hour), 10)
	must(t, err)
	if len(guns) != 2 || guns[0] != "example.com/sooner" || guns[1] != "example.com/soon" {
		t.Fatalf("expiring: %v", guns)
	}
	if guns, _ := s.Expiring(ctx, "timestamp", now.Add(time.Hour), 1); len(guns) != 1 {
		t.Fatalf("limit: %v", guns)
	}
}

func testCanceledContext(t *testing.T, s store.MetaStore) {
	c, cancel := context.WithCancel(ctx)
	cancel()
	if err := s.UpdateMany(c, "example.com/a", []store.Update{Upd("root", 1, time.Now())}); err == nil {
		t.Fatal("update with a canceled context succeeded")
	}
	if _, err := s.GetCurrent(c, "example.com/a", "root"); err == nil {
		t.Fatal("get with a canceled context succeeded")
	}
}

// RunWatcher checks that b hears of writes made through a, another handle
// on the same database: newPair returns two stores sharing one database.
func RunWatcher(t *testing.T, newPair func(t *testing.T) (a, b store.MetaStore)) {
	a, b := newPair(t)
	w, ok := b.(store.Watcher)
	if !ok {
		t.Fatal("store is not a Watcher")
	}
	c, cancel := context.WithCancel(ctx)
	heard := make(chan string, 16)
	done := make(chan error, 1)
	go func() { done <- w.Watch(c, func(gun string) { heard <- gun }) }()
	t.Cleanup(func() { cancel(); <-done })
	wait := func(want string) {
		t.Helper()
		deadline := time.After(5 * time.Second)
		for {
			select {
			case g := <-heard:
				if g == want {
					return
				}
			case <-deadline:
				t.Fatalf("did not hear of %q", want)
			}
		}
	}
	wait("") // connected
	must(t, a.UpdateMany(ctx, "example.com/w", []store.Update{Upd("root", 1, time.Now())}))
	wait("example.com/w")
	must(t, a.Delete(ctx, "example.com/w"))
	wait("example.com/w")
}

// testPrune: PruneVersions keeps the newest versions and the protected
// ones, never touches root or another repository, and GUNs pages through
// repository names.
func testPrune(t *testing.T, s store.MetaStore) {
	p, ok := s.(store.Pruner)
	if !ok {
		t.Fatalf("%T does not implement store.Pruner", s)
	}
	exp := time.Now().Add(time.Hour)
	for v := int64(1); v <= 6; v++ {
		must(t, s.UpdateMany(ctx, "prune/a", []store.Update{Upd("root", v, exp), Upd("targets", v, exp)}))
	}
	must(t, s.UpdateMany(ctx, "prune/b", []store.Update{Upd("targets", 1, exp)}))
	n, err := p.PruneVersions(ctx, "prune/a", "targets", 2, []int64{2})
	if err != nil || n != 3 {
		t.Fatalf("prune: %d %v, want 3 removed", n, err)
	}
	for v := int64(1); v <= 6; v++ {
		_, err := s.GetVersion(ctx, "prune/a", "targets", v)
		if kept := v == 2 || v >= 5; kept != (err == nil) {
			t.Errorf("targets v%d: %v (kept %v)", v, err, kept)
		}
	}
	if cur, err := s.GetCurrent(ctx, "prune/a", "targets"); err != nil || cur.Version != 6 {
		t.Fatalf("current after prune: %v %v", cur, err)
	}
	if _, err := p.PruneVersions(ctx, "prune/a", "root", 1, nil); !errors.Is(err, store.ErrPruneRoot) {
		t.Fatalf("pruning root: %v", err)
	}
	if _, err := s.GetVersion(ctx, "prune/a", "root", 1); err != nil {
		t.Fatalf("root v1 after a refused prune: %v", err)
	}
	// keep 0 still keeps the current version.
	if n, err := p.PruneVersions(ctx, "prune/b", "targets", 0, nil); err != nil || n != 0 {
		t.Fatalf("prune b: %d %v", n, err)
	}
	guns, err := p.GUNs(ctx, "prune/", 1)
	if err != nil || len(guns) != 1 || guns[0] != "prune/a" {
		t.Fatalf("GUNs page 1: %v %v", guns, err)
	}
	if guns, err = p.GUNs(ctx, "prune/a", 10); err != nil || len(guns) != 1 || guns[0] != "prune/b" {
		t.Fatalf("GUNs page 2: %v %v", guns, err)
	}
}
