// Package collector holds the exporter's collectors and the registry that
// turns them on and off with --collector.<name> / --no-collector.<name>, in
// the manner of node_exporter. One scan of /proc per scrape is shared by
// every collector that needs processes.
package collector

import (
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync/atomic"
	"time"

	"github.com/alecthomas/kingpin/v2"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/telltale-dev/telltale/pkg/netgraph"
	"github.com/telltale-dev/telltale/pkg/service"

	"github.com/telltale-dev/telltale/pkg/schema"
)

// Collector is one source of metrics, updated once per scrape.
type Collector interface {
	// Update sends the collector's metrics for this scrape.
	Update(s *Scrape, ch chan<- prometheus.Metric) error
}

// Closer is implemented by collectors that hold resources (eBPF programs).
type Closer interface {
	Close() error
}

// ErrNoData is returned by a collector that has nothing to report this
// scrape; it does not count as a failure.
var ErrNoData = errors.New("collector returned no data")

// Config is what the flags say. Collectors read their own fields.
type Config struct {
	// ProcRoot is the procfs mount point (--path.procfs).
	ProcRoot string
	// MaxServices bounds the number of services (--service.limit).
	MaxServices int
	// RulesFile renames or merges services (--service.rules-file).
	RulesFile string

	enabled map[string]*bool
	extra   map[string]any
}

type registration struct {
	name      string
	help      string
	byDefault bool
	// processes says whether the collector needs the shared /proc scan.
	processes bool
	// connections says whether it needs the established connections.
	connections bool
	factory     func(cfg *Config, logger *slog.Logger) (Collector, error)
	flags       func(app *kingpin.Application, cfg *Config)
}

var registry = map[string]registration{}

// register adds a collector; called from each collector file's init.
func register(r registration) {
	if _, dup := registry[r.name]; dup {
		panic("collector registered twice: " + r.name)
	}
	registry[r.name] = r
}

// AddFlags defines the collector flags on app and returns the Config they
// fill in when app parses the command line.
func AddFlags(app *kingpin.Application) *Config {
	cfg := &Config{enabled: map[string]*bool{}, extra: map[string]any{}}
	app.Flag("path.procfs", "procfs mount point.").Default("/proc").StringVar(&cfg.ProcRoot)
	app.Flag("service.limit", "Most services reported; the rest are dropped and counted in "+schema.ExporterServicesDropped.Name+".").Default("1000").IntVar(&cfg.MaxServices)
	app.Flag("service.rules-file", "Optional YAML file of rules that rename or merge discovered services.").Default("").StringVar(&cfg.RulesFile)
	for _, name := range Names() {
		r := registry[name]
		state := "disabled"
		if r.byDefault {
			state = "enabled"
		}
		cfg.enabled[name] = app.Flag("collector."+name, fmt.Sprintf("%s (default: %s).", r.help, state)).Default(fmt.Sprint(r.byDefault)).Bool()
		if r.flags != nil {
			r.flags(app, cfg)
		}
	}
	return cfg
}

