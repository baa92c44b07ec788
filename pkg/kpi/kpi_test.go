package kpi_test

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/common/expfmt"

	"github.com/telltale-dev/telltale/internal/promtest"
	"github.com/telltale-dev/telltale/pkg/kpi"
	"github.com/telltale-dev/telltale/pkg/schema"
)

var update = flag.Bool("update", false, "rewrite golden files with the current output")

// shopRegistry declares the KPIs of a small shop, one of every kind, and
// moves each a little so every series has a value.
func shopRegistry(tb testing.TB) *prometheus.Registry {
	tb.Helper()
	reg := prometheus.NewRegistry()
	orders, err := kpi.NewCounter(reg, kpi.Opts{
		Name: "orders", Metric: "shop_orders_total", Help: "Orders placed.",
		Unit: "orders", Direction: kpi.Higher, Objective: new(0.5),
	})
	if err != nil {
		tb.Fatal(err)
	}
	revenue, err := kpi.NewCounterVec(reg, kpi.Opts{
		Name: "revenue", Metric: "shop_revenue_euros_total", Help: "Revenue of the orders placed.",
		Unit: "EUR", Direction: kpi.Higher,
	}, []string{"method"})
	if err != nil {
		tb.Fatal(err)
	}
	ratio, err := kpi.NewGauge(reg, kpi.Opts{
		Name: "checkout_success_ratio", Metric: "shop_checkout_success_ratio", Help: "Share of checkouts that succeeded over the last minute.",
		Unit: "ratio", Direction: kpi.Higher, Objective: new(0.99),
	})
	if err != nil {
		tb.Fatal(err)
	}
	latency, err := kpi.NewHistogram(reg, kpi.Opts{
		Name: "checkout_latency", Metric: "shop_checkout_duration_seconds", Help: "Time to complete a checkout.",
		Unit: "seconds", Direction: kpi.Lower, Objective: new(0.25),
	}, []float64{0.05, 0.1, 0.25, 0.5, 1})
	if err != nil {
		tb.Fatal(err)
	}
	stock, err := kpi.NewGaugeVec(reg, kpi.Opts{
		Name: "stock", Metric: "shop_stock_items", Help: "Items in stock.",
		Unit: "items", Direction: kpi.Higher,
	}, []string{"warehouse"})
	if err != nil {
		tb.Fatal(err)
	}
	basket, err := kpi.NewHistogramVec(reg, kpi.Opts{
		Name: "basket_value", Metric: "shop_basket_value_euros", Help: "Value of the baskets checked out.",
		Unit: "EUR", Direction: kpi.Higher,
	}, []float64{10, 100}, []string{"channel"})
	if err != nil {
		tb.Fatal(err)
	}
	orders.Add(3)
	revenue.WithLabelValues("card").Add(59.9)
	ratio.Set(0.98)
	latency.Observe(0.12)
	latency.Observe(0.3)
	stock.WithLabelValues("north").Set(42)
	basket.WithLabelValues("web").Observe(19.95)
	return reg
}

// exposition gathers a registry into the text format.
func exposition(tb testing.TB, g prometheus.Gatherer) []byte {
	tb.Helper()
	b, err := text(g)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// text gathers a registry into the text format, for tests and examples.
func text(g prometheus.Gatherer) ([]byte, error) {
	mfs, err := g.Gather()
	if err != nil {
		return nil, fmt.Errorf("gather: %w", err)
	}
	var buf bytes.Buffer
	enc := expfmt.NewEncoder(&buf, expfmt.NewFormat(expfmt.TypeTextPlain))
	for _, mf := range mfs {
		if err := enc.Encode(mf); err != nil {
			return nil, fmt.Errorf("encode %s: %w", mf.GetName(), err)
		}
	}
	return buf.Bytes(), nil
}

// TestGolden compares what a registry with every kind of KPI exposes with
// testdata/shop.golden. Run with -update to rewrite it.
func TestGolden(t *testing.T) {
	got := exposition(t, shopRegistry(t))
	golden := filepath.Join("testdata", "shop.golden")
	if *update {
		if err := os.WriteFile(golden, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test ./pkg/kpi -run TestGolden -update)", err)
	}
	if diff := cmp.Diff(string(want), string(got)); diff != "" {
		t.Errorf("exposition differs from %s (-want +got):\n%s", golden, diff)
	}
}

// TestPromtoolCheckMetrics lints the exposition with promtool.
func TestPromtoolCheckMetrics(t *testing.T) {
	promtool := promtest.Promtool(t)
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = bytes.NewReader(exposition(t, shopRegistry(t)))
	out, err := cmd.CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Errorf("promtool check metrics: %v\n%s", err, out)
	}
}

