package engine

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"

	"github.com/telltale-dev/telltale/internal/promtest"
	"github.com/telltale-dev/telltale/pkg/anomaly"
	"github.com/telltale-dev/telltale/pkg/remoteread"
	"github.com/telltale-dev/telltale/pkg/schema"
)

const (
	testStep    = 15 * time.Second
	testSamples = 480 // 2 h
)

// testSeries is a small Telltale-like data set: per-service counters and
// gauges that the default Selector takes, facts it must leave out, a KPI
// declared through its info series (kpi.InfoMetric), and a metric nobody asked for.
func testSeries() []omSeries {
	var ss []omSeries
	for k := range 10 {
		rate := 0.1 * float64(k+1)
		ss = append(ss, omSeries{schema.ServicePrefix + "cpu_seconds", "counter", schema.ServiceCPU.Name,
			fmt.Sprintf(`service="s%d",mode="user"`, k), func(i int) float64 { return float64(i) * 15 * rate }})
	}
	for k := range 10 {
		base := 1e6 * float64(k+1)
		ss = append(ss, omSeries{schema.ServiceMemory.Name, "gauge", schema.ServiceMemory.Name,
			fmt.Sprintf(`service="s%d"`, k), func(i int) float64 { return base + float64(i%5)*1000 }})
	}
	ss = append(ss,
		omSeries{schema.ServiceFDs.Name, "gauge", schema.ServiceFDs.Name, `service="s0",metric="clash"`,
			func(i int) float64 { return 40 + float64(i%3) }},
		omSeries{schema.ServiceInfo.Name, "gauge", schema.ServiceInfo.Name, `service="s0",kind="process"`,
			func(int) float64 { return 1 }},
		omSeries{schema.KPIInfo.Name, "gauge", schema.KPIInfo.Name, `kpi="orders",metric="shop_orders",unit="1",direction="higher",type="counter"`,
			func(int) float64 { return 1 }},
		omSeries{schema.KPIInfo.Name, "gauge", schema.KPIInfo.Name, `kpi="revenue",metric="shop_revenue_rate",unit="EUR/s",direction="higher",type="gauge"`,
			func(int) float64 { return 1 }},
		omSeries{"shop_orders", "counter", "shop_orders_total", `shop="main"`, func(i int) float64 { return float64(i) * 15 * 2 }},
		omSeries{"shop_revenue_rate", "gauge", "shop_revenue_rate", `shop="main"`, func(i int) float64 { return 50 + float64(i%4) }},
		omSeries{"unrelated", "counter", "unrelated_total", `x="y"`, func(i int) float64 { return float64(i) }},
	)
	return ss
}

// wantTracked is how many of testSeries the default configuration scores.
const wantTracked = 23

// testEngine returns an engine reading from url with the default selectors
// and KPIs, its workers running until the test ends.
func testEngine(tb testing.TB, url string, edit func(*Config)) (*Engine, *prometheus.Registry) {
	tb.Helper()
	e := New(testConfig(tb, url, edit), slog.New(slog.NewTextHandler(testWriter{tb}, &slog.HandlerOptions{Level: slog.LevelDebug})))
	tb.Cleanup(e.start())
	reg := prometheus.NewPedanticRegistry()
	e.Register(reg)
	return e, reg
}

// testConfig is the configuration of testEngine.
func testConfig(tb testing.TB, url string, edit func(*Config)) Config {
	tb.Helper()
	client, err := remoteread.NewClient(remoteread.Options{URL: url})
	if err != nil {
		tb.Fatal(err)
	}
	sels, err := ParseSelectors(DefaultSelectors)
	if err != nil {
		tb.Fatal(err)
	}
	cfg := Config{
		Client: client, Selectors: sels, KPIs: true,
		Interval: testStep, Overlap: time.Minute, Backfill: 3 * time.Hour,
		ReadTimeout: 30 * time.Second, BackfillTimeout: time.Minute,
		ShardCount: 1, MaxSeries: 1000, StaleAfter: 6 * time.Hour, Workers: 2,
		NewDetector: func(counter bool) anomaly.Detector { return anomaly.NewEnsemble(anomaly.Config{Counter: counter}) },
	}
	if edit != nil {
		edit(&cfg)
	}
	return cfg
}

type testWriter struct{ tb testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.tb.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// exposed returns the detector's series for one metric family, keyed by
// their label set, with their values.
func exposed(tb testing.TB, reg prometheus.Gatherer, name string) map[string]float64 {
	tb.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		tb.Fatalf("gather: %v", err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			out[labelString(m.GetLabel())] = m.GetGauge().GetValue()
		}
	}
	return out
}

