package plugin

import (
	"cmp"
	"fmt"
	"math"
	"runtime"
	"slices"
	"sort"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"
)

// This file holds the insights query's reasoning, as pure functions: where a
// KPI went wrong, and which changes best explain each of those windows.
//
// A cause's score is the product of five factors, each in [0,1] and each
// shown next to it, so a ranking can be checked by hand:
//
//	score = anomaly × size × timing × proximity × unexplained
//
//   - anomaly: how abnormal the change is — the highest anomaly score the
//     signal reached around the window (1 for a deploy, which is a change
//     by definition).
//   - size: how large the change is, 1 − exp(−|relative change| / 10%):
//     about 0.1 for a 1% change, 0.63 for 10%, 0.99 for 50%. An anomaly
//     model can be sure of a change too small to matter; this keeps those
//     below the changes that do. 1 when the value rose from zero, and for
//     deploys.
//   - timing: 1 when the change started within two steps (at least
//     timingTolerance) before the window's start, or after it by no more
//     than a measurement's lag (a rate's window and one step: see
//     lagTolerance), decaying exponentially the
//     longer before the window it started — with a time constant of
//     timingDecaySteps steps, so "long before" is judged at the
//     resolution the range is looked at, and at least timingDecayMin (a
//     cause such as CPU contention can take a minute or two to move a
//     KPI clearly) — and halved when it started
//     later after the window did (then it is an effect, not a cause).
//     A deploy is a cause only when the KPI changed with it (see
//     deployTiming).
//   - proximity: 1/(1 + hops/4), where hops is how many calls separate the
//     KPI's service from the cause's service on the service map (0: the
//     KPI's own service, 1: a service it calls or that calls it, …);
//     unreachableProximity when the map does not connect them, and for a
//     change in a caller of the KPI's service (or a caller's caller, …)
//     that cannot reach it: a caller reaches its callees only through
//     the work it sends — for a cost such as latency, lower is better,
//     only as the load (connections) it sends; for an output such as
//     orders also as its failures and requests, not as its state (CPU,
//     memory, latency) — unless it takes the host's CPUs from them (see
//     contention); 1 for everything when the KPI's service is not known.
//   - unexplained: explainedFactor when something else accounts for the
//     change — a deploy of the same service shortly before, or a clear
//     change in a service this one calls (a slow dependency makes its
//     callers look abnormal too, and piles up connections to them), or
//     more work a caller with an anomaly of its own sent (requests, or
//     connections that grew more than anything in the server got worse:
//     a pool grows as its server slows, a storm by far more); 1
//     otherwise. Two changes explain each other when both came with the
//     KPI going wrong or when they started together (within the timing
//     tolerance), whenever the KPI showed them. This is what puts the
//     root of a chain above the services it drags along. An edge's
//     change counts for its server, its connections for its client,
//     which opens them.

// Tuning of the ranking; see above.
const (
	causeMinAnomaly      = 0.75
	changeScale          = 0.1
	timingDecay          = 30 * time.Minute
	timingDecaySteps     = 30
	timingDecayMin       = 2 * time.Minute
	timingTolerance      = 30 * time.Second
	unreachableProximity = 0.3
	explainedFactor      = 0.5
	maxWindows           = 10
	maxCausesPerWindow   = 10
	// contendedShare is the least share of the hosts' CPUs in use for a
	// wait for them to be one service's doing (see contention).
	contendedShare = 0.5
)

// Kinds of cause.
const (
	CauseDeploy = "deploy"
	CauseSignal = "signal"
	CauseEdge   = "edge"
)

// insightWindow is a stretch of the range where the KPI went wrong.
type insightWindow struct {
	ID         int
	Start, End time.Time
	// Reason says why: the objective was breached, the KPI was
	// anomalous in its bad direction, or both.
	Reason string
	// Worst is the worst value in the window, Expected what the
	// anomaly model expected at that point (NaN when not warm).
	Worst, Expected float64
	MaxScore        float64
}

// findWindows finds where a KPI went wrong: points that breach its
// objective, whose anomaly score reaches AlertThreshold while the value is
// on the KPI's bad side of the expected value, or that moved clearly in its
// bad direction against its own recent level (see moved) — with or without
// an objective: a KPI that got a quarter worse while still within its
// objective has a cause worth knowing before it breaches. Bad points at most two steps apart form one
// window. Windows are looked for from point from on; the points before are
// history. At most maxWindows windows are kept, the most anomalous ones, in
// time order.
func findWindows(k KPI, s *bandSeries, from int) []insightWindow {
	var wins []insightWindow
	var cur *insightWindow
	lastBad := -100
	step := time.Duration(0)
	if len(s.Times) > 1 {
		step = s.Times[1].Sub(s.Times[0])
	}
	for i := from; i < len(s.Times); i++ {
		t := s.Times[i]
		v := s.Value[i]
		if math.IsNaN(v) {
			continue
		}
		breach := k.Objective != nil && !k.good(v)
		anomalous := s.Score[i] >= AlertThreshold && badSide(k, v, s.Expected[i])
		shift := moved(k, s.Value, i, step)
		if !breach && !anomalous && !shift {
			continue
		}
		if cur == nil || i-lastBad > 2 {
			wins = append(wins, insightWindow{Start: t, Worst: v, Expected: s.Expected[i]})
			cur = &wins[len(wins)-1]
		}
		lastBad = i
		cur.End = t
		if worse(k, v, cur.Worst) {
			cur.Worst, cur.Expected = v, s.Expected[i]
		}
		if sc := s.Score[i]; !math.IsNaN(sc) && sc > cur.MaxScore {
			cur.MaxScore = sc
		}
		cur.Reason = mergeReason(cur.Reason, breach, anomalous, shift)
	}
	if len(wins) > maxWindows {
		sort.SliceStable(wins, func(i, j int) bool { return wins[i].MaxScore > wins[j].MaxScore })
		wins = wins[:maxWindows]
		sort.Slice(wins, func(i, j int) bool { return wins[i].Start.Before(wins[j].Start) })
	}
	for i := range wins {
		wins[i].ID = i + 1
	}
	return wins
}

// How a KPI is judged against its own recent level (see moved).
const (
	// moveRatio is the move, relative to the level, that matters to the
	// business: orders per second down by a quarter.
	moveRatio = 0.25
	// moveRecent is how many of the latest points the move is measured
	// on (their median), so that one noisy point is no move.
	moveRecent = 5
	// moveRefMin is the fewest points before those that form the recent
	// level, and moveRefSpan how far back it reaches at least.
	moveRefMin  = 60
	moveRefSpan = 10 * time.Minute
	// moveZ is how many standard deviations of the KPI's own recent
	// medians the move must also be, so that a noisy KPI's usual swings
	// are no move.
	moveZ = 4
)

