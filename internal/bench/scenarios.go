package bench

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
)

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
