package plugin

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/grafana/grafana-plugin-sdk-go/backend"
	"github.com/prometheus/prometheus/model/labels"
)

func dataQuery(queryType, js string) backend.DataQuery {
	return backend.DataQuery{
		RefID:     "A",
		QueryType: queryType,
		JSON:      []byte(js),
		Interval:  time.Minute,
		TimeRange: backend.TimeRange{From: shopFrom, To: shopTo},
	}
}

func TestParseQuery(t *testing.T) {
	for _, tc := range []struct {
		name      string
		queryType string
		json      string
		want      QueryModel
		wantErr   string
	}{
		{name: "kpi, all", queryType: "kpi", json: `{"queryType":"kpi"}`, want: QueryModel{QueryType: "kpi"}},
		{name: "kpi, one, with Grafana's own fields", queryType: "kpi", json: `{"refId":"A","datasource":{"type":"telltale-insights-datasource","uid":"x"},"intervalMs":60000,"maxDataPoints":1000,"kpi":"orders"}`, want: QueryModel{QueryType: "kpi", KPI: "orders"}},
		{name: "queryType only in the JSON", queryType: "", json: `{"queryType":"deploys","service":"check.*"}`, want: QueryModel{QueryType: "deploys", Service: "check.*"}},
		{name: "anomalies selector", queryType: "anomalies", json: `{"selector":"up{job=\"api\"}"}`, want: QueryModel{QueryType: "anomalies", Selector: `up{job="api"}`}},
		{name: "anomalies kpi", queryType: "anomalies", json: `{"kpi":"orders"}`, want: QueryModel{QueryType: "anomalies", KPI: "orders"}},
		{name: "servicemap filters", queryType: "servicemap", json: `{"service":"^(a|b)$","host":"shop-.*"}`, want: QueryModel{QueryType: "servicemap", Service: "^(a|b)$", Host: "shop-.*"}},
		{name: "insights", queryType: "insights", json: `{"kpi":"orders"}`, want: QueryModel{QueryType: "insights", KPI: "orders"}},
		{name: "backend variable replaced", queryType: "anomalies", json: `{"selector":"up{job=\"api\",le=\"$__interval\"}"}`, want: QueryModel{QueryType: "anomalies", Selector: `up{job="api",le="60s"}`}},
		{name: "empty JSON is a kpi query for all", queryType: "kpi", json: ``, want: QueryModel{QueryType: "kpi"}},

		{name: "empty", queryType: "", json: `{}`, wantErr: "queryType is missing: want one of kpi, anomalies, servicemap, insights, deploys"},
		{name: "unknown type", queryType: "graph", json: `{}`, wantErr: `queryType "graph" is not known`},
		{name: "truncated", queryType: "kpi", json: `{"kpi":"ord`, wantErr: "the query is not valid JSON"},
		{name: "malformed", queryType: "kpi", json: `kpi=orders`, wantErr: "the query is not valid JSON"},
		{name: "wrong type", queryType: "kpi", json: `{"kpi":5}`, wantErr: `field "kpi" must be a string, not a JSON number`},
		{name: "anomalies without kpi or selector", queryType: "anomalies", json: `{}`, wantErr: "needs a KPI or a series selector"},
		{name: "anomalies with an expression", queryType: "anomalies", json: `{"selector":"rate(up[5m])"}`, wantErr: `selector "rate(up[5m])" is not a PromQL series selector`},
		{name: "insights without kpi", queryType: "insights", json: `{}`, wantErr: "an insights query needs a KPI"},
		{name: "bad service regex", queryType: "servicemap", json: `{"service":"(a"}`, wantErr: `service filter "(a" is not a valid regular expression`},
		{name: "bad host regex", queryType: "servicemap", json: `{"host":"*"}`, wantErr: `host filter "*" is not a valid regular expression`},
		{name: "selector that narrows nothing down", queryType: "anomalies", json: `{"seleCtor":"{}"}`, wantErr: `selector "{}" matches every series`},
		{name: "selector of empty-matching matchers", queryType: "anomalies", json: `{"selector":"{job=~\".*\"}"}`, wantErr: "matches every series"},
		{name: "dashboard variable left", queryType: "deploys", json: `{"service":"$service"}`, wantErr: "service: template variable $service is not known to the backend"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q, err := ParseQuery(dataQuery(tc.queryType, tc.json), false)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, q.QueryModel); diff != "" {
				t.Errorf("model (-want +got):\n%s", diff)
			}
		})
	}
}

// TestParseQueryBounds: a negative maxDataPoints is refused, and a huge
// bad selector comes back as a short error.
func TestParseQueryBounds(t *testing.T) {
	dq := dataQuery("kpi", `{}`)
	dq.Interval, dq.MaxDataPoints = 0, -5
	if _, err := ParseQuery(dq, false); err == nil || !strings.Contains(err.Error(), "maxDataPoints is -5: want a positive number") {
		t.Errorf("error %v, want one about maxDataPoints", err)
	}
	huge := strings.Repeat("{", 1<<20)
	_, err := ParseQuery(dataQuery("anomalies", `{"selector":"`+huge+`"}`), false)
	if err == nil || len(err.Error()) > 2000 || !strings.Contains(err.Error(), "(1048576 bytes)") {
		t.Errorf("error of %d bytes for a 1 MiB selector, want a short one that gives its size", len(fmt.Sprint(err)))
	}
}

func TestParseQueryTimeRange(t *testing.T) {
	dq := dataQuery("kpi", `{}`)
	dq.TimeRange.From = dq.TimeRange.To
	if _, err := ParseQuery(dq, false); err == nil || !strings.Contains(err.Error(), "the time range is empty") {
		t.Errorf("error %v, want an empty time range", err)
	}
}

