package main

import (
	"fmt"
	"math"
	"math/rand/v2"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/telltale-dev/telltale/internal/proctest"
	"github.com/telltale-dev/telltale/internal/promtest"
	"github.com/telltale-dev/telltale/internal/testenv"
	"github.com/telltale-dev/telltale/pkg/schema"
)

// builds holds the commands the end-to-end tests run, built once per test
// run into a directory TestMain removes.
var builds = &proctest.Builds{}

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "telltale-detector-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	builds.Dir = dir
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

// binaries builds the detector and the exporter once, on first use, so
// tests that don't need them don't pay for the build.
func binaries(tb testing.TB) (detector, exporter string) {
	tb.Helper()
	return builds.Get(tb, "telltale-detector", "."), builds.Get(tb, "telltale-exporter", "../exporter")
}

// shopApp is the target whose value the test controls: an app declaring a
// KPI, a queue depth, through pkg/kpi, with a little noise.
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
	fmt.Fprintf(w, "# TYPE "+schema.KPIInfo.Name+" gauge\n"+
		schema.KPIInfo.Name+"{kpi=\"queue\",metric=\"shop_queue_depth\",unit=\"1\",direction=\"lower\",type=\"gauge\"} 1\n"+
		"# TYPE shop_queue_depth gauge\nshop_queue_depth{shop=\"e2e\"} %g\n", v)
}

// sources starts what Prometheus scrapes in these tests: a shopApp at
// level 100 (its noise seeded with seed) and the exporter, and returns the
// app and both addresses.
func sources(t *testing.T, exporterBin string, seed uint64) (app *shopApp, appAddr, exporterAddr string) {
	t.Helper()
	app = &shopApp{level: 100, rng: rand.New(rand.NewPCG(seed, seed+1))}
	appAddr = testenv.FreeAddr(t)
	appSrv := &http.Server{Addr: appAddr, Handler: app, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = appSrv.ListenAndServe() }()
	t.Cleanup(func() { _ = appSrv.Close() })

	exporterAddr = testenv.FreeAddr(t)
	exporter := proctest.Start(t, "", exporterBin, "--web.listen-address="+exporterAddr)
	proctest.WaitHTTP(t, "http://"+exporterAddr+"/metrics", 30*time.Second, exporter)
	return app, appAddr, exporterAddr
}

// scrapeDetector reads one of the detector's own metrics directly.
func scrapeDetector(tb testing.TB, base, name string) float64 {
	tb.Helper()
	mf, ok := detectorMetrics(tb, base)[name]
	if !ok {
		tb.Fatalf("detector exposes no %s", name)
	}
	sum := 0.0
	for _, m := range mf.GetMetric() {
		sum += m.GetCounter().GetValue() + m.GetGauge().GetValue()
	}
	return sum
}

// detectorMetrics scrapes a detector's /metrics and parses it.
func detectorMetrics(tb testing.TB, base string) map[string]*dto.MetricFamily {
	tb.Helper()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		tb.Fatalf("scrape detector: %v", err)
	}
	defer resp.Body.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		tb.Fatalf("parse detector metrics: %v", err)
	}
	return mfs
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

	app, appAddr, exporterAddr := sources(t, exporterBin, 7)

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
	detector := proctest.Start(t, "", detectorBin,
		"--remote-read.url="+prom.URL+"/api/v1/read",
		"--web.listen-address="+detectorAddr,
		"--score.interval=1s",
		"--score.overlap=5s",
		"--backfill.duration=10m",
		"--remote-read.timeout=5s",
		"--series.stale-after=10m",
		"--log.level=debug",
	)
	proctest.WaitHTTP(t, detectorURL+"/-/ready", 30*time.Second, detector)

	score := schema.AnomalyScore.Name + `{metric="shop_queue_depth",shop="e2e",job="shop"}`
	t.Log("waiting for the detector to learn the KPI's normal level")
	prom.WaitFor(`count_over_time(shop_queue_depth[10m])`, 4*time.Minute, above(150))
	prom.WaitFor(`max_over_time(`+score+`[20s])`, 3*time.Minute, below(0.9))
	prom.WaitFor(`count(`+schema.AnomalyScore.Name+`{metric=~"`+schema.ServicePrefix+`.+",job="telltale-exporter"})`, time.Minute, above(0))

	t.Log("outage: Prometheus stops")
	errorsBefore := scrapeDetector(t, detectorURL, schema.DetectorReadErrors.Name)
	prom.Stop()
	time.Sleep(5 * time.Second)
	if !detector.Running() {
		t.Fatalf("detector exited while Prometheus was down:\n%s", detector.Output())
	}
	proctest.WaitHTTP(t, detectorURL+"/-/healthy", 30*time.Second, detector)
	if got := scrapeDetector(t, detectorURL, schema.DetectorReadErrors.Name); got < errorsBefore+3 {
		t.Errorf("remote-read errors went from %v to %v during a 5 s outage at 1 s rounds, want at least 3 more", errorsBefore, got)
	}
	if lag := scrapeDetector(t, detectorURL, schema.DetectorLag.Name); lag < 4 {
		t.Errorf("lag during the outage = %v s, want it to grow past 4", lag)
	}

	t.Log("Prometheus is back")
	prom.Start()
	prom.WaitFor(schema.DetectorLag.Name, time.Minute, below(3))
	scored := scrapeDetector(t, detectorURL, schema.DetectorSamplesScored.Name)
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(500 * time.Millisecond) {
		if scrapeDetector(t, detectorURL, schema.DetectorSamplesScored.Name) > scored {
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
	expected := prom.WaitFor(schema.AnomalyExpected.Name+`{metric="shop_queue_depth",shop="e2e",job="shop"}`, 5*time.Second, promtest.NonEmpty)
	if v := float64(expected[0].Value); v > 250 {
		t.Errorf("expected value while the score is high = %v, want the old level (about 100)", v)
	}
	prom.WaitFor(`max_over_time(`+score+`[10s])`, 4*time.Minute, below(0.9))
	t.Logf("score back under 0.9 after %s at the new level", time.Since(stepAt).Round(time.Second))

	if !detector.Running() {
		t.Fatal("detector is not running at the end")
	}
	if strings.Contains(detector.Output(), "panic") {
		t.Errorf("detector output mentions a panic:\n%s", detector.Output())
	}
	if n := scrapeDetector(t, detectorURL, schema.DetectorSeries.Name); n < 2 || math.IsNaN(n) {
		t.Errorf("detector tracks %v series, want the KPI and the exporter's", n)
	}
}
