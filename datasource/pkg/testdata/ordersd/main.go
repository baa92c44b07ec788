// Command ordersd is a tiny shop backend for the datasource's integration
// test: it takes "orders" at a rate set by its build (build v1 is healthy,
// build v2 is the bad deploy that takes far fewer), declares its orders KPI
// with pkg/kpi, and holds a TCP connection to a peer so the
// exporter has an edge to report. It prints its port on stdout once it
// listens.
package main

import (
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/telltale-dev/telltale/internal/webserver"
	"github.com/telltale-dev/telltale/pkg/kpi"
)

// build is set with -ldflags "-X main.build=v2" for the bad deploy.
var build = "v1"

func main() {
	peer := flag.String("peer", "", "address to hold a TCP connection to")
	listen := flag.String("listen", "127.0.0.1:0", "address to serve /metrics on")
	flag.Parse()

	perSecond := 20
	if build == "v2" {
		perSecond = 2
	}
	reg := prometheus.NewRegistry()
	objective := 10.0
	orders, err := kpi.NewCounter(reg, kpi.Opts{
		Name: "orders", Metric: "shop_orders_total", Help: "Orders taken.",
		Unit: "orders", Direction: kpi.Higher, Objective: &objective,
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "ordersd:", err)
		os.Exit(1)
	}

	go func() {
		for range time.Tick(100 * time.Millisecond) {
			orders.Add(float64(perSecond) / 10)
		}
	}()
	if *peer != "" {
		conn, err := net.Dial("tcp", *peer)
		if err != nil {
			fmt.Fprintln(os.Stderr, "ordersd:", err)
			os.Exit(1)
		}
		defer conn.Close()
	}

	l, err := net.Listen("tcp", *listen)
	if err != nil {
		fmt.Fprintln(os.Stderr, "ordersd:", err)
		os.Exit(1)
	}
	fmt.Println(l.Addr().(*net.TCPAddr).Port)
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	if err := webserver.New(mux, webserver.Default()).Serve(l); err != nil {
		fmt.Fprintln(os.Stderr, "ordersd:", err)
		os.Exit(1)
	}
}
