//go:build e2e

package dashboards_test

// The live test: every panel of every dashboard against the whole demo stack
// (demo/stack: real Prometheus with the project's rules, the exporter, the
// detector, the demo shop under load), while the shop's checkout runs a slow
// build. Prometheus panels run through Prometheus's HTTP API over the
// test's time range; Telltale panels through the built plugin binary,
// launched over go-plugin's gRPC handshake as Grafana launches it, with the
// provisioned settings. Variables are resolved as Grafana resolves them
// (their queries run against the stack), except service, set to the shop's
// checkout, which has connections in and out. Every panel that returns no
// data is named, and the test fails if there is one.
//
// With $TELLTALE_PROMETHEUS_URL set (the variable the provisioned
// datasources read), it runs against that stack's Prometheus, whose
// checkout must already run the slow build, over its last liveRange: that
// is how the end-to-end test (demo/e2e_test.go) runs it on its own stack.
// Without it, it starts a stack of its own and deploys the slow build
// (go tool mage dashboardsLive). The build tag keeps it out of go test
// ./..., which would otherwise start a second stack.

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/backend"
	"github.com/grafana/grafana-plugin-sdk-go/backend/grpcplugin"
	"github.com/grafana/grafana-plugin-sdk-go/data"
	promapi "github.com/prometheus/client_golang/api"
	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"

	"github.com/telltale-dev/telltale/datasource/pkg/plugin"
	"github.com/telltale-dev/telltale/demo/shop"
	"github.com/telltale-dev/telltale/demo/stack"
	"github.com/telltale-dev/telltale/internal/plugintest"
	"github.com/telltale-dev/telltale/internal/promtest"
	"github.com/telltale-dev/telltale/pkg/schema"
)

// liveInterval is what Grafana gives $__interval for these dashboards'
// ranges with the provisioned Prometheus (timeInterval 15s), and
// liveRateInterval its $__rate_interval: max(interval + 15s, 4 × 15s).
const (
	liveInterval     = 15 * time.Second
	liveRateInterval = time.Minute
)

// liveRange is the range the panels are queried over on a stack the test
// did not start: the last 15 minutes, a range users pick, and longer than
// the end-to-end test's stack has run when it calls this test.
const liveRange = 15 * time.Minute

// liveService is the service the service variables are set to: the demo
// shop's checkout, which has clients, callees and declares the KPIs.
const liveService = "checkout"

func TestPanelsHaveDataLive(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	pluginBin := buildPlugin(t)
	var (
		from    time.Time
		promURL = os.Getenv(stack.PrometheusURLEnv)
		st      *stack.Stack
	)
	if promURL == "" {
		promtest.Binary(t) // skip on a developer machine without Prometheus, fail in CI
		var err error
		st, err = stack.Start(ctx, stack.Options{
			FreePorts: true, NoGrafana: true, ScrapeInterval: 2 * time.Second,
		})
		if err != nil {
			t.Fatalf("start the demo stack: %v", err)
		}
		defer st.Close()
		from, promURL = time.Now(), st.PrometheusURL
	}
	client, err := promapi.NewClient(promapi.Config{Address: promURL})
	if err != nil {
		t.Fatal(err)
	}
	prom := promv1.NewAPI(client)

	if st != nil {
		// Healthy history, then the slow build of the checkout: its
		// latency KPI breaches its objective, which the rules record and
		// insights explains.
		waitFor(ctx, t, prom, `count_over_time(kpi:telltale_kpi_value:current{kpi="checkout_latency"}[10m]) > 40`, 4*time.Minute)
		if err := st.Redeploy(ctx, shop.Checkout, stack.BuildSlow); err != nil {
			t.Fatalf("deploy the slow checkout: %v", err)
		}
	}
	waitFor(ctx, t, prom, `kpi:telltale_kpi_out_of_objective:bool{kpi="checkout_latency"} == 1`, 3*time.Minute)
	waitFor(ctx, t, prom, `increase(`+schema.ServiceDeploys.Name+`{service="checkout"}[10m]) > 0`, time.Minute)
	// The rules on real series: the breach starts burning the KPI's budget.
	waitFor(ctx, t, prom, `ALERTS{alertname="TelltaleKPIBudgetBurnFast", kpi="checkout_latency"}`, 2*time.Minute)
	if st != nil {
		time.Sleep(45 * time.Second) // a breach window long enough for insights to rank its causes
	}
	to := time.Now()
	if from.IsZero() {
		from = to.Add(-liveRange)
	}
	t.Logf("panels over %s to %s (%s)", from.Format(time.TimeOnly), to.Format(time.TimeOnly), to.Sub(from).Round(time.Second))

	pc := launchPlugin(t, pluginBin, promURL)
	var empty []string
	panels := 0
	for _, d := range loadDashboards(t) {
		values, err := resolveVariables(ctx, d, prom, from, to)
		if err != nil {
			t.Errorf("%s: %v", d.file, err)
			continue
		}
		t.Logf("%s: variables %v", d.file, values)
		for _, p := range d.allPanels() {
			panels++
			title, _ := interpolate(p.Title, values)
			name := fmt.Sprintf("%s / %s", d.Title, title)
			has := false
			for _, tg := range p.Targets {
				n, err := runTarget(ctx, prom, pc, tg, p, values, from, to)
				switch {
				case err != nil:
					t.Errorf("%s: query %v: %v", name, tg["refId"], err)
				case n == 0:
					t.Logf("%s: query %v returns nothing", name, tg["refId"])
				default:
					has = true
					t.Logf("%s: query %v: %d values", name, tg["refId"], n)
				}
			}
			if !has {
				empty = append(empty, name)
			}
		}
		for _, a := range d.Annotations.List {
			if a.BuiltIn == 1 {
				continue
			}
			panels++
			n, err := runTarget(ctx, prom, pc, a.Target, panel{}, values, from, to)
			name := fmt.Sprintf("%s / annotation %s", d.Title, a.Name)
			if err != nil {
				t.Errorf("%s: %v", name, err)
			}
			if n == 0 {
				empty = append(empty, name)
			}
		}
	}
	t.Logf("%d panels and annotations queried", panels)
	sort.Strings(empty)
	for _, e := range empty {
		t.Errorf("no data: %s", e)
	}
	if t.Failed() && st != nil {
		for _, p := range []string{"telltale-exporter", "telltale-detector", "prometheus", "checkout"} {
			t.Logf("%s log:\n%s", p, st.Log(p))
		}
	}
}

