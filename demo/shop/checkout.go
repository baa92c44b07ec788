package shop

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/telltale-dev/telltale/pkg/kpi"
)

// The checkout's KPI objectives.
const (
	// LatencyObjective is the checkout latency the 95th percentile should
	// stay below, in seconds.
	LatencyObjective = 0.25
	// SuccessObjective is the success ratio checkouts should stay above.
	SuccessObjective = 0.95
)

// LatencyBuckets are the checkout latency histogram's bounds, in seconds,
// dense around the objective.
var LatencyBuckets = []float64{0.005, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 0.75, 1, 2.5, 5}

// Outcomes of a checkout.
const (
	outcomeSuccess  = "success"
	outcomeDeclined = "declined"
	outcomeFailed   = "failed"
)

// checkoutKPIs are the shop's business KPIs, which the checkout declares.
type checkoutKPIs struct {
	orders    prometheus.Counter
	revenue   prometheus.Counter
	latency   prometheus.Histogram
	success   prometheus.Gauge
	checkouts *prometheus.CounterVec
	window    *ratioWindow
}

func declareKPIs(reg prometheus.Registerer, window time.Duration) (*checkoutKPIs, error) {
	k := &checkoutKPIs{window: newRatioWindow(window)}
	var err error
	if k.orders, err = kpi.NewCounter(reg, kpi.Opts{
		Name: "orders", Metric: "shop_orders_total", Help: "Orders placed (checkouts that succeeded).",
		Unit: "orders", Direction: kpi.Higher,
	}); err != nil {
		return nil, err
	}
	if k.revenue, err = kpi.NewCounter(reg, kpi.Opts{
		Name: "revenue", Metric: "shop_revenue_euros_total", Help: "Revenue of the orders placed, in euros.",
		Unit: "EUR", Direction: kpi.Higher,
	}); err != nil {
		return nil, err
	}
	if k.latency, err = kpi.NewHistogram(reg, kpi.Opts{
		Name: "checkout_latency", Metric: "shop_checkout_duration_seconds", Help: "Time to check out, from the checkout's receiving the basket to its answer, whatever the outcome.",
		Unit: "seconds", Direction: kpi.Lower, Objective: new(LatencyObjective),
	}, LatencyBuckets); err != nil {
		return nil, err
	}
	if k.success, err = kpi.NewGauge(reg, kpi.Opts{
		Name: "checkout_success_ratio", Metric: "shop_checkout_success_ratio", Help: "Share of checkouts that succeeded over the last window (--kpi.success-window); NaN when there were none.",
		Unit: "ratio", Direction: kpi.Higher, Objective: new(SuccessObjective),
	}); err != nil {
		return nil, err
	}
	k.checkouts = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "shop_checkouts_total", Help: "Checkouts by outcome: success, declined (the card was), failed (a service failed).",
	}, []string{"outcome"})
	for _, o := range []string{outcomeSuccess, outcomeDeclined, outcomeFailed} {
		k.checkouts.WithLabelValues(o)
	}
	if err := reg.Register(k.checkouts); err != nil {
		return nil, err
	}
	k.success.Set(math.NaN())
	return k, nil
}

// measure times every checkout for the latency KPI and counts its outcome
// from the status answered, faults included: a checkout failed by an
// injected error is a failed checkout.
func (k *checkoutKPIs) measure(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w, code: http.StatusOK}
		next.ServeHTTP(sw, r)
		k.latency.Observe(time.Since(start).Seconds())
		outcome := outcomeFailed
		switch {
		case sw.code/100 == 2:
			outcome = outcomeSuccess
		case sw.code == http.StatusPaymentRequired:
			outcome = outcomeDeclined
		case sw.code == http.StatusBadRequest:
			return // not a checkout: a malformed request
		}
		k.checkouts.WithLabelValues(outcome).Inc()
		k.window.add(time.Now(), outcome == outcomeSuccess)
		k.success.Set(k.window.ratio(time.Now()))
	})
}

// checkout reserves the basket's items, charges the total, and books the
// order.
func (s *service) checkout(ctx context.Context) error {
	if s.cfg.RatioWindow < time.Second {
		return fmt.Errorf("success ratio window %s: want at least 1s", s.cfg.RatioWindow)
	}
	k, err := declareKPIs(s.reg, s.cfg.RatioWindow)
	if err != nil {
		return err
	}
	// The ratio's window moves on when no checkout comes in.
	go func() {
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case now := <-t.C:
				k.success.Set(k.window.ratio(now))
			}
		}
	}()
	s.handle("POST /checkout", "checkout", k.measure, func(w http.ResponseWriter, r *http.Request) {
		var req CheckoutRequest
		if !readJSON(w, r, &req) {
			return
		}
		if len(req.Items) == 0 || req.Total <= 0 || req.Currency != currency {
			http.Error(w, "a checkout needs items and a positive total in "+currency, http.StatusBadRequest)
			return
		}
		if err := s.call(r.Context(), Inventory, "/reserve", ReserveRequest{OrderID: req.OrderID, Items: req.Items}, nil); err != nil {
			http.Error(w, err.Error(), errorCode(err))
			return
		}
		if err := s.call(r.Context(), Payments, "/charge", ChargeRequest{OrderID: req.OrderID, Amount: req.Total, Currency: req.Currency}, nil); err != nil {
			http.Error(w, err.Error(), errorCode(err))
			return
		}
		k.orders.Inc()
		k.revenue.Add(req.Total)
		writeJSON(w, http.StatusOK, Order{OrderID: req.OrderID, Total: req.Total, Status: "placed"})
	})
	return nil
}

// statusWriter remembers the status code a handler answered.
type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(code int) {
	w.code = code
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// ratioWindow counts successes and attempts per second over a sliding
// window.
type ratioWindow struct {
	mu      sync.Mutex
	seconds []ratioSecond
}

type ratioSecond struct {
	unix        int64
	ok, attempt int
}

func newRatioWindow(span time.Duration) *ratioWindow {
	n := max(int(span/time.Second), 1)
	return &ratioWindow{seconds: make([]ratioSecond, n)}
}

func (w *ratioWindow) add(now time.Time, ok bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	sec := now.Unix()
	b := &w.seconds[sec%int64(len(w.seconds))]
	if b.unix != sec {
		*b = ratioSecond{unix: sec}
	}
	b.attempt++
	if ok {
		b.ok++
	}
}

// ratio is the share of successes among the attempts of the window ending
// at now, NaN when there were none.
func (w *ratioWindow) ratio(now time.Time) float64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	oldest := now.Unix() - int64(len(w.seconds)) + 1
	ok, n := 0, 0
	for _, b := range w.seconds {
		if b.unix >= oldest && b.unix <= now.Unix() {
			ok += b.ok
			n += b.attempt
		}
	}
	if n == 0 {
		return math.NaN()
	}
	return float64(ok) / float64(n)
}
