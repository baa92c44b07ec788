// Package shop is Telltale's demo shop: a storefront, a checkout, payments
// and inventory, each its own process, talking HTTP over loopback TCP with
// keep-alive connections, and a load generator that buys things. The
// checkout declares the shop's business KPIs with pkg/kpi. Every service
// can be told to misbehave through its admin endpoint (see Faults.ServeHTTP)
// or its --fault.* flags.
//
// Each program is a command of its own under demo/cmd, so that it runs as
// an executable of its own name: Telltale's exporter names services after
// their executables.
package shop

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/telltale-dev/telltale/internal/webserver"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Role is one of the shop's programs.
type Role string

// The shop's programs.
const (
	Storefront Role = "storefront"
	Checkout   Role = "checkout"
	Payments   Role = "payments"
	Inventory  Role = "inventory"
	Loadgen    Role = "loadgen"
)

// Roles lists the programs, callers before the services they call.
var Roles = []Role{Loadgen, Storefront, Checkout, Payments, Inventory}

// DefaultPorts are the programs' default ports, from 10181 up (Telltale's
// port allocation: exporter 10171, detector 10172, demo shop 10181…).
var DefaultPorts = map[Role]int{
	Storefront: 10181,
	Checkout:   10182,
	Payments:   10183,
	Inventory:  10184,
	Loadgen:    10185,
}

// Calls says which services each program calls.
var Calls = map[Role][]Role{
	Loadgen:    {Storefront},
	Storefront: {Checkout},
	Checkout:   {Inventory, Payments},
}

// Config is what a program runs with.
type Config struct {
	Role Role
	// Build is the version this executable was built as, and Slowdown
	// the latency the build adds to every request it serves: a bad build
	// is made with -ldflags "-X main.build=v2 -X main.slowdown=300ms".
	Build    string
	Slowdown time.Duration
	// Listen is the address to serve on, e.g. ":10182".
	Listen string
	// URLs are the base URLs of the services this program calls.
	URLs map[Role]string
	// Faults are active from the start.
	Faults FaultSpec
	// LoadRate is the load generator's purchases per second and
	// LoadMaxInFlight how many it lets wait for an answer at once.
	LoadRate        float64
	LoadMaxInFlight int
	// RatioWindow is the span of the checkout success ratio.
	RatioWindow time.Duration
	Logger      *slog.Logger
}

// service is what every program has: metrics, faults, an HTTP client for
// the services it calls, and a mux.
type service struct {
	cfg    Config
	reg    *prometheus.Registry
	faults *Faults
	client *http.Client
	mux    *http.ServeMux
	log    *slog.Logger

	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	calls    *prometheus.CounterVec
}

// Run runs a program until ctx is done.
func Run(ctx context.Context, cfg Config) error {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	s, err := newService(cfg)
	if err != nil {
		return err
	}
	defer s.faults.Stop()
	switch cfg.Role {
	case Storefront:
		err = s.storefront()
	case Checkout:
		err = s.checkout(ctx)
	case Payments:
		s.payments()
	case Inventory:
		s.inventory()
	case Loadgen:
		err = s.loadgen(ctx)
	default:
		err = fmt.Errorf("unknown role %q", cfg.Role)
	}
	if err != nil {
		return err
	}
	return s.serve(ctx)
}

func newService(cfg Config) (*service, error) {
	var peers []string
	for _, callee := range Calls[cfg.Role] {
		raw, ok := cfg.URLs[callee]
		if !ok {
			return nil, fmt.Errorf("%s calls %s, but no URL is given for it", cfg.Role, callee)
		}
		u, err := url.Parse(raw)
		if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
			return nil, fmt.Errorf("URL of %s %q: want http://host:port", callee, raw)
		}
		host := u.Host
		if u.Port() == "" {
			host = net.JoinHostPort(u.Hostname(), map[string]string{"http": "80", "https": "443"}[u.Scheme])
		}
		peers = append(peers, host)
	}
	reg := prometheus.NewRegistry()
	faults, err := newFaults(reg, cfg.Role != Loadgen, peers)
	if err != nil {
		return nil, err
	}
	if err := faults.Set(cfg.Faults); err != nil {
		return nil, fmt.Errorf("faults from the flags: %w", err)
	}
	s := &service{
		cfg:    cfg,
		reg:    reg,
		faults: faults,
		mux:    http.NewServeMux(),
		log:    cfg.Logger,
		client: &http.Client{
			Timeout: 10 * time.Second,
			// Keep-alive connections, as services hold them: the
			// exporter sees each caller → callee pair as an edge.
			Transport: &http.Transport{
				DialContext:         (&net.Dialer{Timeout: 2 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
				MaxIdleConnsPerHost: 64,
				IdleConnTimeout:     90 * time.Second,
				DisableCompression:  true,
			},
		},
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "shop_http_requests_total", Help: "Requests served, by handler and status code.",
		}, []string{"handler", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "shop_http_request_duration_seconds", Help: "Time to serve a request, by handler.",
			Buckets: []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10},
		}, []string{"handler"}),
		calls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "shop_client_requests_total", Help: "Requests this service made to the services it calls, by callee and outcome (ok, or the status class, or error when there was no answer).",
		}, []string{"callee", "outcome"}),
	}
	buildInfo := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "shop_build_info", Help: "The build this program runs, and the latency that build adds to each request.",
	}, []string{"version", "slowdown"})
	buildInfo.WithLabelValues(cfg.Build, cfg.Slowdown.String()).Set(1)
	for _, c := range []prometheus.Collector{
		s.requests, s.duration, s.calls, buildInfo,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register metrics: %w", err)
		}
	}
	s.mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	s.mux.Handle("/admin/fault", faults)
	s.mux.HandleFunc("GET /-/healthy", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintf(w, "%s %s is healthy\n", cfg.Role, cfg.Build)
	})
	return s, nil
}