// waitFor polls an instant query until it returns something.
func waitFor(ctx context.Context, t *testing.T, prom promv1.API, expr string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		v, _, _, err := prom.Query(ctx, expr, time.Now())
		if vec, ok := v.(model.Vector); err == nil && ok && len(vec) > 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: nothing after %s (last error %v)", expr, timeout, err)
		}
		time.Sleep(2 * time.Second)
	}
}

// buildPlugin builds the datasource backend as the SDK's build does (same
// tag, same executable name) into a temporary directory.
func buildPlugin(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), fmt.Sprintf("gpx_telltale_insights_%s_%s", runtime.GOOS, runtime.GOARCH))
	cmd := exec.Command("go", "build", "-tags", "arrow_json_stdlib", "-o", bin, "./datasource/pkg")
	cmd.Dir = ".."
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build the plugin: %v\n%s", err, out)
	}
	return bin
}

// pluginClient is the plugin process as Grafana holds it.
type pluginClient struct {
	data grpcplugin.DataClient
	pctx backend.PluginContext
}

// launchPlugin starts the plugin binary with go-plugin and Grafana's
// handshake, configured with the provisioned Telltale datasource's settings
// and the stack's Prometheus as URL.
func launchPlugin(t *testing.T, bin, promURL string) *pluginClient {
	t.Helper()
	ds := provisioned(t)["telltale"]
	jd, err := json.Marshal(ds.JSONData)
	if err != nil {
		t.Fatal(err)
	}
	p := plugintest.Launch(t, bin)
	return &pluginClient{data: p.Data, pctx: backend.PluginContext{
		OrgID: 1, PluginID: plugin.PluginID,
		DataSourceInstanceSettings: &backend.DataSourceInstanceSettings{
			ID: 1, UID: ds.UID, Name: ds.Name, Type: ds.Type, URL: promURL, JSONData: jd, Updated: time.Now(),
		},
	}}
}

// query runs one Telltale query over [from, to].
func (pc *pluginClient) query(ctx context.Context, model map[string]any, from, to time.Time) (data.Frames, error) {
	raw, err := json.Marshal(model)
	if err != nil {
		return nil, err
	}
	qt, _ := model["queryType"].(string)
	req := &backend.QueryDataRequest{
		PluginContext: pc.pctx,
		Headers:       map[string]string{},
		Queries: []backend.DataQuery{{
			RefID: "A", QueryType: qt, JSON: raw, Interval: liveInterval,
			MaxDataPoints: int64(to.Sub(from) / liveInterval), TimeRange: backend.TimeRange{From: from, To: to},
		}},
	}
	resp, err := pc.data.QueryData(ctx, backend.ToProto().QueryDataRequest(req))
	if err != nil {
		return nil, err
	}
	out, err := backend.FromProto().QueryDataResponse(resp)
	if err != nil {
		return nil, err
	}
	dr := out.Responses["A"]
	if dr.Error != nil {
		return nil, dr.Error
	}
	return dr.Frames, nil
}

