package main

// The integration test: the real plugin binary, launched the way Grafana
// launches it (hashicorp/go-plugin, gRPC, protocol 2, the datasource magic
// cookie), asked for its health, its resources and every query type, against
// a real Prometheus that scrapes a real exporter and a small shop backend
// that the test deploys a bad build of.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/backend"
	"github.com/grafana/grafana-plugin-sdk-go/backend/grpcplugin"
	"github.com/grafana/grafana-plugin-sdk-go/data"
	"github.com/grafana/grafana-plugin-sdk-go/genproto/pluginv2"

	"github.com/telltale-dev/telltale/datasource/pkg/plugin"
	"github.com/telltale-dev/telltale/internal/plugintest"
	"github.com/telltale-dev/telltale/internal/proctest"
	"github.com/telltale-dev/telltale/internal/promtest"
	"github.com/telltale-dev/telltale/internal/testenv"
	"github.com/telltale-dev/telltale/pkg/schema"
)

// Binaries TestMain builds.
var (
	pluginBin   string
	exporterBin string
	detectorBin string
	ordersV1    string
	ordersV2    string
)

func TestMain(m *testing.M) {
	testenv.ShortMain(m) // the builds below are for the live tests
	dir, err := os.MkdirTemp("", "telltale-datasource-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := func() int {
		defer os.RemoveAll(dir)
		// The plugin is built as the SDK's build package builds it (same
		// tag, same executable name), from this package.
		pluginBin = filepath.Join(dir, fmt.Sprintf("gpx_telltale_insights_%s_%s", runtime.GOOS, runtime.GOARCH))
		exporterBin = filepath.Join(dir, "telltale-exporter")
		detectorBin = filepath.Join(dir, "telltale-detector")
		ordersV1 = filepath.Join(dir, "ordersd-v1")
		ordersV2 = filepath.Join(dir, "ordersd-v2")
		for _, b := range []struct {
			out  string
			args []string
		}{
			{pluginBin, []string{"-tags", "arrow_json_stdlib", "."}},
			{exporterBin, []string{"../../exporter"}},
			{detectorBin, []string{"../../detector"}},
			{ordersV1, []string{"./testdata/ordersd"}},
			{ordersV2, []string{"-ldflags", "-X main.build=v2", "./testdata/ordersd"}},
		} {
			if err := proctest.Build(b.out, b.args...); err != nil {
				fmt.Fprintln(os.Stderr, err)
				return 1
			}
		}
		return m.Run()
	}()
	os.Exit(code)
}

// pluginClient is the plugin process as Grafana holds it.
type pluginClient struct {
	data        grpcplugin.DataClient
	diagnostics grpcplugin.DiagnosticsClient
	resource    grpcplugin.ResourceClient
	pctx        backend.PluginContext
}

// launch starts the plugin binary with go-plugin and Grafana's handshake.
func launch(tb testing.TB, settings backend.DataSourceInstanceSettings) *pluginClient {
	tb.Helper()
	p := plugintest.Launch(tb, pluginBin)
	return &pluginClient{data: p.Data, diagnostics: p.Diagnostics, resource: p.Resource, pctx: backend.PluginContext{
		OrgID:                      1,
		PluginID:                   plugin.PluginID,
		DataSourceInstanceSettings: &settings,
	}}
}

func (pc *pluginClient) checkHealth(tb testing.TB) *backend.CheckHealthResult {
	tb.Helper()
	resp, err := pc.diagnostics.CheckHealth(context.Background(), &pluginv2.CheckHealthRequest{PluginContext: backend.ToProto().PluginContext(pc.pctx)})
	if err != nil {
		tb.Fatalf("CheckHealth: %v", err)
	}
	return backend.FromProto().CheckHealthResponse(resp)
}