// handle serves a business endpoint: instrumented, then outer (the
// checkout's KPI timing, or nil), then the faults and the build's slowdown,
// then h.
func (s *service) handle(pattern, name string, outer func(http.Handler) http.Handler, h http.HandlerFunc) {
	var inner http.Handler = h
	if s.cfg.Slowdown > 0 {
		next := inner
		inner = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if sleep(r.Context(), s.cfg.Slowdown) {
				next.ServeHTTP(w, r)
			}
		})
	}
	inner = s.faults.Wrap(inner)
	if outer != nil {
		inner = outer(inner)
	}
	labels := prometheus.Labels{"handler": name}
	s.requests.WithLabelValues(name, "200")
	s.mux.Handle(pattern, promhttp.InstrumentHandlerCounter(s.requests.MustCurryWith(labels),
		promhttp.InstrumentHandlerDuration(s.duration.MustCurryWith(labels), inner)))
}

// serve listens and serves until ctx is done, then shuts down gracefully.
func (s *service) serve(ctx context.Context) error {
	l, err := net.Listen("tcp", s.cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", s.cfg.Listen, err)
	}
	srv := webserver.New(s.mux, webserver.Default())
	s.log.Info("serving", "role", s.cfg.Role, "build", s.cfg.Build, "address", l.Addr().String())
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(l) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = srv.Shutdown(shutdown)
	return nil
}

// StatusError is an answer other than 2xx from a service this one called.
type StatusError struct {
	Callee Role
	Code   int
	Body   string
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("%s answered %d: %s", e.Callee, e.Code, e.Body)
}

// call POSTs in as JSON to a path of a callee and decodes its answer into
// out.
func (s *service) call(ctx context.Context, callee Role, path string, in, out any) error {
	body, err := json.Marshal(in)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.cfg.URLs[callee]+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := s.client.Do(req)
	if err != nil {
		s.calls.WithLabelValues(string(callee), "error").Inc()
		return fmt.Errorf("call %s: %w", callee, err)
	}
	defer resp.Body.Close()
	// Read the whole answer so the connection goes back to the pool.
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		s.calls.WithLabelValues(string(callee), "error").Inc()
		return fmt.Errorf("call %s: read the answer: %w", callee, err)
	}
	if resp.StatusCode/100 != 2 {
		s.calls.WithLabelValues(string(callee), fmt.Sprintf("%dxx", resp.StatusCode/100)).Inc()
		return &StatusError{Callee: callee, Code: resp.StatusCode, Body: string(bytes.TrimSpace(raw))}
	}
	s.calls.WithLabelValues(string(callee), "ok").Inc()
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return fmt.Errorf("call %s: decode the answer: %w", callee, err)
	}
	return nil
}

// readJSON decodes a request body into v, answering 400 when it can't.
func readJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(io.LimitReader(r.Body, 1<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		http.Error(w, "bad request body: "+err.Error(), http.StatusBadRequest)
		return false
	}
	return true
}

// writeJSON answers with v as JSON.
func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// errorCode is the status a service answers when a call it made failed: a
// decline stays a 402, anything else is the callee's fault (502).
func errorCode(err error) int {
	if se, ok := errors.AsType[*StatusError](err); ok && se.Code == http.StatusPaymentRequired {
		return http.StatusPaymentRequired
	}
	return http.StatusBadGateway
}
