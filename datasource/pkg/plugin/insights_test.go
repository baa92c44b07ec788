package plugin

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// stepBand is a band series on the shop day's minutes from 10:00 to 12:00
// whose value moves from before to after at the given time, with an
// anomaly score of 0.99 from then on (0.1 before).
func stepBand(at time.Time, before, after float64) *bandSeries {
	n := 121
	b := newBandSeries(nil, n)
	for i := range n {
		t := shopFrom.Add(time.Duration(i) * time.Minute)
		b.Times[i] = t
		b.Value[i], b.Score[i] = before, 0.1
		if !t.Before(at) {
			b.Value[i], b.Score[i] = after, 0.99
		}
	}
	return b
}

func TestFindWindows(t *testing.T) {
	obj := 0.5
	k := KPI{Name: "latency", Direction: DirectionLower, Objective: &obj}
	s := stepBand(at("11:30"), 0.2, 0.9)
	for i, tm := range s.Times {
		s.Expected[i] = 0.2
		// A one-minute dip back to normal inside the window must not
		// split it; the window ends at 11:45.
		if tm.Equal(at("11:36")) || !tm.Before(at("11:46")) {
			s.Value[i], s.Score[i] = 0.2, 0.1
		}
	}
	got := findWindows(k, s)
	want := []insightWindow{{ID: 1, Start: at("11:30"), End: at("11:45"), Reason: "objective breached, anomalous", Worst: 0.9, Expected: 0.2, MaxScore: 0.99}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("windows (-want +got):\n%s", diff)
	}

	// Anomalous in the good direction is not a problem.
	good := stepBand(at("11:30"), 0.2, 0.1)
	for i := range good.Expected {
		good.Expected[i] = 0.2
	}
	if w := findWindows(KPI{Name: "latency", Direction: DirectionLower}, good); len(w) != 0 {
		t.Errorf("latency falling: windows %v, want none", w)
	}
}

// TestRankCausesChain: payments slows down; checkout piles up connections to
// it, storefront piles up connections to checkout. Every edge changes as
// much, at the same time; the root of the chain comes first, because each
// caller's change is explained by its callee's.
func TestRankCausesChain(t *testing.T) {
	win := []insightWindow{{ID: 1, Start: at("11:30"), End: at("11:40")}}
	in := rankInput{
		KPI:     KPI{Name: "checkout_latency", Direction: DirectionLower},
		Windows: win,
		Signals: []signalSeries{
			{Kind: CauseEdge, Signal: "connections", Service: "checkout", Edge: "storefront → checkout:10182", Band: stepBand(at("11:30"), 4, 40)},
			{Kind: CauseEdge, Signal: "connections", Service: "payments", Edge: "checkout → payments:10183", Band: stepBand(at("11:30"), 2, 20)},
			{Kind: CauseSignal, Signal: "context switches", Service: "checkout", Band: stepBand(at("11:30"), 300, 900)},
		},
		Hops:    map[string]int{"checkout": 0, "payments": 1},
		Callees: map[string][]string{"storefront": {"checkout"}, "checkout": {"payments"}},
		Step:    time.Minute,
	}
	causes := rankCauses(in)
	type row struct {
		Service, Signal, ExplainedBy string
		Score                        float64
	}
	var got []row
	for _, c := range causes {
		got = append(got, row{c.Service, c.Signal, c.ExplainedBy, math.Round(c.Score*100) / 100})
	}
	size := 1 - math.Exp(-9/changeScale) // a tenfold rise
	want := []row{
		{"payments", "connections", "", math.Round(0.99*size*0.8*100) / 100},
		{"checkout", "connections", "anomaly in payments, which checkout calls", math.Round(0.99*size*0.5*100) / 100},
		{"checkout", "context switches", "anomaly in payments, which checkout calls", math.Round(0.99*(1-math.Exp(-2/changeScale))*0.5*100) / 100},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("causes (-want +got):\n%s", diff)
	}
}