func (pc *pluginClient) resourceJSON(tb testing.TB, path string, into any) {
	tb.Helper()
	req := &backend.CallResourceRequest{PluginContext: pc.pctx, Path: path, Method: http.MethodGet, URL: path}
	stream, err := pc.resource.CallResource(context.Background(), backend.ToProto().CallResourceRequest(req))
	if err != nil {
		tb.Fatalf("CallResource %s: %v", path, err)
	}
	var body []byte
	status := 0
	for {
		chunk, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			tb.Fatalf("CallResource %s: %v", path, err)
		}
		if chunk.Code != 0 {
			status = int(chunk.Code)
		}
		body = append(body, chunk.Body...)
	}
	if status != http.StatusOK {
		tb.Fatalf("CallResource %s: %d %s", path, status, body)
	}
	if err := json.Unmarshal(body, into); err != nil {
		tb.Fatalf("CallResource %s: %v in %s", path, err, body)
	}
}

// query runs one query of the given type over [from, to] at a 1s step.
func (pc *pluginClient) query(tb testing.TB, from, to time.Time, fromAlert bool, model map[string]any) backend.DataResponse {
	tb.Helper()
	raw, err := json.Marshal(model)
	if err != nil {
		tb.Fatal(err)
	}
	qt, _ := model["queryType"].(string)
	req := &backend.QueryDataRequest{
		PluginContext: pc.pctx,
		Headers:       map[string]string{},
		Queries: []backend.DataQuery{{
			RefID: "A", QueryType: qt, JSON: raw, Interval: time.Second,
			MaxDataPoints: int64(to.Sub(from) / time.Second), TimeRange: backend.TimeRange{From: from, To: to},
		}},
	}
	if fromAlert {
		req.Headers["FromAlert"] = "true"
	}
	resp, err := pc.data.QueryData(context.Background(), backend.ToProto().QueryDataRequest(req))
	if err != nil {
		tb.Fatalf("QueryData %s: %v", qt, err)
	}
	out, err := backend.FromProto().QueryDataResponse(resp)
	if err != nil {
		tb.Fatalf("QueryData %s: %v", qt, err)
	}
	return out.Responses["A"]
}

// ok fails the test when a response is an error or has no frames.
func ok(tb testing.TB, what string, dr backend.DataResponse) data.Frames {
	tb.Helper()
	if dr.Error != nil {
		tb.Fatalf("%s: %v", what, dr.Error)
	}
	if len(dr.Frames) == 0 {
		tb.Fatalf("%s: no frames", what)
	}
	return dr.Frames
}

// frame returns the frame called name.
func frame(tb testing.TB, frames data.Frames, name string) *data.Frame {
	tb.Helper()
	for _, f := range frames {
		if f.Name == name {
			return f
		}
	}
	var names []string
	for _, f := range frames {
		names = append(names, f.Name)
	}
	tb.Fatalf("no frame %q among %v", name, names)
	return nil
}

// column returns a field's values as strings (or float64 for numbers).
func column(tb testing.TB, f *data.Frame, name string) []any {
	tb.Helper()
	fd, _ := f.FieldByName(name)
	if fd == nil {
		tb.Fatalf("frame %q has no field %q", f.Name, name)
	}
	out := make([]any, fd.Len())
	for i := range out {
		v, _ := fd.ConcreteAt(i)
		out[i] = v
	}
	return out
}

