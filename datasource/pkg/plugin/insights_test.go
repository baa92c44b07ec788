package plugin

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/common/model"
)

// stepBand is a band series on the shop day's minutes from 10:00 to 12:00
// whose value moves from before to after at the given time, with an
// anomaly score of 0.99 from then on (0.1 before).
func stepBand(at time.Time, before, after float64) *bandSeries {
	return stepBandOn(121, time.Minute, at, before, after, 0.99)
}

// stepBandOn is a band series of n points step apart from shopFrom whose
// value moves from before to after at the given time, with an anomaly
// score of score from then on (0.1 before).
func stepBandOn(n int, step time.Duration, at time.Time, before, after, score float64) *bandSeries {
	b := newBandSeries(nil, n)
	for i := range n {
		t := shopFrom.Add(time.Duration(i) * step)
		b.Times[i] = t
		b.Value[i], b.Score[i] = before, 0.1
		if !t.Before(at) {
			b.Value[i], b.Score[i] = after, score
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
	got := findWindows(k, s, 0)
	want := []insightWindow{{ID: 1, Start: at("11:30"), End: at("11:45"), Reason: "objective breached, anomalous, moved against its recent level", Worst: 0.9, Expected: 0.2, MaxScore: 0.99}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("windows (-want +got):\n%s", diff)
	}

	// Anomalous in the good direction is not a problem.
	good := stepBand(at("11:30"), 0.2, 0.1)
	for i := range good.Expected {
		good.Expected[i] = 0.2
	}
	if w := findWindows(KPI{Name: "latency", Direction: DirectionLower}, good, 0); len(w) != 0 {
		t.Errorf("latency falling: windows %v, want none", w)
	}
}

// TestRankCausesChain: payments slows down tenfold; checkout piles up
// connections to it and switches context more, as surely and at the same
// time. The root of the chain comes first: each of checkout's changes is
// explained by its callee getting slower.
func TestRankCausesChain(t *testing.T) {
	win := []insightWindow{{ID: 1, Start: at("11:30"), End: at("11:40")}}
	in := rankInput{
		KPI:     KPI{Name: "checkout_latency", Direction: DirectionLower},
		Windows: win,
		Signals: []signalSeries{
			{Kind: CauseSignal, signalTraits: signalTraits{Internal: true, Cost: true}, Signal: "p90 request duration", Service: "payments", Band: stepBand(at("11:30"), 0.02, 0.2)},
			{Kind: CauseEdge, signalTraits: signalTraits{Work: true}, Signal: "connections", Service: "checkout", Edge: "checkout → payments:10183", Band: stepBand(at("11:30"), 2, 20)},
			{Kind: CauseSignal, signalTraits: signalTraits{Internal: true}, Signal: "context switches", Service: "checkout", Band: stepBand(at("11:30"), 300, 900)},
		},
		Hops:    map[string]int{"checkout": 0, "payments": 1},
		Callees: map[string][]string{"checkout": {"payments"}},
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
		{"payments", "p90 request duration", "", math.Round(0.99*size*0.8*100) / 100},
		{"checkout", "connections", "anomaly in payments, which checkout calls", math.Round(0.99*size*0.5*100) / 100},
		{"checkout", "context switches", "anomaly in payments, which checkout calls", math.Round(0.99*(1-math.Exp(-2/changeScale))*0.5*100) / 100},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("causes (-want +got):\n%s", diff)
	}
}

// TestRankCallerFailing: a service that fails on its own sends its callees
// less work, and everything of theirs falls. A fall explains nothing
// upstream (the caller is not "explained by" its quieter callees), and is
// itself explained by the caller whose errors rose.
func TestRankCallerFailing(t *testing.T) {
	in := rankInput{
		KPI:     KPI{Name: "checkout_success_ratio", Direction: DirectionHigher},
		Windows: []insightWindow{{ID: 1, Start: at("11:30"), End: at("11:40")}},
		Signals: []signalSeries{
			{Kind: CauseSignal, Signal: `requests_total{code="500"}`, Unit: "/s", Service: "checkout", Band: stepBand(at("11:30"), 0.5, 3)},
			{Kind: CauseSignal, Signal: `requests_total{code="200"}`, Unit: "/s", Service: "payments", Band: stepBand(at("11:30"), 10, 7)},
			{Kind: CauseSignal, Signal: signalCPU, Unit: "cores", Service: "payments", Band: stepBand(at("11:30"), 0.2, 0.14)},
		},
		Hops:    map[string]int{"checkout": 0, "payments": 1},
		Callees: map[string][]string{"checkout": {"payments"}},
		Step:    time.Minute,
	}
	check := func(name string) {
		t.Helper()
		causes := rankCauses(in)
		if len(causes) != 3 {
			t.Fatalf("%s: %d causes, want 3: %+v", name, len(causes), causes)
		}
		if c := causes[0]; c.Service != "checkout" || c.ExplainedBy != "" || c.Anomaly < AlertThreshold {
			t.Errorf("%s: first cause %s %s (anomaly %.2f, explained by %q), want checkout's errors, alerting, unexplained", name, c.Service, c.Signal, c.Anomaly, c.ExplainedBy)
		}
		for _, c := range causes[1:] {
			if want := "anomaly in checkout, upstream of payments (less work came in)"; c.ExplainedBy != want {
				t.Errorf("%s: payments' %s explained by %q, want %q", name, c.Signal, c.ExplainedBy, want)
			}
		}
	}
	check("errors that rose")
	// The same errors as a series that appears as they start: young, so
	// its anomaly score is low, but a new series is a change by itself.
	appeared := stepBand(at("11:30"), math.NaN(), 3)
	for i, tm := range appeared.Times {
		if !tm.Before(at("11:30")) {
			appeared.Score[i] = 0.8
		}
	}
	in.Signals[0].Band = appeared
	check("errors that appeared")
}

// TestRankEntranceFailing: errors at the shop's entrance (storefront,
// which calls the KPI's service) lose work before it arrives: everything
// downstream falls, and those falls are explained by the service
// upstream where the errors rose — two calls up as well as one.
func TestRankEntranceFailing(t *testing.T) {
	in := rankInput{
		KPI:     KPI{Name: "orders", Direction: DirectionHigher},
		Windows: []insightWindow{{ID: 1, Start: at("11:30"), End: at("11:40")}},
		Signals: []signalSeries{
			{Kind: CauseSignal, Signal: `requests_total{code="500"}`, Unit: "/s", Service: "storefront", Band: stepBand(at("11:30"), 0.5, 6)},
			{Kind: CauseSignal, Signal: `requests_total{code="200"}`, Unit: "/s", Service: "checkout", Band: stepBand(at("11:30"), 20, 14)},
			{Kind: CauseSignal, Signal: `requests_total{code="200"}`, Unit: "/s", Service: "payments", Band: stepBand(at("11:30"), 20, 14)},
		},
		// As queryInsights builds them: the storefront calls the KPI's
		// service, so it is upstream.
		Hops:     map[string]int{"checkout": 0, "payments": 1, "storefront": 1},
		Upstream: map[string]bool{"storefront": true},
		Callees:  map[string][]string{"storefront": {"checkout"}, "checkout": {"payments"}},
		Step:     time.Minute,
	}
	causes := rankCauses(in)
	if len(causes) != 3 || causes[0].Service != "storefront" {
		t.Fatalf("causes %+v, want storefront's errors first", causes)
	}
	for _, c := range causes[1:] {
		if want := "anomaly in storefront, upstream of " + c.Service + " (less work came in)"; c.ExplainedBy != want {
			t.Errorf("%s's fall explained by %q, want %q", c.Service, c.ExplainedBy, want)
		}
	}
}

// TestRankEntranceErrorsBeforeALaggingWindow: at a 1 s step, errors at
// the shop's entrance appear as a new series 14 s before the orders KPI's
// window opens (a rate that falls by a third takes that long to move the
// median of its last points): they broke it all the same, first among the
// causes, and they explain the falls downstream. A deploy that long before
// counts too; one a minute before, with the KPI healthy since, does not.
func TestRankEntranceErrorsBeforeALaggingWindow(t *testing.T) {
	const n = 1500
	start := shopFrom.Add((n - 100) * time.Second)
	band := func(from time.Time, before, after, score float64) *bandSeries {
		return stepBandOn(n, time.Second, from, before, after, score)
	}
	in := rankInput{
		KPI:     KPI{Name: "orders", Direction: DirectionHigher},
		Windows: []insightWindow{{ID: 1, Start: start, End: start.Add(30 * time.Second)}},
		Signals: []signalSeries{
			// Young: its scores say little; that it appeared says it all.
			{Kind: CauseSignal, Signal: `requests_total{code="500"}`, Unit: "/s", Service: "storefront", Band: band(start.Add(-14*time.Second), math.NaN(), 6, 0.3)},
			{Kind: CauseSignal, Signal: `requests_total{code="200"}`, Unit: "/s", Service: "checkout", Band: band(start.Add(-12*time.Second), 20, 14, 0.99)},
		},
		Hops:     map[string]int{"checkout": 0, "storefront": 1},
		Upstream: map[string]bool{"storefront": true},
		Callees:  map[string][]string{"storefront": {"checkout"}},
		Step:     time.Second,
	}
	causes := rankCauses(in)
	if len(causes) != 2 || causes[0].Service != "storefront" || causes[1].ExplainedBy == "" {
		t.Fatalf("causes %+v, want storefront's errors first, explaining checkout's fall", causes)
	}
	for _, tc := range []struct {
		lead time.Duration
		want bool
	}{{14 * time.Second, true}, {time.Minute, false}} {
		in := in
		in.Deploys = []deployEvent{{Service: "payments", Time: start.Add(-tc.lead), OldBuild: "a", NewBuild: "b"}}
		deployed := false
		for _, c := range rankCauses(in) {
			deployed = deployed || c.Kind == CauseDeploy
		}
		if deployed != tc.want {
			t.Errorf("a deploy %s before the window: a cause %v, want %v", tc.lead, deployed, tc.want)
		}
	}
}

// TestRankBlipIsNoCause: a series that jumps for a few points and comes
// back (one failed request, a restart counted over a rate window) did not
// change its level: it is no cause.
func TestRankBlipIsNoCause(t *testing.T) {
	blip := stepBand(at("11:30"), 0, 0)
	for i, tm := range blip.Times {
		if !tm.Before(at("11:30")) && tm.Before(at("11:32")) {
			blip.Value[i], blip.Score[i] = 1, 0.99
		}
	}
	causes := rankCauses(rankInput{
		KPI:     KPI{Name: "orders", Direction: DirectionHigher},
		Windows: []insightWindow{{ID: 1, Start: at("11:30"), End: at("11:40")}},
		Signals: []signalSeries{{Kind: CauseSignal, Signal: `requests_total{code="502"}`, Service: "storefront", Band: blip}},
		Step:    time.Minute,
	})
	if len(causes) != 0 {
		t.Errorf("causes %+v, want none", causes)
	}
}

// TestRankAlternatingLevelsIsNoCause: a counter its process updates in
// bursts (a Go runtime's frees, counted at each sweep), read as a rate,
// alternates between two levels: high at two points of every five before
// the window, at three of five in it, so its median goes from the low
// level to the high one, and its spread, that of its more frequent level,
// is nothing beside the jump — yet it is where it was a third of the time
// before. It is no cause. A rise to the same high level that stays there
// is one.
func TestRankAlternatingLevelsIsNoCause(t *testing.T) {
	alternating := stepBand(at("11:30"), 0, 0)
	for i, tm := range alternating.Times {
		high := i%5 < 2
		if !tm.Before(at("11:30")) {
			high = i%5 < 3
		}
		alternating.Value[i] = 300 + float64(i%3)
		if high {
			alternating.Value[i] = 5000 + float64(i%3)
		}
	}
	rise := stepBand(at("11:30"), 300, 5000)
	for i := range rise.Value {
		rise.Value[i] += float64(i % 3)
	}
	for _, tc := range []struct {
		band *bandSeries
		want bool
	}{{alternating, false}, {rise, true}} {
		causes := rankCauses(rankInput{
			KPI:     KPI{Name: "checkout_latency", Direction: DirectionLower},
			Windows: []insightWindow{{ID: 1, Start: at("11:30"), End: at("11:40")}},
			Signals: []signalSeries{{Kind: CauseSignal, Signal: "frees_total", Unit: "/s", Service: "payments", Band: tc.band}},
			Hops:    map[string]int{"checkout": 0, "payments": 1},
			Step:    time.Minute,
		})
		if got := len(causes) == 1; got != tc.want {
			t.Errorf("values %v: causes %+v, want a cause: %v", tc.band.Value[90:111], causes, tc.want)
		}
	}
}

// TestRankOldChangeExplainsNothing: a callee whose traffic rose ten
// minutes (60 steps) before the KPI went wrong (with the KPI healthy since) did not
// change with it, and does not explain the caller's errors that did.
func TestRankOldChangeExplainsNothing(t *testing.T) {
	in := rankInput{
		KPI:     KPI{Name: "checkout_success_ratio", Direction: DirectionHigher},
		Windows: []insightWindow{{ID: 1, Start: at("11:30"), End: at("11:40")}},
		Signals: []signalSeries{
			{Kind: CauseSignal, Signal: `requests_total{code="500"}`, Unit: "/s", Service: "checkout", Band: stepBand(at("11:30"), 0.5, 3)},
			{Kind: CauseSignal, Signal: `requests_total{code="200"}`, Unit: "/s", Service: "payments", Band: stepBand(at("11:20"), 10, 17)},
		},
		Hops:    map[string]int{"checkout": 0, "payments": 1},
		Callees: map[string][]string{"checkout": {"payments"}},
		Step:    10 * time.Second,
	}
	causes := rankCauses(in)
	if len(causes) == 0 || causes[0].Service != "checkout" || causes[0].ExplainedBy != "" {
		t.Fatalf("causes %+v, want checkout's errors first, unexplained", causes)
	}
	if want := math.Exp(-(600.0 - 30) / 300); len(causes) < 2 || math.Abs(causes[1].Timing-want) > 1e-3 {
		t.Errorf("payments' rise 60 steps before: causes %+v, want timing %.3f (decaying over 30 steps)", causes, want)
	}
	// At a 1 s step the decay is two minutes, not 30 s.
	in.Step = time.Second
	causes = rankCauses(in)
	if want := math.Exp(-(600.0 - 30) / 120); len(causes) < 2 || math.Abs(causes[1].Timing-want) > 1e-3 {
		t.Errorf("payments' rise 10 minutes before at a 1 s step: causes %+v, want timing %.3f (decaying over 2 minutes)", causes, want)
	}
}

// TestTiming: 1 from tol before the window to lag after it, decaying
// before that, and halved and decaying after: a change seen later than a
// rate's lag after the KPI went wrong is an effect.
func TestTiming(t *testing.T) {
	tol, lag, decay := 2*time.Minute, 5*time.Second, 30*time.Minute
	for _, tc := range []struct {
		lead time.Duration
		want float64
	}{
		{0, 1},
		{tol, 1},
		{-lag, 1},
		{-lag - time.Second, 0.5 * math.Exp(-float64(time.Second)/float64(decay))},
		{tol + decay, math.Exp(-1)},
		{-lag - decay, 0.5 * math.Exp(-1)},
	} {
		if got := timing(tc.lead, tol, lag, decay); math.Abs(got-tc.want) > 1e-12 {
			t.Errorf("timing(%s) = %v, want %v", tc.lead, got, tc.want)
		}
	}
}

// TestLagTolerance: at a 1 s scrape and step, a change seen 30 s after the
// KPI went wrong is an effect (the rate interval is 4 s), and does not
// explain away the caller's change that came with the KPI; at a 1 min step
// the tolerance is two steps.
func TestLagTolerance(t *testing.T) {
	if got := (rankInput{Step: time.Second, RateInterval: 4 * time.Second}).lagTolerance(); got != 5*time.Second {
		t.Errorf("lag at 1 s: %s, want 5s", got)
	}
	if got := (rankInput{Step: time.Minute, RateInterval: 75 * time.Second}).lagTolerance(); got != 135*time.Second {
		t.Errorf("lag at 1 min: %s, want 2m15s", got)
	}
	start := shopFrom.Add(30 * time.Minute)
	band := func(at time.Time, before, after float64) *bandSeries {
		b := newBandSeries(nil, 3600)
		for i := range b.Times {
			b.Times[i] = shopFrom.Add(time.Duration(i) * time.Second)
			b.Value[i], b.Score[i] = before, 0.1
			if !b.Times[i].Before(at) {
				b.Value[i], b.Score[i] = after, 0.99
			}
		}
		return b
	}
	causes := rankCauses(rankInput{
		KPI:     KPI{Name: "checkout_latency", Direction: DirectionLower},
		Windows: []insightWindow{{ID: 1, Start: start, End: start.Add(time.Minute)}},
		Signals: []signalSeries{
			{Kind: CauseSignal, signalTraits: signalTraits{Internal: true, Cost: true}, Signal: "p90 request duration", Unit: "s", Service: "checkout", Band: band(start, 0.02, 0.4)},
			{Kind: CauseEdge, signalTraits: signalTraits{Cost: true}, Signal: "round-trip time", Unit: "s", Service: "inventory", Edge: "checkout → inventory:1", Band: band(start.Add(30*time.Second), 0.004, 0.0047)},
		},
		Hops:         map[string]int{"checkout": 0, "inventory": 1},
		Callees:      map[string][]string{"checkout": {"inventory"}},
		Step:         time.Second,
		RateInterval: 4 * time.Second,
	})
	if len(causes) != 2 || causes[0].Service != "checkout" || causes[0].ExplainedBy != "" || causes[1].Timing >= 0.5 {
		t.Fatalf("causes %+v, want checkout's own change first, unexplained, and the late edge as an effect", causes)
	}
	// A callee whose rise is seen with the KPI explains its caller's,
	// though the caller's scores alarmed 10 s earlier: alarms place an
	// onset only to within a few steps, so the order inside the window's
	// tolerance says nothing.
	causes = rankCauses(rankInput{
		KPI:     KPI{Name: "checkout_latency", Direction: DirectionLower},
		Windows: []insightWindow{{ID: 1, Start: start, End: start.Add(time.Minute)}},
		Signals: []signalSeries{
			{Kind: CauseSignal, signalTraits: signalTraits{Internal: true, Cost: true}, Signal: "p90 request duration", Unit: "s", Service: "checkout", Band: band(start.Add(-10*time.Second), 0.02, 0.4)},
			{Kind: CauseSignal, signalTraits: signalTraits{Internal: true, Cost: true}, Signal: "p90 request duration", Unit: "s", Service: "payments", Band: band(start, 0.02, 0.4)},
		},
		Hops:         map[string]int{"checkout": 0, "payments": 1},
		Callees:      map[string][]string{"checkout": {"payments"}},
		Step:         time.Second,
		RateInterval: 4 * time.Second,
	})
	if len(causes) != 2 || causes[0].Service != "payments" || causes[1].ExplainedBy != "anomaly in payments, which checkout calls" {
		t.Fatalf("causes %+v, want payments first, explaining checkout", causes)
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

// TestRankTiesGoToTheClearerChange: a latency that rose fiftyfold and a
// runtime counter that tripled show the same score (both changes saturate
// the size factor); the counter's, which starts a step earlier and moves
// by a few of its own spreads, must not win the tie over the latency's,
// which moves by hundreds of its spreads.
func TestRankTiesGoToTheClearerChange(t *testing.T) {
	noisy := func(at time.Time, before, after, jitter float64) *bandSeries {
		b := stepBand(at, before, after)
		rng := rand.New(rand.NewPCG(1, 2))
		for i := range b.Value {
			b.Value[i] += jitter * (2*rng.Float64() - 1)
		}
		return b
	}
	latency := signalSeries{Kind: CauseSignal, signalTraits: signalTraits{Internal: true, Cost: true}, Signal: "p90 request duration", Unit: "s", Service: "inventory", Band: noisy(at("11:30"), 0.008, 0.45, 0.001)}
	frees := signalSeries{Kind: CauseSignal, Signal: "frees_total", Unit: "/s", Service: "payments", Band: noisy(at("11:29"), 1000, 3000, 400)}
	for _, sigs := range [][]signalSeries{{latency, frees}, {frees, latency}} {
		causes := rankCauses(rankInput{
			KPI:     KPI{Name: "checkout_latency", Direction: DirectionLower},
			Windows: []insightWindow{{ID: 1, Start: at("11:30"), End: at("11:40")}},
			Signals: sigs,
			Hops:    map[string]int{"checkout": 0, "inventory": 1, "payments": 1},
			Step:    time.Minute,
		})
		if len(causes) != 2 || round3(causes[0].Score) != round3(causes[1].Score) {
			t.Fatalf("causes %+v, want two of the same score", causes)
		}
		if causes[0].Service != "inventory" || !(causes[0].Clarity > 10*causes[1].Clarity) {
			t.Errorf("first %s (clarity %.1f), then %s (clarity %.1f): want inventory's latency, by far the clearer change, first",
				causes[0].Service, causes[0].Clarity, causes[1].Service, causes[1].Clarity)
		}
	}
}

// TestSignalQueryReadsWhatTheRankingReads: the signals of a window are
// read from twice the search span before it (where the ranking looks for
// an onset and the level before it), after the ensemble's warm-up of
// warmupSteps steps — not an hour before the range, which at a 1 s step
// would read and score three times as much, and not from within the range
// when the window is near its start.
func TestSignalQueryReadsWhatTheRankingReads(t *testing.T) {
	for _, c := range []struct {
		name     string
		from, to time.Time
		step     time.Duration
	}{
		{"range from a minute before the incident, 1 s step", at("11:29"), at("11:32"), time.Second},
		{"range of hours, 1 s step", at("10:00"), at("11:45"), time.Second},
		{"range of hours, 15 s step", at("10:00"), at("12:00"), 15 * time.Second},
		{"range starting at the incident, 1 m step", at("11:30"), at("12:00"), time.Minute},
	} {
		q := Query{From: c.from, To: c.to, Step: c.step}
		wins := []insightWindow{{ID: 2, Start: at("11:40"), End: at("11:41")}, {ID: 1, Start: at("11:30"), End: at("11:31")}}
		sq := signalQuery(q, wins)
		look := at("11:30").Add(-2 * searchSpan(c.step))
		if !sq.From.Equal(look) || !sq.To.Equal(c.to) {
			t.Errorf("%s: signals read %s to %s, want from %s (twice the search span before the first window) to %s",
				c.name, sq.From.Format("15:04:05"), sq.To.Format("15:04:05"), look.Format("15:04:05"), c.to.Format("15:04:05"))
		}
		if got, want := sq.warmStart(), look.Add(-warmupSteps*c.step); !got.Equal(want) {
			t.Errorf("%s: signals' scoring starts at %s, want %s (%d steps of warm-up)", c.name, got.Format("15:04:05"), want.Format("15:04:05"), warmupSteps)
		}
	}
}

// TestWindowWithoutObjective: orders per second (20/s, with the 10% noise
// of a rate over a few seconds of a Poisson stream) fall by 30% while the
// detector says nothing (held, or not warm): a KPI without an objective,
// or one still within it, gets a window, within a few steps. Steady series rarely do, even
// with wide noise (30%).
func TestWindowWithoutObjective(t *testing.T) {
	k := KPI{Name: "orders", Direction: DirectionHigher}
	series := func(noise, after float64, seed uint64) *bandSeries {
		b := newBandSeries(nil, 400)
		rng := rand.New(rand.NewPCG(5, seed))
		for i := range b.Times {
			b.Times[i] = shopFrom.Add(time.Duration(i) * time.Second)
			b.Value[i] = 20 * (1 + noise*rng.NormFloat64())
			if i >= 300 {
				b.Value[i] *= after
			}
			b.Score[i], b.Expected[i] = 0, 20
		}
		return b
	}
	drop := shopFrom.Add(300 * time.Second)
	found, steady, noisy := 0, 0, 0
	for seed := range uint64(20) {
		wins := findWindows(k, series(0.1, 0.7, seed), 0)
		if len(wins) > 0 && !wins[0].Start.Before(drop) && !wins[0].Start.After(drop.Add(8*time.Second)) && wins[0].Reason == "moved against its recent level" {
			found++
		}
		steady += len(findWindows(k, series(0.1, 1, seed), 0))
		noisy += len(findWindows(k, series(0.3, 1, seed+100), 0))
	}
	if found < 18 {
		t.Errorf("orders down 30%%: a window within 8 steps in %d of 20 series, want at least 18", found)
	}
	if steady > 1 || noisy > 3 {
		t.Errorf("steady orders: %d windows in 20 series of 400 points with 10%% noise, %d with 30%%; want at most 1 and 3", steady, noisy)
	}
	// A KPI with an objective that it still meets gets the same window:
	// a clear move is worth explaining before it breaches.
	obj := 10.0
	if wins := findWindows(KPI{Name: "orders", Direction: DirectionHigher, Objective: &obj}, series(0.1, 0.7, 1), 0); len(wins) == 0 || wins[0].Reason != "moved against its recent level" {
		t.Errorf("orders down 30%% but above their objective: windows %+v, want a window, moved against its recent level", wins)
	}
}

// TestRankContention: a CPU hog appears outside the shop (too young to be
// scored: its values alone show it) and the checkout's run-queue wait
// rises. The hog is the culprit, not its victim, though no call connects it
// to the KPI's service.
func TestRankContention(t *testing.T) {
	win := []insightWindow{{ID: 1, Start: at("11:30"), End: at("11:40")}}
	hog := newBandSeries(nil, 121)
	for i := range hog.Times {
		hog.Times[i] = shopFrom.Add(time.Duration(i) * time.Minute)
		if !hog.Times[i].Before(at("11:29")) {
			hog.Value[i] = 1.9 // cores; no score: the series is new
		}
	}
	causes := rankCauses(rankInput{
		KPI:     KPI{Name: "checkout_latency", Direction: DirectionLower},
		Windows: win,
		Signals: []signalSeries{
			{Kind: CauseSignal, Signal: signalRunqueue, Service: "checkout", Band: stepBand(at("11:29"), 0.001, 0.2)},
			{Kind: CauseSignal, Signal: signalCPU, Unit: "cores", Service: "cpuhog", Band: hog},
			{Kind: CauseSignal, Signal: signalCPU, Service: "checkout", Band: stepBand(at("11:29"), 0.3, 0.25)},
		},
		Hops:    map[string]int{"checkout": 0, "payments": 1},
		Callees: map[string][]string{"checkout": {"payments"}},
		Step:    time.Minute,
	})
	if len(causes) == 0 || causes[0].Service != "cpuhog" || causes[0].Signal != signalCPU {
		t.Fatalf("causes %+v, want cpuhog's CPU first", causes)
	}
	if !strings.Contains(causes[0].Evidence, "appeared at 1.9 cores") || !strings.Contains(causes[0].Evidence, "competes for the host's CPUs with checkout") {
		t.Errorf("evidence %q", causes[0].Evidence)
	}
	for _, c := range causes[1:] {
		if c.Service == "checkout" && c.Signal == signalRunqueue && c.ExplainedBy != "CPU taken by cpuhog" {
			t.Errorf("checkout's run-queue wait explained by %q, want the CPU hog", c.ExplainedBy)
		}
	}
	// A service whose CPU rose by less than the others waited for more
	// took nothing from them.
	small := unscoredCopy(stepBand(at("11:29"), 0.01, 0.02))
	if hog, _, _ := contention(rankCauses(rankInput{
		Windows: win,
		Signals: []signalSeries{
			{Kind: CauseSignal, Signal: signalRunqueue, Service: "checkout", Band: stepBand(at("11:29"), 0.001, 0.2)},
			{Kind: CauseSignal, Signal: signalCPU, Service: "exporter", Band: small},
		},
		Step: time.Minute,
	}), nil, 0); hog != "" {
		t.Errorf("contention blames %s for 0.01 cores more, while checkout waited 0.2 s/s more", hog)
	}
	// Many services waiting at once wait for the same CPUs: eight that
	// each waited 0.3 s/s more (2.4 together, more than the 1.9 cores
	// taken) were still all waiting for the hog.
	many := []signalSeries{{Kind: CauseSignal, Signal: signalCPU, Unit: "cores", Service: "cpuhog", Band: hog}}
	for i := range 8 {
		many = append(many, signalSeries{Kind: CauseSignal, Signal: signalRunqueue, Service: fmt.Sprintf("svc%d", i), Band: stepBand(at("11:29"), 0.01, 0.31)})
	}
	if hog, _, victims := contention(rankCauses(rankInput{Windows: win, Signals: many, Step: time.Minute}), cpuUse(many, win[0]), 2); hog != "cpuhog" || len(victims) != 8 {
		t.Errorf("with eight services waiting 0.3 s/s more each, contention blames %q for %v; want cpuhog for all eight", hog, victims)
	}
	// A service whose CPU rose by 0.2 cores while the others use 0.6 does
	// not fill the CPUs: everyone waiting a little more is not its doing.
	burn := unscoredCopy(stepBand(at("11:29"), 0.02, 0.22))
	sigs := []signalSeries{
		{Kind: CauseSignal, Signal: signalRunqueue, Service: "checkout", Band: stepBand(at("11:29"), 0.001, 0.01)},
		{Kind: CauseSignal, Signal: signalCPU, Service: "storefront", Band: burn},
		{Kind: CauseSignal, Signal: signalCPU, Service: "checkout", Band: stepBand(at("11:29"), 0.3, 0.3)},
		{Kind: CauseSignal, Signal: signalCPU, Service: "inventory", Band: stepBand(at("11:29"), 0.3, 0.3)},
	}
	in := rankInput{Windows: win, Signals: sigs, Step: time.Minute}
	if hog, _, _ := contention(rankCauses(in), cpuUse(sigs, win[0]), 0); hog != "" {
		t.Errorf("contention blames %s for 0.2 cores more, while the others use 0.6", hog)
	}
	// The same burn of 1.2 cores fills them.
	for i := range burn.Value {
		if !burn.Times[i].Before(at("11:29")) {
			burn.Value[i] = 1.22
		}
	}
	if hog, _, _ := contention(rankCauses(in), cpuUse(sigs, win[0]), 0); hog != "storefront" {
		t.Errorf("contention blames %q for 1.2 cores more, while the others use 0.6; want storefront", hog)
	}
}

// TestRankContentionNeedsBusyCPUs: a burn of 0.2 cores on a quiet host
// of two CPUs (the others use 0.1) is more than the others use and than
// checkout waited for, but it leaves the CPUs mostly idle: checkout's
// wait is not its doing, and its latency stays unexplained by it. A burn
// of 1.5 cores fills them.
func TestRankContentionNeedsBusyCPUs(t *testing.T) {
	win := []insightWindow{{ID: 1, Start: at("11:30"), End: at("11:40")}}
	burn := unscoredCopy(stepBand(at("11:29"), 0.01, 0.21))
	sigs := []signalSeries{
		{Kind: CauseSignal, Signal: signalRunqueue, Service: "checkout", Band: stepBand(at("11:29"), 0.001, 0.01)},
		{Kind: CauseSignal, Signal: signalCPU, Service: "storefront", Band: burn},
		{Kind: CauseSignal, Signal: signalCPU, Service: "checkout", Band: stepBand(at("11:29"), 0.1, 0.1)},
	}
	in := rankInput{Windows: win, Signals: sigs, Step: time.Minute, HostCPUs: 2}
	if hog, _, _ := contention(rankCauses(in), cpuUse(sigs, win[0]), in.HostCPUs); hog != "" {
		t.Errorf("contention blames %s for 0.2 cores more on an idle host of 2 CPUs", hog)
	}
	if hog, _, _ := contention(rankCauses(in), cpuUse(sigs, win[0]), 0); hog != "storefront" {
		t.Errorf("with the CPUs not known, contention blames %q; want storefront (the rule above is what tells them apart)", hog)
	}
	for _, c := range rankCauses(in) {
		if c.ExplainedBy != "" {
			t.Errorf("%s explained by %s, want unexplained", c.Evidence, c.ExplainedBy)
		}
	}
	for i := range burn.Value {
		if !burn.Times[i].Before(at("11:29")) {
			burn.Value[i] = 1.5
		}
	}
	if hog, _, _ := contention(rankCauses(in), cpuUse(sigs, win[0]), in.HostCPUs); hog != "storefront" {
		t.Errorf("contention blames %q for 1.5 cores more on a host of 2 CPUs; want storefront", hog)
	}
}

// TestRankHogUpstream: the checkout's caller burns 1.2 cores and the
// checkout waits for a CPU. The caller's CPU is the culprit: its callee's
// wait, which the burn caused, does not explain it away.
func TestRankHogUpstream(t *testing.T) {
	win := []insightWindow{{ID: 1, Start: at("11:30"), End: at("11:40")}}
	causes := rankCauses(rankInput{
		KPI:     KPI{Name: "checkout_latency", Direction: DirectionLower},
		Windows: win,
		Signals: []signalSeries{
			{Kind: CauseSignal, Signal: signalRunqueue, Unit: "s/s", Service: "checkout", Band: stepBand(at("11:29"), 0.02, 0.3)},
			{Kind: CauseSignal, Signal: signalCPU, Unit: "cores", Service: "storefront", Band: stepBand(at("11:29"), 0.02, 1.22)},
			{Kind: CauseSignal, Signal: signalCPU, Unit: "cores", Service: "checkout", Band: stepBand(at("11:29"), 0.1, 0.1)},
		},
		Hops:    map[string]int{"checkout": 0, "storefront": 1},
		Callees: map[string][]string{"storefront": {"checkout"}},
		Step:    time.Minute,
	})
	if len(causes) == 0 || causes[0].Service != "storefront" || causes[0].Signal != signalCPU {
		t.Fatalf("causes %+v, want storefront's CPU first", causes)
	}
	if causes[0].ExplainedBy != "" {
		t.Errorf("storefront's CPU explained by %q, want unexplained", causes[0].ExplainedBy)
	}
}

// TestRankNearestOnset: inventory restarted at 11:20 (an alarm that ended)
// and its latency rose at 11:30, as the KPI went wrong. The change is the
// one that went on into the window: its onset is 11:30, on time, not the
// restart's.
func TestRankNearestOnset(t *testing.T) {
	b := stepBand(at("11:30"), 0.008, 0.45)
	for i, tm := range b.Times {
		if tm.Equal(at("11:20")) {
			b.Score[i] = 0.95
		}
	}
	causes := rankCauses(rankInput{
		KPI:     KPI{Name: "checkout_latency", Direction: DirectionLower},
		Windows: []insightWindow{{ID: 1, Start: at("11:30"), End: at("11:40")}},
		Signals: []signalSeries{{Kind: CauseSignal, signalTraits: signalTraits{Internal: true, Cost: true}, Signal: "p90 request duration", Unit: "s", Service: "inventory", Band: b}},
		Hops:    map[string]int{"checkout": 0, "inventory": 1},
		Step:    time.Minute,
	})
	if len(causes) != 1 || !causes[0].Onset.Equal(at("11:30")) || causes[0].Timing != 1 {
		t.Fatalf("causes %+v, want inventory's rise with its onset at 11:30, timing 1", causes)
	}
}

// unscoredCopy is b with no scores.
func unscoredCopy(b *bandSeries) *bandSeries {
	for i := range b.Score {
		b.Score[i] = math.NaN()
	}
	return b
}

// TestRankColdStart: no signal has a score yet (detectors not warm, the
// series too young to be scored on demand); the change of payments' CPU is
// still found from its values, and ranked first.
func TestRankColdStart(t *testing.T) {
	win := []insightWindow{{ID: 1, Start: at("11:30"), End: at("11:40")}}
	unscored := func(b *bandSeries) *bandSeries {
		for i := range b.Score {
			b.Score[i] = math.NaN()
		}
		return b
	}
	causes := rankCauses(rankInput{
		KPI:     KPI{Name: "checkout_latency", Direction: DirectionLower},
		Windows: win,
		Signals: []signalSeries{
			{Kind: CauseSignal, Signal: signalCPU, Service: "payments", Band: unscored(stepBand(at("11:29"), 0.1, 0.6))},
			{Kind: CauseSignal, Signal: signalCPU, Service: "inventory", Band: unscored(stepBand(at("11:29"), 0.1, 0.1))},
		},
		Hops: map[string]int{"checkout": 0, "payments": 1, "inventory": 1},
		Step: time.Minute,
	})
	if len(causes) != 1 || causes[0].Service != "payments" || causes[0].Anomaly != AlertThreshold {
		t.Fatalf("causes %+v, want payments' CPU alone, judged from its values", causes)
	}
}

// TestVaries: only series that move where a cause is read are scored.
func TestVaries(t *testing.T) {
	g := newGrid(shopFrom, shopTo, time.Minute)
	wins := []insightWindow{{ID: 1, Start: at("11:30"), End: at("11:40")}}
	mk := func(f func(t time.Time) (float64, bool)) *stepSeries {
		s := newStepSeries(nil, g.n)
		for i := range g.n {
			tm := time.UnixMilli(g.start + int64(i)*g.step)
			if v, ok := f(tm); ok {
				s.t[i], s.v[i] = tm.UnixMilli(), v
			}
		}
		return s
	}
	for _, tc := range []struct {
		name string
		f    func(t time.Time) (float64, bool)
		want bool
	}{
		{"flat", constant(8), false},
		{"flat in the window, moved long before", func(t time.Time) (float64, bool) {
			return map[bool]float64{true: 1, false: 2}[t.Before(at("10:30"))], true
		}, false},
		{"step", func(t time.Time) (float64, bool) {
			return map[bool]float64{true: 1, false: 2}[t.Before(at("11:29"))], true
		}, true},
		{"appears, flat", func(t time.Time) (float64, bool) { return 8, !t.Before(at("11:29")) }, true},
	} {
		if got := varies(g, mk(tc.f), wins, time.Minute); got != tc.want {
			t.Errorf("%s: varies = %v, want %v", tc.name, got, tc.want)
		}
	}
}

// TestRankSecondIncident: inventory's latency went up to the level it had
// in an earlier incident, so the on-demand scores, which have seen that
// level, stay short of the alarm in the second one; the alarms before it
// are the first incident's start and its end. Neither is the change that
// went on into the window — not even when the first incident is so close
// that more than half the values since its start are high — and the rise
// into the window is found where it began.
func TestRankSecondIncident(t *testing.T) {
	for _, tc := range []struct {
		name       string
		first, gap time.Duration // the first incident's length, and the healthy stretch after it
		history    time.Duration // how long the series has existed at the second incident
	}{
		{"four minutes before", 90 * time.Second, 150 * time.Second, 50 * time.Minute},
		{"a minute before", 32 * time.Second, 61 * time.Second, 50 * time.Minute},
		{"a young series", 32 * time.Second, 61 * time.Second, 8 * time.Minute},
	} {
		t.Run(tc.name, func(t *testing.T) {
			step := time.Second
			g := newGrid(shopFrom, shopFrom.Add(time.Hour-step), step)
			w := shopFrom.Add(50 * time.Minute)
			firstAt := w.Add(-tc.gap - tc.first)
			incident := func(tm time.Time) bool {
				return (!tm.Before(firstAt) && tm.Before(w.Add(-tc.gap))) || !tm.Before(w)
			}
			rng := rand.New(rand.NewPCG(1, 2))
			s := newStepSeries(nil, g.n)
			for i := range g.n {
				tm := time.UnixMilli(g.at(i))
				if tm.Before(w.Add(-tc.history)) {
					continue
				}
				v := 0.008 * (1 + 0.1*rng.NormFloat64())
				if incident(tm) {
					v = 0.47 * (1 + 0.02*rng.NormFloat64())
				}
				s.add(g, tm.UnixMilli(), v)
			}
			b := scoreSteps(g, g.times(), s, false)
			win := insightWindow{ID: 1, Start: w, End: w.Add(33 * time.Second)}
			var peak float64
			for i, tm := range b.Times {
				if !tm.Before(w) && !tm.After(win.End) {
					peak = max(peak, b.Score[i])
				}
			}
			if peak >= AlertThreshold {
				t.Fatalf("the second incident scored %.2f: the case this test is about (scores short of the alarm) did not arise", peak)
			}
			in := rankInput{
				KPI:          KPI{Name: "checkout_latency", Direction: DirectionLower},
				Windows:      []insightWindow{win},
				Signals:      []signalSeries{{Kind: CauseSignal, signalTraits: signalTraits{Internal: true, Cost: true}, Signal: "p90 request duration", Unit: "s", Service: "inventory", Band: b}},
				Hops:         map[string]int{"checkout": 0, "inventory": 1},
				Step:         step,
				RateInterval: 4 * step,
			}
			causes := rankCauses(in)
			if len(causes) != 1 {
				t.Fatalf("causes %+v, want inventory's latency", causes)
			}
			c := causes[0]
			if lead := c.Lead; lead > 0 || -lead > in.lagTolerance() || c.Size < 0.99 || c.Anomaly < AlertThreshold {
				t.Errorf("cause %s (onset %s after the window's start), want the rise into the window, onset within %s of it, at the alerting level", c.Evidence, -c.Lead, in.lagTolerance())
			}
		})
	}
}

// TestRankCallerStateDoesNotReachCallee: inventory, which checkout calls,
// got slow while storefront, which calls checkout, burnt 0.2 cores more
// (its CPU, its syscalls and its requests rose, more than inventory's
// latency did, and as sure an anomaly). A caller reaches the checkout only
// as the work it sends: for the checkout's latency (a cost) only its
// connections, the load, count in full, and inventory's latency comes
// first; for orders (an output) its requests count too, its CPU and
// syscalls still do not.
func TestRankCallerStateDoesNotReachCallee(t *testing.T) {
	for _, tc := range []struct {
		kpi   KPI
		reach []string // storefront's signals that keep their proximity
	}{
		{KPI{Name: "checkout_latency", Direction: DirectionLower}, []string{"connections"}},
		{KPI{Name: "orders", Direction: DirectionHigher}, []string{"connections", "requests_total"}},
	} {
		in := rankInput{
			KPI:     tc.kpi,
			Windows: []insightWindow{{ID: 1, Start: at("11:30"), End: at("11:40")}},
			Signals: []signalSeries{
				{Kind: CauseSignal, signalTraits: signalTraits{Internal: true}, Signal: signalCPU, Unit: "cores", Service: "storefront", Band: stepBand(at("11:30"), 0.02, 0.22)},
				{Kind: CauseSignal, signalTraits: signalTraits{Internal: true}, Signal: "write syscalls", Unit: "/s", Service: "storefront", Band: stepBand(at("11:30"), 40, 120)},
				{Kind: CauseSignal, Signal: "requests_total", Unit: "/s", Service: "storefront", Band: stepBand(at("11:30"), 20, 40)},
				{Kind: CauseEdge, signalTraits: signalTraits{Work: true}, Signal: "connections", Service: "storefront", Edge: "storefront → checkout:8080", Band: stepBand(at("11:30"), 2, 4)},
				{Kind: CauseSignal, signalTraits: signalTraits{Internal: true}, Signal: "p90 request duration", Unit: "s", Service: "inventory", Band: stepBand(at("11:30"), 0.008, 0.4)},
			},
			Hops:     map[string]int{"checkout": 0, "inventory": 1, "storefront": 1},
			Upstream: map[string]bool{"storefront": true},
			Callees:  map[string][]string{"storefront": {"checkout"}, "checkout": {"inventory"}},
			Step:     time.Minute,
		}
		causes := rankCauses(in)
		if len(causes) != 5 {
			t.Fatalf("%s: causes %+v, want five", tc.kpi.Name, causes)
		}
		if tc.kpi.Direction == DirectionLower && causes[0].Service != "inventory" {
			t.Errorf("%s: first cause %s, want inventory's latency", tc.kpi.Name, causes[0].Evidence)
		}
		for _, c := range causes {
			wantProx := 0.8
			if c.Service == "storefront" && !slices.Contains(tc.reach, c.Signal) {
				wantProx = unreachableProximity
				if !strings.Contains(c.Evidence, "it calls the KPI's service, which this reaches only as the work it sends") {
					t.Errorf("%s: evidence %q does not say why", tc.kpi.Name, c.Evidence)
				}
			}
			if c.Proximity != wantProx {
				t.Errorf("%s: %s: proximity %.2f, want %.2f", tc.kpi.Name, c.Evidence, c.Proximity, wantProx)
			}
		}
	}
}

// TestEdgeSignalOwners: an edge's connections are the work its client
// sends and count for the client (an outside one by its address); its
// round-trip time is the server's and the network's.
func TestEdgeSignalOwners(t *testing.T) {
	var conns, rtt candidateSignal
	for _, cs := range candidateSignals {
		switch cs.Name {
		case "connections":
			conns = cs
		case "round-trip time":
			rtt = cs
		}
	}
	edge := func(client, clientAddr string) *bandSeries {
		b := newBandSeries(model.Metric{"client": model.LabelValue(client), "client_address": model.LabelValue(clientAddr), "server": "checkout", "port": "8080"}, 1)
		return b
	}
	for _, tc := range []struct {
		cs                    candidateSignal
		client, clientAddr    string
		wantService, wantEdge string
		wantWork              bool
	}{
		{conns, "storefront", "", "storefront", "storefront → checkout:8080", true},
		{conns, "", "203.0.113.7", externalPrefix + "203.0.113.7", "203.0.113.7 → checkout:8080", true},
		{rtt, "storefront", "", "checkout", "storefront → checkout:8080", false},
	} {
		s := toSignalSeries(tc.cs, edge(tc.client, tc.clientAddr))
		if s.Service != tc.wantService || s.Edge != tc.wantEdge || s.Work != tc.wantWork {
			t.Errorf("%s of %s: service %q, edge %q, work %v; want %q, %q, %v", tc.cs.Name, tc.wantEdge, s.Service, s.Edge, s.Work, tc.wantService, tc.wantEdge, tc.wantWork)
		}
	}
}

// TestRankCostThatFellIsNoCause: as checkout's callers opened new
// connections to it, the round-trip time measured on them fell from 15 ms
// to 0.03 ms, a sure anomaly at the KPI's own service. A latency that fell
// got better: it explains nothing going wrong, while payments' latency,
// which rose, does.
func TestRankCostThatFellIsNoCause(t *testing.T) {
	in := rankInput{
		KPI:     KPI{Name: "checkout_latency", Direction: DirectionLower},
		Windows: []insightWindow{{ID: 1, Start: at("11:30"), End: at("11:40")}},
		Signals: []signalSeries{
			{Kind: CauseEdge, signalTraits: signalTraits{Cost: true}, Signal: "round-trip time", Unit: "s", Service: "checkout", Edge: "storefront → checkout:8080", Band: stepBand(at("11:30"), 0.015, 0.00003)},
			{Kind: CauseSignal, signalTraits: signalTraits{Internal: true, Cost: true}, Signal: "p90 request duration", Unit: "s", Service: "payments", Band: stepBand(at("11:30"), 0.02, 0.3)},
		},
		Hops:    map[string]int{"checkout": 0, "payments": 1},
		Callees: map[string][]string{"checkout": {"payments"}},
		Step:    time.Minute,
	}
	causes := rankCauses(in)
	if len(causes) != 1 || causes[0].Service != "payments" {
		t.Fatalf("causes %+v, want payments' latency alone", causes)
	}
}

// TestRankOldRestartIsNoCause: like a deploy, a restart is a cause only
// when the KPI went wrong with it: inventory restarted a minute before (the
// KPI healthy since), payments as the KPI went wrong.
func TestRankOldRestartIsNoCause(t *testing.T) {
	step := time.Second
	w := shopFrom.Add(50 * time.Minute)
	restarts := func(at time.Time) *bandSeries {
		b := newBandSeries(nil, 3600)
		for i := range b.Times {
			b.Times[i] = shopFrom.Add(time.Duration(i) * step)
			b.Value[i], b.Score[i] = 0, 0.1
			if !b.Times[i].Before(at) {
				b.Value[i], b.Score[i] = 1, 0.99
			}
		}
		return b
	}
	causes := rankCauses(rankInput{
		KPI:     KPI{Name: "checkout_latency", Direction: DirectionLower},
		Windows: []insightWindow{{ID: 1, Start: w, End: w.Add(30 * time.Second)}},
		Signals: []signalSeries{
			{Kind: CauseSignal, signalTraits: signalTraits{Event: true}, Signal: "restarts", Service: "inventory", Band: restarts(w.Add(-time.Minute))},
			{Kind: CauseSignal, signalTraits: signalTraits{Event: true}, Signal: "restarts", Service: "payments", Band: restarts(w.Add(-step))},
		},
		Hops:         map[string]int{"checkout": 0, "payments": 1, "inventory": 1},
		Step:         step,
		RateInterval: 4 * step,
	})
	if len(causes) != 1 || causes[0].Service != "payments" || causes[0].Timing != 1 {
		t.Fatalf("causes %+v, want payments' restart alone, on time", causes)
	}
}

// TestRankCalleeTrafficExplainsNothing: checkout fails a third of its
// orders and its callers retry, so inventory receives twice the bytes, as
// surely and as the KPI goes wrong. More work sent to a callee does not
// explain its caller: checkout's failures come first, unexplained. Had
// inventory got slower, that would explain them.
func TestRankCalleeTrafficExplainsNothing(t *testing.T) {
	signals := []signalSeries{
		{Kind: CauseSignal, Signal: `checkouts_total{outcome="failed"}`, Unit: "/s", Service: "checkout", Band: stepBand(at("11:30"), 0, 4.7)},
		{Kind: CauseSignal, Signal: "network_receive_bytes_total", Unit: "/s", Service: "inventory", Band: stepBand(at("11:30"), 1.4e5, 3.4e5)},
	}
	in := rankInput{
		KPI:     KPI{Name: "orders", Direction: DirectionHigher},
		Windows: []insightWindow{{ID: 1, Start: at("11:30"), End: at("11:40")}},
		Signals: signals,
		Hops:    map[string]int{"checkout": 0, "inventory": 1},
		Callees: map[string][]string{"checkout": {"inventory"}},
		Step:    time.Minute,
	}
	causes := rankCauses(in)
	if len(causes) != 2 || causes[0].Service != "checkout" || causes[0].ExplainedBy != "" {
		t.Fatalf("causes %+v, want checkout's failures first, unexplained", causes)
	}
	for name, worse := range map[string]signalSeries{
		"slower":        {Kind: CauseSignal, signalTraits: signalTraits{Internal: true, Cost: true}, Signal: "p90 request duration", Unit: "s", Service: "inventory", Band: stepBand(at("11:30"), 0.01, 0.5)},
		"failing again": {Kind: CauseSignal, Signal: `requests_total{code="500"}`, Unit: "/s", Service: "inventory", Band: stepBand(at("11:30"), 0, 3)},
		"failing anew":  {Kind: CauseSignal, Signal: `requests_total{code="503"}`, Unit: "/s", Service: "inventory", Band: stepBand(at("11:30"), math.NaN(), 3)},
	} {
		in.Signals = append(slices.Clone(signals), worse)
		for _, c := range rankCauses(in) {
			if c.Service == "checkout" && c.ExplainedBy != "anomaly in inventory, which checkout calls" {
				t.Errorf("with inventory %s: checkout's %s explained by %q, want by inventory", name, c.Signal, c.ExplainedBy)
			}
		}
	}
}

// TestRankCountStepOfOne: a minute before the storefront began to fail,
// checkout opened a second connection to inventory: new to the detector
// (anomaly 1) and +100%, but one connection is the least a count can move.
// The storefront's errors come first; a step of six connections is still
// a full-size change.
func TestRankCountStepOfOne(t *testing.T) {
	conns := func(before, after float64) signalSeries {
		return signalSeries{Kind: CauseEdge, signalTraits: signalTraits{Work: true}, Signal: "connections", Service: "checkout", Edge: "checkout → inventory:8080", Band: stepBand(at("11:29"), before, after)}
	}
	errs := signalSeries{Kind: CauseSignal, Signal: `requests_total{code="500"}`, Unit: "/s", Service: "storefront", Band: stepBand(at("11:30"), math.NaN(), 6.3)}
	in := rankInput{
		KPI:      KPI{Name: "orders", Direction: DirectionHigher},
		Windows:  []insightWindow{{ID: 1, Start: at("11:30"), End: at("11:40")}},
		Signals:  []signalSeries{conns(1, 2), errs},
		Hops:     map[string]int{"checkout": 0, "inventory": 1, "storefront": 1},
		Upstream: map[string]bool{"storefront": true},
		Callees:  map[string][]string{"storefront": {"checkout"}, "checkout": {"inventory"}},
		Step:     time.Minute,
	}
	causes := rankCauses(in)
	if len(causes) != 2 || causes[0].Service != "storefront" || causes[1].Size != 0 {
		t.Fatalf("causes %+v, want the storefront's errors first and a second connection of size 0", causes)
	}
	in.Signals = []signalSeries{conns(1, 7)}
	if causes = rankCauses(in); len(causes) != 1 || causes[0].Size < 0.99 {
		t.Fatalf("causes %+v, want six more connections at full size", causes)
	}
}

// TestMedian checks the selection-based median against sorting, on random
// lengths, ties and NaN.
func TestMedian(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	for trial := range 2000 {
		n := 1 + rng.IntN(50)
		v := make([]float64, n)
		for i := range v {
			v[i] = float64(rng.IntN(8)) // many ties
			if trial%3 == 0 {
				v[i] = rng.NormFloat64()
			}
			if trial%17 == 0 && rng.IntN(5) == 0 {
				v[i] = math.NaN()
			}
		}
		s := slices.Clone(v)
		slices.Sort(s)
		want := s[n/2]
		if n%2 == 0 {
			want = (s[n/2-1] + s[n/2]) / 2
		}
		got := median(slices.Clone(v))
		if got != want && !(math.IsNaN(got) && math.IsNaN(want)) {
			t.Fatalf("median(%v) = %v, want %v", v, got, want)
		}
		if n < moveRecent || slices.ContainsFunc(v[:moveRecent], math.IsNaN) {
			continue // recentMedian is for finite values
		}
		if m := recentMedian(v[:moveRecent]); m != median(slices.Clone(v[:moveRecent])) {
			t.Fatalf("recentMedian(%v) = %v", v[:moveRecent], m)
		}
	}
}

// TestRankRetriesLoadTheCallees: checkout fails a third of its orders, its
// callers retry them, and payments serves more than three times the
// requests: its bytes and its run-queue wait rise with them, as surely and
// as the KPI goes wrong. Payments' rises came with the work checkout's
// failures sent (more work came in): checkout's failures come first. When
// payments fails itself (an error code that appears) with the retries'
// load, its errors are no load's doing and come first. And when payments
// is slow while serving as many requests as before (its runtime's counters
// rising, checkout's connections piling up), nothing came in: its latency
// comes first.
func TestRankRetriesLoadTheCallees(t *testing.T) {
	load := signalSeries{Kind: CauseSignal, signalTraits: signalTraits{Load: true}, Signal: "request_duration_seconds_count", Unit: "/s", Service: "payments", Band: stepBand(at("11:30"), 20, 70)}
	bytes := signalSeries{Kind: CauseSignal, Signal: "network_receive_bytes_total", Unit: "/s", Service: "payments", Band: stepBand(at("11:30"), 1.5e5, 5.6e5)}
	for _, tc := range []struct {
		name    string
		signals []signalSeries
		first   string // service
		signal  string // the culprit's signal
		alone   bool   // nothing explains it
	}{
		{"checkout failing", []signalSeries{load, bytes,
			{Kind: CauseSignal, Signal: `checkouts_total{outcome="failed"}`, Unit: "/s", Service: "checkout", Band: stepBand(at("11:30"), 0, 2.5)},
			{Kind: CauseSignal, signalTraits: signalTraits{Internal: true, Cost: true}, Signal: signalRunqueue, Unit: "s/s", Service: "payments", Band: stepBand(at("11:30"), 0.0126, 0.0384)},
		}, "checkout", `checkouts_total{outcome="failed"}`, false},
		{"payments failing", []signalSeries{load, bytes,
			{Kind: CauseSignal, Signal: `requests_total{code="502"}`, Unit: "/s", Service: "checkout", Band: stepBand(at("11:30"), math.NaN(), 6)},
			{Kind: CauseSignal, Signal: `requests_total{code="500"}`, Unit: "/s", Service: "payments", Band: stepBand(at("11:30"), math.NaN(), 6)},
		}, "payments", `requests_total{code="500"}`, true},
		{"payments slow", []signalSeries{
			{Kind: CauseSignal, Signal: "go_memstats_frees_total", Unit: "/s", Service: "payments", Band: stepBand(at("11:30"), 300, 1600)},
			{Kind: CauseEdge, signalTraits: signalTraits{Work: true}, Signal: "connections", Service: "checkout", Edge: "checkout → payments:8080", Band: stepBand(at("11:30"), 1, 7)},
			{Kind: CauseSignal, signalTraits: signalTraits{Internal: true, Cost: true}, Signal: "p90 request duration", Unit: "s", Service: "payments", Band: stepBand(at("11:30"), 0.022, 0.475)},
		}, "payments", "p90 request duration", true},
	} {
		causes := rankCauses(rankInput{
			KPI:     KPI{Name: "orders", Direction: DirectionHigher},
			Windows: []insightWindow{{ID: 1, Start: at("11:30"), End: at("11:40")}},
			Signals: tc.signals,
			Hops:    map[string]int{"checkout": 0, "payments": 1},
			Callees: map[string][]string{"checkout": {"payments"}},
			Step:    time.Minute,
		})
		if len(causes) == 0 || causes[0].Service != tc.first {
			t.Errorf("%s: causes %+v, want %s first", tc.name, causes, tc.first)
		}
		for _, c := range causes {
			if tc.alone && c.Service == tc.first && c.Signal == tc.signal && c.ExplainedBy != "" {
				t.Errorf("%s: %s's %s explained by %q, want unexplained", tc.name, c.Service, c.Signal, c.ExplainedBy)
			}
		}
	}
}

// TestRankBackEdgeExplainsNothing: the service map also had inventory
// calling checkout (a connection read the wrong way round, or a callback),
// so inventory's slowdown, the cause, was "explained" by checkout's, its
// effect, and ranked third in the suite. Seen from the KPI's service, work
// flows outwards along the calls; a callee explains a caller only when it
// lies further out, and a caller a callee's fall only when it lies further
// in.
func TestRankBackEdgeExplainsNothing(t *testing.T) {
	slow := func(svc string, before, after float64) signalSeries {
		return signalSeries{Kind: CauseSignal, signalTraits: signalTraits{Internal: true, Cost: true}, Signal: "p90 request duration", Unit: "s", Service: svc, Band: stepBand(at("11:30"), before, after)}
	}
	in := rankInput{
		KPI:      KPI{Name: "checkout_latency", Direction: DirectionLower},
		Windows:  []insightWindow{{ID: 1, Start: at("11:30"), End: at("11:40")}},
		Signals:  []signalSeries{slow("checkout", 0.024, 0.475), slow("inventory", 0.008, 0.475), slow("storefront", 0.03, 0.48)},
		Hops:     map[string]int{"checkout": 0, "inventory": 1, "storefront": 1},
		Upstream: map[string]bool{"storefront": true},
		Callees:  map[string][]string{"storefront": {"checkout"}, "checkout": {"inventory"}, "inventory": {"checkout"}},
		Step:     time.Minute,
	}
	causes := rankCauses(in)
	if len(causes) != 3 || causes[0].Service != "inventory" || causes[0].ExplainedBy != "" {
		t.Fatalf("causes %+v, want inventory's slowdown first, unexplained", causes)
	}
	for _, c := range causes[1:] {
		want := map[string]string{"checkout": "anomaly in inventory, which checkout calls", "storefront": "anomaly in checkout, which storefront calls"}[c.Service]
		if c.ExplainedBy != want {
			t.Errorf("%s's slowdown explained by %q, want %q", c.Service, c.ExplainedBy, want)
		}
	}
}

// TestRankConnectionStorm: the storefront opens hundreds of connections to
// the checkout, whose files, reads and memory rise with them, and whose
// latency (the KPI) drifts up until a window opens a minute later. The
// checkout's rises are what the connections cost it: the storm, the
// storefront's doing, comes first, though none of it came with the window
// itself. A pool that grows no more than its server got worse is the
// server's effect (Little's law), as when the server is slow or a CPU burn
// slows it.
func TestRankConnectionStorm(t *testing.T) {
	own := func(signal string, before, after float64, traits signalTraits) signalSeries {
		return signalSeries{Kind: CauseSignal, signalTraits: traits, Signal: signal, Service: "checkout", Band: stepBand(at("11:30"), before, after)}
	}
	storm := signalSeries{Kind: CauseEdge, signalTraits: signalTraits{Work: true}, Signal: "connections", Service: "storefront", Peer: "checkout",
		Edge: "storefront → checkout:8080", Band: stepBand(at("11:30"), 1, 602)}
	in := rankInput{
		KPI:     KPI{Name: "checkout_latency", Direction: DirectionLower},
		Windows: []insightWindow{{ID: 1, Start: at("11:31"), End: at("11:40")}},
		Signals: []signalSeries{
			storm,
			own("open files", 14, 612, signalTraits{Internal: true}),
			own("read syscalls", 168, 830, signalTraits{Internal: true}),
			own("memory", 20e6, 31e6, signalTraits{Internal: true}),
		},
		Hops:     map[string]int{"checkout": 0, "storefront": 1},
		Upstream: map[string]bool{"storefront": true},
		Callees:  map[string][]string{"storefront": {"checkout"}},
		Step:     10 * time.Second,
	}
	causes := rankCauses(in)
	if len(causes) != 4 || causes[0].Service != "storefront" || causes[0].Signal != "connections" || causes[0].ExplainedBy != "" {
		t.Fatalf("causes %+v, want the storefront's connections first, unexplained", causes)
	}
	if causes[0].Timing == 1 {
		t.Fatalf("the storm's timing is 1: the test wants a window that opened after the tolerance")
	}
	const want = "anomaly in storefront, upstream of checkout (more work came in)"
	for _, c := range causes[1:] {
		if c.ExplainedBy != want {
			t.Errorf("checkout's %s explained by %q, want %q", c.Signal, c.ExplainedBy, want)
		}
	}

	// A slow checkout: twenty times slower, and the storefront's pool to
	// it grows from 1 to 7 connections, as pools do when their server
	// slows. The slowdown is the checkout's own; the pool is its effect.
	slow := []signalSeries{
		{Kind: CauseEdge, signalTraits: signalTraits{Work: true}, Signal: "connections", Service: "storefront", Peer: "checkout",
			Edge: "storefront → checkout:8080", Band: stepBand(at("11:30"), 1, 7)},
		own("p90 request duration", 0.024, 0.475, signalTraits{Internal: true, Cost: true}),
		own("open files", 14, 20, signalTraits{Internal: true}),
	}
	causes = rankCauses(rankInput{KPI: in.KPI, Windows: in.Windows, Signals: slow, Hops: in.Hops, Upstream: in.Upstream, Callees: in.Callees, Step: in.Step})
	if len(causes) == 0 || causes[0].Signal != "p90 request duration" || causes[0].ExplainedBy != "" {
		t.Errorf("a slow checkout: causes %+v, want its latency first, unexplained", causes)
	}
	for _, c := range causes {
		if c.Service == "storefront" && c.ExplainedBy != "anomaly in checkout, which storefront calls" {
			t.Errorf("a slow checkout: the storefront's pool growing explained by %q, want the checkout", c.ExplainedBy)
		}
	}

	// The storm also makes the checkout wait for CPUs (threefold): its
	// connections grew two hundred times more than that, so they are no
	// pool growing because the checkout slowed — the storm still ranks
	// first, and the checkout's files and its wait are its doing.
	waits := own("run-queue wait", 0.02, 0.06, signalTraits{Internal: true, Cost: true})
	causes = rankCauses(rankInput{KPI: in.KPI, Windows: in.Windows, Signals: append(slices.Clone(in.Signals[:4]), waits), Hops: in.Hops, Upstream: in.Upstream, Callees: in.Callees, Step: in.Step})
	if len(causes) == 0 || causes[0].Signal != "connections" || causes[0].ExplainedBy != "" {
		t.Errorf("a storm that also makes the checkout wait: causes %+v, want the storm first, unexplained", causes)
	}
	for _, c := range causes {
		if c.Service == "checkout" && c.ExplainedBy != want {
			t.Errorf("a storm that also makes the checkout wait: its %s explained by %q, want %q", c.Signal, c.ExplainedBy, want)
		}
	}

	// A CPU burn in the checkout: its run-queue wait grows tenfold and
	// the storefront's pool to it grows from 1 to 5 as it slows. Those
	// connections are the burn's effect; the burn's CPU is its own.
	burn := []signalSeries{
		{Kind: CauseEdge, signalTraits: signalTraits{Work: true}, Signal: "connections", Service: "storefront", Peer: "checkout",
			Edge: "storefront → checkout:8080", Band: stepBand(at("11:30"), 1, 5)},
		own("run-queue wait", 0.02, 0.2, signalTraits{Internal: true, Cost: true}),
		own("cpu", 0.02, 1.5, signalTraits{Internal: true}),
		own("open files", 14, 18, signalTraits{Internal: true}),
	}
	for _, c := range rankCauses(rankInput{KPI: in.KPI, Windows: in.Windows, Signals: burn, Hops: in.Hops, Upstream: in.Upstream, Callees: in.Callees, Step: in.Step}) {
		switch {
		case c.Service == "checkout" && c.ExplainedBy != "":
			t.Errorf("a CPU burn: checkout's %s explained by %q, want unexplained", c.Signal, c.ExplainedBy)
		case c.Service == "storefront" && c.ExplainedBy != "anomaly in checkout, which storefront calls":
			t.Errorf("a CPU burn: the storefront's pool growing explained by %q, want the checkout", c.ExplainedBy)
		}
	}

	// Connections opened long before the checkout's rises explain none
	// of them.
	in.Signals = slices.Clone(in.Signals[:4])
	in.Signals[0].Band = stepBand(at("11:20"), 1, 602)
	for _, c := range rankCauses(in) {
		if c.Service == "checkout" && c.ExplainedBy != "" {
			t.Errorf("checkout's %s explained by %q after connections opened ten minutes before, want unexplained", c.Signal, c.ExplainedBy)
		}
	}
}

// TestResolveEdgeServices: an edge to another host counts for the server
// the joined service map names; its connections count for the client and
// are sent to that server.
func TestResolveEdgeServices(t *testing.T) {
	band := newBandSeries(model.Metric{"client": "checkout", "port": "8080", "server_address": "10.0.0.7"}, 0)
	sigs := []signalSeries{
		toSignalSeries(candidateSignal{Kind: CauseEdge, Name: "round-trip time"}, band),
		toSignalSeries(candidateSignal{Kind: CauseEdge, Name: "connections", signalTraits: signalTraits{Work: true}}, band),
	}
	resolveEdgeServices(sigs, &serviceGraph{Edges: []*graphEdge{{Source: "checkout", Target: "payments", Port: "8080"}}})
	if got := sigs[0].Service; got != "payments" {
		t.Errorf("round-trip time counts for %q, want payments", got)
	}
	if got := sigs[1]; got.Service != "checkout" || got.Peer != "payments" {
		t.Errorf("connections count for %q and go to %q, want checkout and payments", got.Service, got.Peer)
	}
}
