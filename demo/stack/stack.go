// Package stack starts Telltale's whole demo on one machine: a real
// Prometheus (with the project's rules, remote read on), the exporter, the
// detector, the demo shop under load, and Grafana when one is installed. It
// is what `go tool mage demo` runs and what the end-to-end test starts.
//
// Every program runs in a process group of its own; Close stops those
// groups and nothing else.
package stack

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/telltale-dev/telltale/demo/shop"
)

// Builds of the shop's programs.
const (
	// BuildGood is the shop as it should be.
	BuildGood = "v1"
	// BuildSlow is a bad build: every request it serves takes
	// Options.SlowBy longer.
	BuildSlow = "v2"
)

// ShopServices is a regex of the shop's service names, for the datasource's
// service filters.
const ShopServices = "loadgen|storefront|checkout|payments|inventory"

// Default ports of the demo, as in the project's port allocation.
const (
	DefaultPrometheusPort = 9090
	DefaultExporterPort   = 10171
	DefaultDetectorPort   = 10172
	DefaultGrafanaPort    = 3000
)

// Options say what to start and how.
type Options struct {
	// Root is the repository root, where the programs are built from.
	// Empty: found from the working directory upwards.
	Root string
	// Dir holds the builds, configuration, data and logs. Empty: a new
	// temporary directory, removed by Close.
	Dir string
	// ScrapeInterval is Prometheus's scrape and rule evaluation interval
	// (default 5s); ScoreInterval the detector's (default the same).
	ScrapeInterval time.Duration
	ScoreInterval  time.Duration
	// Backfill is how much history the detector scores at start
	// (default 1h).
	Backfill time.Duration
	// LoadRate is the load generator's purchases per second (default 20).
	LoadRate float64
	// SlowBy is what BuildSlow adds to every request (default 300ms).
	SlowBy time.Duration
	// FreePorts puts every program on a free port the kernel picks,
	// for tests; otherwise the default ports are used, and a taken one is
	// replaced by a free one when PortFallback is set, else is an error.
	FreePorts    bool
	PortFallback bool
	// NoDetector and NoGrafana leave those out. Grafana is started only
	// when a grafana-server or grafana binary is on PATH.
	NoDetector bool
	NoGrafana  bool
	// Prometheus is the prometheus binary; empty: $TELLTALE_PROMETHEUS,
	// else prometheus on PATH.
	Prometheus string
	// Logger reports what the stack does; nil discards.
	Logger *slog.Logger
}

// Stack is a running demo.
type Stack struct {
	// URLs of what runs: Prometheus, the exporter, the detector, Grafana
	// (empty when not started), and the shop's programs.
	PrometheusURL, ExporterURL, DetectorURL, GrafanaURL string
	ShopURLs                                            map[shop.Role]string
	// Dir holds builds, configuration, data and logs (logs/<program>.log).
	Dir string

	opts    Options
	log     *slog.Logger
	removeD bool
	builds  string
	run     string

	mu      sync.Mutex
	procs   []*proc // in start order
	byName  map[string]*proc
	deploys map[shop.Role]string // the build each shop program runs
	closed  bool
}

