package storetest

import (
	"bytes"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/signetdev/signet/server/store"
)

// stagedStore: staged changes are part of every store's contract.
type stagedStore = store.MetaStore

// stagedTest adapts a staged-change test.
func stagedTest(fn func(*testing.T, stagedStore)) func(*testing.T, store.MetaStore) {
	return func(t *testing.T, s store.MetaStore) { fn(t, s) }
}

func newStaged(gun, id string, data string) *store.Staged {
	return &store.Staged{GUN: gun, ID: id, Data: []byte(data), Expires: time.Now().Add(time.Hour).UTC().Truncate(time.Microsecond)}
}

func testStaged(t *testing.T, s stagedStore) {
	if _, err := s.GetStaged(ctx, "g", "a"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("GetStaged of nothing: %v, want ErrNotFound", err)
	}
	a := newStaged("g", "a", "first")
	must(t, s.CreateStaged(ctx, a))
	if a.Revision != 1 || a.CreatedAt.IsZero() {
		t.Fatalf("created: revision %d, created %v; want 1 and a time", a.Revision, a.CreatedAt)
	}
	if err := s.CreateStaged(ctx, newStaged("g", "a", "again")); !errors.Is(err, store.ErrStagedConflict) {
		t.Fatalf("duplicate ID: %v, want ErrStagedConflict", err)
	}
	time.Sleep(2 * time.Millisecond) // distinct created_at for the order
	must(t, s.CreateStaged(ctx, newStaged("g", "b", "second")))
	must(t, s.CreateStaged(ctx, newStaged("other", "a", "elsewhere")))

	got, err := s.GetStaged(ctx, "g", "a")
	must(t, err)
	if got.GUN != "g" || got.ID != "a" || string(got.Data) != "first" || got.Revision != 1 || !got.Expires.Equal(a.Expires) {
		t.Fatalf("GetStaged = %+v, want %+v", got, a)
	}
	list, err := s.ListStaged(ctx, "g")
	must(t, err)
	if len(list) != 2 || list[0].ID != "a" || list[1].ID != "b" {
		t.Fatalf("ListStaged = %v, want a then b", ids(list))
	}
	if list, _ := s.ListStaged(ctx, "nobody"); len(list) != 0 {
		t.Fatalf("ListStaged of an empty GUN = %v", ids(list))
	}

	must(t, s.DeleteStaged(ctx, "g", "a", 0))
	if err := s.DeleteStaged(ctx, "g", "a", 0); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("second delete: %v, want ErrNotFound", err)
	}
	// Deleting the repository removes its staged changes.
	must(t, s.UpdateMany(ctx, "g", []store.Update{Upd("root", 1, time.Now().Add(time.Hour))}))
	must(t, s.Delete(ctx, "g"))
	if list, _ := s.ListStaged(ctx, "g"); len(list) != 0 {
		t.Fatalf("staged changes outlived their repository: %v", ids(list))
	}
	if _, err := s.GetStaged(ctx, "other", "a"); err != nil {
		t.Fatalf("another repository's staged change went too: %v", err)
	}
}

func ids(list []*store.Staged) []string {
	var out []string
	for _, st := range list {
		out = append(out, st.ID)
	}
	return out
}

func testStagedRevisions(t *testing.T, s stagedStore) {
	a := newStaged("g", "a", "v1")
	must(t, s.CreateStaged(ctx, a))
	stale := *a
	a.Data = []byte("v2")
	must(t, s.UpdateStaged(ctx, a))
	if a.Revision != 2 {
		t.Fatalf("revision after update = %d, want 2", a.Revision)
	}
	stale.Data = []byte("lost")
	if err := s.UpdateStaged(ctx, &stale); !errors.Is(err, store.ErrStagedConflict) {
		t.Fatalf("update from a stale revision: %v, want ErrStagedConflict", err)
	}
	if err := s.DeleteStaged(ctx, "g", "a", 1); !errors.Is(err, store.ErrStagedConflict) {
		t.Fatalf("delete at a stale revision: %v, want ErrStagedConflict", err)
	}
	got, err := s.GetStaged(ctx, "g", "a")
	must(t, err)
	if string(got.Data) != "v2" || got.Revision != 2 {
		t.Fatalf("after refused writes: %q rev %d, want v2 rev 2", got.Data, got.Revision)
	}
	gone := newStaged("g", "gone", "x")
	gone.Revision = 1
	if err := s.UpdateStaged(ctx, gone); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("update of a missing change: %v, want ErrNotFound", err)
	}
}

