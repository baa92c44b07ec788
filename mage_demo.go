//go:build mage

package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"regexp"
	"slices"
	"time"

	"github.com/telltale-dev/telltale/demo/scenarios"
	"github.com/telltale-dev/telltale/demo/stack"
	"github.com/telltale-dev/telltale/internal/gotest"
)

// Demo builds the exporter, the detector and the demo shop, and starts them
// with a real Prometheus (the project's rules loaded, remote read on) and,
// when one is installed, Grafana with provisioning/. The shop runs under
// load. It prints the URLs, then every 10 seconds a summary from the
// datasource backend: services and edges, KPI status, the most anomalous
// services and the likely causes of KPI problems. Type "help" for the
// commands that inject faults and deploy a slow build. Ctrl-C stops
// everything it started. Set TELLTALE_DEMO_SCRAPE_INTERVAL (default 5s)
// for another scrape interval.
func Demo(ctx context.Context) error {
	iv := 5 * time.Second
	if v := os.Getenv("TELLTALE_DEMO_SCRAPE_INTERVAL"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			return err
		}
		iv = d
	}
	return stack.Demo(ctx, stack.Options{
		ScrapeInterval: iv,
		PortFallback:   true,
		Logger:         slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	}, os.Stdin, os.Stdout, 10*time.Second)
}

// E2E runs the end-to-end test: the demo stack through latency in payments
// and a slow deploy of the checkout, checked through the detector's scores
// and the datasource backend's answers, then the fault scenarios' subset
// (demo/scenarios.Subset) on the same stack. It takes about a quarter of an
// hour and needs
// prometheus (apt-get install prometheus); without it, it skips, or fails
// under CI=true.
func E2E() error {
	rep, err := gotest.Run(gotest.Options{Verbose: true}, os.Stdout, "-tags=e2e", "-count=1", "-timeout=30m", "./demo/")
	goTests.Add(rep)
	return err
}

// Scenarios runs the fault scenarios (demo/scenarios) against one demo
// stack at a one-second scrape: each fault kind on each shop service where
// it applies, a noisy neighbour, two faults at once, then a quiet period.
// It prints per scenario whether a KPI got a window, how soon, the top 3
// causes and the culprit's rank; then top-1 and top-3 accuracy, false
// windows in the quiet period and the median detection delay; the last
// line is JSON. It takes about an hour. TELLTALE_SCENARIOS (a regex) picks
// scenarios by name; TELLTALE_SCENARIOS_QUIET (a Go duration, default
// 10m) sets the quiet period.
func Scenarios(ctx context.Context) error {
	scs := scenarios.All()
	if re := os.Getenv("TELLTALE_SCENARIOS"); re != "" {
		m, err := regexp.Compile(re)
		if err != nil {
			return fmt.Errorf("TELLTALE_SCENARIOS=%q: %w", re, err)
		}
		scs = slices.DeleteFunc(scs, func(s scenarios.Scenario) bool { return !m.MatchString(s.Name) })
	}
	quiet := 10 * time.Minute
	if v := os.Getenv("TELLTALE_SCENARIOS_QUIET"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			return fmt.Errorf("TELLTALE_SCENARIOS_QUIET=%q: want a Go duration such as 10m: %w", v, err)
		}
		quiet = d
	}
	s, err := stack.Start(ctx, stack.Options{
		ScrapeInterval: scenarios.Step,
		ScoreInterval:  scenarios.Step,
		Backfill:       10 * time.Minute,
		FreePorts:      true,
		NoGrafana:      true,
		Logger:         slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	})
	if err != nil {
		return err
	}
	defer s.Close()
	ds, err := s.Datasource(ctx)
	if err != nil {
		return err
	}
	defer ds.Close()
	fmt.Printf("stack up; %d scenarios, a quiet period of %s, after %s of healthy history\n", len(scs), quiet, scenarios.Warmup)
	time.Sleep(scenarios.Warmup)
	r := &scenarios.Runner{Stack: s, DS: ds, Log: os.Stdout}
	rep, err := r.Run(ctx, scs, quiet)
	if rep != nil {
		if werr := rep.WriteTable(os.Stdout); werr != nil {
			return werr
		}
	}
	return err
}