// moved reports whether the KPI's values at i (at the given step) moved
// clearly in its bad direction against its recent level: the median m of
// the moveRecent points up to i against the median L of the points before
// them (moveRefSpan, at least moveRefMin points), with
//
//	|m - L| >= moveRatio·|L|   and   |m - L| >= moveZ · 1.4826·MAD(medians)
//
// where the medians are those of every moveRecent consecutive points
// before (their spread is what m's would be without a move, however much
// neighbouring points are correlated, as rates over overlapping windows
// are): a move that is both large for the business and clear of the KPI's
// own noise; and the value at i itself a quarter worse than L, so that the
// move ends with the first point back near the level, not when the lagging
// median does. It looks at the values alone, so it works whatever the
// anomaly detector says or holds.
func moved(k KPI, v []float64, i int, step time.Duration) bool {
	n := moveRefMin
	if step > 0 {
		n = max(n, int(moveRefSpan/step))
	}
	if i+1 < moveRecent+moveRefMin {
		return false
	}
	recent := finiteCopy(v[i+1-moveRecent : i+1])
	ref := finiteCopy(v[max(0, i+1-moveRecent-n) : i+1-moveRecent])
	r := newRefLevel(ref)
	m, ok := r.shifted(recent)
	// The point itself must be a quarter worse too: one back near the
	// level ends the move, though the median still lags.
	return ok && badSide(k, m, r.l) && badSide(k, v[i], r.l) && math.Abs(v[i]-r.l) >= moveRatio*math.Abs(r.l)
}

// refLevel is a reference stretch of values: its median l and the spread
// of its own medians of moveRecent consecutive values (see moved); for the
// level before a point (see levelBefore), also the stretch's quartiles.
type refLevel struct {
	l, spread float64
	q1, q3    float64
	ok        bool // at least moveRefMin values
}

// beyond reports whether m lies beyond the stretch's values on the side d
// points to: above its upper quartile for a rise, below its lower one for
// a fall. A level the values held for a quarter of the stretch is part of
// their normal, whatever their spread says: a series that alternates
// between two levels (a counter its process updates in bursts, read as a
// rate) has a spread of the more frequent level only, and its median
// changing sides is no change.
func (r refLevel) beyond(m, d float64) bool {
	if d > 0 {
		return m > r.q3
	}
	return m < r.q1
}

func newRefLevel(ref []float64) refLevel {
	if len(ref) < moveRefMin {
		return refLevel{}
	}
	l, spread := levelOf(ref)
	return refLevel{l: l, spread: spread, ok: true}
}

// levelOf returns the median of values and their spread: 1.4826 times the
// median distance of the medians of every moveRecent consecutive values
// from it (of the values themselves when there are fewer).
func levelOf(values []float64) (l, spread float64) {
	l = median(slices.Clone(values))
	var devs []float64
	if len(values) < moveRecent {
		devs = make([]float64, 0, len(values))
		for _, v := range values {
			devs = append(devs, math.Abs(v-l))
		}
	} else {
		devs = make([]float64, 0, len(values)-moveRecent+1)
		for j := 0; j+moveRecent <= len(values); j++ {
			devs = append(devs, math.Abs(recentMedian(values[j:j+moveRecent])-l))
		}
	}
	return l, 1.4826 * median(devs)
}

// recentMedian is the median of moveRecent finite values, without
// allocating.
func recentMedian(v []float64) float64 {
	var a [moveRecent]float64
	copy(a[:], v)
	for i := 1; i < len(a); i++ {
		for j := i; j > 0 && a[j] < a[j-1]; j-- {
			a[j], a[j-1] = a[j-1], a[j]
		}
	}
	return a[moveRecent/2]
}

// shifted reports whether the median m of recent (moveRecent values) is
// clearly off the reference level: by moveRatio of it and by moveZ of its
// spreads.
func (r refLevel) shifted(recent []float64) (m float64, ok bool) {
	if !r.ok || len(recent) < moveRecent {
		return 0, false
	}
	m = recentMedian(recent)
	d := math.Abs(m - r.l)
	return m, d >= moveRatio*math.Abs(r.l) && d >= moveZ*r.spread
}

// finiteCopy copies the finite values of v.
func finiteCopy(v []float64) []float64 {
	out := make([]float64, 0, len(v))
	for _, x := range v {
		if !math.IsNaN(x) && !math.IsInf(x, 0) {
			out = append(out, x)
		}
	}
	return out
}

// badSide reports whether v deviates from expected in the KPI's bad
// direction (below for higher-is-better).
func badSide(k KPI, v, expected float64) bool {
	if math.IsNaN(expected) {
		return false
	}
	if k.Direction == DirectionLower {
		return v > expected
	}
	return v < expected
}

// worse reports whether a is worse than b for the KPI.
func worse(k KPI, a, b float64) bool {
	if k.Direction == DirectionLower {
		return a > b
	}
	return a < b
}

func mergeReason(prev string, breach, anomalous, shift bool) string {
	var parts []string
	for _, r := range []struct {
		text string
		now  bool
	}{{"objective breached", breach}, {"anomalous", anomalous}, {"moved against its recent level", shift}} {
		if r.now || strings.Contains(prev, r.text) {
			parts = append(parts, r.text)
		}
	}
	return strings.Join(parts, ", ")
}

// signalSeries is one scored candidate series: a service signal or an edge
// signal, with what it is about.
type signalSeries struct {
	Kind string // CauseSignal or CauseEdge
	// Signal names what was measured ("cpu", "rtt", …) and Unit its unit
	// for the evidence text.
	Signal, Unit string
	// Service is the service the change is in: the service itself, or
	// the server of an edge (the client for its connections: see
	// candidateSignal). Edge is the edge's "client → server:port", and
	// Peer, for its connections, the server they are opened to.
	Service, Edge, Peer string
	signalTraits
	Band *bandSeries
}

