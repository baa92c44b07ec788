package kpi_test

import (
	"fmt"
	"os"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/telltale-dev/telltale/pkg/kpi"
)

// A shop declares its orders and its checkout latency; the KPIs are served
// with the rest of its metrics (promhttp.HandlerFor(reg, ...)).
func Example() {
	reg := prometheus.NewRegistry()
	orders, err := kpi.NewCounter(reg, kpi.Opts{
		Name: "orders", Metric: "shop_orders_total", Help: "Orders placed.",
		Unit: "orders", Direction: kpi.Higher,
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return
	}
	latency, err := kpi.NewHistogram(reg, kpi.Opts{
		Name: "checkout_latency", Metric: "shop_checkout_duration_seconds", Help: "Time to check out.",
		Unit: "seconds", Direction: kpi.Lower, Objective: new(0.5), // p95 under half a second
	}, nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return
	}
	orders.Inc()
	latency.Observe(0.12)

	out, err := text(reg)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return
	}
	for _, line := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(line, kpi.InfoMetric) || strings.HasPrefix(line, kpi.ObjectiveMetric) {
			fmt.Println(line)
		}
	}
	// Output:
	// telltale_kpi_info{direction="higher",kpi="orders",metric="shop_orders_total",type="counter",unit="orders"} 1
	// telltale_kpi_info{direction="lower",kpi="checkout_latency",metric="shop_checkout_duration_seconds",type="histogram",unit="seconds"} 1
	// telltale_kpi_objective{kpi="checkout_latency"} 0.5
}

// A declaration that cannot be right is refused with what is wrong.
func ExampleNewGauge_invalid() {
	_, err := kpi.NewGauge(prometheus.NewRegistry(), kpi.Opts{
		Name: "stock", Metric: "shop_stock_items", Help: "Items in stock.", Unit: "items", Direction: "up",
	})
	fmt.Println(err)
	// Output:
	// declare KPI "stock": invalid KPI declaration: unknown direction "up"; want "higher" or "lower"
}
