// Package scenarios runs fault scenarios against the demo stack and
// measures the insights query on each: whether a KPI got a window, how
// soon, and where the service at fault ranked among the likely causes.
// It is what `go tool mage scenarios` runs; a subset runs in the
// end-to-end tests.
//
// Each scenario has a healthy period, the fault, a ranking taken once,
// about RankAfter into the incident (no retrying until it looks right),
// the fault cleared and a recovery. A quiet period with no fault counts
// the windows insights opens on healthy traffic.
package scenarios

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/telltale-dev/telltale/demo/shop"
	"github.com/telltale-dev/telltale/demo/stack"
)

// Timing of a scenario.
const (
	// Healthy is the healthy traffic before each fault.
	Healthy = 30 * time.Second
	// Detect is how long a KPI has to get a window after a fault.
	Detect = 90 * time.Second
	// RankAfter is how long into the incident the ranking is taken.
	RankAfter = 30 * time.Second
	// Recover is the healthy traffic after a fault is cleared.
	Recover = 30 * time.Second
	// Step is the query step: the demo's scrape interval.
	Step = time.Second
	// Warmup is the healthy history before the first scenario.
	Warmup = 90 * time.Second
)

// Scenario is one fault and the service to blame for it.
type Scenario struct {
	Name string
	// Culprit is the service at fault, as the exporter names it.
	Culprit string
	// Harmless, when set, says why the fault cannot hurt any of the
	// shop's KPIs: insights should open no window for it, and one it
	// opens counts as a false window, not as a miss or a hit.
	Harmless string
	// Start injects the fault, Stop clears it.
	Start, Stop func(ctx context.Context, s *stack.Stack) error
}

// fault is a scenario of a shop fault set through the admin endpoint.
func fault(r shop.Role, kind string, params url.Values) Scenario {
	var p []string
	for k, v := range params {
		p = append(p, k+"="+strings.Join(v, ","))
	}
	slices.Sort(p)
	return Scenario{
		Name:    fmt.Sprintf("%s %s %s", kind, r, strings.Join(p, " ")),
		Culprit: string(r),
		Start:   func(ctx context.Context, s *stack.Stack) error { return s.Fault(ctx, r, kind, params) },
		Stop:    func(ctx context.Context, s *stack.Stack) error { return s.ClearFaults(ctx, r) },
	}
}

// slowDeploy is a scenario of a shop program redeployed as the slow build.
func slowDeploy(r shop.Role) Scenario {
	return Scenario{
		Name:    fmt.Sprintf("slow deploy %s", r),
		Culprit: string(r),
		Start:   func(ctx context.Context, s *stack.Stack) error { return s.Redeploy(ctx, r, stack.BuildSlow) },
		Stop:    func(ctx context.Context, s *stack.Stack) error { return s.Redeploy(ctx, r, stack.BuildGood) },
	}
}

// neighbour is a scenario of a CPU hog outside the shop, with threads
// busy threads.
func neighbour(threads int) Scenario {
	return Scenario{
		Name:    fmt.Sprintf("noisy neighbour %s threads=%d", stack.Neighbour, threads),
		Culprit: stack.Neighbour,
		Start:   func(ctx context.Context, s *stack.Stack) error { return s.StartNeighbour(ctx, threads) },
		Stop:    func(_ context.Context, s *stack.Stack) error { s.StopNeighbour(); return nil },
	}
}

// harmless marks a scenario's fault as one no KPI can feel, and says why.
func harmless(sc Scenario, why string) Scenario {
	sc.Harmless = why
	return sc
}

// both is a scenario of two faults at once, harmful's culprit to blame.
func both(harmful, harmless Scenario) Scenario {
	return Scenario{
		Name:    harmful.Name + " + " + harmless.Name + " (harmless)",
		Culprit: harmful.Culprit,
		Start: func(ctx context.Context, s *stack.Stack) error {
			if err := harmless.Start(ctx, s); err != nil {
				return err
			}
			return harmful.Start(ctx, s)
		},
		Stop: func(ctx context.Context, s *stack.Stack) error {
			return joinErr(harmful.Stop(ctx, s), harmless.Stop(ctx, s))
		},
	}
}

