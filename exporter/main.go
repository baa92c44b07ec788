// Command telltale-exporter finds the services running on a Linux host from
// /proc and its sockets, with no configuration, and exposes their resources,
// listening ports and deploys as Prometheus metrics.
package main

import (
	"fmt"
	"log/slog"
	"net/http"
	"os"

	"github.com/alecthomas/kingpin/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	versioncollector "github.com/prometheus/client_golang/prometheus/collectors/version"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/common/promslog"
	promslogflag "github.com/prometheus/common/promslog/flag"
	"github.com/prometheus/common/version"
	"github.com/prometheus/exporter-toolkit/web"
	"github.com/prometheus/exporter-toolkit/web/kingpinflag"

	"github.com/telltale-dev/telltale/exporter/collector"
	"github.com/telltale-dev/telltale/internal/webserver"
)

// defaultAddress is the exporter's port: 10171, free in the Prometheus
// default port allocations list, and the detector's 10172 beside it.
const defaultAddress = ":10171"

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	app := kingpin.New("telltale-exporter",
		"Finds the services on this Linux host from /proc and its sockets, with no configuration, and exposes their resources, ports, edges and deploys as Prometheus metrics.")
	var (
		metricsPath     = app.Flag("web.telemetry-path", "Path under which to expose metrics.").Default("/metrics").String()
		disableExporter = app.Flag("web.disable-exporter-metrics", "Exclude the exporter's own Go runtime and process metrics (go_*, process_*).").Bool()
		maxRequests     = app.Flag("web.max-requests", "Most parallel scrape requests; 0 means no limit.").Default("40").Int()
		toolkitFlags    = kingpinflag.AddFlags(app, defaultAddress)
		logConfig       = &promslog.Config{}
	)
	cfg := collector.AddFlags(app)
	promslogflag.AddFlags(app, logConfig)
	app.Version(version.Print("telltale-exporter"))
	app.HelpFlag.Short('h')
	if _, err := app.Parse(args); err != nil {
		fmt.Fprintf(os.Stderr, "telltale-exporter: %v (see --help)\n", err)
		return 2
	}
	logger := promslog.New(logConfig)
	logger.Info("starting telltale-exporter", "version", version.Info(), "procfs", cfg.ProcRoot)

	h, closeFn, err := newHandler(cfg, logger, handlerOptions{
		metricsPath:     *metricsPath,
		exporterMetrics: !*disableExporter,
		maxRequests:     *maxRequests,
	})
	if err != nil {
		logger.Error("cannot start", "err", err)
		return 1
	}
	defer closeFn()

	srv := webserver.New(h, webserver.Default())
	if err := web.ListenAndServe(srv, toolkitFlags, logger); err != nil {
		logger.Error("serve", "err", err)
		return 1
	}
	return 0
}

type handlerOptions struct {
	metricsPath     string
	exporterMetrics bool
	maxRequests     int
}

// newHandler builds the collectors and the HTTP handler that serves them:
// metrics, a health check and the landing page.
func newHandler(cfg *collector.Config, logger *slog.Logger, opts handlerOptions) (http.Handler, func() error, error) {
	exp, err := collector.New(cfg, logger)
	if err != nil {
		return nil, nil, err
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(exp, versioncollector.NewCollector("telltale_exporter"))
	if opts.exporterMetrics {
		reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}

	mux := http.NewServeMux()
	mux.Handle(opts.metricsPath, promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		ErrorLog:            slogAdapter{logger},
		ErrorHandling:       promhttp.ContinueOnError,
		MaxRequestsInFlight: opts.maxRequests,
	}))
	mux.HandleFunc("/-/healthy", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "OK") })
	if opts.metricsPath != "/" {
		landing, err := web.NewLandingPage(web.LandingConfig{
			Name:        "Telltale Exporter",
			Description: "Services, ports, edges and deploys of this host, found without configuration",
			Version:     version.Info(),
			Links:       []web.LandingLinks{{Address: opts.metricsPath, Text: "Metrics"}, {Address: "/-/healthy", Text: "Health"}},
		})
		if err != nil {
			exp.Close()
			return nil, nil, fmt.Errorf("build landing page: %w", err)
		}
		mux.Handle("/", landing)
	}
	return mux, exp.Close, nil
}
