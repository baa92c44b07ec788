package scenarios

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/telltale-dev/telltale/demo/shop"
	"github.com/telltale-dev/telltale/demo/stack"
)

// TestSummary checks the figures on outcomes made by hand: a miss without
// a window counts against both accuracies, delays are in scrape intervals,
// a harmless fault's window is a false window and counts nowhere else.
func TestSummary(t *testing.T) {
	rep := &Report{
		Outcomes: []Outcome{
			{Scenario: "a", Found: true, Delay: 2 * time.Second, Rank: 1, Top: []stack.Cause{{Service: "payments", Signal: "cpu", Score: 0.8}}},
			{Scenario: "b", Found: true, Delay: 4 * time.Second, Rank: 3},
			{Scenario: "c", Found: true, Delay: 10 * time.Second, Rank: 0},
			{Scenario: "d", Found: false, Err: "boom"},
			{Scenario: "e", Harmless: true, Found: true, Delay: time.Second},
			{Scenario: "f", Harmless: true},
		},
		Quiet:           10 * time.Minute,
		QuietWindows:    map[string]int{"orders": 1},
		InsightsLatency: 400 * time.Millisecond,
	}
	s := rep.Summary()
	want := Summary{Scenarios: 6, Harmful: 4, Top1: 0.25, Top3: 0.5, Found: 0.75, HarmlessWindows: 1, MedianDelay: 4, QuietWindows: 1, QuietMinutes: 10, InsightsSeconds: 0.4}
	if s != want {
		t.Errorf("summary %+v, want %+v", s, want)
	}
	var b strings.Builder
	if err := rep.WriteTable(&b); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	var got Summary
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &got); err != nil || got != want {
		t.Errorf("last line %q: %+v, %v; want the summary as JSON", lines[len(lines)-1], got, err)
	}
	for _, w := range []string{"payments/cpu 0.80", "error: boom", "top-1 25%, top-3 50% of 4 harmful scenarios", "harmless faults: 1 of 2 opened a window"} {
		if !strings.Contains(b.String(), w) {
			t.Errorf("table lacks %q:\n%s", w, b.String())
		}
	}
}

// TestScenarioList checks that the suite covers what it promises: every
// fault kind, each on a service it applies to, a culprit for each, the
// subset none of the end-to-end test's own two incidents.
func TestScenarioList(t *testing.T) {
	kinds := map[string]bool{}
	names := map[string]bool{}
	for _, sc := range All() {
		if sc.Culprit == "" || sc.Start == nil || sc.Stop == nil {
			t.Errorf("%s: incomplete", sc.Name)
		}
		if names[sc.Name] {
			t.Errorf("%s: twice", sc.Name)
		}
		names[sc.Name] = true
		kinds[strings.Fields(sc.Name)[0]] = true
	}
	for _, k := range append(append([]string(nil), shop.FaultKinds...), "slow", "noisy") {
		if !kinds[k] {
			t.Errorf("no scenario of kind %s (have %v)", k, kinds)
		}
	}
	for _, sc := range Subset() {
		if !names[sc.Name] {
			t.Errorf("subset scenario %s is not in the suite", sc.Name)
		}
		if sc.Harmless != "" {
			t.Errorf("subset scenario %s is harmless: the subset measures rankings", sc.Name)
		}
		if sc.Name == "slow deploy checkout" || strings.HasPrefix(sc.Name, "latency payments") {
			t.Errorf("subset scenario %s repeats the end-to-end test", sc.Name)
		}
	}
	if len(Subset()) < 4 {
		t.Errorf("%d scenarios in the subset, want at least 4", len(Subset()))
	}
}