func joinErr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

// The faults' sizes: each harmful to the checkout's KPIs on a 2-core
// machine, as the shop's README describes them.
var (
	latency   = url.Values{"ms": {"300"}}
	errorRate = url.Values{"rate": {"0.3"}}
	cpuBurn   = url.Values{"cores": {"1.5"}}
	storm     = url.Values{"rate": {"300"}, "hold_ms": {"2000"}}
)

// entrance says why a fault that only slows the storefront's own answers
// hurts no KPI: the shop's KPIs are all the checkout's, measured where it
// answers, and the load generator keeps buying at its rate however slowly
// the storefront answers (an open loop, well below its cap of purchases in
// flight).
const entrance = "it slows only the storefront's answers to customers; every KPI is the checkout's, and the purchases keep coming at the same rate"

// All returns every scenario: each fault kind on each service where it
// applies, a noisy neighbour, and two faults at once. The faults that
// only slow the storefront's own answers are there too, marked harmless.
func All() []Scenario {
	var out []Scenario
	shopServices := []shop.Role{shop.Storefront, shop.Checkout, shop.Payments, shop.Inventory}
	for _, r := range shopServices {
		sc := fault(r, shop.FaultLatency, latency)
		if r == shop.Storefront {
			sc = harmless(sc, entrance)
		}
		out = append(out, sc)
	}
	for _, r := range shopServices {
		out = append(out, fault(r, shop.FaultErrors, errorRate))
	}
	for _, r := range append(slices.Clone(shopServices), shop.Loadgen) {
		out = append(out, fault(r, shop.FaultCPU, cpuBurn))
	}
	for _, r := range []shop.Role{shop.Storefront, shop.Checkout, shop.Loadgen} {
		sc := fault(r, shop.FaultConnStorm, storm)
		if r == shop.Loadgen {
			sc = harmless(sc, "the load generator's storm lands on the storefront alone; "+entrance)
		}
		out = append(out, sc)
	}
	for _, r := range shopServices {
		sc := slowDeploy(r)
		if r == shop.Storefront {
			sc = harmless(sc, entrance)
		}
		out = append(out, sc)
	}
	out = append(out,
		neighbour(8),
		both(fault(shop.Inventory, shop.FaultLatency, latency), fault(shop.Storefront, shop.FaultCPU, url.Values{"cores": {"0.2"}})),
	)
	return out
}

// Subset returns the scenarios the end-to-end tests run: four the
// end-to-end test's own two incidents (latency in payments, a slow
// checkout deploy) do not cover — latency two calls away, errors in a
// callee, a slow deploy of a callee, and a harmful fault next to a
// harmless one. The noisy neighbour is not among them: on a 2-core
// machine it does not hurt a KPI enough to open a window (see the README).
func Subset() []Scenario {
	return []Scenario{
		fault(shop.Inventory, shop.FaultLatency, latency),
		fault(shop.Payments, shop.FaultErrors, errorRate),
		slowDeploy(shop.Payments),
		both(fault(shop.Inventory, shop.FaultLatency, latency), fault(shop.Storefront, shop.FaultCPU, url.Values{"cores": {"0.2"}})),
	}
}

// Outcome is what one scenario measured.
type Outcome struct {
	Scenario, Culprit string
	// Harmless is set for a fault no KPI should feel (see Scenario).
	Harmless bool
	// Found is whether a KPI got a window within Detect of the fault;
	// KPI is the KPI whose window started first, Delay how long after the
	// fault it started.
	Found bool
	KPI   string
	Delay time.Duration
	// Top are the first causes of that window, ranked RankAfter into it;
	// Rank is the culprit's rank there (0: not among the causes).
	Top  []stack.Cause
	Rank int
	// Err is what went wrong running the scenario, if anything.
	Err string
}

// Report is the outcome of a run.
type Report struct {
	Outcomes []Outcome
	// Quiet is how long the quiet period lasted and QuietWindows the
	// windows insights opened in it, by KPI.
	Quiet        time.Duration
	QuietWindows map[string]int
	// InsightsLatency is how long an insights query over the last hour
	// at a one-second step took, at the end.
	InsightsLatency time.Duration
}

