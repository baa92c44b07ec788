// Command telltale-exporter finds the services running on a Linux host from
// /proc and its sockets, with no configuration, and exposes their resources,
// listening ports and deploys as Prometheus metrics.
package main

import (
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/alecthomas/kingpin/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	versioncollector "github.com/prometheus/client_golang/prometheus/collectors/version"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/promslog"
	promslogflag "github.com/prometheus/common/promslog/flag"
	"github.com/prometheus/common/version"
	"github.com/prometheus/exporter-toolkit/web"
	"github.com/prometheus/exporter-toolkit/web/kingpinflag"

	"github.com/telltale-dev/telltale/exporter/collector"
	"github.com/telltale-dev/telltale/internal/cli"
	"github.com/telltale-dev/telltale/internal/webserver"
	"github.com/telltale-dev/telltale/pkg/schema"
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
		fmt.Fprintf(os.Stderr, "telltale-exporter: %v (see --help)\n", cli.FlagError(app, args, err))
		return 2
	}
	if err := webserver.CheckFlags(toolkitFlags); err != nil {
		fmt.Fprintf(os.Stderr, "telltale-exporter: %v\n", err)
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
	reg.MustRegister(versioncollector.NewCollector(schema.ExporterProgram))
	if opts.exporterMetrics {
		reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}

	mux := http.NewServeMux()
	sh := &scrapeHandler{exp: exp, static: reg, logger: logger, opts: promhttp.HandlerOpts{
		ErrorLog:      slogAdapter{logger},
		ErrorHandling: promhttp.ContinueOnError,
	}}
	if opts.maxRequests > 0 {
		sh.inFlight = make(chan struct{}, opts.maxRequests)
	}
	sh.timeout.Store(int64(defaultScrapeTimeout))
	mux.Handle(opts.metricsPath, sh)
	mux.HandleFunc("/-/healthy", sh.healthy)
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

// defaultScrapeTimeout is Prometheus's default scrape timeout, for /-/healthy
// until a scrape says its own.
const defaultScrapeTimeout = 10 * time.Second

// timeoutOffset is how long before its timeout a scrape is answered 503
// when it could not begin or its scan has not ended, so that the answer
// reaches Prometheus before it gives up (half the timeout when that is
// shorter): blackbox_exporter's --timeout-offset default.
const timeoutOffset = 500 * time.Millisecond

// scrapeHandler serves /metrics: one scrape at a time, each within the
// timeout Prometheus sends with it (X-Prometheus-Scrape-Timeout-Seconds).
// A scrape that cannot begin before its timeout, because the one running
// is stuck, is answered 503 (Prometheus's up is then 0) instead of
// queueing behind it, and so is one whose own scan gets stuck.
type scrapeHandler struct {
	exp      *collector.Exporter
	static   prometheus.Gatherer // the exporter's own version, Go and process metrics
	logger   *slog.Logger
	opts     promhttp.HandlerOpts
	inFlight chan struct{} // nil: no limit
	// timeout is the last scrape timeout asked for, in nanoseconds.
	timeout atomic.Int64
}

func (h *scrapeHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if h.inFlight != nil {
		select {
		case h.inFlight <- struct{}{}:
			defer func() { <-h.inFlight }()
		default:
			http.Error(w, fmt.Sprintf("limit of concurrent scrapes reached (%d, --web.max-requests); try again later", cap(h.inFlight)), http.StatusServiceUnavailable)
			return
		}
	}
	var deadline time.Time
	if v := r.Header.Get("X-Prometheus-Scrape-Timeout-Seconds"); v != "" {
		secs, err := strconv.ParseFloat(v, 64)
		if err != nil || !(secs > 0) {
			http.Error(w, fmt.Sprintf("X-Prometheus-Scrape-Timeout-Seconds %q: want a number of seconds above 0", v), http.StatusBadRequest)
			return
		}
		timeout := time.Duration(secs * float64(time.Second))
		h.timeout.Store(int64(timeout))
		deadline = time.Now().Add(timeout - min(timeoutOffset, timeout/2))
	}
	held, release, err := h.exp.Begin(deadline)
	if err != nil {
		h.logger.Warn("scrape refused", "err", err)
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	}
	scrape := prometheus.NewRegistry()
	scrape.MustRegister(held)
	// The scan runs on its own and holds the exporter until it ends; the
	// scrape waits for it only until its deadline. A scan stuck in a read
	// that blocks then costs this scrape a 503 in time, and the next
	// ones a refusal, never a scrape past its timeout.
	type result struct {
		mfs []*dto.MetricFamily
		err error
	}
	done := make(chan result, 1)
	go func() {
		defer release()
		mfs, err := prometheus.Gatherers{scrape, h.static}.Gather()
		done <- result{mfs, err}
	}()
	var timeout <-chan time.Time
	if !deadline.IsZero() {
		t := time.NewTimer(time.Until(deadline))
		defer t.Stop()
		timeout = t.C
	}
	select {
	case res := <-done:
		gathered := prometheus.GathererFunc(func() ([]*dto.MetricFamily, error) { return res.mfs, res.err })
		promhttp.HandlerFor(gathered, h.opts).ServeHTTP(w, r)
	case <-timeout:
		msg := fmt.Sprintf("this scrape's scan has run for %s, past the scrape's timeout: a read of the procfs is stuck; scrapes are refused until it ends", h.exp.Busy().Round(time.Millisecond))
		h.logger.Warn("scrape abandoned", "err", msg)
		http.Error(w, msg, http.StatusServiceUnavailable)
	}
}

// healthy answers /-/healthy: unhealthy while a scrape has held the exporter
// for longer than a scrape may take (the last timeout Prometheus sent).
func (h *scrapeHandler) healthy(w http.ResponseWriter, _ *http.Request) {
	if busy, limit := h.exp.Busy(), time.Duration(h.timeout.Load()); busy > limit {
		http.Error(w, fmt.Sprintf("a scrape has run for %s, longer than the scrape timeout of %s: a read of the procfs is stuck", busy.Round(time.Millisecond), limit), http.StatusServiceUnavailable)
		return
	}
	fmt.Fprintln(w, "OK")
}