func TestTiming(t *testing.T) {
	tol := 2 * time.Minute
	for _, tc := range []struct {
		lead time.Duration
		want float64
	}{
		{0, 1},
		{tol, 1},
		{-tol, 1},
		{tol + timingDecay, math.Exp(-1)},
		{-tol - timingDecay, 0.5 * math.Exp(-1)},
	} {
		if got := timing(tc.lead, tol); math.Abs(got-tc.want) > 1e-12 {
			t.Errorf("timing(%s) = %v, want %v", tc.lead, got, tc.want)
		}
	}
}

// TestDeployNeedsTheKPIToChangeWithIt: a harmless deploy of checkout twenty
// steps before latency in payments is no candidate; the same deploy as
// the KPI goes wrong is the top cause.
func TestDeployNeedsTheKPIToChangeWithIt(t *testing.T) {
	win := []insightWindow{{ID: 1, Start: at("11:30"), End: at("11:40")}}
	rank := func(deployAt time.Time) []cause {
		return rankCauses(rankInput{
			KPI:     KPI{Name: "checkout_latency", Direction: DirectionLower},
			Windows: win,
			Signals: []signalSeries{
				{Kind: CauseSignal, Signal: "cpu", Service: "payments", Band: stepBand(at("11:29"), 0.1, 0.6)},
			},
			Deploys: []deployEvent{{Time: deployAt, Service: "checkout", Instance: "10.0.0.1:10171", Host: "shop-1", OldBuild: "a", NewBuild: "b"}},
			Hops:    map[string]int{"checkout": 0, "payments": 1},
			Callees: map[string][]string{"checkout": {"payments"}},
			Step:    time.Minute,
		})
	}
	early := rank(win[0].Start.Add(-20 * time.Minute))
	if early[0].Service != "payments" || early[0].Kind != CauseSignal {
		t.Errorf("top cause %s/%s, want payments' cpu: a deploy long before, with the KPI healthy since, did not break it", early[0].Service, early[0].Kind)
	}
	for _, c := range early {
		if c.Kind == CauseDeploy {
			t.Errorf("deploy %s before the window is a candidate (score %.2f), want none", c.Lead, c.Score)
		}
	}
	now := rank(win[0].Start)
	if now[0].Kind != CauseDeploy || now[0].Service != "checkout" || now[0].Timing != 1 {
		t.Errorf("top cause %+v, want the deploy of checkout as the KPI went wrong", now[0])
	}
	if !strings.Contains(now[0].Evidence, "on shop-1") {
		t.Errorf("evidence %q does not name the service's host", now[0].Evidence)
	}
}

// TestRankTiesAreNotInputOrder: two causes of equal score keep the same
// order whatever order they come in.
func TestRankTiesAreNotInputOrder(t *testing.T) {
	win := []insightWindow{{ID: 1, Start: at("11:30"), End: at("11:40")}}
	a := signalSeries{Kind: CauseEdge, Signal: "round-trip time", Service: "payments", Edge: "storefront → payments:10183", Band: stepBand(at("11:30"), 1, 2)}
	b := signalSeries{Kind: CauseEdge, Signal: "round-trip time", Service: "payments", Edge: "checkout → payments:10183", Band: stepBand(at("11:30"), 1, 2)}
	order := func(sigs ...signalSeries) []string {
		var out []string
		for _, c := range rankCauses(rankInput{Windows: win, Signals: sigs, Step: time.Minute}) {
			out = append(out, c.Evidence)
		}
		return out
	}
	ab, ba := order(a, b), order(b, a)
	if diff := cmp.Diff(ab, ba); diff != "" {
		t.Errorf("ranking depends on input order (-a,b +b,a):\n%s", diff)
	}
	if !strings.HasPrefix(ab[0], "round-trip time of checkout") {
		t.Errorf("first %q, want the edge named first alphabetically", ab[0])
	}
}
