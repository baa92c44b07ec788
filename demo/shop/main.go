package shop

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/alecthomas/kingpin/v2"
	"github.com/prometheus/common/promslog"
	promslogflag "github.com/prometheus/common/promslog/flag"
)

// descriptions of the programs, for --help.
var descriptions = map[Role]string{
	Storefront: "The demo shop's storefront: serves the catalog and takes purchases (POST /buy), which it prices and passes to the checkout.",
	Checkout:   "The demo shop's checkout: reserves a basket's items with the inventory, charges the payments service, and declares the shop's business KPIs (orders, revenue, checkout latency, success ratio).",
	Payments:   "The demo shop's payments service: charges orders (POST /charge), declining a few cards.",
	Inventory:  "The demo shop's inventory: reserves the items of orders (POST /reserve).",
	Loadgen:    "The demo shop's load generator: buys random baskets from the storefront at a steady rate.",
}

// Main is the main function of a program of the shop: it parses the
// command line, runs until SIGINT or SIGTERM and exits. build and slowdown
// are the program's main.build and main.slowdown, set at link time.
func Main(role Role, build, slowdown string) {
	os.Exit(run(role, build, slowdown, os.Args[1:]))
}

func run(role Role, build, slowdown string, args []string) int {
	name := string(role)
	cfg, logConfig, err := parseFlags(role, build, slowdown, args)
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v (see --help)\n", name, err)
		return 2
	}
	cfg.Logger = promslog.New(logConfig).With("service", name)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := Run(ctx, cfg); err != nil {
		cfg.Logger.Error("stopped", "err", err)
		return 1
	}
	return 0
}

// parseFlags reads a program's command line into its Config.
func parseFlags(role Role, build, slowdown string, args []string) (Config, *promslog.Config, error) {
	cfg := Config{Role: role, Build: build, URLs: map[Role]string{}}
	if slowdown != "" {
		d, err := time.ParseDuration(slowdown)
		if err != nil || d < 0 {
			return cfg, nil, fmt.Errorf("this build's slowdown %q (main.slowdown) is not a duration", slowdown)
		}
		cfg.Slowdown = d
	}
	app := kingpin.New(string(role), descriptions[role])
	app.HelpFlag.Short('h')
	app.Version(fmt.Sprintf("%s %s (slowdown %s)", role, build, cfg.Slowdown))
	app.Flag("web.listen-address", "Address to serve the API, /metrics and /admin/fault on.").
		Default(":" + strconv.Itoa(DefaultPorts[role])).StringVar(&cfg.Listen)
	urls := map[Role]*string{}
	for _, callee := range Calls[role] {
		urls[callee] = app.Flag(string(callee)+".url", "Base URL of the "+string(callee)+" service.").
			Default(fmt.Sprintf("http://127.0.0.1:%d", DefaultPorts[callee])).String()
	}
	var stormHold time.Duration
	if role != Loadgen {
		app.Flag("fault.latency", "Fault from the start: added latency of every request served.").Default("0s").DurationVar(&cfg.Faults.Latency)
		app.Flag("fault.errors", "Fault from the start: share of requests (0 to 1) failed with 500.").Default("0").Float64Var(&cfg.Faults.ErrorRate)
	}
	app.Flag("fault.cpu", "Fault from the start: cores' worth of CPU to burn.").Default("0").Float64Var(&cfg.Faults.CPUCores)
	if len(Calls[role]) > 0 {
		app.Flag("fault.connstorm", "Fault from the start: new connections per second opened to the services this one calls.").Default("0").IntVar(&cfg.Faults.StormRate)
		app.Flag("fault.connstorm-hold", "How long the connection storm holds each connection.").Default("2s").DurationVar(&stormHold)
	}
	switch role {
	case Loadgen:
		app.Flag("load.rate", "Purchases per second (change it while running with POST /admin/load?rate=N).").Default("20").Float64Var(&cfg.LoadRate)
		app.Flag("load.max-in-flight", "Most purchases waiting for an answer at once; more are dropped and counted.").Default("200").IntVar(&cfg.LoadMaxInFlight)
	case Checkout:
		app.Flag("kpi.success-window", "Span of the checkout success ratio KPI.").Default("1m").DurationVar(&cfg.RatioWindow)
	}
	logConfig := &promslog.Config{}
	promslogflag.AddFlags(app, logConfig)
	if _, err := app.Parse(args); err != nil {
		return cfg, nil, err
	}
	for callee, u := range urls {
		cfg.URLs[callee] = *u
	}
	if cfg.Faults.StormRate > 0 {
		cfg.Faults.StormHold = stormHold
	}
	return cfg, logConfig, nil
}