// Start builds the programs and starts them, each ready before the next:
// exporter, shop services (callees first), load generator, Prometheus,
// detector, Grafana. On error, what was started is stopped again.
func Start(ctx context.Context, opts Options) (_ *Stack, err error) {
	if err := opts.defaults(); err != nil {
		return nil, err
	}
	s := &Stack{opts: opts, log: opts.Logger, byName: map[string]*proc{}, deploys: map[shop.Role]string{}, ShopURLs: map[shop.Role]string{}}
	if opts.Dir == "" {
		if s.Dir, err = os.MkdirTemp("", "telltale-demo-"); err != nil {
			return nil, fmt.Errorf("make the demo directory: %w", err)
		}
		s.removeD = true
	} else {
		s.Dir = opts.Dir
	}
	defer func() {
		if err != nil {
			s.Close()
		}
	}()
	s.builds, s.run = filepath.Join(s.Dir, "builds"), filepath.Join(s.Dir, "run")
	for _, d := range []string{s.builds, s.run, filepath.Join(s.Dir, "logs")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, fmt.Errorf("make %s: %w", d, err)
		}
	}
	if err := s.build(ctx); err != nil {
		return nil, err
	}
	ports, err := s.ports()
	if err != nil {
		return nil, err
	}
	addr := func(name string) string { return "127.0.0.1:" + strconv.Itoa(ports[name]) }

	// The exporter first, so it sees the shop's programs start.
	rules := filepath.Join(s.Dir, "services.yml")
	if err := os.WriteFile(rules, []byte(serviceRules(s.run)), 0o644); err != nil {
		return nil, fmt.Errorf("write %s: %w", rules, err)
	}
	s.ExporterURL = "http://" + addr("exporter")
	if err := s.startProc(ctx, "telltale-exporter", filepath.Join(s.builds, "telltale-exporter"), []string{
		"--web.listen-address=" + addr("exporter"), "--service.rules-file=" + rules, "--log.level=warn",
	}, nil, s.ExporterURL+"/metrics", 30*time.Second); err != nil {
		return nil, err
	}

	for _, r := range shop.Roles {
		s.ShopURLs[r] = "http://" + addr(string(r))
	}
	for i := len(shop.Roles) - 1; i >= 0; i-- { // callees first
		r := shop.Roles[i]
		if err := copyExecutable(filepath.Join(s.builds, BuildGood, string(r)), filepath.Join(s.run, string(r))); err != nil {
			return nil, err
		}
		s.deploys[r] = BuildGood
		if err := s.startShop(ctx, r); err != nil {
			return nil, err
		}
	}

	if err := s.startPrometheus(ctx, addr, ports); err != nil {
		return nil, err
	}
	if !opts.NoDetector {
		s.DetectorURL = "http://" + addr("detector")
		if err := s.startProc(ctx, "telltale-detector", filepath.Join(s.builds, "telltale-detector"), []string{
			"--remote-read.url=" + s.PrometheusURL + "/api/v1/read",
			"--web.listen-address=" + addr("detector"),
			"--score.interval=" + promDuration(opts.ScoreInterval),
			"--score.overlap=" + promDuration(max(5*opts.ScoreInterval, 10*time.Second)),
			"--backfill.duration=" + promDuration(opts.Backfill),
			"--series.stale-after=" + promDuration(max(opts.Backfill, 10*time.Minute)),
			"--log.level=warn",
		}, nil, s.DetectorURL+"/-/ready", 2*time.Minute); err != nil {
			return nil, err
		}
	}
	if !opts.NoGrafana {
		if err := s.startGrafana(ctx, ports["grafana"]); err != nil {
			return nil, err
		}
	}
	return s, nil
}

func (o *Options) defaults() error {
	if o.Root == "" {
		root, err := findRoot()
		if err != nil {
			return err
		}
		o.Root = root
	}
	if o.ScrapeInterval <= 0 {
		o.ScrapeInterval = 5 * time.Second
	}
	if o.ScoreInterval <= 0 {
		o.ScoreInterval = o.ScrapeInterval
	}
	if o.Backfill <= 0 {
		o.Backfill = time.Hour
	}
	if o.LoadRate <= 0 {
		o.LoadRate = 20
	}
	if o.SlowBy <= 0 {
		o.SlowBy = 300 * time.Millisecond
	}
	if o.Prometheus == "" {
		o.Prometheus = os.Getenv("TELLTALE_PROMETHEUS")
	}
	if o.Prometheus == "" {
		p, err := exec.LookPath("prometheus")
		if err != nil {
			return errors.New("prometheus is not on PATH: install it (apt-get install prometheus) or set TELLTALE_PROMETHEUS")
		}
		o.Prometheus = p
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return nil
}

// findRoot finds the repository root from the working directory upwards.
func findRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && strings.Contains(string(b), "module github.com/telltale-dev/telltale\n") {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("the Telltale repository is not in the working directory or above it: run from the repository or set Options.Root")
		}
		dir = parent
	}
}

