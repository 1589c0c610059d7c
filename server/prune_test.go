package server_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"testing"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"
	"github.com/theupdateframework/go-tuf/v2/metadata/config"
	"github.com/theupdateframework/go-tuf/v2/metadata/updater"

	"github.com/signetdev/signet/server"
)

// TestPruneKeepsWhatClientsNeed: after five publishes, pruning to two
// versions removes old targets, snapshots and timestamps, keeps every root
// and what the kept snapshots list, and go-tuf's updater, starting from
// 1.root.json, still resolves over HTTP.
func TestPruneKeepsWhatClientsNeed(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for v := int64(1); v <= 5; v++ {
		e.dev.Targets.Signed.Version = v
		e.dev.AddTag(fmt.Sprintf("%d.0", v), fmt.Sprintf("manifest-%d", v))
		files := map[string][]byte{metadata.TARGETS: e.dev.TargetsBytes()}
		if v <= 2 {
			e.dev.Root.Signed.Version = v
			files[metadata.ROOT] = e.dev.RootBytes()
		}
		e.mustPublish(files)
	}
	res, err := server.Prune(context.Background(), e.store, 2, slog.New(slog.DiscardHandler))
	if err != nil || res.Repositories != 1 || res.Removed != 9 { // targets, snapshot, timestamp v1-3
		t.Fatalf("prune: %+v %v", res, err)
	}
	for file, want := range map[string]int{
		"1.root.json": 200, "2.root.json": 200,
		"1.targets.json": 404, "3.targets.json": 404, "4.targets.json": 200, "5.targets.json": 200,
		"3.snapshot.json": 404, "4.snapshot.json": 200, "timestamp.json": 200,
	} {
		if resp, _ := e.do(http.MethodGet, e.tufURL(gun)+file, nil, ""); resp.StatusCode != want {
			t.Errorf("%s: %d, want %d", file, resp.StatusCode, want)
		}
	}
	e.dev.Root.Signed.Version = 1
	cfg, err := config.New(e.tufURL(gun), e.dev.RootBytes())
	if err != nil {
		t.Fatal(err)
	}
	cfg.LocalMetadataDir, cfg.LocalTargetsDir = t.TempDir(), t.TempDir()
	up, err := updater.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	up.UnsafeSetRefTime(e.clock.Now())
	if err := up.Refresh(); err != nil {
		t.Fatalf("go-tuf refresh after prune: %v", err)
	}
	if _, err := up.GetTargetInfo("5.0"); err != nil {
		t.Fatalf("target after prune: %v", err)
	}
}

// TestAutomaticPruning: with WithPruning, Run prunes by itself and the
// server stops serving what it removed.
func TestAutomaticPruning(t *testing.T) {
	t.Parallel()
	e := newEnv(t, server.WithPruning(2, 20*time.Millisecond))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.srv.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	for v := int64(1); v <= 4; v++ {
		e.dev.Targets.Signed.Version = v
		files := map[string][]byte{metadata.TARGETS: e.dev.TargetsBytes()}
		if v == 1 {
			files[metadata.ROOT] = e.dev.RootBytes()
		}
		e.mustPublish(files)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, _ := e.do(http.MethodGet, e.tufURL(gun)+"1.targets.json", nil, "")
		if resp.StatusCode == http.StatusNotFound {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("not pruned")
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, file := range []string{"1.root.json", "3.targets.json", "4.targets.json", "timestamp.json"} {
		if resp, _ := e.do(http.MethodGet, e.tufURL(gun)+file, nil, ""); resp.StatusCode != 200 {
			t.Errorf("%s: %d", file, resp.StatusCode)
		}
	}
}
