package stack

import (
	"strings"
	"testing"
	"time"

	"github.com/telltale-dev/telltale/demo/shop"
	"github.com/telltale-dev/telltale/pkg/service"
)

// TestServiceRules checks the exporter rules the stack writes: the shop's
// programs under the stack's run directory keep their names, copies of them
// elsewhere are renamed, and other programs are left alone.
func TestServiceRules(t *testing.T) {
	run := "/tmp/telltale-demo-123/run"
	rules, err := service.ParseRules(strings.NewReader(serviceRules(run)))
	if err != nil {
		t.Fatalf("the exporter refuses the rules: %v\n%s", err, serviceRules(run))
	}
	for _, tc := range []struct{ name, exe, want string }{
		{"checkout", run + "/checkout", "checkout"},
		{"checkout", run + "/checkout (deleted)", "checkout"}, // replaced by a deploy
		{"loadgen", run + "/loadgen", "loadgen"},
		{"checkout", "/tmp/other-demo/run/checkout", "elsewhere-checkout"},
		{"payments", "/tmp/telltale-demo-1234/run/payments", "elsewhere-payments"},
		{"prometheus", "/usr/bin/prometheus", "prometheus"},
		{"checkouts", run + "/checkouts", "checkouts"},
	} {
		if got := rules.Apply(tc.name, tc.exe, ""); got != tc.want {
			t.Errorf("service %s of %s is named %q, want %q", tc.name, tc.exe, got, tc.want)
		}
	}
}

func TestShopServices(t *testing.T) {
	var names []string
	for _, r := range shop.Roles {
		names = append(names, string(r))
	}
	if got := strings.Join(names, "|"); got != ShopServices {
		t.Errorf("ShopServices is %q, the shop's programs are %q", ShopServices, got)
	}
}

func TestPromDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		time.Second:             "1s",
		time.Hour:               "3600s",
		1500 * time.Millisecond: "1500ms",
	} {
		if got := promDuration(d); got != want {
			t.Errorf("promDuration(%s) = %q, want %q", d, got, want)
		}
	}
}

// TestCommandErrors checks what the demo answers to commands it cannot
// run; none of them reaches a program.
func TestCommandErrors(t *testing.T) {
	s := &Stack{ShopURLs: map[shop.Role]string{}, byName: map[string]*proc{}}
	for line, want := range map[string]string{
		"fault payments latency ms": `fault parameter "ms": want name=value`,
		"fault cart latency ms=3":   `"cart" is not a shop program`,
		"deploy checkout fast":      `build "fast": want slow or good`,
		"deploy cart slow":          "redeploy cart: not a shop program of this stack",
		"load lots":                 "load lots:",
		"make coffee":               `unknown command "make coffee"`,
		"fault payments":            `unknown command "fault payments"`,
	} {
		got, summary := s.command(t.Context(), line)
		if !strings.Contains(got, want) || summary {
			t.Errorf("%q: answered %q (summary %v), want it to contain %q", line, got, summary, want)
		}
	}
	if got, summary := s.command(t.Context(), "summary"); got != "" || !summary {
		t.Errorf("summary: %q, %v", got, summary)
	}
}

// TestIncidentOnce: the summary prints an incident's ranking once, then a
// line while it lasts, and the ranking again when its top cause changes.
func TestIncidentOnce(t *testing.T) {
	d := &Datasource{}
	w := InsightWindow{ID: 1, Start: time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC), End: time.Date(2026, 12, 1, 10, 1, 0, 0, time.UTC), Reason: "objective breached"}
	pay := []Cause{{Rank: 1, Score: 0.8, Service: "payments", Signal: "cpu", Evidence: "cpu of payments rose"}}
	inv := []Cause{{Rank: 1, Score: 0.9, Service: "inventory", Signal: "cpu", Evidence: "cpu of inventory rose"}}
	steps := []struct {
		kpi  string
		top  []Cause
		want string
	}{
		{"checkout_latency", pay, "1. 0.80 cpu of payments rose"},
		{"checkout_latency", pay, "still wrong since"},
		{"checkout_latency", pay, "still wrong since"},
		{"orders", pay, "1. 0.80 cpu of payments rose"},
		{"checkout_latency", inv, "1. 0.90 cpu of inventory rose"},
	}
	for i, s := range steps {
		if got := d.incident(s.kpi, w, s.top); !strings.Contains(got, s.want) {
			t.Errorf("step %d: %q, want it to contain %q", i, got, s.want)
		}
	}
}

// TestDemoCommandsRefuseBadInput: a mistyped demo command says what was
// wrong and what would be right, and touches nothing.
func TestDemoCommandsRefuseBadInput(t *testing.T) {
	s := &Stack{byName: map[string]*proc{}}
	for line, want := range map[string]string{
		"neighbour lots":             "want a number of busy threads (1 or more) or off",
		"neighbour 0":                "want a number of busy threads (1 or more) or off",
		"deploy checkout ok":         `build "ok": want slow or good`,
		"fault payments latency 300": `fault parameter "300": want name=value`,
		"frobnicate":                 "unknown command",
	} {
		got, summary := s.command(t.Context(), line)
		if !strings.Contains(got, want) || summary {
			t.Errorf("%q: %q (summary %v), want it to say %q", line, got, summary, want)
		}
	}
	if len(s.procs) != 0 {
		t.Errorf("bad commands started %d programs", len(s.procs))
	}
}