// runTarget runs one query of a panel and returns how many points or rows
// it yields, after the panel's field filter for Telltale frames.
func runTarget(ctx context.Context, prom promv1.API, pc *pluginClient, tg map[string]any, p panel, values map[string]string, from, to time.Time) (int, error) {
	ref := targetDatasource(tg)
	if ref == nil {
		return 0, fmt.Errorf("no datasource")
	}
	switch ref.Type {
	case promType:
		expr, err := interpolate(tg["expr"].(string), values)
		if err != nil {
			return 0, err
		}
		if instant, _ := tg["instant"].(bool); instant {
			v, _, _, err := prom.Query(ctx, expr, to)
			if err != nil {
				return 0, fmt.Errorf("%s: %w", expr, err)
			}
			return len(v.(model.Vector)), nil
		}
		v, _, _, err := prom.QueryRange(ctx, expr, promv1.Range{Start: from, End: to, Step: liveInterval})
		if err != nil {
			return 0, fmt.Errorf("%s: %w", expr, err)
		}
		n := 0
		for _, s := range v.(model.Matrix) {
			n += len(s.Values)
		}
		return n, nil
	case telltaleType:
		m := map[string]any{}
		for k, v := range tg {
			if s, ok := v.(string); ok && k != "refId" {
				if s, err := interpolate(s, values); err == nil {
					v = s
				} else {
					return 0, err
				}
			}
			m[k] = v
		}
		frames, err := pc.query(ctx, m, from, to)
		if err != nil {
			return 0, fmt.Errorf("%v: %w", m, err)
		}
		return rowsShown(frames, p), nil
	}
	return 0, fmt.Errorf("datasource type %q", ref.Type)
}

// resolveVariables gives every variable of a dashboard the value Grafana
// would give it on load: datasource variables their provisioned default,
// query variables the result of their query (first value, or All), service
// the demo's checkout; plus Grafana's interval variables.
func resolveVariables(ctx context.Context, d *dashboard, prom promv1.API, from, to time.Time) (map[string]string, error) {
	values := map[string]string{
		"__interval": promDuration(liveInterval), "__interval_ms": fmt.Sprint(liveInterval.Milliseconds()),
		"__rate_interval": promDuration(liveRateInterval),
		"__range":         promDuration(to.Sub(from).Truncate(time.Second)), "__range_s": fmt.Sprint(int(to.Sub(from).Seconds())),
	}
	for _, v := range d.Templating.List {
		switch v.Type {
		case "datasource":
			values[v.Name], _ = v.Current["value"].(string)
		case "query":
			if v.Name == "service" && !v.IncludeAll {
				values[v.Name] = liveService
				continue
			}
			q, err := interpolate(v.queryString(), values)
			if err != nil {
				return nil, fmt.Errorf("variable %s: %w", v.Name, err)
			}
			opts, err := variableOptions(ctx, prom, q, v.Regex, v.Sort, from, to)
			if err != nil {
				return nil, fmt.Errorf("variable %s: %w", v.Name, err)
			}
			if len(opts) == 0 {
				return nil, fmt.Errorf("variable %s: %s has no values", v.Name, q)
			}
			switch {
			case v.IncludeAll && v.AllValue != "":
				values[v.Name] = v.AllValue
			case v.IncludeAll:
				values[v.Name] = "(" + strings.Join(opts, "|") + ")"
			default:
				values[v.Name] = opts[0]
			}
		default:
			return nil, fmt.Errorf("variable %s: type %s is not resolved by this test", v.Name, v.Type)
		}
	}
	return values, nil
}

// variableOptions runs a Prometheus variable query the way Grafana's
// Prometheus datasource does and returns its options.
func variableOptions(ctx context.Context, prom promv1.API, q, regex string, sortMode int, from, to time.Time) ([]string, error) {
	var opts []string
	q = strings.TrimSpace(q)
	switch {
	case strings.HasPrefix(q, "label_values("):
		args := q[len("label_values(") : len(q)-1]
		i := strings.LastIndexByte(args, ',')
		sel, label := args[:i], strings.TrimSpace(args[i+1:])
		vals, _, _, err := prom.LabelValues(ctx, label, []string{sel}, from, to)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", q, err)
		}
		for _, v := range vals {
			opts = append(opts, string(v))
		}
	case strings.HasPrefix(q, "query_result("):
		expr := q[len("query_result(") : len(q)-1]
		v, _, _, err := prom.Query(ctx, expr, to)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", q, err)
		}
		for _, s := range v.(model.Vector) {
			opts = append(opts, fmt.Sprintf("%s %s %d", s.Metric, s.Value, s.Timestamp))
		}
	default:
		return nil, fmt.Errorf("query %q is not label_values or query_result", q)
	}
	if regex != "" {
		re, err := regexp.Compile(strings.Trim(regex, "/"))
		if err != nil {
			return nil, err
		}
		var out []string
		for _, o := range opts {
			if m := re.FindStringSubmatch(o); m != nil {
				v := m[0]
				if len(m) > 1 {
					v = m[1]
				}
				if !slices.Contains(out, v) {
					out = append(out, v)
				}
			}
		}
		opts = out
	}
	if sortMode == 1 {
		sort.Strings(opts)
	}
	return opts, nil
}

// promDuration writes d the way Grafana writes intervals.
func promDuration(d time.Duration) string {
	if d%time.Minute == 0 {
		return fmt.Sprintf("%dm", int(d/time.Minute))
	}
	return fmt.Sprintf("%ds", int(d/time.Second))
}