func labelString(ls []*dto.LabelPair) string {
	var parts []string
	for _, l := range ls {
		parts = append(parts, l.GetName()+"="+l.GetValue())
	}
	slices.Sort(parts)
	return strings.Join(parts, ",")
}

// sharedPrometheus starts one Prometheus holding testSeries for the tests of
// this file that only read.
func sharedPrometheus(t *testing.T) *promtest.Server {
	t.Helper()
	end := time.Now().Add(-30 * time.Second).Truncate(time.Second)
	return prometheusWithData(t, end, testStep, testSamples, testSeries())
}

func TestEngineScoresPrometheusSeries(t *testing.T) {
	srv := sharedPrometheus(t)
	readURL := srv.URL + "/api/v1/read"

	t.Run("backfill and exposition", func(t *testing.T) {
		e, reg := testEngine(t, readURL, nil)
		e.round(t.Context())
		if !e.ready.Load() {
			t.Fatal("not ready after a successful backfill")
		}
		if got := e.tracked.Load(); got != wantTracked {
			t.Errorf("tracking %d series, want %d", got, wantTracked)
		}
		if got := testutil.ToFloat64(e.samplesScored); got != wantTracked*testSamples {
			t.Errorf("scored %v samples, want %d", got, wantTracked*testSamples)
		}
		expected := exposed(t, reg, schema.AnomalyExpected.Name)
		for _, tc := range []struct {
			labels string
			want   float64
		}{
			{"metric=" + schema.ServiceCPU.Name + ",mode=user,service=s3", 0.4},            // a counter: its rate
			{"metric=" + schema.ServiceMemory.Name + ",service=s3", 4e6 + 2000},            // a gauge: its value
			{"metric=shop_orders_total,shop=main", 2},                                      // KPI counter
			{"metric=shop_revenue_rate,shop=main", 51.5},                                   // KPI gauge
			{"exported_metric=clash,metric=" + schema.ServiceFDs.Name + ",service=s0", 41}, // label clash
		} {
			got, ok := expected[tc.labels]
			if !ok {
				t.Errorf("no expected value for {%s}; have %v", tc.labels, slices.Sorted(maps.Keys(expected)))
				continue
			}
			if math.Abs(got-tc.want) > 0.05*math.Abs(tc.want) {
				t.Errorf("expected value of {%s} = %v, want about %v", tc.labels, got, tc.want)
			}
		}
		if len(expected) != wantTracked {
			t.Errorf("%d series exposed, want %d: %v", len(expected), wantTracked, slices.Sorted(maps.Keys(expected)))
		}
		for k := range expected {
			if strings.Contains(k, "_info") || strings.Contains(k, "unrelated") {
				t.Errorf("scored a series the selectors leave out: {%s}", k)
			}
		}
		for k, v := range exposed(t, reg, schema.AnomalyScore.Name) {
			if v < 0 || v > 1 || math.IsNaN(v) {
				t.Errorf("score of {%s} = %v, outside [0,1]", k, v)
			}
		}
		lower, upper := exposed(t, reg, schema.AnomalyLower.Name), exposed(t, reg, schema.AnomalyUpper.Name)
		for k, v := range expected {
			if !(lower[k] <= v && v <= upper[k]) {
				t.Errorf("{%s}: band [%v, %v] does not hold the expected value %v", k, lower[k], upper[k], v)
			}
		}

		// A second round reads an overlapping window: nothing is scored twice.
		e.round(t.Context())
		if got := testutil.ToFloat64(e.samplesScored); got != wantTracked*testSamples {
			t.Errorf("after a second round: scored %v samples, want still %d", got, wantTracked*testSamples)
		}
	})

	t.Run("shards split the series", func(t *testing.T) {
		seen := map[string]int{}
		for i := range uint64(3) {
			e, reg := testEngine(t, readURL, func(c *Config) { c.ShardIndex, c.ShardCount = i, 3 })
			e.round(t.Context())
			got := exposed(t, reg, schema.AnomalyScore.Name)
			if len(got) == 0 {
				t.Errorf("shard %d/3 scored nothing", i)
			}
			for k := range got {
				seen[k]++
			}
		}
		if len(seen) != wantTracked {
			t.Errorf("shards together scored %d series, want %d", len(seen), wantTracked)
		}
		for k, n := range seen {
			if n != 1 {
				t.Errorf("{%s} scored by %d shards", k, n)
			}
		}
	})

	t.Run("series limit", func(t *testing.T) {
		e, reg := testEngine(t, readURL, func(c *Config) { c.MaxSeries = 5 })
		for range 2 {
			e.round(t.Context())
			if got := e.tracked.Load(); got != 5 {
				t.Errorf("tracking %d series, want the limit 5", got)
			}
			if got := testutil.ToFloat64(e.seriesDropped); got != wantTracked-5 {
				t.Errorf("dropped counter = %v, want %d (each refused series once)", got, wantTracked-5)
			}
			if got := len(exposed(t, reg, schema.AnomalyScore.Name)); got != 5 {
				t.Errorf("%d series exposed, want 5", got)
			}
		}
	})

	t.Run("own metrics pass promtool", func(t *testing.T) {
		e, reg := testEngine(t, readURL, nil)
		e.round(t.Context())
		checkMetrics(t, reg)
	})
}

