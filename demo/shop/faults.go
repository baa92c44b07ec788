package shop

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"runtime"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Kinds of fault a service can be told to have.
const (
	// FaultLatency adds a fixed delay to every request the service serves.
	FaultLatency = "latency"
	// FaultErrors makes a share of the requests fail with 500.
	FaultErrors = "errors"
	// FaultCPU burns CPU in the background, a number of cores' worth.
	FaultCPU = "cpu"
	// FaultConnStorm opens new TCP connections to the services this one
	// calls, many per second, each held for a while: a client gone wild.
	FaultConnStorm = "connstorm"
)

// FaultKinds lists the kinds in the order they are documented.
var FaultKinds = []string{FaultLatency, FaultErrors, FaultCPU, FaultConnStorm}

// Bounds that keep a fault from taking the machine down with the service.
const (
	maxLatency     = time.Minute
	maxStormRate   = 2000
	maxStormOpen   = 5000
	maxStormHold   = time.Minute
	cpuSlice       = 10 * time.Millisecond
	defaultHold    = 2 * time.Second
	defaultStormRt = 100
)

// FaultSpec is the set of faults a service has; zero values are no fault.
type FaultSpec struct {
	// Latency is added to every request served.
	Latency time.Duration
	// ErrorRate is the share of requests, 0 to 1, that fail with 500.
	ErrorRate float64
	// CPUCores is how many cores' worth of CPU to burn.
	CPUCores float64
	// StormRate is how many new connections per second to open to the
	// services this one calls; StormHold how long each is held.
	StormRate int
	StormHold time.Duration
}

// MarshalJSON writes durations in milliseconds, as the admin endpoint takes
// them.
func (f FaultSpec) MarshalJSON() ([]byte, error) {
	return json.Marshal(map[string]any{
		"latency_ms":        f.Latency.Milliseconds(),
		"error_rate":        f.ErrorRate,
		"cpu_cores":         f.CPUCores,
		"connstorm_rate":    f.StormRate,
		"connstorm_hold_ms": f.StormHold.Milliseconds(),
	})
}

// Validate says what is wrong with a spec, for the given service (which may
// serve no requests, or call no other service).
func (f FaultSpec) Validate(servesRequests bool, peers int) error {
	switch {
	case f.Latency < 0 || f.Latency > maxLatency:
		return fmt.Errorf("latency %s is out of range: want 0 to %s", f.Latency, maxLatency)
	case math.IsNaN(f.ErrorRate) || f.ErrorRate < 0 || f.ErrorRate > 1:
		return fmt.Errorf("error rate %v is out of range: want a share from 0 to 1", f.ErrorRate)
	case math.IsNaN(f.CPUCores) || f.CPUCores < 0 || f.CPUCores > float64(runtime.NumCPU()):
		return fmt.Errorf("cpu cores %v is out of range: want 0 to %d (the cores of this machine)", f.CPUCores, runtime.NumCPU())
	case f.StormRate < 0 || f.StormRate > maxStormRate:
		return fmt.Errorf("connection storm rate %d is out of range: want 0 to %d new connections per second", f.StormRate, maxStormRate)
	case f.StormHold < 0 || f.StormHold > maxStormHold:
		return fmt.Errorf("connection storm hold %s is out of range: want 0 to %s", f.StormHold, maxStormHold)
	case !servesRequests && (f.Latency > 0 || f.ErrorRate > 0):
		return errors.New("this service serves no requests: latency and errors apply to the shop's services")
	case peers == 0 && f.StormRate > 0:
		return errors.New("this service calls no other service: a connection storm comes from a client (storefront, checkout or loadgen)")
	}
	return nil
}

// Faults holds a service's current faults and runs the background ones (CPU
// burn, connection storm).
type Faults struct {
	servesRequests bool
	peers          []string // host:port of the services this one calls

	mu     sync.Mutex
	spec   FaultSpec
	stopBg context.CancelFunc
	bg     sync.WaitGroup

	active    *prometheus.GaugeVec
	injected  *prometheus.CounterVec
	stormOpen prometheus.Gauge
	stormErrs prometheus.Counter
}

// FaultMetricsPrefix begins the names of the metrics the fault injector
// keeps about itself.
const FaultMetricsPrefix = "shop_fault_"

