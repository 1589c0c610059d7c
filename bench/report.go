package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
)

func printTable(w io.Writer, rep Report) {
	mode := "full: 3 runs of 5 s after a 1 s warm-up"
	if rep.Plan.Quick {
		mode = "BENCH_QUICK: 1 short run per figure, smaller seeded repositories (a smoke test; indicative only)"
	}
	fmt.Fprintf(w, "signet benchmarks, %s (%s)\n\n", rep.When.Format("2006-01-02 15:04 UTC"), mode)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "figure\tunit\tmin\tmedian\tmax\tbaseline\tratio\ttarget\t")
	for _, r := range rep.Results {
		if r.Error != "" {
			fmt.Fprintf(tw, "%s\t%s\tNOT MEASURED: %s\t\t\t\t\t%s\t\n", r.Name, r.Unit, r.Error, r.Target)
			continue
		}
		base, ratio := "", ""
		if r.BaselineMedian > 0 {
			base, ratio = num(r.BaselineMedian), fmt.Sprintf("%.2f", r.Ratio)
		}
		target := r.Target
		if r.Note != "" {
			target = strings.TrimPrefix(target+"; "+r.Note, "; ")
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", r.Name, r.Unit, num(r.Min), num(r.Median), num(r.Max), base, ratio, target)
	}
	tw.Flush()
}

func num(v float64) string {
	if v >= 100 {
		return strconv.FormatFloat(v, 'f', 0, 64)
	}
	return strconv.FormatFloat(v, 'f', 2, 64)
}

// check compares a result file with the targets and says which fall short.
// It exits 0 either way unless the file cannot be read: speed never fails CI.
func check(args []string) int {
	path := "bench/results/latest.json"
	if len(args) > 0 {
		path = args[0]
	}
	data, err := os.ReadFile(path)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench check:", err)
		return 1
	}
	var rep Report
	if err := json.Unmarshal(data, &rep); err != nil {
		fmt.Fprintln(os.Stderr, "bench check:", err)
		return 1
	}
	if rep.Plan.Quick {
		fmt.Println("(a BENCH_QUICK result: indicative only; compare targets on a full run)")
	}
	for _, r := range rep.Results {
		if r.Error != "" {
			fmt.Printf("%-60s NOT MEASURED: %s\n", r.Name, r.Error)
			continue
		}
		var ok bool
		switch {
		case strings.HasPrefix(r.Target, "ratio >= "):
			var want float64
			fmt.Sscanf(strings.TrimPrefix(r.Target, "ratio >= "), "%g", &want)
			ok = r.Ratio >= want
		case strings.HasPrefix(r.Target, "ratio <= "):
			var want float64
			fmt.Sscanf(strings.TrimPrefix(r.Target, "ratio <= "), "%g", &want)
			ok = r.Ratio > 0 && r.Ratio <= want
		case strings.HasPrefix(r.Target, "<= "):
			var want float64
			fmt.Sscanf(strings.TrimPrefix(r.Target, "<= "), "%g", &want)
			ok = r.Median <= want
		default:
			continue
		}
		verdict := "meets"
		if !ok {
			verdict = "FALLS SHORT of"
		}
		fmt.Printf("%-60s %s %s (median %s, ratio %.2f)\n", r.Name, verdict, r.Target, num(r.Median), r.Ratio)
	}
	return 0
}
