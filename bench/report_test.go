package main

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestFigureThatCannotBeMeasured: a run where an op failed, or none
// completed, is not a figure: summarize says why, whatever the speed.
func TestFigureThatCannotBeMeasured(t *testing.T) {
	t.Parallel()
	ok := sample{Ops: 10, PerSec: 100, P50: time.Millisecond}
	for name, tc := range map[string]struct {
		runs, base []sample
		want       string
	}{
		"measured":            {[]sample{ok}, []sample{ok}, ""},
		"an op failed":        {[]sample{{Ops: 9, Errors: 1, FirstError: "timestamp key: 429"}}, []sample{ok}, "timestamp key: 429"},
		"the baseline failed": {[]sample{ok}, []sample{{Errors: 3, FirstError: "refused"}}, "refused"},
		"nothing completed":   {[]sample{{}}, nil, "no operation completed"},
		"no runs":             {nil, nil, "no runs"},
	} {
		t.Run(name, func(t *testing.T) {
			var r Result
			summarize(&r, tc.runs, tc.base, perSec)
			if tc.want == "" && (r.Error != "" || r.Median != 100 || r.Ratio != 1) {
				t.Fatalf("measured figure: %+v", r)
			}
			if tc.want != "" && !strings.Contains(r.Error, tc.want) {
				t.Fatalf("Error = %q, want it to say %q", r.Error, tc.want)
			}
		})
	}
}

// TestLoadFinishesSlowOps: an op longer than the run is measured, not cut
// off, and a failing op is counted with its message.
func TestLoadFinishesSlowOps(t *testing.T) {
	t.Parallel()
	s := load(context.Background(), 2, time.Millisecond, func(ctx context.Context, w int, _ *stopwatch) error {
		if w == 1 {
			return errors.New("boom")
		}
		time.Sleep(20 * time.Millisecond)
		return ctx.Err()
	})
	if s.Ops != 1 || s.Errors < 1 || s.FirstError != "boom" || s.P50 < 20*time.Millisecond {
		t.Fatalf("sample: %+v", s)
	}
}

// TestCheck: bench check reads targets and never fails on speed; it fails
// only on a file it cannot read.
func TestCheck(t *testing.T) {
	t.Parallel()
	rep := Report{Results: []Result{
		{Name: "fast", Median: 2, Target: "<= 3 ms"},
		{Name: "slow", Median: 9, Target: "<= 3 ms"},
		{Name: "broken", Error: "no operation completed", Target: "<= 3 ms"},
	}}
	path := filepath.Join(t.TempDir(), "latest.json")
	data, _ := json.Marshal(rep)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if code := check([]string{path}); code != 0 {
		t.Errorf("check of a readable file: exit %d", code)
	}
	if code := check([]string{filepath.Join(t.TempDir(), "missing.json")}); code != 1 {
		t.Errorf("check of a missing file: exit %d", code)
	}
}