func promhttpHandler(reg prometheus.Gatherer) http.Handler {
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorHandling: promhttp.HTTPErrorOnError})
}

// promtoolCheck runs promtool check metrics over an exposition.
func promtoolCheck(tb testing.TB, exposition []byte) ([]byte, error) {
	tb.Helper()
	cmd := exec.Command(promtest.Promtool(tb), "check", "metrics")
	cmd.Stdin = bytes.NewReader(exposition)
	return cmd.CombinedOutput()
}

// checkMetrics lints the exposition with promtool check metrics.
func checkMetrics(tb testing.TB, reg prometheus.Gatherer) {
	tb.Helper()
	srv := httptest.NewServer(promhttpHandler(reg))
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		tb.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if err != nil {
		tb.Fatal(err)
	}
	out, err := promtoolCheck(tb, body)
	if err != nil {
		tb.Errorf("promtool check metrics: %v\n%s", err, out)
	}
	// And against the contract (pkg/schema).
	mfs, err := reg.Gather()
	if err != nil {
		tb.Fatal(err)
	}
	fams := map[string]*dto.MetricFamily{}
	for _, mf := range mfs {
		fams[mf.GetName()] = mf
	}
	if _, ok := fams[schema.AnomalyScore.Name]; !ok {
		tb.Errorf("no %s to check against the contract", schema.AnomalyScore.Name)
	}
	for _, err := range schema.Check(fams, schema.Detector) {
		tb.Error(err)
	}
}

// faultyProxy stands between the detector and a real Prometheus and can be
// told to fail in the ways a remote-read endpoint fails.
type faultyProxy struct {
	mode     atomic.Value // string
	upstream string
}

// pass forwards the request to Prometheus and streams its answer back.
func (p *faultyProxy) pass(w http.ResponseWriter, r *http.Request) {
	req, err := http.NewRequestWithContext(r.Context(), r.Method, p.upstream+r.URL.Path, r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	req.Header = r.Header.Clone()
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	maps.Copy(w.Header(), resp.Header)
	w.WriteHeader(resp.StatusCode)
	buf := make([]byte, 4096)
	for {
		n, err := resp.Body.Read(buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return
			}
			w.(http.Flusher).Flush()
		}
		if err != nil {
			return
		}
	}
}

func (p *faultyProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch p.mode.Load().(string) {
	case "unavailable":
		http.Error(w, "remote read: too many concurrent reads", http.StatusServiceUnavailable)
	case "html":
		w.Header().Set("Content-Type", "text/html")
		_, _ = io.WriteString(w, "<html><body>Please log in</body></html>")
	case "garbage":
		w.Header().Set("Content-Type", "application/x-streamed-protobuf; proto=prometheus.ChunkedReadResponse")
		_, _ = io.WriteString(w, "\x20\x00\x00\x00\x00this is not what a frame looks like at all")
	case "hang":
		_, _ = io.Copy(io.Discard, r.Body)
		<-r.Context().Done()
	case "cut":
		// Pass the real answer through, then break off mid-stream, after
		// some frames were delivered.
		p.pass(&cutWriter{ResponseWriter: w, left: 1500}, r)
	case "reset":
		conn, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			_ = conn.(*net.TCPConn).SetLinger(0)
			_ = conn.Close()
		}
	default:
		p.pass(w, r)
	}
}

// cutWriter writes the first bytes of an answer, then aborts the
// connection.
type cutWriter struct {
	http.ResponseWriter
	left int
}