// cause is one likely cause of a window, with its evidence.
type cause struct {
	Window      int
	Rank        int
	Kind        string
	Service     string
	Signal      string
	Evidence    string
	Onset       time.Time
	Lead        time.Duration // window start − onset: positive is before
	Before      float64       // NaN for deploys
	After       float64
	Change      float64 // relative change, NaN when not defined
	Hops        int     // -1 when not connected or not known
	Anomaly     float64
	Size        float64
	Timing      float64
	Proximity   float64
	Unexplained float64
	ExplainedBy string
	// Clarity is how clearly the values changed: the shift from the
	// level before the onset to the median after it, in spreads of that
	// level (see levelOf); +Inf for a deploy, a series that appeared or
	// one that was flat before. It breaks ties of score (see
	// compareCauses).
	Clarity float64
	// Contends lists the services whose run-queue wait rose while this
	// one's CPU did: it took their CPUs.
	Contends []string
	// Upstream is set for a change in a caller of the KPI's service that
	// does not reach it (see rankCauses).
	Upstream bool
	// reaches is set for a change that reaches the KPI's service from a
	// caller; traits are its signal's, and peer the server of an edge's
	// connections.
	reaches bool
	traits  signalTraits
	peer    string
	Score   float64
}

// rankInput is what rankCauses weighs.
type rankInput struct {
	KPI     KPI
	Windows []insightWindow
	Signals []signalSeries
	Deploys []deployEvent
	// Hops are the distances from the KPI's services (nil when those are
	// not known), Upstream those only reached against the calls (callers
	// of the KPI's services, theirs, …); Callees the services each
	// service calls.
	Hops     map[string]int
	Upstream map[string]bool
	Callees  map[string][]string
	Step     time.Duration
	// RateInterval is the query's $__rate_interval: how long a rate
	// takes to show a change.
	RateInterval time.Duration
	// HostCPUs is how many CPUs the hosts have together (0: not known).
	HostCPUs float64
}

// lagTolerance is how long after the window's start a change may be seen
// and still count as on time: a rate shows a change only once its window
// holds it, and is read one step later. A change seen later began after
// the KPI went wrong: an effect.
func (in rankInput) lagTolerance() time.Duration {
	return max(2*in.Step, in.RateInterval+in.Step)
}

// rankCauses ranks, for every window, the changes that could explain it.
func rankCauses(in rankInput) []cause {
	var out []cause
	tol := max(2*in.Step, timingTolerance)
	lag := in.lagTolerance()
	decay := max(timingDecaySteps*in.Step, timingDecayMin)
	// Seen from the KPI's service, work flows outwards along the calls:
	// a callee explains a caller only when it lies further out, and a
	// caller a callee's fall only when it lies further in, so an edge
	// against that flow (a callback, or a connection read the wrong way
	// round) cannot make an effect explain its cause.
	callees := keepPeers(in.Callees, func(svc, callee string) bool { return in.further(svc, callee) })
	callers := keepPeers(invert(in.Callees), func(svc, caller string) bool { return in.further(caller, svc) })
	for _, w := range in.Windows {
		var cs []cause
		searchFrom := w.Start.Add(-searchSpan(in.Step))
		deployFrom := w.Start.Add(-max(10*in.Step, timingDecay))
		deployed := map[string]deployEvent{}
		for _, d := range in.Deploys {
			if d.Time.Before(deployFrom) || d.Time.After(w.End) {
				continue
			}
			if _, ok := deployed[d.Service]; !ok {
				deployed[d.Service] = d
			}
			c := cause{
				Window: w.ID, Kind: CauseDeploy, Service: d.Service, Signal: "build",
				Onset: d.Time, Lead: w.Start.Sub(d.Time), Before: math.NaN(), After: math.NaN(), Change: math.NaN(),
				Anomaly: 1, Size: 1, Unexplained: 1, Clarity: math.Inf(1),
			}
			c.Evidence = fmt.Sprintf("%s was deployed (%s → %s on %s)", d.Service, shortBuild(d.OldBuild), shortBuild(d.NewBuild), d.host())
			cs = append(cs, c)
		}
		// How far a change in a caller of the KPI's service reaches it:
		// only as the work it sends. A cost the KPI's service pays (its
		// latency, its errors: lower is better) arises in it, in what it
		// calls or on the CPUs it shares, and a caller adds to it only
		// the load it sends (its connections); an output (orders: higher
		// is better) also depends on the work that got to it, which a
		// caller's failures and requests tell — but not its state (its
		// CPU, memory, latency, …).
		found := signalCauses(w, in.Signals, searchFrom, lag)
		for i, s := range in.Signals {
			c, ok := found[i].c, found[i].ok
			if s.Cost && c.fell() {
				// A latency, a wait or an error rate that fell got
				// better: it explains nothing going wrong.
				continue
			}
			if ok {
				c.reaches = s.Work || (in.KPI.Direction != DirectionLower && !s.Internal)
				c.traits, c.peer = s.signalTraits, s.Peer
				cs = append(cs, c)
			}
		}
		for i := range cs {
			c := &cs[i]
			c.Timing = timing(c.Lead, tol, lag, decay)
			if c.Kind == CauseDeploy || c.traits.Event {
				c.Timing = deployTiming(c.Lead, in.Step)
			}
		}
		// Services where something clearly rose as the KPI went wrong
		// (an alerting score, a change of 7% or more, upwards or a
		// series that appeared, starting within the timing tolerance of
		// the window), for the "explained" factor. A service that did
		// not change with the KPI did not change because of it; one
		// where things only fell got less work, which explains nothing
		// downstream of it. Its callers it explains only by getting
		// worse for them (see worsened): more traffic, CPU or memory is
		// what the work they sent brings.
		// Busier are the services that got more work as the KPI went
		// wrong: the rate of requests they served rose.
		// Fed are the services whose callers opened more connections
		// to them, with how many times over: what came with those is
		// the callers' doing, as with the requests they send, unless
		// the service got worse as much (see below).
		rose, worse, busier, fed := rises{}, rises{}, rises{}, rises{}
		for _, c := range cs {
			// One seen after the KPI went wrong (later than a
			// measurement's lag) is its effect: it explains nothing.
			if c.Kind != CauseDeploy && c.Anomaly >= AlertThreshold && c.Size >= 0.5 && c.rose() && c.Lead >= -lag {
				r := rise{c.Onset, c.Timing == 1, c.ratio()}
				rose.add(c.Service, r)
				if c.worsened() {
					worse.add(c.Service, r)
				}
				if c.traits.Load && !c.started() {
					busier.add(c.Service, r)
				}
				if c.traits.Work && c.peer != "" {
					fed.add(c.peer, r)
				}
			}
		}
		hog, hogOnset, victims := contention(cs, cpuUse(in.Signals, w), in.HostCPUs)
		for i := range cs {
			c := &cs[i]
			roseIn := func(svc string) bool { return rose.with(svc, c.Onset, tol) }
			worseIn := func(svc string) bool { return worse.with(svc, c.Onset, tol) }
			if c.traits.Work {
				// A pool grows as its server answers slower (Little's
				// law: connections in use are requests in flight):
				// connections that grew many times more than anything
				// in a callee got worse were opened for their own
				// sake — a storm — and it is no effect of that callee.
				worseIn = func(svc string) bool { return worse.most(svc, c.Onset, tol) >= c.ratio() }
			}
			c.Hops, c.Proximity = proximity(in.Hops, c.Service)
			hogCPU := c.Service == hog && c.Kind == CauseSignal && c.Signal == signalCPU
			switch {
			case hogCPU:
				// It shares the host's CPUs with the services it slowed,
				// whatever the calls between them.
				c.Proximity, c.Contends = 1, victims
			case c.Kind != CauseDeploy && in.Upstream[c.Service] && !c.reaches:
				// As good as unconnected (see reaches).
				c.Proximity, c.Upstream = unreachableProximity, true
			}
			if c.Kind != CauseDeploy {
				if d, ok := deployed[c.Service]; ok && deployTiming(c.Onset.Sub(d.Time), in.Step) == 1 {
					c.Unexplained, c.ExplainedBy = explainedFactor, "deploy of "+d.Service
				} else if hogCPU {
					// Its own demand took the CPUs: what its callees did
					// while they waited for them explains nothing of it.
				} else if hog != "" && c.Service != hog && slices.Contains(victims, c.Service) && !c.Onset.Before(hogOnset.Add(-tol)) {
					c.Unexplained, c.ExplainedBy = explainedFactor, "CPU taken by "+hog
				} else if dep := firstAnomalous(callees[c.Service], worseIn, c.Service); dep != "" {
					c.Unexplained, c.ExplainedBy = explainedFactor, "anomaly in "+dep+", which "+c.Service+" calls"
				} else if up := firstAnomalousUpstream(callers, roseIn, c.Service); up != "" && c.fell() {
					c.Unexplained, c.ExplainedBy = explainedFactor, "anomaly in "+up+", upstream of "+c.Service+" (less work came in)"
				} else if up != "" && c.rose() && !c.started() && (busier.with(c.Service, c.Onset, tol) || fed.most(c.Service, c.Onset, tol) > worse.most(c.Service, c.Onset, tol)) {
					// A caller with an anomaly of its own sent more (its
					// retries, say): this rose with the load, as the
					// requests served did. What started here (an error
					// code) is no load's doing. So do connections its
					// callers opened, when they grew more times over than
					// anything in it got worse: a pool grows as its
					// server slows (a CPU burn's callers open more as it
					// does), a storm by far more.
					c.Unexplained, c.ExplainedBy = explainedFactor, "anomaly in "+up+", upstream of "+c.Service+" (more work came in)"
				}
			}
			c.Score = c.Anomaly * c.Size * c.Timing * c.Proximity * c.Unexplained
			c.Evidence += evidenceTail(*c)
		}
		slices.SortFunc(cs, compareCauses)
		// Deploys and events that did not change the KPI are no
		// candidates.
		cs = slices.DeleteFunc(cs, func(c cause) bool { return (c.Kind == CauseDeploy || c.traits.Event) && c.Timing == 0 })
		if len(cs) > maxCausesPerWindow {
			cs = cs[:maxCausesPerWindow]
		}
		for i := range cs {
			cs[i].Rank = i + 1
		}
		out = append(out, cs...)
	}
	return out
}