// Runner runs scenarios on a started stack.
type Runner struct {
	Stack *stack.Stack
	DS    *stack.Datasource
	// Log gets a line per step, for people watching.
	Log io.Writer
}

func (r *Runner) logf(format string, args ...any) {
	if r.Log != nil {
		fmt.Fprintf(r.Log, "%s "+format+"\n", append([]any{time.Now().Format("15:04:05")}, args...)...)
	}
}

// kpis lists the KPIs the datasource finds.
func (r *Runner) kpis(ctx context.Context) ([]string, error) {
	now := time.Now()
	ks, err := r.DS.KPIs(ctx, now.Add(-time.Minute), now, Step)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, k := range ks {
		out = append(out, k.KPI)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("the datasource finds no KPI")
	}
	return out, nil
}

// sleep waits d or until ctx is done.
func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// poll is how often a scenario asks for the KPIs' windows.
const poll = 2 * time.Second

// firstWindow finds the KPI window that started first at or after since
// (less a few steps: a window may open as the fault lands), over the range
// from..to.
func (r *Runner) firstWindow(ctx context.Context, kpis []string, from, since time.Time) (string, stack.InsightWindow, error) {
	var (
		bestKPI string
		best    stack.InsightWindow
	)
	for _, k := range kpis {
		wins, _, err := r.DS.Insights(ctx, k, from, time.Now(), Step)
		if err != nil {
			return "", best, fmt.Errorf("insights of %s: %w", k, err)
		}
		for _, w := range wins {
			if w.Start.Before(since.Add(-3*Step)) || w.End.Before(since) {
				continue
			}
			if bestKPI == "" || w.Start.Before(best.Start) {
				bestKPI, best = k, w
			}
		}
	}
	return bestKPI, best, nil
}

// waitHealthy waits, at most Detect, until no KPI has a window that was
// still open in the last 10 seconds: a fault starts from healthy traffic,
// not inside the end of the last incident.
func (r *Runner) waitHealthy(ctx context.Context, kpis []string) error {
	deadline := time.Now().Add(Detect)
	for {
		now := time.Now()
		open := ""
		for _, k := range kpis {
			wins, _, err := r.DS.Insights(ctx, k, now.Add(-2*time.Minute), now, Step)
			if err != nil {
				return fmt.Errorf("insights of %s: %w", k, err)
			}
			for _, w := range wins {
				if w.End.After(now.Add(-10 * time.Second)) {
					open = k
				}
			}
		}
		if open == "" {
			return nil
		}
		if now.After(deadline) {
			r.logf("%s still has a window open after %s; going on", open, Detect)
			return nil
		}
		if err := sleep(ctx, poll); err != nil {
			return err
		}
	}
}

