package main

import (
	"bytes"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/telltale-dev/telltale/internal/promtest"
	"github.com/telltale-dev/telltale/internal/testenv"
)

// binDir holds the commands the end-to-end tests run, built once per test
// run into a directory TestMain removes.
var binDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "telltale-detector-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binDir = dir
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

var (
	buildOnce sync.Once
	buildErr  error
)

// binaries builds the detector and the exporter once, on first use, so
// tests that don't need them don't pay for the build.
func binaries(tb testing.TB) (detector, exporter string) {
	tb.Helper()
	buildOnce.Do(func() {
		goBin := filepath.Join(runtime.GOROOT(), "bin", "go")
		for _, pkg := range []string{"detector", "exporter"} {
			cmd := exec.Command(goBin, "build", "-o", filepath.Join(binDir, "telltale-"+pkg), "./"+pkg)
			cmd.Dir = ".."
			if out, err := cmd.CombinedOutput(); err != nil {
				buildErr = fmt.Errorf("build %s: %v\n%s", pkg, err, out)
				return
			}
		}
	})
	if buildErr != nil {
		tb.Fatal(buildErr)
	}
	return filepath.Join(binDir, "telltale-detector"), filepath.Join(binDir, "telltale-exporter")
}

// process is a command the test started; it is killed when the test ends
// and its output shown if the test failed.
type process struct {
	cmd  *exec.Cmd
	out  *syncBuffer
	done chan struct{}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func startProcess(tb testing.TB, name string, args ...string) *process {
	tb.Helper()
	p := &process{cmd: exec.Command(name, args...), out: &syncBuffer{}, done: make(chan struct{})}
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := p.cmd.Start(); err != nil {
		tb.Fatalf("start %s: %v", name, err)
	}
	go func() { _ = p.cmd.Wait(); close(p.done) }()
	tb.Cleanup(func() {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
			_ = p.cmd.Process.Kill()
			<-p.done
		}
		if tb.Failed() {
			tb.Logf("%s output:\n%s", filepath.Base(name), p.out.String())
		}
	})
	return p
}