// rise is a clear rise of a service's signal: when it started, and whether
// that was with the KPI going wrong (a timing of 1).
type rise struct {
	onset  time.Time
	onTime bool
	ratio  float64 // after / before (see cause.ratio)
}

// rises are the clear rises of each service's signals around a window.
type rises map[string][]rise

func (r rises) add(svc string, x rise) { r[svc] = append(r[svc], x) }

// with reports whether svc had a clear rise that came with a change at
// onset: one that came with the KPI going wrong, as that change may not
// have, or one that started within tol of it — changes that come together
// explain each other, whenever the KPI showed them.
func (r rises) with(svc string, onset time.Time, tol time.Duration) bool {
	return slices.ContainsFunc(r[svc], func(x rise) bool { return together(x, onset, tol) })
}

// most is the largest ratio of svc's clear rises that came with a change
// at onset (see with); 0 when none did.
func (r rises) most(svc string, onset time.Time, tol time.Duration) float64 {
	m := 0.0
	for _, x := range r[svc] {
		if together(x, onset, tol) {
			m = max(m, x.ratio)
		}
	}
	return m
}

func together(x rise, onset time.Time, tol time.Duration) bool {
	return x.onTime || x.onset.Sub(onset).Abs() <= tol
}

// compareCauses orders causes by score, highest first; scores that are the
// same to the three decimals shown are a tie. Ties go to the
// clearer change (the factors saturate: a change of 50% and one of 5000%
// both have size 1, but not the same clarity), then to the earlier change
// (a cause comes before its effects), then to the cause closer to the
// KPI's service, then by kind, service, signal and evidence (which names
// the edge) in alphabetical order: never by the order the series came in.
func compareCauses(a, b cause) int {
	switch {
	case round3(a.Score) != round3(b.Score):
		return cmp.Compare(b.Score, a.Score)
	case a.Clarity != b.Clarity:
		return cmp.Compare(b.Clarity, a.Clarity)
	case !a.Onset.Equal(b.Onset):
		return a.Onset.Compare(b.Onset)
	case a.Proximity != b.Proximity:
		return cmp.Compare(b.Proximity, a.Proximity)
	}
	return cmp.Or(
		cmp.Compare(a.Kind, b.Kind),
		cmp.Compare(a.Service, b.Service),
		cmp.Compare(a.Signal, b.Signal),
		cmp.Compare(a.Evidence, b.Evidence),
	)
}

// cpuUse returns the CPU each service used in the window (the median of
// its cores there).
func cpuUse(sigs []signalSeries, w insightWindow) map[string]float64 {
	use := map[string]float64{}
	for _, s := range sigs {
		if s.Kind != CauseSignal || s.Signal != signalCPU {
			continue
		}
		if v := s.Band.finiteIn(w.Start, w.End.Add(1)); len(v) > 0 {
			use[s.Service] += median(v)
		}
	}
	return use
}