func testStagedPublish(t *testing.T, s stagedStore) {
	exp := time.Now().Add(time.Hour)
	must(t, s.UpdateMany(ctx, "g", []store.Update{Upd("root", 1, exp), Upd("targets", 1, exp)}))
	a := newStaged("g", "a", "x")
	must(t, s.CreateStaged(ctx, a))

	// A stale revision publishes nothing.
	if err := s.PublishStaged(ctx, "g", "a", 7, []store.Update{Upd("targets", 2, exp)}); !errors.Is(err, store.ErrStagedConflict) {
		t.Fatalf("publish at a stale revision: %v, want ErrStagedConflict", err)
	}
	// A version collision publishes nothing and keeps the staged change.
	if err := s.PublishStaged(ctx, "g", "a", 1, []store.Update{Upd("targets", 2, exp), Upd("targets", 1, exp)}); !errors.Is(err, store.ErrVersionExists) {
		t.Fatalf("publish of a stored version: %v, want ErrVersionExists", err)
	}
	if cur, _ := s.GetCurrent(ctx, "g", "targets"); cur.Version != 1 {
		t.Fatalf("refused publishes stored targets v%d", cur.Version)
	}
	if _, err := s.GetStaged(ctx, "g", "a"); err != nil {
		t.Fatalf("refused publish removed the staged change: %v", err)
	}

	u := Upd("targets", 2, exp)
	must(t, s.PublishStaged(ctx, "g", "a", 1, []store.Update{u}))
	cur, err := s.GetCurrent(ctx, "g", "targets")
	must(t, err)
	if cur.Version != 2 || !bytes.Equal(cur.Data, u.Data) {
		t.Fatalf("published targets v%d, want v2", cur.Version)
	}
	if _, err := s.GetStaged(ctx, "g", "a"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("staged change kept after publish: %v", err)
	}
	if err := s.PublishStaged(ctx, "g", "a", 1, []store.Update{Upd("targets", 3, exp)}); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("second publish: %v, want ErrNotFound", err)
	}
}

// testStagedRacePublish: approvers racing to complete one change publish
// it exactly once.
func testStagedRacePublish(t *testing.T, s stagedStore) {
	exp := time.Now().Add(time.Hour)
	must(t, s.UpdateMany(ctx, "g", []store.Update{Upd("targets", 1, exp)}))
	must(t, s.CreateStaged(ctx, newStaged("g", "a", "x")))
	const n = 6
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			errs[i] = s.PublishStaged(ctx, "g", "a", 1, []store.Update{Upd("targets", int64(2+i), exp)})
		})
	}
	wg.Wait()
	wins := 0
	for _, err := range errs {
		switch {
		case err == nil:
			wins++
		case errors.Is(err, store.ErrNotFound), errors.Is(err, store.ErrStagedConflict):
		default:
			t.Fatalf("unexpected error: %v", err)
		}
	}
	if wins != 1 {
		t.Fatalf("%d publishes of one staged change won, want 1", wins)
	}
	changes, err := s.Changes(ctx, 0, 100)
	must(t, err)
	if len(changes) != 2 {
		t.Fatalf("%d change-feed entries, want 2", len(changes))
	}
}