// One runs a scenario: healthy traffic (until no KPI is wrong), the
// fault, the ranking and the fault cleared; Run adds the recovery.
func (r *Runner) One(ctx context.Context, sc Scenario, kpis []string) Outcome {
	o := Outcome{Scenario: sc.Name, Culprit: sc.Culprit, Harmless: sc.Harmless != ""}
	// The healthy traffic is watched as the fault will be, with the same
	// queries every poll: the load they put on the host (Prometheus
	// answering, loopback traffic) is then part of the healthy level, not
	// a change that starts with the fault.
	for end := time.Now().Add(Healthy); time.Now().Before(end); {
		if _, _, err := r.firstWindow(ctx, kpis, time.Now().Add(-time.Minute), time.Now()); err != nil {
			o.Err = err.Error()
			return o
		}
		if err := sleep(ctx, poll); err != nil {
			o.Err = err.Error()
			return o
		}
	}
	if err := r.waitHealthy(ctx, kpis); err != nil {
		o.Err = err.Error()
		return o
	}
	from := time.Now().Add(-time.Minute)
	t0 := time.Now()
	if err := sc.Start(ctx, r.Stack); err != nil {
		o.Err = err.Error()
		return o
	}
	r.logf("%s: fault on", sc.Name)
	defer func() {
		if err := sc.Stop(context.WithoutCancel(ctx), r.Stack); err != nil && o.Err == "" {
			o.Err = "clear the fault: " + err.Error()
		}
		r.logf("%s: fault off", sc.Name)
	}()
	var w stack.InsightWindow
	for time.Since(t0) < Detect {
		k, win, err := r.firstWindow(ctx, kpis, from, t0)
		if err != nil {
			o.Err = err.Error()
			return o
		}
		if k != "" {
			o.Found, o.KPI, w = true, k, win
			break
		}
		if err := sleep(ctx, poll); err != nil {
			o.Err = err.Error()
			return o
		}
	}
	if !o.Found {
		r.logf("%s: no window within %s", sc.Name, Detect)
		return o
	}
	o.Delay = w.Start.Sub(t0)
	if err := sleep(ctx, time.Until(w.Start.Add(RankAfter))); err != nil {
		o.Err = err.Error()
		return o
	}
	wins, causes, err := r.DS.Insights(ctx, o.KPI, from, time.Now(), Step)
	if err != nil {
		o.Err = err.Error()
		return o
	}
	id := int64(-1)
	for _, cw := range wins {
		if !cw.End.Before(w.Start) && !cw.Start.After(w.Start.Add(RankAfter)) {
			id = cw.ID
			break
		}
	}
	for _, c := range causes {
		if c.Window != id {
			continue
		}
		if len(o.Top) < 3 {
			o.Top = append(o.Top, c)
		}
		if o.Rank == 0 && c.Service == sc.Culprit {
			o.Rank = int(c.Rank)
		}
	}
	r.logf("%s: window of %s %s after the fault; culprit rank %d", sc.Name, o.KPI, o.Delay.Round(time.Second), o.Rank)
	// The evidence of the first causes, and of the culprit's first one
	// when it ranked below them, for whoever reads the log to find out
	// why a ranking is what it is.
	for _, c := range causes {
		if c.Window == id && (c.Rank <= 5 || int(c.Rank) == o.Rank) {
			r.logf("  %d. %s", c.Rank, c.Evidence)
		}
	}
	return o
}

// Run runs the scenarios one after the other, then a quiet period, and
// times an insights query over the last hour.
func (r *Runner) Run(ctx context.Context, scs []Scenario, quiet time.Duration) (*Report, error) {
	kpis, err := r.kpis(ctx)
	if err != nil {
		return nil, err
	}
	rep := &Report{QuietWindows: map[string]int{}}
	for i, sc := range scs {
		rep.Outcomes = append(rep.Outcomes, r.One(ctx, sc, kpis))
		// A recovery before what comes next: the next fault, or the
		// quiet period.
		if i < len(scs)-1 || quiet > 0 {
			if err := sleep(ctx, Recover); err != nil {
				return rep, err
			}
		}
		if err := ctx.Err(); err != nil {
			return rep, err
		}
	}
	if quiet > 0 {
		r.logf("quiet period of %s", quiet)
		start := time.Now()
		if err := sleep(ctx, quiet); err != nil {
			return rep, err
		}
		rep.Quiet = time.Since(start)
		for _, k := range kpis {
			wins, _, err := r.DS.Insights(ctx, k, start, time.Now(), Step)
			if err != nil {
				return rep, err
			}
			for _, w := range wins {
				if !w.Start.Before(start) {
					rep.QuietWindows[k]++
				}
			}
		}
	}
	t := time.Now()
	if _, _, err := r.DS.Insights(ctx, kpis[0], t.Add(-time.Hour), t, Step); err != nil {
		return rep, err
	}
	rep.InsightsLatency = time.Since(t)
	return rep, nil
}