// ports picks the port of every program.
func (s *Stack) ports() (map[string]int, error) {
	want := map[string]int{
		"prometheus": DefaultPrometheusPort,
		"exporter":   DefaultExporterPort,
		"detector":   DefaultDetectorPort,
		"grafana":    DefaultGrafanaPort,
	}
	for r, p := range shop.DefaultPorts {
		want[string(r)] = p
	}
	out := map[string]int{}
	taken := map[int]bool{}
	for name, p := range want {
		if s.opts.FreePorts {
			p = 0
		}
		for {
			got, err := pickPort(name, p, s.opts.PortFallback)
			if err != nil {
				return nil, err
			}
			if !taken[got] {
				out[name], taken[got] = got, true
				break
			}
			p = 0
		}
		if p != 0 && out[name] != p {
			s.log.Warn("port taken, using another", "program", name, "port", p, "instead", out[name])
		}
	}
	return out, nil
}

// startProc starts a program and waits until readyURL answers.
func (s *Stack) startProc(ctx context.Context, name, path string, args, env []string, readyURL string, timeout time.Duration) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return errStopped
	}
	p := &proc{name: name, path: path, args: args, env: env, log: filepath.Join(s.Dir, "logs", name+".log")}
	s.procs = append(s.procs, p)
	s.byName[name] = p
	s.mu.Unlock()
	if err := p.start(); err != nil {
		return err
	}
	s.log.Info("started", "program", name, "pid", p.pid())
	return p.waitHTTP(ctx, readyURL, timeout)
}

// shopArgs are the command-line flags of a shop program.
func (s *Stack) shopArgs(r shop.Role) []string {
	u, _ := url.Parse(s.ShopURLs[r])
	args := []string{"--web.listen-address=" + u.Host, "--log.level=warn"}
	for _, callee := range shop.Calls[r] {
		args = append(args, "--"+string(callee)+".url="+s.ShopURLs[callee])
	}
	if r == shop.Loadgen {
		args = append(args, "--load.rate="+strconv.FormatFloat(s.opts.LoadRate, 'f', -1, 64))
	}
	return args
}

func (s *Stack) startShop(ctx context.Context, r shop.Role) error {
	return s.startProc(ctx, string(r), filepath.Join(s.run, string(r)), s.shopArgs(r), nil, s.ShopURLs[r]+"/-/healthy", 30*time.Second)
}

// Redeploy installs the given build (BuildGood or BuildSlow) of a shop
// program and restarts it, as a deploy does: the new executable replaces
// the old file, the old process is stopped (SIGTERM), the new one started.
func (s *Stack) Redeploy(ctx context.Context, r shop.Role, build string) error {
	if build != BuildGood && build != BuildSlow {
		return fmt.Errorf("redeploy %s: build %q is not known: want %s or %s", r, build, BuildGood, BuildSlow)
	}
	s.mu.Lock()
	p, ok := s.byName[string(r)]
	closed := s.closed
	s.mu.Unlock()
	if closed {
		return errStopped
	}
	if !ok {
		return fmt.Errorf("redeploy %s: not a shop program of this stack", r)
	}
	if err := copyExecutable(filepath.Join(s.builds, build, string(r)), filepath.Join(s.run, string(r))); err != nil {
		return fmt.Errorf("redeploy %s: %w", r, err)
	}
	p.stop(5 * time.Second)
	if err := p.start(); err != nil {
		return fmt.Errorf("redeploy %s: %w", r, err)
	}
	s.mu.Lock()
	s.deploys[r] = build
	s.mu.Unlock()
	s.log.Info("redeployed", "program", r, "build", build, "pid", p.pid())
	return p.waitHTTP(ctx, s.ShopURLs[r]+"/-/healthy", 30*time.Second)
}

// Build returns the build a shop program runs.
func (s *Stack) Build(r shop.Role) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.deploys[r]
}

// Fault sets a fault on a shop program through its admin endpoint, e.g.
// Fault(ctx, shop.Payments, "latency", url.Values{"ms": {"300"}}).
func (s *Stack) Fault(ctx context.Context, r shop.Role, kind string, params url.Values) error {
	q := url.Values{"kind": {kind}}
	for k, v := range params {
		q[k] = v
	}
	return s.admin(ctx, r, http.MethodPost, q)
}

// ClearFaults clears every fault of a shop program.
func (s *Stack) ClearFaults(ctx context.Context, r shop.Role) error {
	return s.admin(ctx, r, http.MethodDelete, nil)
}