// newFaults returns a service's faults, none active, with their metrics
// registered on reg.
func newFaults(reg prometheus.Registerer, servesRequests bool, peers []string) (*Faults, error) {
	f := &Faults{
		servesRequests: servesRequests,
		peers:          peers,
		active: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: FaultMetricsPrefix + "active", Help: "Faults this service has been told to have, by kind: their size (latency in seconds, error share, CPU cores, new connections per second), 0 when off.",
		}, []string{"kind"}),
		injected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: FaultMetricsPrefix + "injected_total", Help: "Requests a fault acted on: delayed (latency) or failed (errors).",
		}, []string{"kind"}),
		stormOpen: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: FaultMetricsPrefix + "connstorm_open_connections", Help: "Connections the connection storm holds open now.",
		}),
		stormErrs: prometheus.NewCounter(prometheus.CounterOpts{
			Name: FaultMetricsPrefix + "connstorm_dial_errors_total", Help: "Connections the connection storm could not open.",
		}),
	}
	for _, k := range FaultKinds {
		f.active.WithLabelValues(k)
	}
	for _, k := range []string{FaultLatency, FaultErrors} {
		f.injected.WithLabelValues(k)
	}
	for _, c := range []prometheus.Collector{f.active, f.injected, f.stormOpen, f.stormErrs} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register fault metrics: %w", err)
		}
	}
	return f, nil
}

// Spec returns the current faults.
func (f *Faults) Spec() FaultSpec {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.spec
}

