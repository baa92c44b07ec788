// Command telltale-detector reads series from Prometheus, Mimir or Cortex
// over remote read, scores them continuously for anomalies with
// Telltale's streaming ensemble, and exposes each series' score, expected
// value and band as metrics for Prometheus to scrape back.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"runtime"
	"syscall"
	"time"

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

	"github.com/telltale-dev/telltale/detector/engine"
	"github.com/telltale-dev/telltale/internal/cli"
	"github.com/telltale-dev/telltale/internal/webserver"
	"github.com/telltale-dev/telltale/pkg/anomaly"
	"github.com/telltale-dev/telltale/pkg/remoteread"
	"github.com/telltale-dev/telltale/pkg/schema"
)

// defaultAddress is the detector's port, next to the exporter's 10171.
const defaultAddress = ":10172"

func main() {
	os.Exit(run(os.Args[1:]))
}

// flags are the command line, parsed.
type flags struct {
	configFile      string
	url             string
	timeout         time.Duration
	headers         []string
	selectors       []string
	kpis            bool
	interval        time.Duration
	overlap         time.Duration
	backfill        time.Duration
	backfillTimeout time.Duration
	seriesLimit     int
	staleAfter      time.Duration
	shardIndex      uint64
	shardCount      uint64
	algorithm       string
	workers         int
	metricsPath     string
	skipScoring     bool
	storagePath     string
	checkpointEvery time.Duration

	urlSet, timeoutSet, selectorsSet, kpisSet bool
}

// settings are the parsed command line.
type settings struct {
	engine      engine.Config
	metricsPath string
	web         *web.FlagConfig
	log         *promslog.Config
}

// parseFlags parses the command line and the config file it names.
func parseFlags(args []string) (*settings, error) {
	app := kingpin.New("telltale-detector",
		"Scores Prometheus series for anomalies over remote read and exposes scores, expected values and bands as metrics.")
	var f flags
	app.Flag("config.file", "Optional YAML file with remote_read settings (URL, headers, auth, TLS) and selectors.").StringVar(&f.configFile)
	app.Flag("remote-read.url", "Remote-read endpoint of Prometheus, Mimir or Cortex.").
		Default("http://localhost:9090/api/v1/read").IsSetByUser(&f.urlSet).StringVar(&f.url)
	app.Flag("remote-read.timeout", "Deadline of one round's remote read, scoring included.").
		Default("1m").IsSetByUser(&f.timeoutSet).DurationVar(&f.timeout)
	app.Flag("remote-read.header", `Header added to remote reads, "Name: value" (repeatable), e.g. "X-Scope-OrgID: tenant-1" for Mimir or Cortex.`).StringsVar(&f.headers)
	app.Flag("selector", "PromQL series selector to score (repeatable). Replaces the default, Telltale's per-service metrics.").
		IsSetByUser(&f.selectorsSet).StringsVar(&f.selectors)
	app.Flag("kpis", "Also score every KPI metric apps declare through "+schema.KPIInfo.Name+" (--no-kpis to turn off).").
		Default("true").IsSetByUser(&f.kpisSet).BoolVar(&f.kpis)
	app.Flag("score.interval", "How often to read and score new samples.").Default("15s").DurationVar(&f.interval)
	app.Flag("score.overlap", "How far before the previous read's end each read starts, to catch samples Prometheus appended late.").
		Default("1m").DurationVar(&f.overlap)
	app.Flag("backfill.duration", "History read and scored at start, so scores are meaningful at once; also the furthest a read reaches back after an outage.").
		Default("3h").DurationVar(&f.backfill)
	app.Flag("backfill.timeout", "Deadline of the backfill read, scoring included.").Default("30m").DurationVar(&f.backfillTimeout)
	app.Flag("series.limit", "Most series this replica scores; more are dropped and counted in "+schema.DetectorSeriesDropped.Name+".").
		Default("20000").IntVar(&f.seriesLimit)
	app.Flag("series.stale-after", "Forget a series, and stop exposing it, after this long without a sample.").
		Default("1h").DurationVar(&f.staleAfter)
	app.Flag("shard.index", "This replica's shard, 0 to --shard.count minus 1: it scores the series whose label hash modulo --shard.count is this.").
		Default("0").Uint64Var(&f.shardIndex)
	app.Flag("shard.count", "Number of replicas splitting the series.").Default("1").Uint64Var(&f.shardCount)
	app.Flag("detector.algorithm", fmt.Sprintf("Per-series detector, one of %v.", anomaly.Names())).
		Default(anomaly.NameEnsemble).EnumVar(&f.algorithm, anomaly.Names()...)
	app.Flag("bench.skip-scoring", "Benchmarks only: read, decode and keep per-series state, but score nothing.").
		Hidden().BoolVar(&f.skipScoring)
	app.Flag("storage.path", "Directory where every series' state is checkpointed, periodically and at shutdown, so a restart reads only what it missed instead of the whole backfill. Empty: no checkpoints.").
		StringVar(&f.storagePath)
	app.Flag("storage.checkpoint-interval", "How often a checkpoint is written to --storage.path, besides at shutdown.").
		Default("15m").DurationVar(&f.checkpointEvery)
	app.Flag("score.workers", "Goroutines scoring in parallel.").Default(fmt.Sprint(runtime.GOMAXPROCS(0))).IntVar(&f.workers)
	app.Flag("web.telemetry-path", "Path under which to expose metrics.").Default("/metrics").StringVar(&f.metricsPath)
	toolkitFlags := kingpinflag.AddFlags(app, defaultAddress)
	logConfig := &promslog.Config{}
	promslogflag.AddFlags(app, logConfig)
	app.Version(version.Print("telltale-detector"))
	app.HelpFlag.Short('h')
	if _, err := app.Parse(args); err != nil {
		return nil, fmt.Errorf("%w (see --help)", cli.FlagError(app, args, err))
	}
	if err := webserver.CheckFlags(toolkitFlags); err != nil {
		return nil, err
	}
	cfg, err := f.engineConfig()
	if err != nil {
		return nil, err
	}
	return &settings{engine: cfg, metricsPath: f.metricsPath, web: toolkitFlags, log: logConfig}, nil
}