func TestPluginAgainstPrometheus(t *testing.T) {
	promtest.Binary(t) // skip (or fail in CI) before starting anything

	exporterAddr := testenv.FreeAddr(t)
	exporter := proctest.Start(t, "", exporterBin, "--web.listen-address="+exporterAddr, "--log.level=warn")
	proctest.WaitHTTP(t, "http://"+exporterAddr+"/metrics", 30*time.Second, exporter)

	// The exporter sees every process of the host, other test runs'
	// included: a name of its own keeps this run's app apart.
	appName := "ordersd-" + randomLetters(6)
	appDir := t.TempDir()
	app := filepath.Join(appDir, appName)
	appAddr := testenv.FreeAddr(t)
	runApp := func(build string) *proctest.Process {
		if err := proctest.Deploy(build, app); err != nil {
			t.Fatal(err)
		}
		p := proctest.Start(t, "", app, "--listen="+appAddr, "--peer="+exporterAddr)
		p.ReadLine(t)
		return p
	}
	v1 := runApp(ordersV1)
	sel := fmt.Sprintf("{service=%q}", appName)

	// The detector scores the app's orders only, so the anomalies query
	// meets both paths: the detector's series for orders, scoring on
	// demand for anything else.
	detectorAddr := testenv.FreeAddr(t)
	prom := promtest.Start(t, promtest.Options{Config: fmt.Sprintf(`
global:
  scrape_interval: 1s
scrape_configs:
  - job_name: telltale
    static_configs: [{targets: [%q]}]
  - job_name: shop
    static_configs: [{targets: [%q]}]
  - job_name: telltale-detector
    honor_labels: true
    static_configs: [{targets: [%q]}]
`, exporterAddr, appAddr, detectorAddr)})
	from := time.Now()
	proctest.Start(t, "", detectorBin, "--remote-read.url="+prom.URL+"/api/v1/read", "--web.listen-address="+detectorAddr,
		"--selector=shop_orders_total", "--no-kpis", "--score.interval=1s", "--backfill.duration=10m", "--log.level=warn")
	prom.WaitFor(schema.ServiceInfo.Name+sel, 30*time.Second, promtest.NonEmpty)
	// Enough healthy history for the anomaly models to be warm.
	prom.WaitFor(`count_over_time(shop_orders_total[1m]) >= 30`, 60*time.Second, promtest.NonEmpty)
	prom.WaitFor(schema.AnomalyScore.Name+`{metric="shop_orders_total"}`, 30*time.Second, promtest.NonEmpty)

	// The bad deploy: the same service restarted as build v2, which takes a
	// tenth of the orders. The KPI below breaches its objective soon after.
	deployedAt := time.Now()
	v1.Kill()
	runApp(ordersV2)
	prom.WaitFor(schema.ServiceDeploys.Name+sel+" >= 1", 30*time.Second, promtest.NonEmpty)
	prom.WaitFor(`sum(rate(shop_orders_total[5s])) < 10`, 30*time.Second, promtest.NonEmpty)
	time.Sleep(8 * time.Second)
	to := time.Now()

	jd, _ := json.Marshal(map[string]any{
		"timeout": 20,
		"kpis": []map[string]any{{
			"name": "orders_5s", "expr": "sum(rate(shop_orders_total[5s]))", "unit": "orders/s", "objective": 10, "direction": "higher",
		}},
	})
	pc := launch(t, backend.DataSourceInstanceSettings{
		ID: 1, UID: "telltale", Name: "Telltale", Type: plugin.PluginID, URL: prom.URL, JSONData: jd, Updated: time.Now(),
	})

	t.Run("CheckHealth", func(t *testing.T) {
		res := pc.checkHealth(t)
		if res.Status != backend.HealthStatusOk {
			t.Fatalf("status %v: %s", res.Status, res.Message)
		}
		for _, want := range []string{"Prometheus 2.", "remote read works", "exporter series for", "detector scores 1 series"} {
			if !strings.Contains(res.Message, want) {
				t.Errorf("message %q lacks %q", res.Message, want)
			}
		}
	})

	t.Run("CallResource", func(t *testing.T) {
		var kpis []plugin.KPI
		pc.resourceJSON(t, "kpis", &kpis)
		got := map[string]string{}
		for _, k := range kpis {
			got[k.Name] = k.Source
		}
		if got["orders"] != plugin.SourceDiscovered || got["orders_5s"] != plugin.SourceSettings {
			t.Errorf("kpis %v, want orders (discovered from ordersd) and orders_5s (settings)", got)
		}
		var services, metrics []string
		pc.resourceJSON(t, "services", &services)
		pc.resourceJSON(t, "metrics", &metrics)
		if !slices.Contains(services, appName) || !slices.Contains(services, "telltale-exporter") {
			t.Errorf("services %v lack %s or telltale-exporter", services, appName)
		}
		if !slices.Contains(metrics, "shop_orders_total") || !slices.Contains(metrics, schema.ServiceInfo.Name) {
			t.Errorf("metrics lack shop_orders_total or "+schema.ServiceInfo.Name+" (%d names)", len(metrics))
		}
	})

	t.Run("kpi", func(t *testing.T) {
		frames := ok(t, "kpi", pc.query(t, from, to, false, map[string]any{"queryType": "kpi"}))
		for _, name := range []string{"orders", "orders_5s"} {
			if n := frame(t, frames, name).Rows(); n < 30 {
				t.Errorf("KPI %s: %d points, want at least 30", name, n)
			}
		}
		st := frame(t, frames, "kpi_status")
		kpis, status := column(t, st, "kpi"), column(t, st, "status")
		for i := range kpis {
			if kpis[i] == "orders_5s" && status[i] != plugin.StatusBreached {
				t.Errorf("orders_5s status %v, want %s after the bad deploy", status[i], plugin.StatusBreached)
			}
		}
	})

	t.Run("anomalies", func(t *testing.T) {
		for _, tc := range []struct{ selector, source string }{
			{`shop_orders_total{job="shop"}`, plugin.ScoreSourceDetector},
			{fmt.Sprintf(schema.ServiceThreads.Name+`{service=%q}`, appName), plugin.ScoreSourceOnDemand},
		} {
			frames := ok(t, "anomalies", pc.query(t, from, to, false, map[string]any{"queryType": "anomalies", "selector": tc.selector}))
			f := frames[0]
			if src := f.Meta.Custom.(map[string]any)["source"]; src != tc.source {
				t.Errorf("%s: source %v, want %s", tc.selector, src, tc.source)
			}
			values, scores, bands := countValues(t, f, "value"), countValues(t, f, "score"), countValues(t, f, "upper")
			t.Logf("anomalies of %s (%s): %d values, %d scores, %d bands", f.Name, tc.source, values, scores, bands)
			if values < 30 || scores < 10 || bands < 10 {
				t.Errorf("%s: %d values, %d scores, %d bands; want at least 30 values and 10 scores and bands", tc.selector, values, scores, bands)
			}
		}
		frames := ok(t, "anomalies of a KPI", pc.query(t, from, to, false, map[string]any{"queryType": "anomalies", "kpi": "orders_5s"}))
		if n := countValues(t, frames[0], "value"); n < 30 {
			t.Errorf("KPI anomalies: %d values, want at least 30", n)
		}
		alert := ok(t, "anomalies for alerting", pc.query(t, from, to, true, map[string]any{"queryType": "anomalies", "selector": `shop_orders_total{job="shop"}`}))
		if fs := alert[0].Fields; len(fs) != 2 || fs[1].Name != "score" {
			t.Errorf("alerting answer has fields %v, want time and score only", fieldNames(alert[0]))
		}
	})

	t.Run("servicemap", func(t *testing.T) {
		frames := ok(t, "servicemap", pc.query(t, from, to, false, map[string]any{"queryType": "servicemap"}))
		nodes, edges := frame(t, frames, "nodes"), frame(t, frames, "edges")
		ids := column(t, nodes, "id")
		for _, want := range []string{appName, "telltale-exporter"} {
			if !slices.Contains(ids, any(want)) {
				t.Errorf("nodes lack %s", want)
			}
		}
		normal, anomalous, unknown := column(t, nodes, "arc__normal"), column(t, nodes, "arc__anomalous"), column(t, nodes, "arc__unknown")
		for i := range ids {
			if s := normal[i].(float64) + anomalous[i].(float64) + unknown[i].(float64); math.Abs(s-1) > 1e-9 {
				t.Errorf("node %v: arcs sum to %v", ids[i], s)
			}
		}
		// The exporter's edges, named on both ends: ordersd holds a
		// connection to the exporter, and Prometheus scrapes both.
		port := func(addr string) string { return addr[strings.LastIndexByte(addr, ':')+1:] }
		edgeIDs, conns := column(t, edges, "id"), column(t, edges, "mainstat")
		for _, want := range []string{
			appName + "->telltale-exporter:" + port(exporterAddr),
			"prometheus->telltale-exporter:" + port(exporterAddr),
			"prometheus->" + appName + ":" + port(appAddr),
		} {
			i := slices.Index(edgeIDs, any(want))
			if i < 0 {
				t.Errorf("edges %v lack %s", edgeIDs, want)
			} else if c := conns[i].(float64); c <= 0 {
				t.Errorf("edge %s: %v connections", want, c)
			}
		}
	})

	t.Run("deploys", func(t *testing.T) {
		frames := ok(t, "deploys", pc.query(t, from, to, false, map[string]any{"queryType": "deploys", "service": appName}))
		f := frame(t, frames, "deploys")
		if f.Rows() != 1 {
			t.Fatalf("%d deploy events of %s, want one: %v", f.Rows(), appName, column(t, f, "text"))
		}
		at := column(t, f, "time")[0].(time.Time)
		newB, oldB := column(t, f, "build_id")[0], column(t, f, "previous_build_id")[0]
		t.Logf("deploy: %s", column(t, f, "text")[0])
		if newB == "" || oldB == "" || newB == oldB {
			t.Errorf("deploy from build %q to %q, want two different builds", oldB, newB)
		}
		if at.Before(deployedAt.Add(-time.Second)) || at.After(deployedAt.Add(10*time.Second)) {
			t.Errorf("deploy at %s, want shortly after the restart at %s", at.Format(time.TimeOnly), deployedAt.Format(time.TimeOnly))
		}
	})

	t.Run("insights", func(t *testing.T) {
		frames := ok(t, "insights", pc.query(t, from, to, false, map[string]any{"queryType": "insights", "kpi": "orders_5s"}))
		wins, causes := frame(t, frames, "windows"), frame(t, frames, "causes")
		if wins.Rows() < 1 || causes.Rows() < 1 {
			t.Fatalf("%d windows, %d causes; want the breach after the deploy and its causes", wins.Rows(), causes.Rows())
		}
		// The window of the deploy: the last one (the KPI may also have
		// been low while the app started, before it).
		ids := column(t, wins, "window")
		last := ids[len(ids)-1]
		win, rank := column(t, causes, "window"), column(t, causes, "rank")
		kind, svc, ev := column(t, causes, "kind"), column(t, causes, "service"), column(t, causes, "evidence")
		top := -1
		for i := range ev {
			t.Logf("window %v cause %v: %s", win[i], rank[i], ev[i])
			if win[i] == last && rank[i] == int64(1) {
				top = i
			}
		}
		if top < 0 {
			t.Fatalf("no cause for window %v, the deploy's", last)
		}
		if kind[top] != "deploy" || svc[top] != appName {
			t.Errorf("top cause of the deploy's window: %v of %v, want the deploy of %s; evidence: %v", kind[top], svc[top], appName, ev[top])
		}
	})

	t.Run("Prometheus down", func(t *testing.T) {
		prom.Stop()
		defer prom.Start()
		res := pc.checkHealth(t)
		if res.Status != backend.HealthStatusError || !strings.Contains(res.Message, "is unreachable") {
			t.Errorf("health with Prometheus down: %v %q", res.Status, res.Message)
		}
		dr := pc.query(t, from, to, false, map[string]any{"queryType": "kpi"})
		if dr.Error == nil || dr.ErrorSource != backend.ErrorSourceDownstream || dr.Status != backend.StatusBadGateway {
			t.Errorf("query with Prometheus down: error %v, source %q, status %v; want a downstream 502", dr.Error, dr.ErrorSource, dr.Status)
		}
	})
}

// randomLetters returns n random lowercase letters.
func randomLetters(n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte('a' + rand.IntN(26))
	}
	return string(b)
}

// countValues counts the non-null values of a field.
func countValues(tb testing.TB, f *data.Frame, name string) int {
	tb.Helper()
	n := 0
	for _, v := range column(tb, f, name) {
		if v != nil {
			n++
		}
	}
	return n
}

func fieldNames(f *data.Frame) []string {
	var out []string
	for _, fd := range f.Fields {
		out = append(out, fd.Name)
	}
	return out
}
