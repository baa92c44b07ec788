package plugin

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/grafana/grafana-plugin-sdk-go/backend"
	"github.com/prometheus/common/model"

	"github.com/telltale-dev/telltale/pkg/schema"
)

func TestParseSettings(t *testing.T) {
	obj := 1.5
	for _, tc := range []struct {
		name    string
		url     string
		json    string
		secure  map[string]string
		want    Settings
		wantErr string
	}{
		{name: "minimal", url: "http://prom:9090/", want: Settings{URL: "http://prom:9090", Timeout: 30 * time.Second, AuthType: AuthNone}},
		{name: "timeout as string", url: "https://prom", json: `{"timeout":"5"}`, want: Settings{URL: "https://prom", Timeout: 5 * time.Second, AuthType: AuthNone}},
		{name: "basic", url: "http://prom", json: `{"authType":"basic","basicAuthUser":"u"}`, secure: map[string]string{"basicAuthPassword": "p"},
			want: Settings{URL: "http://prom", Timeout: 30 * time.Second, AuthType: AuthBasic, BasicAuthUser: "u", BasicAuthPassword: "p"}},
		{name: "bearer", url: "http://prom", json: `{"authType":"bearer"}`, secure: map[string]string{"bearerToken": "t"},
			want: Settings{URL: "http://prom", Timeout: 30 * time.Second, AuthType: AuthBearer, BearerToken: "t"}},
		{name: "kpis", url: "http://prom", json: `{"kpis":[{"name":"orders","expr":"sum(rate(o[$__rate_interval]))","unit":"reqps","objective":"1.5"},{"name":"lat","expr":"x","direction":"lower","objective":null}]}`,
			want: Settings{URL: "http://prom", Timeout: 30 * time.Second, AuthType: AuthNone, KPIs: []KPI{
				{Name: "orders", Expr: "sum(rate(o[$__rate_interval]))", Unit: "reqps", Objective: &obj, Direction: DirectionHigher, Source: SourceSettings},
				{Name: "lat", Expr: "x", Direction: DirectionLower, Source: SourceSettings},
			}}},

		{name: "empty URL", url: "", wantErr: "the Prometheus URL is empty"},
		{name: "URL without scheme", url: "prom:9090", wantErr: `the Prometheus URL "prom:9090" is not an http:// or https:// URL`},
		{name: "malformed jsonData", url: "http://prom", json: `{"timeout":`, wantErr: "read jsonData"},
		{name: "bad timeout", url: "http://prom", json: `{"timeout":"soon"}`, wantErr: `timeout "soon" is not a number of seconds`},
		{name: "negative timeout", url: "http://prom", json: `{"timeout":-1}`, wantErr: "timeout -1 is not a number of seconds"},
		{name: "unknown auth", url: "http://prom", json: `{"authType":"oauth"}`, wantErr: `authType "oauth" is not known: want "none", "basic" or "bearer"`},
		{name: "basic without user", url: "http://prom", json: `{"authType":"basic"}`, wantErr: "basic authentication is selected but the user is empty"},
		{name: "bearer without token", url: "http://prom", json: `{"authType":"bearer"}`, wantErr: "bearer authentication is selected but no token is saved"},
		{name: "kpi without name", url: "http://prom", json: `{"kpis":[{"expr":"x"}]}`, wantErr: `KPI 1 (""): the name is empty`},
		{name: "kpi without expr", url: "http://prom", json: `{"kpis":[{"name":"a"}]}`, wantErr: `KPI 1 ("a"): the PromQL expression is empty`},
		{name: "kpi bad PromQL", url: "http://prom", json: `{"kpis":[{"name":"a","expr":"sum(x"}]}`, wantErr: `KPI 1 ("a"): the PromQL expression does not parse`},
		{name: "kpi bad direction", url: "http://prom", json: `{"kpis":[{"name":"a","expr":"x","direction":"up"}]}`, wantErr: `direction "up": want "higher" or "lower"`},
		{name: "kpi bad objective", url: "http://prom", json: `{"kpis":[{"name":"a","expr":"x","objective":"lots"}]}`, wantErr: `objective "lots" is not a number`},
		{name: "kpi twice", url: "http://prom", json: `{"kpis":[{"name":"a","expr":"x"},{"name":"a","expr":"y"}]}`, wantErr: `KPI 2: the name "a" is used twice`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseSettings(backend.DataSourceInstanceSettings{URL: tc.url, JSONData: []byte(tc.json), DecryptedSecureJSONData: tc.secure})
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("settings (-want +got):\n%s", diff)
			}
		})
	}
}