// Names lists every registered collector, sorted.
func Names() []string {
	names := make([]string, 0, len(registry))
	for n := range registry {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Enable turns a collector on or off, as its flag would; for tests and
// callers that don't parse flags.
func (c *Config) Enable(name string, on bool) error {
	if _, ok := registry[name]; !ok {
		return fmt.Errorf("no collector named %q (have %v)", name, Names())
	}
	c.enabled[name] = &on
	return nil
}

// NewConfig returns a Config with every collector at its default, as if no
// flag had been given.
func NewConfig(procRoot string) *Config {
	app := kingpin.New("telltale", "")
	cfg := AddFlags(app)
	if _, err := app.Parse(nil); err != nil {
		// Only a bad default could fail here: a programming error.
		panic("collector flag defaults: " + err.Error())
	}
	cfg.ProcRoot = procRoot
	return cfg
}

// Exporter is the prometheus.Collector that runs every enabled collector
// on each scrape, after one shared scan of /proc.
type Exporter struct {
	logger     *slog.Logger
	collectors map[string]Collector
	scanNeeded bool
	// wantConns says whether a collector needs established connections.
	wantConns bool
	ephemeral netgraph.PortRange

	// lock is held by the scrape running (one at a time: the scan and
	// the tracker are shared); busySince is when it took it (Unix
	// nanoseconds, 0 while free).
	lock      chan struct{}
	busySince atomic.Int64
	scanner   *service.Scanner
	tracker   *service.Tracker

	scrapeDuration *prometheus.Desc
	scrapeSuccess  *prometheus.Desc
	scanDuration   prometheus.Gauge
	services       prometheus.Gauge
	dropped        prometheus.Counter
	readErrors     *prometheus.CounterVec
	// loggedErrors are the kinds of read failure logged already.
	loggedErrors map[service.ReadError]bool
}

// New builds the enabled collectors. A collector that cannot start is an
// error, except one that reports itself unavailable (eBPF without
// privileges), which is logged once and left out.
func New(cfg *Config, logger *slog.Logger) (*Exporter, error) {
	scanner, err := service.NewScanner(cfg.ProcRoot)
	if err != nil {
		return nil, fmt.Errorf("--path.procfs=%q: %w; want where procfs is mounted (/proc, or the host's /proc mounted into a container)", cfg.ProcRoot, err)
	}
	var rules *service.Rules
	if cfg.RulesFile != "" {
		if rules, err = service.LoadRules(cfg.RulesFile); err != nil {
			return nil, fmt.Errorf("--service.rules-file=%q: %w", cfg.RulesFile, err)
		}
	}
	if cfg.MaxServices < 0 {
		return nil, fmt.Errorf("--service.limit=%d: must be 0 (no limit) or more", cfg.MaxServices)
	}
	e := &Exporter{
		logger:         logger,
		collectors:     map[string]Collector{},
		lock:           make(chan struct{}, 1),
		scanner:        scanner,
		scrapeDuration: schema.ScrapeCollectorDuration.Desc(),
		scrapeSuccess:  schema.ScrapeCollectorSuccess.Desc(),
		scanDuration:   prometheus.NewGauge(prometheus.GaugeOpts(schema.ExporterScanDuration.Opts())),
		services:       prometheus.NewGauge(prometheus.GaugeOpts(schema.ExporterServices.Opts())),
		dropped:        prometheus.NewCounter(prometheus.CounterOpts(schema.ExporterServicesDropped.Opts())),
		readErrors:     prometheus.NewCounterVec(prometheus.CounterOpts(schema.ExporterReadErrors.Opts()), schema.ExporterReadErrors.Labels),
	}
	if e.ephemeral, err = netgraph.EphemeralRange(cfg.ProcRoot); err != nil {
		logger.Warn("using the default ephemeral port range", "err", err)
	}
	identify := false
	for _, name := range Names() {
		if on := cfg.enabled[name]; on == nil || !*on {
			continue
		}
		r := registry[name]
		c, err := r.factory(cfg, logger.With("collector", name))
		if errors.Is(err, ErrUnavailable) {
			logger.Warn("collector unavailable, carrying on without it", "collector", name, "err", err)
			c = unavailable{name: name}
		} else if err != nil {
			return nil, fmt.Errorf("collector %s: %w", name, err)
		}
		e.collectors[name] = c
		e.scanNeeded = e.scanNeeded || r.processes
		e.wantConns = e.wantConns || r.connections
		if _, ok := c.(identityUser); ok {
			identify = true
		}
	}
	tcfg := service.Config{MaxServices: cfg.MaxServices, Rules: rules}
	if identify {
		tcfg.Identify = newIdentifier(cfg.ProcRoot).identify
	}
	e.tracker = service.NewTracker(tcfg)
	return e, nil
}

// identityUser marks collectors that need each service's build identity.
type identityUser interface{ usesIdentity() }

// Close releases what the collectors hold.
func (e *Exporter) Close() error {
	var errs []error
	for _, c := range e.collectors {
		if cl, ok := c.(Closer); ok {
			errs = append(errs, cl.Close())
		}
	}
	return errors.Join(errs...)
}

// Describe sends nothing: the exporter is an unchecked collector, because
// the series it exposes depend on what runs on the host.
func (e *Exporter) Describe(chan<- *prometheus.Desc) {}

// Collect runs one scrape, after the one running, however long that takes.
func (e *Exporter) Collect(ch chan<- prometheus.Metric) {
	held, release, _ := e.Begin(time.Time{})
	defer release()
	held.Collect(ch)
}

// ErrBusy is returned by Begin when the scrape running still holds the
// exporter at the deadline.
var ErrBusy = errors.New("another scrape still holds the exporter")

// Begin waits until no other scrape runs, or until deadline (the zero time:
// no deadline; Prometheus sends its scrape timeout with every scrape), and
// returns the exporter as a collector for one scrape, which holds it until
// release is called. A scrape that cannot begin in time fails at once,
// rather than queue behind one that is stuck (a read of a procfs that
// blocks), and says for how long that one has run.
func (e *Exporter) Begin(deadline time.Time) (held prometheus.Collector, release func(), err error) {
	var timeout <-chan time.Time
	if !deadline.IsZero() {
		t := time.NewTimer(time.Until(deadline))
		defer t.Stop()
		timeout = t.C
	}
	select {
	case e.lock <- struct{}{}:
	case <-timeout:
		return nil, func() {}, fmt.Errorf("%w: it has run for %s, longer than this scrape's timeout", ErrBusy, e.Busy().Round(time.Millisecond))
	}
	e.busySince.Store(time.Now().UnixNano())
	var once atomic.Bool
	return scrapeCollector{e}, func() {
		if once.CompareAndSwap(false, true) {
			e.busySince.Store(0)
			<-e.lock
		}
	}, nil
}

// Busy is how long the scrape running has held the exporter; 0 when none
// runs.
func (e *Exporter) Busy() time.Duration {
	since := e.busySince.Load()
	if since == 0 {
		return 0
	}
	return time.Since(time.Unix(0, since))
}

// markServers marks the processes that hold a listening socket, when a
// collector reads the sockets anyway (ports, edges): a new process that
// listens is a server, a service at once (see service.Process.Serves).
func (e *Exporter) markServers(s *Scrape) {
	if e.collectors["ports"] == nil && e.collectors["edges"] == nil {
		return
	}
	n := s.network()
	servers := map[int]bool{}
	for _, l := range n.listeners {
		if pid, ok := n.owners[l.Inode]; ok {
			servers[pid] = true
		}
	}
	for i := range s.Processes {
		s.Processes[i].Serves = servers[s.Processes[i].PID]
	}
}

// scrapeCollector is the exporter held for one scrape (see Begin).
type scrapeCollector struct{ e *Exporter }

func (scrapeCollector) Describe(chan<- *prometheus.Desc) {}

func (c scrapeCollector) Collect(ch chan<- prometheus.Metric) { c.e.collect(ch) }

// collect runs one scrape; the caller holds the exporter.
func (e *Exporter) collect(ch chan<- prometheus.Metric) {
	s := &Scrape{exporter: e}
	if e.scanNeeded {
		start := time.Now()
		res, err := e.scanner.Scan()
		if err != nil {
			e.logger.Error("scan processes", "err", err)
		}
		s.Processes = res.Processes
		s.errors = res.Errors
		e.markServers(s)
		s.Services = e.tracker.Update(s.Processes)
		e.logReadErrors(s, res.First)
		e.scanDuration.Set(time.Since(start).Seconds())
		e.services.Set(float64(len(s.Services.Services) + s.Services.Dropped))
		e.dropped.Add(float64(s.Services.Dropped))
		if s.Services.IdentityErrors > 0 {
			s.countError(service.ReadError{File: "exe", Reason: "read"}, s.Services.IdentityErrors)
		}
	}

	names := make([]string, 0, len(e.collectors))
	for n := range e.collectors {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
		start := time.Now()
		err := e.collectors[name].Update(s, ch)
		success := 1.0
		if err != nil && !errors.Is(err, ErrNoData) {
			success = 0
			e.logger.Error("collector failed", "collector", name, "err", err)
		}
		ch <- prometheus.MustNewConstMetric(e.scrapeDuration, prometheus.GaugeValue, time.Since(start).Seconds(), name)
		ch <- prometheus.MustNewConstMetric(e.scrapeSuccess, prometheus.GaugeValue, success, name)
	}

	for k, n := range s.errors {
		e.readErrors.WithLabelValues(k.File, k.Reason).Add(float64(n))
	}
	if e.scanNeeded {
		e.scanDuration.Collect(ch)
		e.services.Collect(ch)
		e.dropped.Collect(ch)
	}
	e.readErrors.Collect(ch)
}

// Scrape is what the collectors of one scrape share.
type Scrape struct {
	// Processes are the user-space processes found by this scrape's scan.
	Processes []service.Process
	// Services are the services they form, after the limit.
	Services service.Snapshot

	exporter *Exporter
	errors   map[service.ReadError]int
	net      *network
}

// Scanner is the exporter's process scanner, for collectors that read more
// per process (socket owners).
func (s *Scrape) Scanner() *service.Scanner { return s.exporter.scanner }

// countError counts a read failure in schema.ExporterReadErrors.
func (s *Scrape) countError(k service.ReadError, n int) {
	if s.errors == nil {
		s.errors = map[service.ReadError]int{}
	}
	s.errors[k] += n
}
