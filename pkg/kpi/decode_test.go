package kpi_test

import (
	"slices"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"

	"github.com/telltale-dev/telltale/pkg/kpi"
	"github.com/telltale-dev/telltale/pkg/schema"
)

// TestDecodeRoundTrip decodes the info series of a registry with every kind
// of KPI and checks each declaration against what the registry exposes: the
// family named exists with the declared type, and the sample names the
// detector scores are among its series' names (so a KPI is found through
// its info and read as a rate exactly when it counts).
func TestDecodeRoundTrip(t *testing.T) {
	mfs, err := shopRegistry(t).Gather()
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]*dto.MetricFamily{}
	var series []string
	for _, mf := range mfs {
		byName[mf.GetName()] = mf
		series = append(series, schema.Metric{Name: mf.GetName(), Type: schema.Type(strings.ToLower(mf.GetType().String()))}.SeriesNames()...)
	}
	info := byName[kpi.InfoMetric]
	if info == nil || len(info.GetMetric()) < 6 {
		t.Fatalf("%s: %v", kpi.InfoMetric, info)
	}
	for _, m := range info.GetMetric() {
		ls := map[string]string{}
		for _, l := range m.GetLabel() {
			ls[l.GetName()] = l.GetValue()
		}
		d, ok := kpi.Decode(func(l string) string { return ls[l] })
		if !ok {
			t.Errorf("%v: not decoded", ls)
			continue
		}
		fam := byName[d.Metric]
		if fam == nil {
			t.Errorf("%s: metric %s is not exposed", d.Name, d.Metric)
			continue
		}
		if got := schema.Type(strings.ToLower(fam.GetType().String())); got != d.Type {
			t.Errorf("%s: decoded type %s, the family is a %s", d.Name, d.Type, got)
		}
		found := 0
		for _, n := range d.SampleNames() {
			if slices.Contains(series, n) {
				found++
				if schema.IsCounter(n) != d.Counts() && d.Type != schema.Histogram {
					t.Errorf("%s: sample %s read as a rate: %v, by its name: %v", d.Name, n, d.Counts(), schema.IsCounter(n))
				}
			}
		}
		if found == 0 {
			t.Errorf("%s: none of %q is exposed", d.Name, d.SampleNames())
		}
		if string(d.Direction) != ls[schema.LabelDirection] || d.Unit != ls[schema.LabelUnit] || d.Name != ls[schema.LabelKPI] {
			t.Errorf("%v decoded as %+v", ls, d)
		}
	}
}

// TestDecodeDamaged: a declaration without a KPI name or a valid metric is
// not one; an unknown direction reads as higher and an unknown type as a
// gauge, the way the series is read when its declaration is damaged.
func TestDecodeDamaged(t *testing.T) {
	for _, tc := range []struct {
		labels map[string]string
		ok     bool
		want   kpi.Declaration
	}{
		{map[string]string{"metric": "x_total", "type": "counter"}, false, kpi.Declaration{}},
		{map[string]string{"kpi": "k", "metric": "9x", "type": "counter"}, false, kpi.Declaration{}},
		{map[string]string{"kpi": "k", "type": "counter"}, false, kpi.Declaration{}},
		{map[string]string{"kpi": "k", "metric": "x", "direction": "sideways", "type": "summary"}, true,
			kpi.Declaration{Name: "k", Metric: "x", Direction: kpi.Higher, Type: schema.Gauge}},
		{map[string]string{"kpi": "k", "metric": "x_seconds", "direction": "lower", "type": "histogram", "unit": "seconds"}, true,
			kpi.Declaration{Name: "k", Metric: "x_seconds", Unit: "seconds", Direction: kpi.Lower, Type: schema.Histogram}},
	} {
		got, ok := kpi.Decode(func(l string) string { return tc.labels[l] })
		if ok != tc.ok || got != tc.want {
			t.Errorf("Decode(%v) = %+v, %v; want %+v, %v", tc.labels, got, ok, tc.want, tc.ok)
		}
	}
}

// TestExpr checks the value expression of each type and unit: a counter's
// summed rate, a share's mean, a gauge's sum, a histogram's quantile.
func TestExpr(t *testing.T) {
	for _, tc := range []struct {
		d    kpi.Declaration
		want string
	}{
		{kpi.Declaration{Metric: "orders_total", Type: schema.Counter}, "sum(rate(orders_total[5m]))"},
		{kpi.Declaration{Metric: "success", Type: schema.Gauge, Unit: "Ratio"}, "avg(success)"},
		{kpi.Declaration{Metric: "stock", Type: schema.Gauge, Unit: "items"}, "sum(stock)"},
		{kpi.Declaration{Metric: "lat_seconds", Type: schema.Histogram, Unit: "ratio"}, "histogram_quantile(0.95, sum by (le) (rate(lat_seconds_bucket[5m])))"},
	} {
		if got := tc.d.Expr("5m"); got != tc.want {
			t.Errorf("%+v: Expr = %s, want %s", tc.d, got, tc.want)
		}
	}
}