func TestQueryStep(t *testing.T) {
	day := backend.TimeRange{From: shopFrom, To: shopFrom.Add(24 * time.Hour)}
	week := backend.TimeRange{From: shopFrom, To: shopFrom.Add(7 * 24 * time.Hour)}
	for _, tc := range []struct {
		name string
		dq   backend.DataQuery
		want time.Duration
	}{
		{"panel interval", backend.DataQuery{Interval: 30 * time.Second, TimeRange: day}, 30 * time.Second},
		{"from max data points", backend.DataQuery{MaxDataPoints: 1440, TimeRange: day}, time.Minute},
		{"default max data points", backend.DataQuery{TimeRange: day}, 87 * time.Second},
		{"widened to Prometheus's 11,000 points", backend.DataQuery{Interval: 15 * time.Second, TimeRange: week}, 55 * time.Second},
		{"never below a second", backend.DataQuery{Interval: time.Millisecond, TimeRange: backend.TimeRange{From: shopFrom, To: shopFrom.Add(time.Minute)}}, time.Second},
		{"rounded up to seconds", backend.DataQuery{Interval: 1500 * time.Millisecond, TimeRange: day}, 8 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := queryStep(tc.dq); got != tc.want {
				t.Errorf("step %s, want %s", got, tc.want)
			}
		})
	}
}

func TestInterpolate(t *testing.T) {
	scope := templateScope{From: shopFrom, To: shopFrom.Add(2 * time.Hour), Interval: 30 * time.Second}
	for _, tc := range []struct {
		in, want, wantErr string
	}{
		{in: `rate(x[$__rate_interval])`, want: `rate(x[60s])`},
		{in: `rate(x[${__interval}])`, want: `rate(x[30s])`},
		{in: `rate(x[[[__interval]]])`, want: `rate(x[30s])`},
		{in: `x offset $__range`, want: `x offset 7200s`},
		{in: `$__interval_ms $__range_s $__range_ms $__from $__to`, want: `30000 7200 7200000 1793527200000 1793534400000`},
		{in: `${__from:date}`, want: `1793527200000`},
		{in: `^api$`, want: `^api$`},
		{in: `a$|b$`, want: `a$|b$`},
		{in: `no variables`, want: `no variables`},
		{in: ``, want: ``},
		{in: `up{job="$job"}`, wantErr: `template variable $job is not known to the backend`},
		{in: `up{job="${job:regex}"}`, wantErr: `template variable ${job:regex} is not known`},
		{in: `up{job="[[job]]"}`, wantErr: `template variable [[job]] is not known`},
	} {
		got, err := interpolate(tc.in, scope)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("interpolate(%q): error %v, want %q", tc.in, err, tc.wantErr)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("interpolate(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

func TestRateIntervalAtLeastFourScrapes(t *testing.T) {
	scope := templateScope{From: shopFrom, To: shopTo, Interval: time.Second}
	if got := scope.values()["__rate_interval"]; got != "60s" {
		t.Errorf("$__rate_interval at a 1s interval = %s, want 60s (four 15s scrapes)", got)
	}
}

// FuzzParseQuery feeds arbitrary JSON and query types to the parser: it must
// return a query or an error, never panic, and an accepted query must keep
// the promises the handlers rely on.
func FuzzParseQuery(f *testing.F) {
	for _, seed := range []struct{ qt, js string }{
		{"kpi", `{"queryType":"kpi"}`},
		{"kpi", `{"kpi":"orders"}`},
		{"anomalies", `{"selector":"up{job=\"api\"}"}`},
		{"anomalies", `{"selector":"{__name__=~\"telltale_.*\"}"}`},
		{"anomalies", `{"kpi":"$__interval"}`},
		{"servicemap", `{"service":"^(a|b)$","host":".*"}`},
		{"insights", `{"kpi":"orders"}`},
		{"deploys", `{"service":"[[svc]]"}`},
		{"", `{"queryType":"deploys"}`},
		{"kpi", `{"kpi":5}`},
		{"kpi", `{"kpi":"ord`},
		{"kpi", ``},
		{"kpi", `null`},
		{"kpi", `[]`},
		// Found by fuzzing: field names match case-insensitively, and "{}"
		// is a selector that narrows nothing down.
		{"anomalies", `{"queryType":"anomalies","seleCtor":"{}"}`},
		{"anomalies", `{"selector":"{job=~\".*\"}"}`},
	} {
		f.Add(seed.qt, seed.js)
	}
	f.Fuzz(func(t *testing.T, queryType, js string) {
		q, err := ParseQuery(dataQuery(queryType, js), false)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("empty error message")
			}
			if len(err.Error()) > 4*maxEcho+500 {
				t.Fatalf("a %d-byte error for a %d-byte query: errors must not echo the input whole", len(err.Error()), len(js))
			}
			return
		}
		switch q.QueryType {
		case QueryTypeKPI, QueryTypeServiceMap, QueryTypeDeploys:
		case QueryTypeAnomalies:
			if q.KPI == "" && !slices.ContainsFunc(q.Matchers, func(m *labels.Matcher) bool { return !m.Matches("") }) {
				t.Fatalf("anomalies query accepted without a KPI or a selector that narrows the series down: %+v", q.QueryModel)
			}
		case QueryTypeInsights:
			if q.KPI == "" {
				t.Fatalf("insights query accepted without a KPI: %+v", q.QueryModel)
			}
		default:
			t.Fatalf("accepted unknown query type %q", q.QueryType)
		}
		if q.Step < time.Second {
			t.Fatalf("step %s below a second", q.Step)
		}
		for _, s := range []string{q.KPI, q.Selector, q.Service, q.Host} {
			if templateVarRE.MatchString(s) {
				t.Fatalf("template variable left in %q", s)
			}
		}
	})
}
