package shop

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"net/http"
	"sort"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// maxLoadRate bounds the load generator: the demo shares a small machine.
const maxLoadRate = 1000

// loadgen buys random baskets from the storefront at a steady rate, whether
// or not earlier purchases have been answered (an open loop, as customers
// arrive), with at most LoadMaxInFlight waiting at once. The rate can be
// changed while it runs: POST /admin/load?rate=50.
func (s *service) loadgen(ctx context.Context) error {
	if err := validRate(s.cfg.LoadRate); err != nil {
		return err
	}
	if s.cfg.LoadMaxInFlight < 1 {
		return fmt.Errorf("most purchases in flight %d: want at least 1", s.cfg.LoadMaxInFlight)
	}
	var rate atomic.Uint64
	rate.Store(math.Float64bits(s.cfg.LoadRate))
	var (
		target = prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "shop_loadgen_target_rate", Help: "Purchases per second the load generator aims at.",
		}, func() float64 { return math.Float64frombits(rate.Load()) })
		results = prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "shop_loadgen_purchases_total", Help: "Purchases attempted, by outcome: ok, declined, failed (an error status), error (no answer).",
		}, []string{"outcome"})
		duration = prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "shop_loadgen_purchase_duration_seconds", Help: "Time the storefront took to answer a purchase, as the customer saw it.",
			Buckets: LatencyBuckets,
		})
		dropped = prometheus.NewCounter(prometheus.CounterOpts{
			Name: "shop_loadgen_dropped_total", Help: "Purchases not attempted because too many were waiting for an answer.",
		})
	)
	for _, o := range []string{"ok", "declined", "failed", "error"} {
		results.WithLabelValues(o)
	}
	for _, c := range []prometheus.Collector{target, results, duration, dropped} {
		if err := s.reg.Register(c); err != nil {
			return err
		}
	}
	s.mux.HandleFunc("/admin/load", func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			v, err := strconv.ParseFloat(r.URL.Query().Get("rate"), 64)
			if err == nil {
				err = validRate(v)
			} else {
				err = fmt.Errorf("parameter rate=%q is not a number of purchases per second", r.URL.Query().Get("rate"))
			}
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			rate.Store(math.Float64bits(v))
		}
		writeJSON(w, http.StatusOK, map[string]float64{"rate": math.Float64frombits(rate.Load())})
	})

	skus := make([]string, 0, len(Catalog))
	for sku := range Catalog {
		skus = append(skus, sku)
	}
	sort.Strings(skus)
	buy := func() {
		basket := BuyRequest{}
		for range 1 + rand.IntN(3) {
			basket.Items = append(basket.Items, Item{SKU: skus[rand.IntN(len(skus))], Qty: 1 + rand.IntN(3)})
		}
		start := time.Now()
		err := s.call(ctx, Storefront, "/buy", basket, nil)
		duration.Observe(time.Since(start).Seconds())
		se, isStatus := errors.AsType[*StatusError](err)
		switch {
		case err == nil:
			results.WithLabelValues("ok").Inc()
		case isStatus && se.Code == http.StatusPaymentRequired:
			results.WithLabelValues("declined").Inc()
		case isStatus:
			results.WithLabelValues("failed").Inc()
		case ctx.Err() == nil:
			results.WithLabelValues("error").Inc()
		}
	}
	inFlight := make(chan struct{}, s.cfg.LoadMaxInFlight)
	go func() {
		next := time.Now()
		for ctx.Err() == nil {
			r := math.Float64frombits(rate.Load())
			if r == 0 {
				sleep(ctx, 100*time.Millisecond)
				next = time.Now()
				continue
			}
			next = next.Add(time.Duration(float64(time.Second) / r))
			if d := time.Until(next); d > 0 {
				sleep(ctx, d)
			} else if d < -time.Second {
				next = time.Now() // fell behind (a paused process): don't burst
			}
			select {
			case inFlight <- struct{}{}:
				go func() {
					defer func() { <-inFlight }()
					buy()
				}()
			default:
				dropped.Inc()
			}
		}
	}()
	return nil
}

func validRate(r float64) error {
	if math.IsNaN(r) || r < 0 || r > maxLoadRate {
		return fmt.Errorf("load rate %v: want 0 to %d purchases per second", r, maxLoadRate)
	}
	return nil
}