// Set replaces the faults with spec, restarting the background ones.
func (f *Faults) Set(spec FaultSpec) error {
	if err := spec.Validate(f.servesRequests, len(f.peers)); err != nil {
		return err
	}
	if spec.StormRate > 0 && spec.StormHold == 0 {
		spec.StormHold = defaultHold
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.stopBg != nil {
		f.stopBg()
		f.bg.Wait()
		f.stopBg = nil
	}
	f.spec = spec
	f.active.WithLabelValues(FaultLatency).Set(spec.Latency.Seconds())
	f.active.WithLabelValues(FaultErrors).Set(spec.ErrorRate)
	f.active.WithLabelValues(FaultCPU).Set(spec.CPUCores)
	f.active.WithLabelValues(FaultConnStorm).Set(float64(spec.StormRate))
	if spec.CPUCores == 0 && spec.StormRate == 0 {
		return nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	f.stopBg = cancel
	if spec.CPUCores > 0 {
		n := int(math.Ceil(spec.CPUCores))
		duty := spec.CPUCores / float64(n)
		for range n {
			f.bg.Go(func() { burn(ctx, duty) })
		}
	}
	if spec.StormRate > 0 {
		f.bg.Go(func() { f.storm(ctx, spec.StormRate, spec.StormHold) })
	}
	return nil
}

// Stop ends the background faults.
func (f *Faults) Stop() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.stopBg != nil {
		f.stopBg()
		f.bg.Wait()
		f.stopBg = nil
	}
}

// Wrap applies the request faults to a handler: the added latency first,
// then the injected errors.
func (f *Faults) Wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		spec := f.Spec()
		if spec.Latency > 0 {
			f.injected.WithLabelValues(FaultLatency).Inc()
			if !sleep(r.Context(), spec.Latency) {
				return
			}
		}
		if spec.ErrorRate > 0 && rand.Float64() < spec.ErrorRate {
			f.injected.WithLabelValues(FaultErrors).Inc()
			http.Error(w, "injected fault: errors", http.StatusInternalServerError)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// sleep waits for d or until ctx is done, and reports whether it waited the
// whole time.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// burn keeps one goroutine busy for duty of every cpuSlice until ctx is done.
func burn(ctx context.Context, duty float64) {
	busy := time.Duration(duty * float64(cpuSlice))
	x := uint64(1)
	for ctx.Err() == nil {
		end := time.Now().Add(busy)
		for time.Now().Before(end) {
			for range 1000 {
				x = x*6364136223846793005 + 1442695040888963407
			}
		}
		if busy < cpuSlice && !sleep(ctx, cpuSlice-busy) {
			break
		}
	}
	_ = x
}

// storm opens rate new connections per second, spread over the second and
// over the peers, and closes each after hold. It keeps at most maxStormOpen
// open, so a storm cannot exhaust the service's file descriptors.
func (f *Faults) storm(ctx context.Context, rate int, hold time.Duration) {
	var (
		conns sync.WaitGroup
		open  = make(chan struct{}, maxStormOpen)
		d     = net.Dialer{Timeout: time.Second}
	)
	defer conns.Wait()
	tick := time.NewTicker(time.Second / time.Duration(rate))
	defer tick.Stop()
	for i := 0; ; i++ {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		select {
		case open <- struct{}{}:
		default:
			continue // at the limit: wait for some to close
		}
		peer := f.peers[i%len(f.peers)]
		conns.Go(func() {
			defer func() { <-open }()
			c, err := d.DialContext(ctx, "tcp", peer)
			if err != nil {
				if ctx.Err() == nil {
					f.stormErrs.Inc()
				}
				return
			}
			f.stormOpen.Inc()
			sleep(ctx, hold)
			_ = c.Close()
			f.stormOpen.Dec()
		})
	}
}

// ServeHTTP is the admin endpoint of faults:
//
//	GET    /admin/fault                          the current faults, JSON
//	POST   /admin/fault?kind=latency&ms=300      add 300 ms to every request
//	POST   /admin/fault?kind=errors&rate=0.2     fail 20% of requests with 500
//	POST   /admin/fault?kind=cpu&cores=0.5       burn half a core
//	POST   /admin/fault?kind=connstorm&rate=200&hold_ms=2000
//	DELETE /admin/fault?kind=latency             clear one kind (or all, without kind)
//
// A POST sets one kind and leaves the others as they are.
func (f *Faults) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodGet:
	case http.MethodPost, http.MethodDelete:
		spec, err := applyQuery(f.Spec(), r)
		if err == nil {
			err = f.Set(spec)
		}
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
	default:
		w.Header().Set("Allow", "GET, POST, DELETE")
		http.Error(w, "use GET to read the faults, POST to set one, DELETE to clear", http.StatusMethodNotAllowed)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(f.Spec())
}

// applyQuery changes spec as an admin request asks.
func applyQuery(spec FaultSpec, r *http.Request) (FaultSpec, error) {
	q := r.URL.Query()
	kind := q.Get("kind")
	if r.Method == http.MethodDelete {
		switch kind {
		case "":
			return FaultSpec{}, nil
		case FaultLatency:
			spec.Latency = 0
		case FaultErrors:
			spec.ErrorRate = 0
		case FaultCPU:
			spec.CPUCores = 0
		case FaultConnStorm:
			spec.StormRate, spec.StormHold = 0, 0
		default:
			return spec, unknownKind(kind)
		}
		return spec, nil
	}
	num := func(name string, def float64) (float64, error) {
		s := q.Get(name)
		if s == "" {
			if def < 0 {
				return 0, fmt.Errorf("kind=%s needs the parameter %s", kind, name)
			}
			return def, nil
		}
		v, err := strconv.ParseFloat(s, 64)
		if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
			return 0, fmt.Errorf("parameter %s=%q is not a number", name, s)
		}
		return v, nil
	}
	var err error
	var v float64
	switch kind {
	case FaultLatency:
		if v, err = num("ms", -1); err == nil {
			spec.Latency = time.Duration(v * float64(time.Millisecond))
		}
	case FaultErrors:
		if v, err = num("rate", -1); err == nil {
			spec.ErrorRate = v
		}
	case FaultCPU:
		if v, err = num("cores", -1); err == nil {
			spec.CPUCores = v
		}
	case FaultConnStorm:
		var hold float64
		if v, err = num("rate", defaultStormRt); err == nil {
			if hold, err = num("hold_ms", float64(defaultHold/time.Millisecond)); err == nil {
				if v != math.Trunc(v) {
					err = fmt.Errorf("parameter rate=%v is not a whole number of connections per second", v)
				}
				spec.StormRate, spec.StormHold = int(v), time.Duration(hold*float64(time.Millisecond))
			}
		}
	case "":
		err = errors.New("the parameter kind is missing: " + kindList())
	default:
		err = unknownKind(kind)
	}
	return spec, err
}

func unknownKind(kind string) error {
	return fmt.Errorf("unknown fault kind %q: %s", kind, kindList())
}

func kindList() string {
	return "want one of latency (ms), errors (rate), cpu (cores), connstorm (rate, hold_ms)"
}
