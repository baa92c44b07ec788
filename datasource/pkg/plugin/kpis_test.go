package plugin

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/common/model"
)

func TestDiscoveredKPIs(t *testing.T) {
	info := func(kpi, metric, unit, dir, typ string) *model.Sample {
		return &model.Sample{Metric: model.Metric{"kpi": model.LabelValue(kpi), "metric": model.LabelValue(metric), "unit": model.LabelValue(unit), "direction": model.LabelValue(dir), "type": model.LabelValue(typ)}, Value: 1}
	}
	half := 0.5
	got := discoveredKPIs(model.Vector{
		info("orders", "shop_orders_total", "orders", "higher", "counter"),
		info("checkout_latency", "shop_checkout_duration_seconds", "seconds", "lower", "histogram"),
		info("success", "shop_checkout_success_ratio", "ratio", "higher", "gauge"),
		info("stock", "shop_stock_items", "items", "", "gauge"),
		info("bad", "not a metric name", "x", "higher", "gauge"),
		info("", "shop_orders_total", "orders", "higher", "counter"),
	}, model.Vector{{Metric: model.Metric{"kpi": "checkout_latency"}, Value: 0.5}})
	want := []KPI{
		{Name: "checkout_latency", Expr: "histogram_quantile(0.95, sum by (le) (rate(shop_checkout_duration_seconds_bucket[$__rate_interval])))", Unit: "seconds", Objective: &half, Direction: "lower", Source: SourceDiscovered, Metric: "shop_checkout_duration_seconds", Type: "histogram"},
		{Name: "orders", Expr: "sum(rate(shop_orders_total[$__rate_interval]))", Unit: "orders", Direction: "higher", Source: SourceDiscovered, Metric: "shop_orders_total", Type: "counter"},
		{Name: "stock", Expr: "sum(shop_stock_items)", Unit: "items", Direction: "higher", Source: SourceDiscovered, Metric: "shop_stock_items", Type: "gauge"},
		{Name: "success", Expr: "avg(shop_checkout_success_ratio)", Unit: "ratio", Direction: "higher", Source: SourceDiscovered, Metric: "shop_checkout_success_ratio", Type: "gauge"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("discovered KPIs (-want +got):\n%s", diff)
	}
	units, text := map[string]string{}, map[string]string{}
	for _, k := range got {
		units[k.Name], text[k.Name] = k.panelUnit(), k.textUnit()
	}
	if diff := cmp.Diff(map[string]string{"checkout_latency": "s", "orders": "orders/s", "stock": "items", "success": "percentunit"}, units); diff != "" {
		t.Errorf("panel units (-want +got):\n%s", diff)
	}
	// In text (the status table's unit), a counter's value is a rate.
	if diff := cmp.Diff(map[string]string{"checkout_latency": "seconds", "orders": "orders/s", "stock": "items", "success": "ratio"}, text); diff != "" {
		t.Errorf("text units (-want +got):\n%s", diff)
	}
}

func TestMergeKPIsSettingsWin(t *testing.T) {
	got := mergeKPIs(
		[]KPI{{Name: "orders", Expr: "mine", Source: SourceSettings}},
		[]KPI{{Name: "latency", Source: SourceDiscovered}, {Name: "orders", Expr: "theirs", Source: SourceDiscovered}},
	)
	want := []KPI{{Name: "orders", Expr: "mine", Source: SourceSettings}, {Name: "latency", Source: SourceDiscovered}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("merged (-want +got):\n%s", diff)
	}
}