// contention finds host-wide CPU contention among a window's causes: when
// the run-queue wait of some services rose (they waited for a CPU), the
// service whose CPU rose the most (in cores, another one's or one that
// appeared) took the CPUs from them — provided it gained at least as many
// cores as any of them waited for more (seconds of wait per second), and at
// least as many as all the other services use together (use: cores in
// the window), so that its demand is what fills the CPUs; and, when the
// hosts' CPUs are known (cpus > 0), provided the services kept at least
// half of them busy (contendedShare): a queue for CPUs that stand mostly
// idle is no one's demand filling them. A small rise while everyone waits
// a little more is no hog. It returns that service, the onset of its rise
// and the services that waited; "" when there is no such service.
// (Services are taken to share the host; signals are per service, summed
// over hosts.)
func contention(cs []cause, use map[string]float64, cpus float64) (hog string, onset time.Time, victims []string) {
	rose := func(c cause) bool { return c.Kind == CauseSignal && c.rose() && c.Size >= 0.5 }
	waited := map[string]float64{}
	for _, c := range cs {
		if c.Signal == signalRunqueue && rose(c) && !slices.Contains(victims, c.Service) {
			victims = append(victims, c.Service)
			waited[c.Service] = c.After - nanTo(c.Before, 0)
		}
	}
	if len(victims) == 0 {
		return "", time.Time{}, nil
	}
	best := 0.0
	for _, c := range cs {
		if c.Signal != signalCPU || !rose(c) {
			continue
		}
		gain := c.After - nanTo(c.Before, 0)
		if gain > best || (gain == best && c.Service < hog) {
			best, hog, onset = gain, c.Service, c.Onset
		}
	}
	victims = slices.DeleteFunc(victims, func(v string) bool { return v == hog })
	// The CPU time a service waited for more (seconds per second) went
	// to someone: a service that gained less than that did not take it.
	// Services waiting at once wait for the same CPUs, so their waits
	// are not added: the longest is what must have gone somewhere.
	var lost float64
	for _, v := range victims {
		lost = max(lost, waited[v])
	}
	var others, busy float64
	for svc, u := range use {
		if svc != hog {
			others += u
		}
		busy += u
	}
	if hog == "" || len(victims) == 0 || best < lost || best < others || (cpus > 0 && busy < contendedShare*cpus) {
		return "", time.Time{}, nil
	}
	slices.Sort(victims)
	return hog, onset, victims
}

// foundCause is what signalCause returns.
type foundCause struct {
	c  cause
	ok bool
}

// signalCauses runs signalCause for each signal, on every CPU: a series is
// read by one goroutine at a time (levelBefore caches in it).
func signalCauses(w insightWindow, signals []signalSeries, searchFrom time.Time, tol time.Duration) []foundCause {
	out := make([]foundCause, len(signals))
	var eg errgroup.Group
	eg.SetLimit(runtime.GOMAXPROCS(0))
	for i, s := range signals {
		eg.Go(func() error {
			out[i].c, out[i].ok = signalCause(w, s, searchFrom, tol)
			return nil
		})
	}
	_ = eg.Wait() // the goroutines return no error
	return out
}

// signalCause looks for a change of one signal around a window, the one
// that went on into it. Its onset is where the alarm (a score at the
// alerting threshold) nearest before the window's start (up to tol after
// it) began, or else the first alarm after that — of the alarms after
// which the values clearly differ from those before (see changedAt): an
// alarm the values came back from (an earlier incident, a restart, a
// blip), or one that marks the return to normal after it, is not the
// change that went on into the window. A series that appeared as the KPI
// went wrong changed when it appeared. With no such alarm the values are
// judged alone (see rawOnset), and a clear change counts at the alerting
// level; with none either, a score short of the alarm but high still
// counts, from where it peaked. The anomaly is the highest score from the
// onset to the window's end; before and after are the values' medians
// either side of the onset.
func signalCause(w insightWindow, s signalSeries, searchFrom time.Time, tol time.Duration) (cause, bool) {
	b := s.Band
	by := w.Start.Add(tol)
	span := w.Start.Sub(searchFrom)
	// The alarms' starts: those up to by, nearest first, then the later
	// ones in time order.
	var early, late []int
	alarmed := false
	lo, hi := b.index(searchFrom), b.index(w.End.Add(1))
	for i := lo; i < hi; i++ {
		t := b.Times[i]
		sc := b.Score[i]
		alarm := sc >= AlertThreshold // false for NaN
		if alarm && !alarmed {
			if t.After(by) {
				late = append(late, i)
			} else {
				early = append(early, i)
			}
		}
		alarmed = alarm
	}
	slices.Reverse(early)
	onsetAt, floor := -1, 0.0
	for _, i := range append(early, late...) {
		if changedAt(b, i, w, span) {
			onsetAt = i
			break
		}
	}
	if first := appearedAt(b, w, searchFrom, s.Kind == CauseSignal); first >= 0 && (onsetAt < 0 || first < onsetAt) {
		// A young series' first scores are judged against its own few
		// samples: it changed when it appeared.
		onsetAt, floor = first, AlertThreshold
	}
	if onsetAt < 0 {
		// The scores say nothing clear: a series too young to be scored
		// well, a detector holding an earlier alarm, or one that has
		// seen the same values in an earlier incident.
		if raw := rawOnset(b, w, searchFrom, by); raw >= 0 && changedAt(b, raw, w, span) {
			onsetAt, floor = raw, AlertThreshold
		}
	}
	if onsetAt < 0 {
		peak := 0.0
		for i := lo; i < hi; i++ {
			if sc := b.Score[i]; sc > peak {
				peak, onsetAt = sc, i
			}
		}
		if onsetAt < 0 || peak < causeMinAnomaly || !changedAt(b, onsetAt, w, span) {
			return cause{}, false
		}
	}
	peak := floor
	for i := onsetAt; i < len(b.Times) && !b.Times[i].After(w.End); i++ {
		if sc := b.Score[i]; sc > peak {
			peak = sc
		}
	}
	onset := b.Times[onsetAt]
	before, after := aroundOnset(b, onsetAt, w.End, span)
	c := cause{
		Window: w.ID, Kind: s.Kind, Service: s.Service, Signal: s.Signal,
		Onset: onset, Lead: w.Start.Sub(onset), Anomaly: peak, Unexplained: 1,
		Before: median(before), After: median(after), Change: math.NaN(),
		Clarity: math.Inf(1),
	}
	if lv, ok := b.levelBefore(onsetAt, span); ok && !math.IsNaN(c.After) {
		c.Clarity = clarity(c.After-lv.l, lv.spread)
	}
	c.Size = 1
	if c.Before != 0 && !math.IsNaN(c.Before) && !math.IsNaN(c.After) {
		c.Change = (c.After - c.Before) / math.Abs(c.Before)
		// A count of things (connections, threads: every value whole)
		// moves by whole ones, and a step of one is as much a pool's
		// jitter as a change: its size is what it moved beyond that.
		// A count of events is read by its steps (see Event).
		moved := math.Abs(c.After - c.Before)
		if !s.Event && whole(before) && whole(after) {
			moved = max(moved-1, 0)
		}
		c.Size = 1 - math.Exp(-moved/math.Abs(c.Before)/changeScale)
	}
	subject := s.Signal + " of " + s.Service
	if s.Kind == CauseEdge {
		subject = s.Signal + " of " + s.Edge
	}
	dir := "changed"
	if math.IsNaN(c.Before) && !math.IsNaN(c.After) {
		c.Evidence = fmt.Sprintf("%s appeared at %s", subject, formatValue(c.After, s.Unit))
		return c, true
	}
	if !math.IsNaN(c.Before) && !math.IsNaN(c.After) {
		switch {
		case c.After > c.Before:
			dir = "rose"
		case c.After < c.Before:
			dir = "fell"
		}
	}
	c.Evidence = fmt.Sprintf("%s %s from %s to %s", subject, dir, formatValue(c.Before, s.Unit), formatValue(c.After, s.Unit))
	if !math.IsNaN(c.Change) {
		c.Evidence += fmt.Sprintf(" (%+.0f%%)", 100*c.Change)
	}
	return c, true
}

