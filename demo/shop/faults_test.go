package shop

import (
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
)

func TestApplyQuery(t *testing.T) {
	start := FaultSpec{Latency: 100 * time.Millisecond, ErrorRate: 0.1, CPUCores: 0.5, StormRate: 10, StormHold: time.Second}
	tests := []struct {
		name    string
		method  string
		query   string
		want    FaultSpec
		wantErr string
	}{
		{name: "latency", query: "kind=latency&ms=300", want: FaultSpec{Latency: 300 * time.Millisecond, ErrorRate: 0.1, CPUCores: 0.5, StormRate: 10, StormHold: time.Second}},
		{name: "fractional latency", query: "kind=latency&ms=2.5", want: FaultSpec{Latency: 2500 * time.Microsecond, ErrorRate: 0.1, CPUCores: 0.5, StormRate: 10, StormHold: time.Second}},
		{name: "errors", query: "kind=errors&rate=0.25", want: FaultSpec{Latency: 100 * time.Millisecond, ErrorRate: 0.25, CPUCores: 0.5, StormRate: 10, StormHold: time.Second}},
		{name: "cpu", query: "kind=cpu&cores=1", want: FaultSpec{Latency: 100 * time.Millisecond, ErrorRate: 0.1, CPUCores: 1, StormRate: 10, StormHold: time.Second}},
		{name: "storm defaults", query: "kind=connstorm", want: FaultSpec{Latency: 100 * time.Millisecond, ErrorRate: 0.1, CPUCores: 0.5, StormRate: 100, StormHold: 2 * time.Second}},
		{name: "storm", query: "kind=connstorm&rate=300&hold_ms=500", want: FaultSpec{Latency: 100 * time.Millisecond, ErrorRate: 0.1, CPUCores: 0.5, StormRate: 300, StormHold: 500 * time.Millisecond}},
		{name: "clear one", method: http.MethodDelete, query: "kind=errors", want: FaultSpec{Latency: 100 * time.Millisecond, CPUCores: 0.5, StormRate: 10, StormHold: time.Second}},
		{name: "clear storm", method: http.MethodDelete, query: "kind=connstorm", want: FaultSpec{Latency: 100 * time.Millisecond, ErrorRate: 0.1, CPUCores: 0.5}},
		{name: "clear all", method: http.MethodDelete, query: "", want: FaultSpec{}},
		{name: "no kind", query: "ms=300", wantErr: "the parameter kind is missing"},
		{name: "empty", query: "", wantErr: "the parameter kind is missing"},
		{name: "unknown kind", query: "kind=slowness&ms=3", wantErr: `unknown fault kind "slowness"`},
		{name: "unknown kind to clear", method: http.MethodDelete, query: "kind=slowness", wantErr: `unknown fault kind "slowness"`},
		{name: "latency without ms", query: "kind=latency", wantErr: "kind=latency needs the parameter ms"},
		{name: "malformed number", query: "kind=latency&ms=3x", wantErr: `parameter ms="3x" is not a number`},
		{name: "NaN", query: "kind=errors&rate=NaN", wantErr: `parameter rate="NaN" is not a number`},
		{name: "infinite", query: "kind=cpu&cores=Inf", wantErr: `parameter cores="Inf" is not a number`},
		{name: "fractional storm rate", query: "kind=connstorm&rate=1.5", wantErr: "not a whole number"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			method := tt.method
			if method == "" {
				method = http.MethodPost
			}
			got, err := applyQuery(start, httptest.NewRequest(method, "/admin/fault?"+tt.query, nil))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("spec (-want +got):\n%s", diff)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name     string
		spec     FaultSpec
		serves   bool
		peers    int
		wantErr  string
		wantNone bool
	}{
		{name: "none", serves: true, wantNone: true},
		{name: "all within bounds", spec: FaultSpec{Latency: time.Second, ErrorRate: 1, CPUCores: 1, StormRate: 10, StormHold: time.Second}, serves: true, peers: 1, wantNone: true},
		{name: "negative latency", spec: FaultSpec{Latency: -1}, serves: true, wantErr: "latency -1ns is out of range"},
		{name: "latency too long", spec: FaultSpec{Latency: 2 * time.Minute}, serves: true, wantErr: "want 0 to 1m0s"},
		{name: "error rate above 1", spec: FaultSpec{ErrorRate: 1.5}, serves: true, wantErr: "error rate 1.5 is out of range"},
		{name: "NaN error rate", spec: FaultSpec{ErrorRate: math.NaN()}, serves: true, wantErr: "error rate NaN is out of range"},
		{name: "too many cores", spec: FaultSpec{CPUCores: 1e6}, serves: true, wantErr: "cpu cores 1e+06 is out of range"},
		{name: "storm too fast", spec: FaultSpec{StormRate: 1e6}, serves: true, peers: 1, wantErr: "connection storm rate 1000000 is out of range"},
		{name: "storm without peers", spec: FaultSpec{StormRate: 10}, serves: true, wantErr: "calls no other service"},
		{name: "latency on the load generator", spec: FaultSpec{Latency: time.Second}, peers: 1, wantErr: "serves no requests"},
		{name: "cpu on the load generator", spec: FaultSpec{CPUCores: 0.5}, peers: 1, wantNone: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.spec.Validate(tt.serves, tt.peers)
			if tt.wantNone {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}

// TestAdminEndpoint drives the admin handler of a service with no peers,
// and checks that refused requests leave the faults as they were.
func TestAdminEndpoint(t *testing.T) {
	f, err := newFaults(prometheus.NewRegistry(), true, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Stop()
	do := func(method, query string) (int, string) {
		rec := httptest.NewRecorder()
		f.ServeHTTP(rec, httptest.NewRequest(method, "/admin/fault?"+query, nil))
		return rec.Code, strings.TrimSpace(rec.Body.String())
	}
	if code, body := do(http.MethodPost, "kind=latency&ms=250"); code != http.StatusOK || !strings.Contains(body, `"latency_ms":250`) {
		t.Fatalf("set latency: %d %s", code, body)
	}
	if code, body := do(http.MethodPost, "kind=connstorm&rate=10"); code != http.StatusBadRequest || !strings.Contains(body, "calls no other service") {
		t.Errorf("storm on a leaf service: %d %s, want 400 saying why", code, body)
	}
	if code, body := do(http.MethodPut, ""); code != http.StatusMethodNotAllowed {
		t.Errorf("PUT: %d %s, want 405", code, body)
	}
	if got := f.Spec().Latency; got != 250*time.Millisecond {
		t.Errorf("latency after refused requests %s, want 250ms", got)
	}
	if code, body := do(http.MethodDelete, ""); code != http.StatusOK || f.Spec() != (FaultSpec{}) {
		t.Errorf("clear: %d %s, spec %+v", code, body, f.Spec())
	}
}

// TestWrap checks the request faults on a handler: latency delays, errors
// fail the share asked for.
func TestWrap(t *testing.T) {
	f, err := newFaults(prometheus.NewRegistry(), true, nil)
	if err != nil {
		t.Fatal(err)
	}
	h := f.Wrap(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) }))
	serve := func() (int, time.Duration) {
		rec := httptest.NewRecorder()
		start := time.Now()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/", nil))
		return rec.Code, time.Since(start)
	}
	if err := f.Set(FaultSpec{Latency: 50 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	if code, took := serve(); code != http.StatusOK || took < 50*time.Millisecond {
		t.Errorf("with 50ms latency: %d after %s", code, took)
	}
	if err := f.Set(FaultSpec{ErrorRate: 0.5}); err != nil {
		t.Fatal(err)
	}
	failed := 0
	const n = 2000
	for range n {
		if code, _ := serve(); code == http.StatusInternalServerError {
			failed++
		}
	}
	// Binomial(2000, 0.5): 6 standard deviations is ±134.
	if failed < n/2-134 || failed > n/2+134 {
		t.Errorf("%d of %d failed with error rate 0.5", failed, n)
	}
}

func TestRatioWindow(t *testing.T) {
	w := newRatioWindow(3 * time.Second)
	t0 := time.Unix(1000, 0)
	if r := w.ratio(t0); !math.IsNaN(r) {
		t.Errorf("empty window: %v, want NaN", r)
	}
	w.add(t0, true)
	w.add(t0, false)
	w.add(t0.Add(time.Second), true)
	w.add(t0.Add(time.Second), true)
	if r := w.ratio(t0.Add(2 * time.Second)); r != 0.75 {
		t.Errorf("ratio %v, want 3 of 4", r)
	}
	// t0's second leaves the window.
	if r := w.ratio(t0.Add(3 * time.Second)); r != 1 {
		t.Errorf("ratio after t0 left the window %v, want 1", r)
	}
	// A slot reused for a new second forgets the old one.
	w.add(t0.Add(3*time.Second), false)
	if r := w.ratio(t0.Add(3 * time.Second)); math.Abs(r-2.0/3) > 1e-12 {
		t.Errorf("ratio %v, want 2 of 3", r)
	}
	if r := w.ratio(t0.Add(time.Hour)); !math.IsNaN(r) {
		t.Errorf("ratio long after %v, want NaN", r)
	}
}

func TestParseFlags(t *testing.T) {
	cfg, _, err := parseFlags(Checkout, "v2", "300ms", []string{
		"--web.listen-address=127.0.0.1:1", "--payments.url=http://127.0.0.1:2", "--fault.latency=20ms", "--fault.connstorm=5",
	})
	if err != nil {
		t.Fatal(err)
	}
	want := Config{
		Role: Checkout, Build: "v2", Slowdown: 300 * time.Millisecond, Listen: "127.0.0.1:1",
		URLs:        map[Role]string{Payments: "http://127.0.0.1:2", Inventory: "http://127.0.0.1:10184"},
		Faults:      FaultSpec{Latency: 20 * time.Millisecond, StormRate: 5, StormHold: 2 * time.Second},
		RatioWindow: time.Minute,
	}
	if diff := cmp.Diff(want, cfg, cmp.FilterPath(func(p cmp.Path) bool { return p.Last().String() == ".Logger" }, cmp.Ignore())); diff != "" {
		t.Errorf("config (-want +got):\n%s", diff)
	}
	for _, tc := range []struct {
		role     Role
		slowdown string
		args     []string
		want     string
	}{
		{Payments, "", []string{"--fault.connstorm=5"}, "unknown long flag '--fault.connstorm'"},
		{Loadgen, "", []string{"--fault.latency=1s"}, "unknown long flag '--fault.latency'"},
		{Checkout, "fast", nil, `slowdown "fast" (main.slowdown) is not a duration`},
		{Loadgen, "", []string{"--load.rate=lots"}, `parsing "lots"`},
	} {
		if _, _, err := parseFlags(tc.role, "v1", tc.slowdown, tc.args); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s %v: error %v, want one containing %q", tc.role, tc.args, err, tc.want)
		}
	}
}
