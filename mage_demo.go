//go:build mage

package main

import (
	"context"
	"log/slog"
	"os"
	"time"

	"github.com/magefile/mage/mg"
	"github.com/magefile/mage/sh"

	"github.com/telltale-dev/telltale/demo/stack"
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
// and the datasource backend's answers. It takes a few minutes and needs
// prometheus (apt-get install prometheus); without it, it skips, or fails
// under CI=true.
func E2E() error {
	return sh.RunV(mg.GoCmd(), "test", "-tags=e2e", "-count=1", "-v", "-timeout=20m", "./demo/")
}