func (c *cutWriter) Write(p []byte) (int, error) {
	if len(p) > c.left {
		_, _ = c.ResponseWriter.Write(p[:c.left])
		c.ResponseWriter.(http.Flusher).Flush()
		panic(http.ErrAbortHandler)
	}
	c.left -= len(p)
	return c.ResponseWriter.Write(p)
}

func (c *cutWriter) Flush() { c.ResponseWriter.(http.Flusher).Flush() }

func TestEngineSurvivesFailingRemoteRead(t *testing.T) {
	srv := sharedPrometheus(t)
	p := &faultyProxy{upstream: srv.URL}
	p.mode.Store("ok")
	front := httptest.NewServer(p)
	t.Cleanup(front.Close)

	// Without KPI discovery each round makes one request, the read that
	// scores, so every fault below hits it.
	// The clock jumps two hours during the outage, longer than
	// StaleAfter: series must not be forgotten for want of a read.
	var offset atomic.Int64
	e, reg := testEngine(t, front.URL+"/api/v1/read", func(c *Config) {
		c.ReadTimeout = 300 * time.Millisecond
		c.KPIs = false
		c.StaleAfter = 30 * time.Minute
		c.Now = func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }
	})
	// Down at start: no backfill, not ready, nothing exposed, and the
	// backfill happens once the endpoint answers.
	p.mode.Store("unavailable")
	e.round(t.Context())
	if e.ready.Load() || e.watermark.Load() != 0 || len(exposed(t, reg, schema.AnomalyScore.Name)) != 0 {
		t.Fatal("ready, or scoring, without a successful backfill")
	}
	p.mode.Store("ok")
	e.round(t.Context())
	if !e.ready.Load() {
		t.Fatal("not ready after the backfill")
	}
	if got := testutil.ToFloat64(e.samplesScored); got != (wantTracked-2)*testSamples {
		t.Errorf("backfill after a failed start scored %v samples, want %d", got, (wantTracked-2)*testSamples)
	}
	scores := exposed(t, reg, schema.AnomalyScore.Name)
	wm := e.watermark.Load()
	lag0 := exposed(t, reg, schema.DetectorLag.Name)[""]
	offset.Store(int64(2 * time.Hour))

	for _, tc := range []struct{ mode, reason string }{
		{"unavailable", "http"},
		{"html", "content_type"},
		{"garbage", "checksum"},
		{"hang", "timeout"},
		{"reset", "connection"},
		{"cut", "malformed"},
	} {
		p.mode.Store(tc.mode)
		before := testutil.ToFloat64(e.readErrors.WithLabelValues(tc.reason))
		e.round(t.Context())
		if got := testutil.ToFloat64(e.readErrors.WithLabelValues(tc.reason)); got != before+1 {
			t.Errorf("%s: errors{reason=%q} went from %v to %v, want one more", tc.mode, tc.reason, before, got)
		}
		if e.watermark.Load() != wm {
			t.Errorf("%s: the watermark moved on a failed read", tc.mode)
		}
		if diff := cmp.Diff(scores, exposed(t, reg, schema.AnomalyScore.Name)); diff != "" {
			t.Errorf("%s: exposed scores changed on a failed read (-before +after):\n%s", tc.mode, diff)
		}
		if !e.ready.Load() {
			t.Errorf("%s: became unready", tc.mode)
		}
	}
	// With the watermark standing still, the lag grows with the clock.
	if lag1 := exposed(t, reg, schema.DetectorLag.Name)[""]; lag1-lag0 < 7200 {
		t.Errorf("lag went from %v to %v s while the clock moved 2 h without a read", lag0, lag1)
	}
	offset.Store(0)

	scored := testutil.ToFloat64(e.samplesScored)
	p.mode.Store("ok")
	e.round(t.Context())
	if got := testutil.ToFloat64(e.samplesScored); got != scored {
		t.Errorf("samples scored went from %v to %v on re-reading data already scored", scored, got)
	}
	if e.watermark.Load() <= wm {
		t.Error("the watermark did not advance after the endpoint recovered")
	}
	if lag := exposed(t, reg, schema.DetectorLag.Name)[""]; lag > 1 {
		t.Errorf("lag after recovery = %v s, want under 1", lag)
	}
	if got := e.tracked.Load(); got != wantTracked-2 {
		t.Errorf("tracking %d series after recovery, want %d (no KPIs)", got, wantTracked-2)
	}
}