func (p *process) running() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// waitHTTP waits until url answers 200.
func waitHTTP(tb testing.TB, url string, p *process) {
	tb.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(url)
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if !p.running() {
			tb.Fatalf("%s exited:\n%s", p.cmd.Path, p.out.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	tb.Fatalf("%s did not answer 200 in 30s", url)
}

// shopApp is the target whose value the test controls: an app declaring a
// KPI, a queue depth, through telltale_kpi_info, with a little noise.
type shopApp struct {
	mu    sync.Mutex
	level float64
	rng   *rand.Rand
}

func (a *shopApp) set(level float64) {
	a.mu.Lock()
	a.level = level
	a.mu.Unlock()
}

func (a *shopApp) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	a.mu.Lock()
	v := a.level + a.rng.NormFloat64()
	a.mu.Unlock()
	w.Header().Set("Content-Type", "text/plain; version=0.0.4")
	fmt.Fprintf(w, "# TYPE telltale_kpi_info gauge\n"+
		"telltale_kpi_info{kpi=\"queue\",metric=\"shop_queue_depth\",unit=\"1\",direction=\"lower\",type=\"gauge\"} 1\n"+
		"# TYPE shop_queue_depth gauge\nshop_queue_depth{shop=\"e2e\"} %g\n", v)
}

// scrapeDetector reads one of the detector's own metrics directly.
func scrapeDetector(tb testing.TB, base, name string) float64 {
	tb.Helper()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		tb.Fatalf("scrape detector: %v", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatal(err)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := parser.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		tb.Fatalf("parse detector metrics: %v", err)
	}
	mf, ok := mfs[name]
	if !ok {
		tb.Fatalf("detector exposes no %s", name)
	}
	sum := 0.0
	for _, m := range mf.GetMetric() {
		sum += m.GetCounter().GetValue() + m.GetGauge().GetValue()
	}
	return sum
}

func below(limit float64) func(model.Vector) bool {
	return func(v model.Vector) bool { return len(v) > 0 && float64(v[0].Value) < limit }
}

func above(limit float64) func(model.Vector) bool {
	return func(v model.Vector) bool { return len(v) > 0 && float64(v[0].Value) > limit }
}

// TestEndToEnd runs Prometheus, the exporter, an app whose KPI the test
// controls and the detector as separate processes: Prometheus scrapes the
// three, the detector reads Prometheus over remote read. A Prometheus
// outage must leave the detector running, counting errors, and reading
// again afterwards; then a step in the KPI must push its score over the
// alerting threshold, and the score must come back down once the detector
// has learned the new level.
func TestEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("takes a few minutes")
	}
	promtest.Binary(t)
	detectorBin, exporterBin := binaries(t)

	app := &shopApp{level: 100, rng: rand.New(rand.NewPCG(7, 8))}
	appAddr := testenv.FreeAddr(t)
	appSrv := &http.Server{Addr: appAddr, Handler: app}
	go func() { _ = appSrv.ListenAndServe() }()
	t.Cleanup(func() { _ = appSrv.Close() })

	exporterAddr := testenv.FreeAddr(t)
	exporter := startProcess(t, exporterBin, "--web.listen-address="+exporterAddr)
	waitHTTP(t, "http://"+exporterAddr+"/metrics", exporter)

	detectorAddr := testenv.FreeAddr(t)
	prom := promtest.Start(t, promtest.Options{Config: fmt.Sprintf(`
global:
  scrape_interval: 500ms
  scrape_timeout: 400ms
scrape_configs:
  - job_name: shop
    static_configs: [{targets: [%q]}]
  - job_name: telltale-exporter
    scrape_interval: 5s
    scrape_timeout: 4s
    static_configs: [{targets: [%q]}]
  - job_name: telltale-detector
    honor_labels: true
    scrape_interval: 1s
    scrape_timeout: 900ms
    static_configs: [{targets: [%q]}]
`, appAddr, exporterAddr, detectorAddr)})

	detectorURL := "http://" + detectorAddr
	detector := startProcess(t, detectorBin,
		"--remote-read.url="+prom.URL+"/api/v1/read",
		"--web.listen-address="+detectorAddr,
		"--score.interval=1s",
		"--score.overlap=5s",
		"--backfill.duration=10m",
		"--remote-read.timeout=5s",
		"--series.stale-after=10m",
		"--log.level=debug",
	)
	waitHTTP(t, detectorURL+"/-/ready", detector)

	const score = `telltale_anomaly_score{metric="shop_queue_depth",shop="e2e",job="shop"}`
	t.Log("waiting for the detector to learn the KPI's normal level")
	prom.WaitFor(`count_over_time(shop_queue_depth[10m])`, 4*time.Minute, above(150))
	prom.WaitFor(`max_over_time(`+score+`[20s])`, 3*time.Minute, below(0.9))
	prom.WaitFor(`count(telltale_anomaly_score{metric=~"telltale_service_.+",job="telltale-exporter"})`, time.Minute, above(0))

	t.Log("outage: Prometheus stops")
	errorsBefore := scrapeDetector(t, detectorURL, "telltale_detector_remote_read_errors_total")
	prom.Stop()
	time.Sleep(5 * time.Second)
	if !detector.running() {
		t.Fatalf("detector exited while Prometheus was down:\n%s", detector.out.String())
	}
	waitHTTP(t, detectorURL+"/-/healthy", detector)
	if got := scrapeDetector(t, detectorURL, "telltale_detector_remote_read_errors_total"); got < errorsBefore+3 {
		t.Errorf("remote-read errors went from %v to %v during a 5 s outage at 1 s rounds, want at least 3 more", errorsBefore, got)
	}
	if lag := scrapeDetector(t, detectorURL, "telltale_detector_lag_seconds"); lag < 4 {
		t.Errorf("lag during the outage = %v s, want it to grow past 4", lag)
	}

	t.Log("Prometheus is back")
	prom.Start()
	prom.WaitFor(`telltale_detector_lag_seconds`, time.Minute, below(3))
	scored := scrapeDetector(t, detectorURL, "telltale_detector_samples_scored_total")
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(500 * time.Millisecond) {
		if scrapeDetector(t, detectorURL, "telltale_detector_samples_scored_total") > scored {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("samples scored stayed at %v for 30 s after Prometheus came back", scored)
		}
	}
	prom.WaitFor(`max_over_time(`+score+`[20s])`, 2*time.Minute, below(0.9))

	// The step comes after the outage, so detecting it also shows that the
	// detector scores live data again.
	t.Log("step: the queue depth jumps from 100 to 300")
	app.set(300)
	stepAt := time.Now()
	prom.WaitFor(score, time.Minute, above(0.9))
	t.Logf("score over 0.9 after %s", time.Since(stepAt).Round(time.Second))
	expected := prom.WaitFor(`telltale_anomaly_expected{metric="shop_queue_depth",shop="e2e",job="shop"}`, 5*time.Second, promtest.NonEmpty)
	if v := float64(expected[0].Value); v > 250 {
		t.Errorf("expected value while the score is high = %v, want the old level (about 100)", v)
	}
	prom.WaitFor(`max_over_time(`+score+`[10s])`, 4*time.Minute, below(0.9))
	t.Logf("score back under 0.9 after %s at the new level", time.Since(stepAt).Round(time.Second))

	if !detector.running() {
		t.Fatal("detector is not running at the end")
	}
	if strings.Contains(detector.out.String(), "panic") {
		t.Errorf("detector output mentions a panic:\n%s", detector.out.String())
	}
	if n := scrapeDetector(t, detectorURL, "telltale_detector_series"); n < 2 || math.IsNaN(n) {
		t.Errorf("detector tracks %v series, want the KPI and the exporter's", n)
	}
}