func run(args []string) int {
	s, err := parseFlags(args)
	if err != nil {
		fmt.Fprintf(os.Stderr, "telltale-detector: %v\n", err)
		return 2
	}
	logger := promslog.New(s.log)
	cfg := s.engine
	logger.Info("starting telltale-detector", "version", version.Info(), "remote_read", cfg.Client.URL(),
		"shard", fmt.Sprintf("%d/%d", cfg.ShardIndex, cfg.ShardCount), "backfill", cfg.Backfill, "interval", cfg.Interval)

	eng := engine.New(cfg, logger)
	reg := prometheus.NewRegistry()
	eng.Register(reg)
	reg.MustRegister(versioncollector.NewCollector(schema.DetectorProgram),
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	mux := http.NewServeMux()
	mux.Handle(s.metricsPath, promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		ErrorLog:      slogAdapter{logger},
		ErrorHandling: promhttp.ContinueOnError,
	}))
	// Profiles, as Prometheus serves them, behind the same web config.
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	mux.HandleFunc("/-/healthy", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "Healthy.") })
	mux.HandleFunc("/-/ready", func(w http.ResponseWriter, _ *http.Request) {
		if !eng.Ready() {
			http.Error(w, "Not ready: the backfill has not completed yet.", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "Ready.")
	})
	if s.metricsPath != "/" {
		landing, err := web.NewLandingPage(web.LandingConfig{
			Name:        "Telltale Detector",
			Description: "Anomaly scores, expected values and bands for Prometheus series read over remote read",
			Version:     version.Info(),
			Links: []web.LandingLinks{
				{Address: s.metricsPath, Text: "Metrics"},
				{Address: "/-/healthy", Text: "Health"},
				{Address: "/-/ready", Text: "Readiness"},
			},
		})
		if err != nil {
			logger.Error("build landing page", "err", err)
			return 1
		}
		mux.Handle("/", landing)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	engineDone := make(chan struct{})
	go func() {
		defer close(engineDone)
		eng.Run(ctx)
	}()

	srv := webserver.New(mux, webserver.Default())
	serveErr := make(chan error, 1)
	go func() { serveErr <- web.ListenAndServe(srv, s.web, logger) }()
	code := 0
	select {
	case err := <-serveErr:
		if !errors.Is(err, http.ErrServerClosed) {
			logger.Error("serve", "err", err)
			code = 1
		}
		stop()
	case <-ctx.Done():
		logger.Info("shutting down")
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = srv.Shutdown(sctx)
		cancel()
	}
	<-engineDone
	return code
}

// engineConfig checks the flags, reads the config file and builds what the
// engine needs.
func (f *flags) engineConfig() (engine.Config, error) {
	var fc fileConfig
	if f.configFile != "" {
		c, err := loadConfig(f.configFile)
		if err != nil {
			return engine.Config{}, err
		}
		fc = *c
	}
	if fc.RemoteRead != nil && fc.RemoteRead.URL != "" && f.urlSet {
		return engine.Config{}, errors.New("remote-read URL given both by --remote-read.url and in the config file: keep one")
	}
	if fc.RemoteRead != nil && fc.RemoteRead.Timeout != 0 {
		if f.timeoutSet {
			return engine.Config{}, errors.New("remote-read timeout given both by --remote-read.timeout and in the config file: keep one")
		}
		f.timeout = time.Duration(fc.RemoteRead.Timeout)
	}
	texts := engine.DefaultSelectors
	switch {
	case len(fc.Selectors) > 0 && f.selectorsSet:
		return engine.Config{}, errors.New("selectors given both by --selector and in the config file: keep one")
	case len(fc.Selectors) > 0:
		texts = fc.Selectors
	case f.selectorsSet:
		texts = f.selectors
	}
	if fc.KPIs != nil {
		if f.kpisSet {
			return engine.Config{}, errors.New("kpis given both by --[no-]kpis and in the config file: keep one")
		}
		f.kpis = *fc.KPIs
	}
	sels, err := engine.ParseSelectors(texts)
	if err != nil {
		return engine.Config{}, err
	}
	switch {
	case f.shardCount == 0:
		return engine.Config{}, errors.New("--shard.count must be at least 1")
	case f.shardIndex >= f.shardCount:
		return engine.Config{}, fmt.Errorf("--shard.index=%d: want 0 to %d for --shard.count=%d", f.shardIndex, f.shardCount-1, f.shardCount)
	case f.interval <= 0:
		return engine.Config{}, fmt.Errorf("--score.interval=%s: want a positive duration", f.interval)
	case f.overlap < 0 || f.backfill < 0:
		return engine.Config{}, errors.New("--score.overlap and --backfill.duration cannot be negative")
	case f.timeout <= 0 || f.backfillTimeout <= 0:
		return engine.Config{}, errors.New("--remote-read.timeout and --backfill.timeout must be positive")
	case f.seriesLimit < 1:
		return engine.Config{}, fmt.Errorf("--series.limit=%d: want at least 1", f.seriesLimit)
	case f.staleAfter <= f.interval:
		return engine.Config{}, fmt.Errorf("--series.stale-after=%s: want more than --score.interval (%s)", f.staleAfter, f.interval)
	case f.workers < 1:
		return engine.Config{}, fmt.Errorf("--score.workers=%d: want at least 1", f.workers)
	}
	header, err := parseHeaders(f.headers)
	if err != nil {
		return engine.Config{}, err
	}
	opts, err := clientOptions(f.url, header, fc.RemoteRead)
	if err != nil {
		return engine.Config{}, err
	}
	client, err := remoteread.NewClient(opts)
	if err != nil {
		return engine.Config{}, err
	}
	algo := f.algorithm
	if _, err := anomaly.New(algo, anomaly.Config{}); err != nil {
		return engine.Config{}, err
	}
	if f.storagePath != "" {
		if f.skipScoring {
			return engine.Config{}, errors.New("--bench.skip-scoring keeps no state to checkpoint; leave --storage.path empty with it")
		}
		if err := os.MkdirAll(f.storagePath, 0o755); err != nil {
			return engine.Config{}, fmt.Errorf("--storage.path: %w (want a directory the detector can write)", err)
		}
		if f.checkpointEvery <= 0 {
			return engine.Config{}, fmt.Errorf("--storage.checkpoint-interval=%s: want a positive duration, e.g. 15m", f.checkpointEvery)
		}
	}
	return engine.Config{
		Client:             client,
		Selectors:          sels,
		KPIs:               f.kpis,
		Interval:           f.interval,
		Overlap:            f.overlap,
		Backfill:           f.backfill,
		ReadTimeout:        f.timeout,
		BackfillTimeout:    f.backfillTimeout,
		ShardIndex:         f.shardIndex,
		ShardCount:         f.shardCount,
		MaxSeries:          f.seriesLimit,
		StaleAfter:         f.staleAfter,
		Workers:            f.workers,
		StoragePath:        f.storagePath,
		CheckpointInterval: f.checkpointEvery,
		NewDetector: func(counter bool) anomaly.Detector {
			if f.skipScoring {
				return engine.NoScoring{}
			}
			// The name was checked above, so New cannot fail here.
			d, _ := anomaly.New(algo, anomaly.Config{Counter: counter})
			return d
		},
	}, nil
}

// slogAdapter lets promhttp report encoding errors through the logger.
type slogAdapter struct{ l *slog.Logger }

func (a slogAdapter) Println(v ...any) { a.l.Error("serve metrics", "err", fmt.Sprint(v...)) }