// TestInfoSeries checks the two describing series of one KPI on their own,
// independently of the golden file.
func TestInfoSeries(t *testing.T) {
	reg := prometheus.NewRegistry()
	if _, err := kpi.NewHistogram(reg, kpi.Opts{
		Name: "checkout_latency", Metric: "shop_checkout_duration_seconds", Help: "Time to complete a checkout.",
		Unit: "seconds", Direction: kpi.Lower, Objective: new(0.25),
	}, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := kpi.NewCounter(reg, kpi.Opts{
		Name: "orders", Metric: "shop_orders_total", Help: "Orders placed.", Unit: "orders", Direction: kpi.Higher,
	}); err != nil {
		t.Fatal(err)
	}
	want := `
# HELP ` + schema.KPIInfo.Name + ` A business KPI this application declares: its name, the metric family that carries it, the unit of that metric's values, which direction is better and the metric type.
# TYPE ` + schema.KPIInfo.Name + ` gauge
` + schema.KPIInfo.Name + `{direction="lower",kpi="checkout_latency",metric="shop_checkout_duration_seconds",type="histogram",unit="seconds"} 1
` + schema.KPIInfo.Name + `{direction="higher",kpi="orders",metric="shop_orders_total",type="counter",unit="orders"} 1
# HELP ` + schema.KPIObjective.Name + ` The objective of a business KPI: the value it should stay above (direction higher) or below (direction lower).
# TYPE ` + schema.KPIObjective.Name + ` gauge
` + schema.KPIObjective.Name + `{kpi="checkout_latency"} 0.25
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), kpi.InfoMetric, kpi.ObjectiveMetric); err != nil {
		t.Error(err)
	}
	if n, err := testutil.GatherAndCount(reg, "shop_checkout_duration_seconds"); err != nil || n != 1 {
		t.Errorf("histogram series: %d, %v; want 1", n, err)
	}
}

func TestInvalidDeclarations(t *testing.T) {
	valid := kpi.Opts{Name: "orders", Metric: "shop_orders_total", Help: "Orders placed.", Unit: "orders", Direction: kpi.Higher}
	with := func(f func(*kpi.Opts)) kpi.Opts {
		o := valid
		f(&o)
		return o
	}
	tests := []struct {
		name    string
		opts    kpi.Opts
		typ     string // counter (default), gauge, histogram
		labels  []string
		buckets []float64
		want    string // the message must contain this
	}{
		{name: "empty name", opts: with(func(o *kpi.Opts) { o.Name = "" }), want: "the name is empty"},
		{name: "name with space", opts: with(func(o *kpi.Opts) { o.Name = "checkout latency" }), want: "only letters, digits and underscores"},
		{name: "name with digit first", opts: with(func(o *kpi.Opts) { o.Name = "1orders" }), want: "not starting with a digit"},
		{name: "empty metric", opts: with(func(o *kpi.Opts) { o.Metric = "" }), want: "the metric name is empty"},
		{name: "metric with dash", opts: with(func(o *kpi.Opts) { o.Metric = "shop-orders_total" }), want: `metric name "shop-orders_total" is not a valid Prometheus metric name`},
		{name: "metric with colon", opts: with(func(o *kpi.Opts) { o.Metric = "shop:orders_total" }), want: "is not a valid Prometheus metric name"},
		{name: "reserved metric prefix", opts: with(func(o *kpi.Opts) { o.Metric = "__orders_total" }), want: "is not a valid Prometheus metric name"},
		{name: "metric is the info", typ: "gauge", opts: with(func(o *kpi.Opts) { o.Metric = kpi.InfoMetric }), want: "is reserved"},
		{name: "counter without _total", opts: with(func(o *kpi.Opts) { o.Metric = "shop_orders" }), want: `counter metric name "shop_orders" must end in _total`},
		{name: "gauge with _total", typ: "gauge", want: "gauge metric name \"shop_orders_total\" must not end in _total"},
		{name: "histogram with _count", typ: "histogram", opts: with(func(o *kpi.Opts) { o.Metric = "shop_latency_count" }), want: "must not end in _count"},
		{name: "empty help", opts: with(func(o *kpi.Opts) { o.Help = "" }), want: "the help text is empty"},
		{name: "empty unit", opts: with(func(o *kpi.Opts) { o.Unit = "" }), want: "the unit is empty"},
		{name: "unit with newline", opts: with(func(o *kpi.Opts) { o.Unit = "EUR\n" }), want: "is not a unit"},
		{name: "unit too long", opts: with(func(o *kpi.Opts) { o.Unit = strings.Repeat("x", 41) }), want: "at most 40 printable characters"},
		{name: "empty direction", opts: with(func(o *kpi.Opts) { o.Direction = "" }), want: `the direction is empty; want "higher" or "lower"`},
		{name: "unknown direction", opts: with(func(o *kpi.Opts) { o.Direction = "up" }), want: `unknown direction "up"; want "higher" or "lower"`},
		{name: "capitalised direction", opts: with(func(o *kpi.Opts) { o.Direction = "Higher" }), want: `unknown direction "Higher"`},
		{name: "NaN objective", opts: with(func(o *kpi.Opts) { o.Objective = new(math.NaN()) }), want: "objective NaN is not a finite number"},
		{name: "infinite objective", opts: with(func(o *kpi.Opts) { o.Objective = new(math.Inf(1)) }), want: "objective +Inf is not a finite number"},
		{name: "bad label", labels: []string{"pay-method"}, want: `label name "pay-method" is not a valid`},
		{name: "reserved label", labels: []string{"__method"}, want: `label name "__method" is not a valid`},
		{name: "label twice", labels: []string{"method", "method"}, want: `label name "method" is given twice`},
		{name: "le on histogram", typ: "histogram", opts: with(func(o *kpi.Opts) { o.Metric = "shop_latency_seconds" }), labels: []string{"le"}, want: "cannot have a label called le"},
		{name: "buckets not increasing", typ: "histogram", opts: with(func(o *kpi.Opts) { o.Metric = "shop_latency_seconds" }), buckets: []float64{0.1, 0.1}, want: "bucket bounds must increase, but 0.1 follows 0.1"},
		{name: "NaN bucket", typ: "histogram", opts: with(func(o *kpi.Opts) { o.Metric = "shop_latency_seconds" }), buckets: []float64{math.NaN()}, want: "bucket 0 is NaN"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := tt.opts
			if opts == (kpi.Opts{}) {
				opts = valid
			}
			reg := prometheus.NewRegistry()
			err := declare(reg, tt.typ, opts, tt.labels, tt.buckets)
			if err == nil {
				t.Fatalf("declaration accepted, want an error containing %q", tt.want)
			}
			if !errors.Is(err, kpi.ErrInvalid) {
				t.Errorf("error %v does not wrap ErrInvalid", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q, want it to contain %q", err, tt.want)
			}
			if !strings.HasPrefix(err.Error(), "declare KPI ") {
				t.Errorf("error %q does not say which declaration failed", err)
			}
			if mfs, _ := reg.Gather(); len(mfs) != 0 {
				t.Errorf("a refused declaration left %d metric families registered", len(mfs))
			}
		})
	}
}

// declare declares one KPI of the given type, with or without labels.
func declare(reg prometheus.Registerer, typ string, o kpi.Opts, labels []string, buckets []float64) error {
	var err error
	switch {
	case typ == "gauge" && labels == nil:
		_, err = kpi.NewGauge(reg, o)
	case typ == "gauge":
		_, err = kpi.NewGaugeVec(reg, o, labels)
	case typ == "histogram" && labels == nil:
		_, err = kpi.NewHistogram(reg, o, buckets)
	case typ == "histogram":
		_, err = kpi.NewHistogramVec(reg, o, buckets, labels)
	case labels == nil:
		_, err = kpi.NewCounter(reg, o)
	default:
		_, err = kpi.NewCounterVec(reg, o, labels)
	}
	return err
}

func TestDuplicates(t *testing.T) {
	orders := kpi.Opts{Name: "orders", Metric: "shop_orders_total", Help: "Orders placed.", Unit: "orders", Direction: kpi.Higher}
	tests := []struct {
		name   string
		second kpi.Opts
		typ    string
		want   string
	}{
		{
			name:   "same declaration twice",
			second: orders,
			want:   `declare KPI "orders": metric shop_orders_total is already registered`,
		},
		{
			name:   "same name, other metric",
			second: kpi.Opts{Name: "orders", Metric: "shop_sales_total", Help: "Sales.", Unit: "orders", Direction: kpi.Higher},
			want:   `declare KPI "orders": a KPI of that name is already registered`,
		},
		{
			name:   "same name, other type",
			second: kpi.Opts{Name: "orders", Metric: "shop_open_orders", Help: "Open orders.", Unit: "orders", Direction: kpi.Lower, Objective: new(10.0)},
			typ:    "gauge",
			want:   `declare KPI "orders": a KPI of that name is already registered`,
		},
		{
			name:   "other name, same metric",
			second: kpi.Opts{Name: "sales", Metric: "shop_orders_total", Help: "Orders placed.", Unit: "orders", Direction: kpi.Higher},
			want:   `declare KPI "sales": metric shop_orders_total is already registered`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reg := prometheus.NewRegistry()
			c, err := kpi.NewCounter(reg, orders)
			if err != nil {
				t.Fatal(err)
			}
			c.Inc()
			before := exposition(t, reg)
			err = declare(reg, tt.typ, tt.second, nil, nil)
			if !errors.Is(err, kpi.ErrDuplicate) {
				t.Fatalf("error %v, want one wrapping ErrDuplicate", err)
			}
			if err.Error() != tt.want {
				t.Errorf("error %q, want %q", err, tt.want)
			}
			if diff := cmp.Diff(string(before), string(exposition(t, reg))); diff != "" {
				t.Errorf("the refused declaration changed the exposition (-before +after):\n%s", diff)
			}
		})
	}
}

// TestRefusedInfoFreesMetric checks that when the KPI's info is refused, the
// metric registered just before is unregistered, so its name can be used
// again.
func TestRefusedInfoFreesMetric(t *testing.T) {
	reg := prometheus.NewRegistry()
	if _, err := kpi.NewCounter(reg, kpi.Opts{Name: "orders", Metric: "shop_orders_total", Help: "Orders.", Unit: "orders", Direction: kpi.Higher}); err != nil {
		t.Fatal(err)
	}
	o := kpi.Opts{Name: "orders", Metric: "shop_sales_total", Help: "Sales.", Unit: "orders", Direction: kpi.Higher}
	if _, err := kpi.NewCounter(reg, o); !errors.Is(err, kpi.ErrDuplicate) {
		t.Fatalf("second KPI named orders: %v, want ErrDuplicate", err)
	}
	o.Name = "sales"
	if _, err := kpi.NewCounter(reg, o); err != nil {
		t.Errorf("shop_sales_total could not be declared after the refused declaration: %v", err)
	}
}

// TestForeignInfoMetric checks the error when the registry already has a
// kpi.InfoMetric that pkg/kpi did not register (another help text).
func TestForeignInfoMetric(t *testing.T) {
	reg := prometheus.NewRegistry()
	foreign := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: kpi.InfoMetric, Help: "Hand-written."}, []string{"kpi", "metric", "unit", "direction", "type"})
	reg.MustRegister(foreign)
	_, err := kpi.NewCounter(reg, kpi.Opts{Name: "orders", Metric: "shop_orders_total", Help: "Orders.", Unit: "orders", Direction: kpi.Higher})
	if err == nil || errors.Is(err, kpi.ErrDuplicate) || !strings.Contains(err.Error(), `declare KPI "orders": register `+schema.KPIInfo.Name+`: `) {
		t.Fatalf("error %v, want one saying "+schema.KPIInfo.Name+" could not be registered", err)
	}
	if n, _ := testutil.GatherAndCount(reg, "shop_orders_total"); n != 0 {
		t.Errorf("shop_orders_total left registered after the refusal")
	}
}

func TestNilRegisterer(t *testing.T) {
	_, err := kpi.NewGauge(nil, kpi.Opts{Name: "stock", Metric: "shop_stock_items", Help: "Stock.", Unit: "items", Direction: kpi.Higher})
	if !errors.Is(err, kpi.ErrInvalid) || !strings.Contains(err.Error(), "Registerer is nil") {
		t.Errorf("error %v, want one saying the Registerer is nil", err)
	}
}

// TestWrappedRegisterer checks that a Registerer adding constant labels (as
// prometheus.WrapRegistererWith does for an instance or region) adds them to
// the KPI's series too, and still catches duplicates.
func TestWrappedRegisterer(t *testing.T) {
	reg := prometheus.NewRegistry()
	wrapped := prometheus.WrapRegistererWith(prometheus.Labels{"region": "eu"}, reg)
	o := kpi.Opts{Name: "orders", Metric: "shop_orders_total", Help: "Orders placed.", Unit: "orders", Direction: kpi.Higher, Objective: new(1.0)}
	if _, err := kpi.NewCounter(wrapped, o); err != nil {
		t.Fatal(err)
	}
	o.Metric = "shop_sales_total"
	if _, err := kpi.NewCounter(wrapped, o); !errors.Is(err, kpi.ErrDuplicate) {
		t.Errorf("duplicate through a wrapping Registerer: %v, want ErrDuplicate", err)
	}
	want := `
# HELP ` + schema.KPIObjective.Name + ` The objective of a business KPI: the value it should stay above (direction higher) or below (direction lower).
# TYPE ` + schema.KPIObjective.Name + ` gauge
` + schema.KPIObjective.Name + `{kpi="orders",region="eu"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), kpi.ObjectiveMetric); err != nil {
		t.Error(err)
	}
}