// Summary is the report's figures.
type Summary struct {
	Scenarios int `json:"scenarios"`
	// Harmful counts the scenarios whose fault hurts a KPI; the
	// accuracies and the share found are over those.
	Harmful int `json:"harmful"`
	// Top1 and Top3 are the shares of harmful scenarios whose culprit
	// ranked first, or in the first three (a scenario without a window
	// counts as a miss).
	Top1 float64 `json:"top1"`
	Top3 float64 `json:"top3"`
	// Found is the share of harmful scenarios with a window.
	Found float64 `json:"found"`
	// HarmlessWindows counts the harmless scenarios that got a window
	// anyway (false windows).
	HarmlessWindows int `json:"harmless_windows"`
	// MedianDelay is the median delay of the harmful scenarios' windows,
	// in scrape intervals.
	MedianDelay float64 `json:"median_delay_steps"`
	// QuietWindows counts the windows of the quiet period, QuietMinutes
	// its length.
	QuietWindows int     `json:"quiet_windows"`
	QuietMinutes float64 `json:"quiet_minutes"`
	// InsightsSeconds is the insights query's time over an hour at 1 s.
	InsightsSeconds float64 `json:"insights_1h_1s_seconds"`
}

// Summary computes the report's figures.
func (rep *Report) Summary() Summary {
	s := Summary{Scenarios: len(rep.Outcomes), QuietMinutes: rep.Quiet.Minutes(), InsightsSeconds: rep.InsightsLatency.Seconds()}
	var delays []float64
	for _, o := range rep.Outcomes {
		if o.Harmless {
			if o.Found {
				s.HarmlessWindows++
			}
			continue
		}
		s.Harmful++
		if o.Found {
			s.Found++
			delays = append(delays, o.Delay.Seconds()/Step.Seconds())
		}
		if o.Rank == 1 {
			s.Top1++
		}
		if o.Rank >= 1 && o.Rank <= 3 {
			s.Top3++
		}
	}
	if n := float64(s.Harmful); n > 0 {
		s.Top1, s.Top3, s.Found = s.Top1/n, s.Top3/n, s.Found/n
	}
	s.MedianDelay = -1
	if len(delays) > 0 {
		slices.Sort(delays)
		m := len(delays)
		s.MedianDelay = (delays[(m-1)/2] + delays[m/2]) / 2
	}
	for _, n := range rep.QuietWindows {
		s.QuietWindows += n
	}
	return s
}

// WriteTable prints a line per scenario, the figures, and the figures as
// one JSON line last.
func (rep *Report) WriteTable(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "%-62s %-7s %-24s %7s %8s  %s\n", "scenario", "window", "KPI", "delay", "rank", "top 3 causes")
	for _, o := range rep.Outcomes {
		found, delay, rank := "no", "-", "-"
		if o.Found {
			found, delay = "yes", fmt.Sprintf("%.0fs", o.Delay.Seconds())
		}
		if o.Rank > 0 {
			rank = fmt.Sprint(o.Rank)
		}
		if o.Harmless {
			// No window is right; a window is a false one.
			found, rank = map[bool]string{false: "no (ok)", true: "FALSE"}[o.Found], "harmless"
		}
		var top []string
		for _, c := range o.Top {
			top = append(top, fmt.Sprintf("%s/%s %.2f", c.Service, c.Signal, c.Score))
		}
		fmt.Fprintf(&b, "%-62s %-7s %-24s %7s %8s  %s\n", o.Scenario, found, o.KPI, delay, rank, strings.Join(top, ", "))
		if o.Err != "" {
			fmt.Fprintf(&b, "    error: %s\n", o.Err)
		}
	}
	s := rep.Summary()
	fmt.Fprintf(&b, "top-1 %.0f%%, top-3 %.0f%% of %d harmful scenarios; windows found %.0f%%; median detection delay %.1f scrape intervals\n",
		100*s.Top1, 100*s.Top3, s.Harmful, 100*s.Found, s.MedianDelay)
	fmt.Fprintf(&b, "harmless faults: %d of %d opened a window (false windows)\n", s.HarmlessWindows, s.Scenarios-s.Harmful)
	fmt.Fprintf(&b, "quiet period %.1f min: %d false windows %v\n", s.QuietMinutes, s.QuietWindows, rep.QuietWindows)
	fmt.Fprintf(&b, "insights query over 1 h at a 1 s step: %.2f s\n", s.InsightsSeconds)
	js, err := json.Marshal(s)
	if err != nil {
		return err
	}
	b.Write(js)
	b.WriteByte('\n')
	_, err = io.WriteString(w, b.String())
	return err
}