func (s *Stack) admin(ctx context.Context, r shop.Role, method string, q url.Values) error {
	base, ok := s.ShopURLs[r]
	if !ok {
		return fmt.Errorf("fault: %q is not a shop program: want one of %v", r, shop.Roles)
	}
	req, err := http.NewRequestWithContext(ctx, method, base+"/admin/fault?"+q.Encode(), nil)
	if err != nil {
		return err
	}
	resp, err := adminClient.Do(req)
	if err != nil {
		return fmt.Errorf("fault on %s: %w", r, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("fault on %s: %s", r, strings.TrimSpace(string(body)))
	}
	return nil
}

// SetLoad changes the load generator's purchases per second.
func (s *Stack) SetLoad(ctx context.Context, rate float64) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.ShopURLs[shop.Loadgen]+"/admin/load?rate="+strconv.FormatFloat(rate, 'f', -1, 64), nil)
	if err != nil {
		return err
	}
	resp, err := adminClient.Do(req)
	if err != nil {
		return fmt.Errorf("set load: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return fmt.Errorf("set load: %s", strings.TrimSpace(string(body)))
	}
	return nil
}

// adminClient makes the stack's own requests to the shop's admin endpoints.
// Without keep-alive: a connection the stack left open would show as an edge
// from the stack's process to the service it configured.
var adminClient = &http.Client{
	Timeout:   10 * time.Second,
	Transport: &http.Transport{DisableKeepAlives: true},
}

// Neighbour is the program StartNeighbour runs: a CPU hog outside the
// shop, with a service name of its own.
const Neighbour = "cpuhog"

// StartNeighbour starts a noisy neighbour on the machine, outside the shop:
// Neighbour with threads busy threads, until StopNeighbour.
func (s *Stack) StartNeighbour(ctx context.Context, threads int) error {
	s.mu.Lock()
	p := s.byName[Neighbour]
	s.mu.Unlock()
	if p != nil && p.pid() != 0 {
		return fmt.Errorf("start %s: it runs already", Neighbour)
	}
	args := []string{"--threads=" + strconv.Itoa(threads)}
	path := filepath.Join(s.builds, Neighbour)
	if p != nil {
		p.mu.Lock()
		p.args = args
		p.mu.Unlock()
		return p.start()
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return errStopped
	}
	p = &proc{name: Neighbour, path: path, args: args, log: filepath.Join(s.Dir, "logs", Neighbour+".log")}
	s.procs = append(s.procs, p)
	s.byName[Neighbour] = p
	s.mu.Unlock()
	return p.start()
}

// StopNeighbour stops what StartNeighbour started.
func (s *Stack) StopNeighbour() {
	s.mu.Lock()
	p := s.byName[Neighbour]
	s.mu.Unlock()
	if p != nil {
		p.stop(3 * time.Second)
	}
}

// PID returns the process ID of a program of the stack ("checkout",
// "telltale-exporter", "prometheus", …), 0 when it does not run.
func (s *Stack) PID(name string) int {
	s.mu.Lock()
	p := s.byName[name]
	s.mu.Unlock()
	if p == nil {
		return 0
	}
	return p.pid()
}

// Log returns the end of a program's log.
func (s *Stack) Log(name string) string {
	return tail(filepath.Join(s.Dir, "logs", name+".log"), 4000)
}

// Close stops every program and removes the directory if Start made it.
// The programs are stopped at once (SIGTERM to each process group, SIGKILL
// after a grace period), so Close is over within a few seconds, as a
// Ctrl-C handler must be.
func (s *Stack) Close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	procs := s.procs
	s.mu.Unlock()
	var wg sync.WaitGroup
	for _, p := range procs {
		wg.Go(func() {
			p.stop(3 * time.Second)
			s.log.Info("stopped", "program", p.name)
		})
	}
	wg.Wait()
	if s.removeD {
		_ = os.RemoveAll(s.Dir)
	}
}

// promDuration writes d as Prometheus and kingpin read durations.
func promDuration(d time.Duration) string {
	if d%time.Second == 0 {
		return strconv.FormatInt(int64(d/time.Second), 10) + "s"
	}
	return strconv.FormatInt(d.Milliseconds(), 10) + "ms"
}