// query runs one query through QueryData and returns its response.
func query(t *testing.T, d *Datasource, q map[string]any) backend.DataResponse {
	t.Helper()
	resp, err := d.QueryData(context.Background(), shopRequest(q))
	if err != nil {
		t.Fatalf("QueryData: %v", err)
	}
	return resp.Responses["A"]
}

func TestQueryErrors(t *testing.T) {
	f := newFakeProm(t)
	kpiFixtures(f)
	f.failures[`sum(rate(shop_orders_total[75s]))`] = `1:10: parse error: unexpected character`
	for i := 0; i <= maxOnDemandSeries; i++ {
		f.raw = append(f.raw, fakeSeries{Metric: model.Metric{"__name__": "wide", "i": model.LabelValue(fmt.Sprint(i))}, F: constant(1)})
	}
	for i := 0; i <= MaxAnswerSeries; i++ {
		m := model.Metric{"__name__": model.LabelValue(schema.AnomalyScore.Name), "metric": "wide_scored", "i": model.LabelValue(fmt.Sprint(i))}
		f.ranged[schema.AnomalyScore.Name+`{metric="wide_scored"}`] = append(f.ranged[schema.AnomalyScore.Name+`{metric="wide_scored"}`], fakeSeries{Metric: m, F: constant(0.1)})
	}
	d := newTestDatasource(t, f, "")

	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close()
	down := newTestDatasourceAt(t, closed.URL, `{}`, nil)

	refused := newFakeProm(t)
	refused.bearer = "other"
	unauthorized := newTestDatasourceAt(t, refused.srv.URL, `{"authType":"bearer"}`, map[string]string{"bearerToken": "s3cret"})

	badSettings, err := NewDatasource(context.Background(), backend.DataSourceInstanceSettings{URL: "prom:9090"})
	if err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name       string
		d          *Datasource
		q          map[string]any
		status     backend.Status
		downstream bool
		msg        string
	}{
		{"unknown KPI", d, map[string]any{"queryType": "kpi", "kpi": "revenue"}, backend.StatusBadRequest, false, `kpi query: KPI "revenue" is not known: known KPIs are orders, checkout_latency`},
		{"Prometheus rejects the KPI's PromQL", d, map[string]any{"queryType": "kpi", "kpi": "orders"}, backend.StatusBadRequest, true, "unexpected character"},
		{"too many series to score on demand", d, map[string]any{"queryType": "anomalies", "selector": "wide"}, backend.StatusBadRequest, false, "selector wide matches more than 500 series; narrow it, or run the detector"},
		{"too many detector series to show", d, map[string]any{"queryType": "anomalies", "selector": "wide_scored"}, backend.StatusBadRequest, false,
			fmt.Sprintf(schema.AnomalyScore.Name+`{metric="wide_scored"} has %d series; an anomalies query shows at most %d: narrow the selector`, MaxAnswerSeries+1, MaxAnswerSeries)},
		{"invalid query", d, map[string]any{"queryType": "insights"}, backend.StatusBadRequest, false, "invalid insights query: an insights query needs a KPI"},
		{"unknown query type", d, map[string]any{"queryType": "logs"}, backend.StatusBadRequest, false, `queryType "logs" is not known`},
		{"Prometheus unreachable", down, map[string]any{"queryType": "servicemap"}, backend.StatusBadGateway, true, "connection refused"},
		{"authentication refused", unauthorized, map[string]any{"queryType": "deploys"}, backend.StatusUnauthorized, true, "authentication was refused"},
		{"bad settings", badSettings.(*Datasource), map[string]any{"queryType": "kpi"}, backend.StatusBadRequest, false, `datasource settings: the Prometheus URL "prom:9090"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dr := query(t, tc.d, tc.q)
			if dr.Error == nil {
				t.Fatalf("no error; frames %v", dr.Frames)
			}
			if !strings.Contains(dr.Error.Error(), tc.msg) {
				t.Errorf("error %q, want it to contain %q", dr.Error, tc.msg)
			}
			if dr.Status != tc.status {
				t.Errorf("status %v, want %v", dr.Status, tc.status)
			}
			if got := dr.ErrorSource == backend.ErrorSourceDownstream; got != tc.downstream {
				t.Errorf("error source %q, want downstream %v", dr.ErrorSource, tc.downstream)
			}
		})
	}
}

// newTestDatasourceAt returns a datasource for a URL and settings.
func newTestDatasourceAt(tb testing.TB, url, jsonData string, secure map[string]string) *Datasource {
	tb.Helper()
	inst, err := NewDatasource(context.Background(), backend.DataSourceInstanceSettings{Type: PluginID, URL: url, JSONData: []byte(jsonData), DecryptedSecureJSONData: secure})
	if err != nil {
		tb.Fatal(err)
	}
	return inst.(*Datasource)
}

// TestQueriesAnsweredSeparately: one bad query does not spoil the others of
// the same request, of the same or of another type.
func TestQueriesAnsweredSeparately(t *testing.T) {
	f := newFakeProm(t)
	kpiFixtures(f)
	deployFixtures(f)
	d := newTestDatasource(t, f, "")
	resp, err := d.QueryData(context.Background(), shopRequest(
		map[string]any{"queryType": "kpi", "kpi": "orders"},
		map[string]any{"queryType": "kpi", "kpi": "nope"},
		map[string]any{"queryType": "deploys"},
		map[string]any{"queryType": "anomalies"},
	))
	if err != nil {
		t.Fatal(err)
	}
	for ref, wantErr := range map[string]bool{"A": false, "B": true, "C": false, "D": true} {
		dr := resp.Responses[ref]
		if (dr.Error != nil) != wantErr {
			t.Errorf("%s: error %v, want error %v", ref, dr.Error, wantErr)
		}
		if !wantErr && len(dr.Frames) == 0 {
			t.Errorf("%s: no frames", ref)
		}
		for _, fr := range dr.Frames {
			if fr.RefID != ref {
				t.Errorf("%s: frame %q has refId %q", ref, fr.Name, fr.RefID)
			}
		}
	}
}

func TestAuthReachesPrometheus(t *testing.T) {
	for _, tc := range []struct {
		name   string
		setup  func(*fakeProm)
		json   string
		secure map[string]string
	}{
		{"bearer", func(f *fakeProm) { f.bearer = "tok" }, `{"authType":"bearer"}`, map[string]string{"bearerToken": "tok"}},
		{"basic", func(f *fakeProm) { f.basicUser, f.basicPassword = "grafana", "pw" }, `{"authType":"basic","basicAuthUser":"grafana"}`, map[string]string{"basicAuthPassword": "pw"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeProm(t)
			tc.setup(f)
			deployFixtures(f)
			d := newTestDatasourceAt(t, f.srv.URL, tc.json, tc.secure)
			if dr := query(t, d, map[string]any{"queryType": "deploys"}); dr.Error != nil {
				t.Fatalf("with the right credentials: %v", dr.Error)
			}
			wrong := newTestDatasourceAt(t, f.srv.URL, tc.json, map[string]string{"bearerToken": "x", "basicAuthPassword": "x"})
			if dr := query(t, wrong, map[string]any{"queryType": "deploys"}); dr.Status != backend.StatusUnauthorized {
				t.Fatalf("with wrong credentials: status %v, error %v", dr.Status, dr.Error)
			}
		})
	}
}

func TestCheckHealth(t *testing.T) {
	exporter := func(f *fakeProm) {
		f.instant["count(count by (service) ("+schema.ServiceInfo.Name+"))"] = model.Vector{sample(model.Metric{}, 5)}
	}
	detector := func(f *fakeProm) {
		f.instant["count("+schema.AnomalyScore.Name+")"] = model.Vector{sample(model.Metric{}, 42)}
	}
	for _, tc := range []struct {
		name   string
		setup  func(*fakeProm)
		status backend.HealthStatus
		msg    []string
	}{
		{"all there", func(f *fakeProm) { exporter(f); detector(f) }, backend.HealthStatusOk,
			[]string{"Prometheus 2.42.0-fake at", "remote read works", "exporter series for 5 services", "detector scores 42 series"}},
		{"no detector", exporter, backend.HealthStatusOk,
			[]string{"Note: no detector series found (" + schema.AnomalyScore.Name + "): anomalies are computed on demand", "honor_labels: true"}},
		{"no exporter", detector, backend.HealthStatusError,
			[]string{"no Telltale exporter series found (" + schema.ServiceInfo.Name + "): run the exporter"}},
		{"remote read disabled, no detector", func(f *fakeProm) { exporter(f); f.noRemoteRead = true }, backend.HealthStatusError,
			[]string{"remote read is disabled or not served at", "(HTTP 404)", "no detector series found"}},
		{"remote read disabled, detector there", func(f *fakeProm) { exporter(f); detector(f); f.noRemoteRead = true }, backend.HealthStatusOk,
			[]string{"remote read is disabled or not served"}},
		{"authentication refused", func(f *fakeProm) { f.bearer = "other" }, backend.HealthStatusError,
			[]string{"refused authentication: check the authentication settings"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeProm(t)
			tc.setup(f)
			d := newTestDatasource(t, f, "")
			res, err := d.CheckHealth(context.Background(), &backend.CheckHealthRequest{})
			if err != nil {
				t.Fatal(err)
			}
			if res.Status != tc.status {
				t.Errorf("status %v, want %v; message %q", res.Status, tc.status, res.Message)
			}
			for _, m := range tc.msg {
				if !strings.Contains(res.Message, m) {
					t.Errorf("message %q lacks %q", res.Message, m)
				}
			}
		})
	}

	t.Run("unreachable", func(t *testing.T) {
		closed := httptest.NewServer(http.NotFoundHandler())
		closed.Close()
		d := newTestDatasourceAt(t, closed.URL, `{}`, nil)
		res, _ := d.CheckHealth(context.Background(), &backend.CheckHealthRequest{})
		if res.Status != backend.HealthStatusError || !strings.Contains(res.Message, "is unreachable: check the URL") {
			t.Errorf("got %v %q", res.Status, res.Message)
		}
	})
	t.Run("not Prometheus", func(t *testing.T) {
		srv := httptest.NewServer(http.NotFoundHandler())
		defer srv.Close()
		d := newTestDatasourceAt(t, srv.URL, `{}`, nil)
		res, _ := d.CheckHealth(context.Background(), &backend.CheckHealthRequest{})
		if res.Status != backend.HealthStatusError || !strings.Contains(res.Message, "does not serve Prometheus's HTTP API") {
			t.Errorf("got %v %q", res.Status, res.Message)
		}
	})
	t.Run("password in the URL", func(t *testing.T) {
		// Neither the message nor the details repeat a password written
		// into the URL, whether Prometheus answers or not.
		for _, up := range []bool{true, false} {
			f := newFakeProm(t)
			exporter(f)
			u := strings.Replace(f.srv.URL, "http://", "http://user:S3cretPw@", 1)
			if !up {
				closed := httptest.NewServer(http.NotFoundHandler())
				closed.Close()
				u = strings.Replace(closed.URL, "http://", "http://user:S3cretPw@", 1)
			}
			d := newTestDatasourceAt(t, u, `{}`, nil)
			res, _ := d.CheckHealth(context.Background(), &backend.CheckHealthRequest{})
			if strings.Contains(res.Message, "S3cretPw") || strings.Contains(string(res.JSONDetails), "S3cretPw") {
				t.Errorf("Prometheus up=%v: the password shows: %q %s", up, res.Message, res.JSONDetails)
			}
			if !strings.Contains(res.Message, "user:xxxxx@") {
				t.Errorf("Prometheus up=%v: message %q does not name the URL, redacted", up, res.Message)
			}
		}
	})
	t.Run("bad settings", func(t *testing.T) {
		d := newTestDatasourceAt(t, "", `{}`, nil)
		res, _ := d.CheckHealth(context.Background(), &backend.CheckHealthRequest{})
		if res.Status != backend.HealthStatusError || !strings.Contains(res.Message, "Settings: the Prometheus URL is empty") {
			t.Errorf("got %v %q", res.Status, res.Message)
		}
	})
}

// callResource calls a resource and returns its status and body.
func callResource(t *testing.T, d *Datasource, method, path string) (int, []byte) {
	t.Helper()
	var status int
	var body []byte
	// Grafana passes the path without the query string, and the URL with.
	p, _, _ := strings.Cut(path, "?")
	err := d.CallResource(context.Background(), &backend.CallResourceRequest{Method: method, Path: p, URL: path},
		backend.CallResourceResponseSenderFunc(func(r *backend.CallResourceResponse) error {
			status = r.Status
			body = append(body, r.Body...)
			return nil
		}))
	if err != nil {
		t.Fatal(err)
	}
	return status, body
}

func TestResources(t *testing.T) {
	f := newFakeProm(t)
	info, obj := kpiInfoExprs(resourceWindow)
	f.instant[info] = model.Vector{sample(model.Metric{"kpi": "checkout_latency", "metric": "shop_checkout_duration_seconds", "unit": "s", "direction": "lower", "type": "histogram"}, 1)}
	f.instant[obj] = model.Vector{sample(model.Metric{"kpi": "checkout_latency"}, 0.5)}
	f.labelValues["service"] = []string{"checkout", "payments"}
	f.labelValues["__name__"] = []string{"shop_orders_total", "up"}
	d := newTestDatasource(t, f, "")

	status, body := callResource(t, d, http.MethodGet, "kpis")
	var kpis []KPI
	if err := json.Unmarshal(body, &kpis); status != http.StatusOK || err != nil {
		t.Fatalf("kpis: %d %s (%v)", status, body, err)
	}
	var names []string
	for _, k := range kpis {
		names = append(names, k.Name+"/"+k.Source+"/"+k.Expr)
	}
	if diff := cmp.Diff([]string{
		"orders/settings/sum(rate(shop_orders_total[$__rate_interval]))",
		"checkout_latency/discovered/histogram_quantile(0.95, sum by (le) (rate(shop_checkout_duration_seconds_bucket[$__rate_interval])))",
	}, names); diff != "" {
		t.Errorf("kpis (-want +got):\n%s", diff)
	}

	for path, want := range map[string][]string{"services": {"checkout", "payments"}, "metrics": {"shop_orders_total", "up"}} {
		status, body := callResource(t, d, http.MethodGet, path)
		var got []string
		if err := json.Unmarshal(body, &got); status != http.StatusOK || err != nil {
			t.Fatalf("%s: %d %s (%v)", path, status, body, err)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("%s (-want +got):\n%s", path, diff)
		}
	}

	for _, tc := range []struct {
		method, path string
		status       int
		msg          string
	}{
		{http.MethodGet, "nope", http.StatusNotFound, "the resources are kpis, services and metrics"},
		{http.MethodPost, "kpis", http.StatusMethodNotAllowed, "use GET"},
		{http.MethodGet, "services?from=yesterday", http.StatusBadRequest, `yesterday\" is not Unix milliseconds`},
	} {
		status, body := callResource(t, d, tc.method, tc.path)
		if status != tc.status || !strings.Contains(string(body), tc.msg) {
			t.Errorf("%s %s: %d %s, want %d with %q", tc.method, tc.path, status, body, tc.status, tc.msg)
		}
	}
}

// TestAnswerSizeLimits: an anomalies answer is bounded in series and in
// points, and the error says which bound was hit and what narrows it.
func TestAnswerSizeLimits(t *testing.T) {
	day := newGrid(shopFrom, shopFrom.Add(24*time.Hour), time.Second) // 86,401 points
	for _, tc := range []struct {
		n    int
		g    grid
		want string // "" for no error
	}{
		{MaxAnswerSeries, newGrid(shopFrom, shopTo, time.Minute), ""},
		{MaxAnswerSeries + 1, newGrid(shopFrom, shopTo, time.Minute), "an anomalies query shows at most"},
		{MaxAnswerPoints / day.n, day, ""},
		{MaxAnswerPoints/day.n + 1, day, "shorten the range or widen the step"},
	} {
		err := checkAnswerSize("x", tc.n, tc.g)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%d series of %d points: %v, want no error", tc.n, tc.g.n, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%d series of %d points: %v, want an error saying %q", tc.n, tc.g.n, err, tc.want)
		}
	}
}