func testStagedBoundAndExpiry(t *testing.T, s stagedStore) {
	for i := range store.MaxStagedPerGUN {
		st := newStaged("g", fmt.Sprintf("s%03d", i), "x")
		if i%2 == 0 {
			st.Expires = time.Now().Add(-time.Minute)
		}
		must(t, s.CreateStaged(ctx, st))
	}
	if err := s.CreateStaged(ctx, newStaged("g", "one-too-many", "x")); !errors.Is(err, store.ErrTooManyStaged) {
		t.Fatalf("staged change over the bound: %v, want ErrTooManyStaged", err)
	}
	must(t, s.CreateStaged(ctx, newStaged("other", "a", "x")))
	n, err := s.DeleteExpiredStaged(ctx, time.Now())
	must(t, err)
	if n != store.MaxStagedPerGUN/2 {
		t.Fatalf("DeleteExpiredStaged removed %d, want %d", n, store.MaxStagedPerGUN/2)
	}
	list, err := s.ListStaged(ctx, "g")
	must(t, err)
	if len(list) != store.MaxStagedPerGUN/2 {
		t.Fatalf("%d left, want %d", len(list), store.MaxStagedPerGUN/2)
	}
	must(t, s.CreateStaged(ctx, newStaged("g", "room-again", "x")))
}

// testStagedQuotas: CreateStagedWithin refuses a change that takes its
// repository's or its principal's staged bytes past the quota, stores
// nothing then, and keeps who staged each change.
func testStagedQuotas(t *testing.T, s stagedStore) {
	q := store.StagedQuota{PerGUN: 100, PerPrincipal: 150}
	mk := func(gun, id, principal string, size int) *store.Staged {
		st := newStaged(gun, id, string(bytes.Repeat([]byte("x"), size)))
		st.Principal = principal
		return st
	}
	must(t, s.CreateStagedWithin(ctx, mk("q/a", "1", "alice", 60), q))
	got, err := s.GetStaged(ctx, "q/a", "1")
	must(t, err)
	if got.Principal != "alice" {
		t.Fatalf("principal %q, want alice", got.Principal)
	}
	// The repository's quota: 60 + 50 > 100, whoever stages.
	err = s.CreateStagedWithin(ctx, mk("q/a", "2", "bob", 50), q)
	var qe *store.StagedQuotaError
	if !errors.Is(err, store.ErrStagedQuota) || !errors.As(err, &qe) || qe.Scope != "repository" || qe.Used != 60 || qe.Size != 50 {
		t.Fatalf("over the repository quota: %v", err)
	}
	if _, err := s.GetStaged(ctx, "q/a", "2"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a refused change was stored: %v", err)
	}
	must(t, s.CreateStagedWithin(ctx, mk("q/a", "3", "bob", 40), q))
	// The principal's quota spans repositories: alice has 60 in q/a.
	must(t, s.CreateStagedWithin(ctx, mk("q/b", "1", "alice", 80), q))
	err = s.CreateStagedWithin(ctx, mk("q/c", "1", "alice", 20), q)
	if !errors.As(err, &qe) || qe.Scope != "principal" || qe.Used != 140 {
		t.Fatalf("over the principal quota: %v", err)
	}
	// Another principal, or none, is not held to alice's usage.
	must(t, s.CreateStagedWithin(ctx, mk("q/c", "2", "carol", 20), q))
	must(t, s.CreateStagedWithin(ctx, mk("q/c", "3", "", 20), q))
	// Withdrawing frees the quota.
	must(t, s.DeleteStaged(ctx, "q/b", "1", 0))
	must(t, s.CreateStagedWithin(ctx, mk("q/c", "4", "alice", 20), q))
	// No quota: CreateStaged.
	must(t, s.CreateStaged(ctx, mk("q/a", "big", "alice", 500)))

	// How many changes one principal may hold in one repository.
	cq := store.StagedQuota{CountPerPrincipal: 2}
	must(t, s.CreateStagedWithin(ctx, mk("q/d", "1", "dave", 1), cq))
	must(t, s.CreateStagedWithin(ctx, mk("q/d", "2", "dave", 1), cq))
	err = s.CreateStagedWithin(ctx, mk("q/d", "3", "dave", 1), cq)
	if !errors.As(err, &qe) || !qe.Count || qe.Used != 2 {
		t.Fatalf("over the count per principal: %v", err)
	}
	must(t, s.CreateStagedWithin(ctx, mk("q/e", "1", "dave", 1), cq)) // another repository
	must(t, s.CreateStagedWithin(ctx, mk("q/d", "4", "erin", 1), cq)) // another principal
	for i := range 3 {
		must(t, s.CreateStagedWithin(ctx, mk("q/d", fmt.Sprintf("anon%d", i), "", 1), cq)) // no principal: not counted
	}
}