// clarity is a shift d in spreads: +Inf when the values were flat and
// moved, 0 when they did not move.
func clarity(d, spread float64) float64 {
	d = math.Abs(d)
	if d == 0 {
		return 0
	}
	return d / spread // +Inf for a spread of 0
}

// whole reports whether every value is a whole number.
func whole(v []float64) bool {
	for _, x := range v {
		if x != math.Trunc(x) {
			return false
		}
	}
	return true
}

// aroundOnset returns the finite values of the span before point i, and
// those from i to end.
func aroundOnset(b *bandSeries, i int, end time.Time, span time.Duration) (before, after []float64) {
	onset := b.Times[i]
	return b.finiteIn(onset.Add(-span), onset), b.finiteIn(onset, end.Add(1))
}

// index is the index of the first point at or after t (the times are in
// order).
func (b *bandSeries) index(t time.Time) int {
	i, _ := slices.BinarySearchFunc(b.Times, t, time.Time.Compare)
	return i
}

// finiteIn returns the finite values at times in [from, to).
func (b *bandSeries) finiteIn(from, to time.Time) []float64 {
	lo, hi := b.index(from), b.index(to)
	var out []float64
	for _, v := range b.Value[lo:max(lo, hi)] {
		if !math.IsNaN(v) && !math.IsInf(v, 0) {
			out = append(out, v)
		}
	}
	return out
}

// changedAt reports whether the values clearly changed at point i and
// stayed changed into the window: the median of the values in the window
// (from i on, when i is later) and, when i is before the window, the
// median of those from i to the window's start, are each off the median
// of the span before i by at least moveZ spreads of that stretch (see
// levelOf), on the same side. An alarm the values came back from before
// the window — however high they were in it — is no change that went on
// into the window. A series with no values before changed.
func changedAt(b *bandSeries, i int, w insightWindow, span time.Duration) bool {
	onset := b.Times[i]
	lead := b.finiteIn(onset, w.Start)
	in := b.finiteIn(maxTime(onset, w.Start), w.End.Add(1))
	if len(in) == 0 {
		return false
	}
	lv, ok := b.levelBefore(i, span)
	if !ok {
		return true
	}
	l, spread := lv.l, lv.spread
	m := median(in)
	d := m - l
	if d == 0 || math.Abs(d) < moveZ*spread || !lv.beyond(m, d) {
		return false
	}
	if len(lead) == 0 {
		return true
	}
	ml := median(lead)
	dl := ml - l
	return math.Signbit(dl) == math.Signbit(d) && dl != 0 && math.Abs(dl) >= moveZ*spread && lv.beyond(ml, dl)
}

// levelBefore is the level of the finite values of the span before point
// i (see levelOf), false when there are none. The windows of one query
// share a series and its points, so each point's level is computed once.
func (b *bandSeries) levelBefore(i int, span time.Duration) (refLevel, bool) {
	k := levelKey{i, span}
	if lv, ok := b.levels[k]; ok {
		return lv, lv.ok
	}
	var lv refLevel
	if before := b.finiteIn(b.Times[i].Add(-span), b.Times[i]); len(before) > 0 {
		lv.l, lv.spread = levelOf(before)
		lv.q1, lv.q3 = quartiles(before)
		lv.ok = true
	}
	if b.levels == nil {
		b.levels = map[levelKey]refLevel{}
	}
	b.levels[k] = lv
	return lv, lv.ok
}

type levelKey struct {
	i    int
	span time.Duration
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// rawOnset finds, from a signal's values alone, where the change that went
// on into the window began: points whose last moveRecent values have a
// median off the level before searchFrom (moveRefSpan of it, at least
// moveRefMin points, the query's warm-up included; for a younger series,
// all its values before the window) by a quarter and by four spreads of
// that level's own medians (see shifted) form runs, gaps
// of up to two points bridged; the onset is the start of the last run that
// began by the given time and lasted into the window, or else of the first
// run after. It returns -1 when there is no such run.
func rawOnset(b *bandSeries, w insightWindow, searchFrom, by time.Time) int {
	n := moveRefMin
	if len(b.Times) > 1 {
		n = max(n, int(moveRefSpan/b.Times[1].Sub(b.Times[0])))
	}
	lo, hi := b.index(searchFrom), b.index(w.End.Add(1))
	first := -1
	for i := lo; i < hi; i++ {
		if !math.IsNaN(b.Value[i]) {
			first = i
			break
		}
	}
	if first < 0 {
		return -1
	}
	// The last n values before searchFrom.
	var ref []float64
	for i := lo - 1; i >= 0 && len(ref) < n; i-- {
		if v := b.Value[i]; !math.IsNaN(v) {
			ref = append(ref, v)
		}
	}
	slices.Reverse(ref)
	if len(ref) < moveRefMin {
		// A young series (a stack that started minutes ago): its level
		// is that of all its values before the window, an earlier
		// incident among them outweighed by the healthy stretches.
		ref = ref[:0]
		for _, v := range b.Value[:b.index(w.Start)] {
			if !math.IsNaN(v) {
				ref = append(ref, v)
			}
		}
	}
	level := newRefLevel(ref)
	if !level.ok {
		return -1
	}
	type run struct{ from, to int }
	var runs []run
	var recent []float64
	for i := first; i < len(b.Times) && !b.Times[i].After(w.End); i++ {
		v := b.Value[i]
		if math.IsNaN(v) {
			continue
		}
		recent = append(recent, v)
		if len(recent) > moveRecent {
			recent = recent[1:]
		}
		if _, ok := level.shifted(recent); !ok {
			continue
		}
		if len(runs) == 0 || i-runs[len(runs)-1].to > 3 {
			runs = append(runs, run{i, i})
		} else {
			runs[len(runs)-1].to = i
		}
	}
	for k := len(runs) - 1; k >= 0; k-- {
		if r := runs[k]; !b.Times[r.from].After(by) {
			if !b.Times[r.to].Before(w.Start) {
				return r.from
			}
			break
		}
	}
	for _, r := range runs {
		if b.Times[r.from].After(by) {
			return r.from
		}
	}
	return -1
}

// appearedAt returns the first point of a series that appeared between
// searchFrom and the window's end — no values before searchFrom — within
// deploySteps steps of the window's start (as a deploy must), and that is
// not all zeros: a new process, when appear is set (a service signal;
// connections come and go all the time and are not counted so). It
// returns -1 otherwise.
func appearedAt(b *bandSeries, w insightWindow, searchFrom time.Time, appear bool) int {
	if !appear || len(b.Times) < 2 {
		return -1
	}
	lo, hi := b.index(searchFrom), b.index(w.End.Add(1))
	for i := lo - 1; i >= 0; i-- {
		if !math.IsNaN(b.Value[i]) {
			return -1 // it was there before
		}
	}
	first := -1
	var after []float64
	for i := lo; i < hi; i++ {
		if v := b.Value[i]; !math.IsNaN(v) {
			if first < 0 {
				first = i
			}
			after = append(after, v)
		}
	}
	if first < 0 || median(after) == 0 || deployTiming(w.Start.Sub(b.Times[first]), b.Times[1].Sub(b.Times[0])) == 0 {
		return -1
	}
	return first
}

// searchSpan is how long before a window insights looks for the onset of
// a change; the level before an onset is read over as long again.
func searchSpan(step time.Duration) time.Duration { return max(5*step, 10*time.Minute) }

// timing weighs when a change started against the window's start (lead is
// how long before it): 1 from tol before to lag after, decaying before
// that, halved and decaying after; see the file comment.
func timing(lead, tol, lag, decay time.Duration) float64 {
	if lead >= -lag {
		return math.Exp(-float64(max(lead-tol, 0)) / float64(decay))
	}
	return 0.5 * math.Exp(-float64(-lead-lag)/float64(decay))
}

// deploySteps is how many steps after a deploy the KPI has to go wrong for
// the deploy to be its cause: a bad build shows as soon as it serves, so
// within a few scrapes, with room for the restart and the rate windows.
const deploySteps = 10

// deployTiming weighs when a deploy happened against the window's start.
// A deploy is a cause only when the KPI changed with it: when the window
// starts within deploySteps steps of it, either side (the exporter sees a
// deploy at its next scrape), or within timingTolerance, the least any
// change gets (see timing): at a short step, a KPI read as a rate, whose
// window opens once the median of its last points has moved, goes wrong
// several seconds after what broke it. Then it weighs 1. A deploy longer
// before, with the KPI healthy in between, did not break it: it weighs 0
// and is no candidate, however many deploys a team makes. (A build that
// degrades the KPI slowly is not caught this way; its effects are, as
// signals.)
func deployTiming(lead, step time.Duration) float64 {
	if lead.Abs() <= max(deploySteps*step, timingTolerance) {
		return 1
	}
	return 0
}

// further reports whether b lies further out than a on the call graph as
// seen from the KPI's service: more calls away from it, the services that
// call it counting as negative. Where either is off the map, or the KPI's
// service is not known, nothing says otherwise: true.
func (in rankInput) further(a, b string) bool {
	da, oka := in.Hops[a]
	db, okb := in.Hops[b]
	if !oka || !okb {
		return true
	}
	if in.Upstream[a] {
		da = -da
	}
	if in.Upstream[b] {
		db = -db
	}
	return db > da
}

// keepPeers returns g with only the peers of each service that keep
// accepts.
func keepPeers(g map[string][]string, keep func(svc, peer string) bool) map[string][]string {
	out := make(map[string][]string, len(g))
	for svc, peers := range g {
		for _, p := range peers {
			if keep(svc, p) {
				out[svc] = append(out[svc], p)
			}
		}
	}
	return out
}

// proximity weighs how far the cause's service is from the KPI's.
func proximity(hops map[string]int, service string) (int, float64) {
	if hops == nil {
		return -1, 1
	}
	h, ok := hops[service]
	if !ok {
		return -1, unreachableProximity
	}
	return h, 1 / (1 + float64(h)/4)
}

// rose reports whether the cause is a rise, or a series that appeared;
// fell whether it is a fall.
func (c cause) rose() bool {
	return !math.IsNaN(c.After) && (math.IsNaN(c.Before) || c.After > c.Before)
}

// worsened reports whether a rise is its service getting worse for those
// that call it: a cost that rose (slower, failing, waiting), a restart, or
// something that started — a series that appeared or rose from zero (a new
// error code, or one that came back) — other than work it sends.
func (c cause) worsened() bool {
	return c.rose() && (c.traits.Cost || c.traits.Event || (c.started() && !c.traits.Work))
}

// started reports whether the cause is something that started: a series
// that appeared or rose from zero.
func (c cause) started() bool {
	return (math.IsNaN(c.Before) || c.Before == 0) && c.After > 0
}

// ratio is how many times its value a change multiplied: after / before,
// +Inf for a series that appeared or rose from zero.
func (c cause) ratio() float64 {
	if math.IsNaN(c.Before) || c.Before <= 0 {
		return math.Inf(1)
	}
	return c.After / c.Before
}

func (c cause) fell() bool {
	return !math.IsNaN(c.After) && !math.IsNaN(c.Before) && c.After < c.Before
}

// invert turns the services each service calls into the services each is
// called by.
func invert(callees map[string][]string) map[string][]string {
	out := map[string][]string{}
	for caller, cs := range callees {
		for _, c := range cs {
			out[c] = appendUnique(out[c], caller)
		}
	}
	return out
}

// firstAnomalousUpstream returns the closest service upstream of svc (one
// that calls it, directly or through others) that has an anomaly of its
// own, the first by name among equally close ones; or "".
func firstAnomalousUpstream(callers map[string][]string, anomalous func(string) bool, svc string) string {
	seen := map[string]bool{svc: true}
	level := []string{svc}
	for len(level) > 0 {
		var next []string
		for _, s := range level {
			for _, c := range callers[s] {
				if !seen[c] {
					seen[c] = true
					next = append(next, c)
				}
			}
		}
		if a := firstAnomalous(next, anomalous, svc); a != "" {
			return a
		}
		level = next
	}
	return ""
}

// firstAnomalous returns the first of the peers (by name) other than svc
// that has an anomaly of its own, or "".
func firstAnomalous(peers []string, anomalous func(string) bool, svc string) string {
	cs := slices.Clone(peers)
	sort.Strings(cs)
	for _, c := range cs {
		if c != svc && anomalous(c) {
			return c
		}
	}
	return ""
}

// evidenceTail says when, where and why this score.
func evidenceTail(c cause) string {
	var b strings.Builder
	switch {
	case c.Lead > 0:
		fmt.Fprintf(&b, ", %s before the KPI went wrong", roundDuration(c.Lead))
	case c.Lead < 0:
		fmt.Fprintf(&b, ", %s after the KPI went wrong", roundDuration(-c.Lead))
	default:
		b.WriteString(", as the KPI went wrong")
	}
	switch {
	case c.Upstream && c.Hops == 1:
		b.WriteString("; it calls the KPI's service, which this reaches only as the work it sends")
	case c.Upstream:
		fmt.Fprintf(&b, "; %d calls upstream of the KPI's service, which this reaches only as the work it sends", c.Hops)
	case c.Hops == 0:
		b.WriteString("; it is the KPI's own service")
	case c.Hops == 1:
		b.WriteString("; 1 call away from the KPI's service")
	case c.Hops > 1:
		fmt.Fprintf(&b, "; %d calls away from the KPI's service", c.Hops)
	case c.Proximity < 1:
		b.WriteString("; not connected to the KPI's service on the map")
	}
	if len(c.Contends) > 0 {
		fmt.Fprintf(&b, "; it competes for the host's CPUs with %s, whose run-queue wait rose", strings.Join(c.Contends, ", "))
	}
	if c.ExplainedBy != "" {
		fmt.Fprintf(&b, "; possibly explained by the %s", c.ExplainedBy)
	}
	fmt.Fprintf(&b, ". Score %.2f = anomaly %.2f × size %.2f × timing %.2f × proximity %.2f × unexplained %.2f",
		c.Score, c.Anomaly, c.Size, c.Timing, c.Proximity, c.Unexplained)
	return b.String()
}

// roundDuration shortens a duration for people.
func roundDuration(d time.Duration) time.Duration {
	switch {
	case d >= time.Hour:
		return d.Round(time.Minute)
	case d >= time.Minute:
		return d.Round(time.Second)
	}
	return d.Round(100 * time.Millisecond)
}

// formatValue prints a value with its unit, compactly.
func formatValue(v float64, unit string) string {
	if math.IsNaN(v) {
		return "nothing"
	}
	switch unit {
	case "bytes":
		return formatBytes(v)
	case "s":
		if math.Abs(v) < 1 {
			return fmt.Sprintf("%.3g ms", v*1000)
		}
		return fmt.Sprintf("%.3g s", v)
	case "":
		return fmt.Sprintf("%.3g", v)
	}
	if strings.HasPrefix(unit, "/") {
		return fmt.Sprintf("%.3g%s", v, unit)
	}
	return fmt.Sprintf("%.3g %s", v, unit)
}

func formatBytes(v float64) string {
	units := []string{"B", "KiB", "MiB", "GiB", "TiB"}
	i := 0
	for math.Abs(v) >= 1024 && i < len(units)-1 {
		v /= 1024
		i++
	}
	return fmt.Sprintf("%.3g %s", v, units[i])
}

// median returns the median of v, NaN when empty. v is reordered.
func median(v []float64) float64 {
	n := len(v)
	if n == 0 {
		return math.NaN()
	}
	if slices.ContainsFunc(v, math.IsNaN) {
		// Ordered as sort.Float64s orders NaN: first.
		sort.Float64s(v)
		if n%2 == 1 {
			return v[n/2]
		}
		return (v[n/2-1] + v[n/2]) / 2
	}
	m := selectKth(v, n/2)
	if n%2 == 1 {
		return m
	}
	// The lower middle is the largest of those selected below it.
	return (slices.Max(v[:n/2]) + m) / 2
}

// quartiles returns the lower and upper quartiles of v (nearest rank),
// reordering it; v holds no NaN.
func quartiles(v []float64) (q1, q3 float64) {
	n := len(v)
	q3 = selectKth(v, (3*n)/4)
	q1 = selectKth(v[:(3*n)/4+1], n/4)
	return q1, q3
}

// selectKth reorders v so that v[k] is the value a sort would put there,
// with none larger before it and none smaller after (Hoare's selection,
// in linear time on average), and returns it. v holds no NaN.
func selectKth(v []float64, k int) float64 {
	lo, hi := 0, len(v)-1
	for lo < hi {
		// The median of three as the pivot: sorted runs are no worst case.
		mid := lo + (hi-lo)/2
		if v[mid] < v[lo] {
			v[mid], v[lo] = v[lo], v[mid]
		}
		if v[hi] < v[lo] {
			v[hi], v[lo] = v[lo], v[hi]
		}
		if v[hi] < v[mid] {
			v[hi], v[mid] = v[mid], v[hi]
		}
		p := v[mid]
		i, j := lo, hi
		for i <= j {
			for v[i] < p {
				i++
			}
			for p < v[j] {
				j--
			}
			if i <= j {
				v[i], v[j] = v[j], v[i]
				i++
				j--
			}
		}
		switch {
		case k <= j:
			hi = j
		case k >= i:
			lo = i
		default:
			return v[k]
		}
	}
	return v[k]
}
