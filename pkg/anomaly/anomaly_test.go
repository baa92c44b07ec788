package anomaly

import (
	"math"
	"math/rand/v2"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"gonum.org/v1/gonum/stat"
)

const minute = int64(time.Minute / time.Millisecond)

// noisy returns n samples at step ms of a level-10 series with unit
// Gaussian noise, deterministic for a seed.
func noisy(n int, step int64, seed uint64) []Point {
	rng := rand.New(rand.NewPCG(seed, 1))
	pts := make([]Point, n)
	for i := range pts {
		pts[i] = Point{T: 1_600_000_000_000 + int64(i)*step, V: 10 + rng.NormFloat64()}
	}
	return pts
}

func newDetector(tb testing.TB, name string, cfg Config) Detector {
	tb.Helper()
	d, err := New(name, cfg)
	if err != nil {
		tb.Fatal(err)
	}
	return d
}

func checkResult(tb testing.TB, name string, i int, r Result) {
	tb.Helper()
	if !(r.Score >= 0 && r.Score <= 1) {
		tb.Fatalf("%s: sample %d: score %v not in [0,1]", name, i, r.Score)
	}
	for _, f := range []float64{r.Expected, r.Lower, r.Upper} {
		if !finite(f) {
			tb.Fatalf("%s: sample %d: non-finite band %+v", name, i, r)
		}
	}
	if !(r.Lower <= r.Expected && r.Expected <= r.Upper) {
		tb.Fatalf("%s: sample %d: band out of order %+v", name, i, r)
	}
	if !r.Warm && r.Score != 0 {
		tb.Fatalf("%s: sample %d: cold detector scored %v", name, i, r.Score)
	}
}

func TestNewUnknown(t *testing.T) {
	if _, err := New("nope", Config{}); err == nil {
		t.Fatal("New(nope) gave no error")
	}
}

func TestWindowOrderStatistics(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	w := newWindow(37)
	var all []float64
	for i := range 500 {
		x := math.Round(rng.NormFloat64()*5) / 2 // ties on purpose
		w.push(x)
		all = append(all, x)
		held := slices.Clone(all[max(0, len(all)-37):])
		sort.Float64s(held)
		if !slices.Equal(held, w.sorted) {
			t.Fatalf("push %d: sorted %v, want %v", i, w.sorted, held)
		}
		n := len(held)
		med := (held[(n-1)/2] + held[n/2]) / 2
		if got := w.median(); got != med {
			t.Fatalf("push %d: median %v, want %v", i, got, med)
		}
		devs := make([]float64, n)
		for j, v := range held {
			devs[j] = math.Abs(v - med)
		}
		sort.Float64s(devs)
		wantMAD := (devs[(n-1)/2] + devs[n/2]) / 2
		if got := w.mad(med); got != wantMAD {
			t.Fatalf("push %d: mad %v, want %v (window %v)", i, got, wantMAD, held)
		}
		var sum float64
		for _, v := range held {
			sum += v
		}
		if math.Abs(w.mean()-sum/float64(n)) > 1e-9 {
			t.Fatalf("push %d: mean %v, want %v", i, w.mean(), sum/float64(n))
		}
		if got, want := w.last(0), x; got != want {
			t.Fatalf("push %d: last %v, want %v", i, got, want)
		}
	}
}

// TestWindowKeepSorted turns a window's sorted copy off and on while
// values come and go: whenever it is on, it holds exactly the window's
// values, in order.
func TestWindowKeepSorted(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 5))
	w := newWindow(29)
	var all []float64
	for i := range 600 {
		on := (i/40)%2 == 0 || i%97 == 0
		w.keepSorted(on)
		x := math.Round(rng.NormFloat64() * 4)
		w.push(x)
		all = append(all, x)
		if !on {
			continue
		}
		held := slices.Clone(all[max(0, len(all)-29):])
		sort.Float64s(held)
		if !slices.Equal(held, w.sorted) {
			t.Fatalf("push %d: sorted %v, want %v", i, w.sorted, held)
		}
	}
}

func TestWindowQuantileByHand(t *testing.T) {
	w := newWindow(8)
	for _, x := range []float64{5, 1, 4, 2, 3} {
		w.push(x)
	}
	// Sorted 1 2 3 4 5: type-7 quantiles.
	for _, c := range []struct{ q, want float64 }{{0, 1}, {0.25, 2}, {0.5, 3}, {0.9, 4.6}, {1, 5}} {
		if got := w.quantile(c.q); math.Abs(got-c.want) > 1e-12 {
			t.Errorf("quantile(%v) = %v, want %v", c.q, got, c.want)
		}
	}
	// |x-3| = 2 2 1 1 0 → MAD 1.
	if got := w.mad(3); got != 1 {
		t.Errorf("mad = %v, want 1", got)
	}
	if got := w.std(); math.Abs(got-math.Sqrt(2.5)) > 1e-12 {
		t.Errorf("std = %v, want √2.5", got)
	}
}

func TestMADByHand(t *testing.T) {
	d := newMAD()
	st := []float64{math.NaN()}
	// 32 samples alternating 9 and 11: median 10, MAD 1, scale 1.4826.
	for i := range madWarm {
		d.update(sample{t: int64(i) * minute, v: 9 + 2*float64(i%2)}, st)
	}
	r := d.update(sample{t: madWarm * minute, v: 10 + 4*madK}, st)
	if math.Abs(r.Expected-10) > 1e-12 || !r.Warm {
		t.Errorf("expected %v (warm %v), want 10", r.Expected, r.Warm)
	}
	if math.Abs(st[0]-4) > 1e-9 {
		t.Errorf("z of a sample 4 scales above the median = %v, want 4", st[0])
	}
	if math.Abs(r.Upper-(10+4*madK)) > 1e-9 || math.Abs(r.Lower-(10-4*madK)) > 1e-9 {
		t.Errorf("band [%v, %v], want 10 ± %v", r.Lower, r.Upper, 4*madK)
	}
}

func TestEWMMatchesDirectFormula(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 3))
	e := newEWM(1.0 / 51)
	var xs []float64
	for range 300 {
		x := 1e6 + rng.NormFloat64()
		xs = append(xs, x)
		e.push(x)
	}
	// Direct pandas-style computation, newest weight 1.
	var sw, sw2, swx float64
	n := len(xs)
	for i := range xs {
		w := math.Pow(1-1.0/51, float64(n-1-i))
		sw += w
		sw2 += w * w
		swx += w * xs[i]
	}
	mu := swx / sw
	var m2 float64
	for i := range xs {
		w := math.Pow(1-1.0/51, float64(n-1-i))
		m2 += w * (xs[i] - mu) * (xs[i] - mu)
	}
	v := m2 / (sw - sw2/sw)
	if math.Abs(e.mean-mu) > 1e-6 || math.Abs(e.variance()-v)/v > 1e-6 {
		t.Fatalf("ewm mean %v var %v, want %v %v", e.mean, e.variance(), mu, v)
	}
}

func TestKSPValue(t *testing.T) {
	// Q(λ) at reference points of the Kolmogorov distribution: the 5% and
	// 1% critical values are λ = 1.3581 and 1.6276.
	for _, c := range []struct{ lambda, want float64 }{{1.3581, 0.05}, {1.6276, 0.01}, {0.1, 1}} {
		if got := kolmogorovQ(c.lambda); math.Abs(got-c.want) > 1e-4 {
			t.Errorf("Q(%v) = %v, want %v", c.lambda, got, c.want)
		}
	}
	if got := pToZ(0.05); math.Abs(got-1.959964) > 1e-5 {
		t.Errorf("pToZ(0.05) = %v, want 1.96", got)
	}
}

// TestKSDistanceMatchesGonum holds the ensemble's KS statistic to gonum's
// on sorted windows of the detector's sizes and of others, with ties
// within and across the two samples.
func TestKSDistanceMatchesGonum(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 9))
	sizes := [][2]int{{ksProbe, ksRef}, {1, 1}, {1, 7}, {5, 3}, {16, 16}, {32, 128}}
	for trial := range 3000 {
		sz := sizes[trial%len(sizes)]
		scale := []float64{0.5, 4, 1e6}[trial%3] // coarse values tie often
		x, y := make([]float64, sz[0]), make([]float64, sz[1])
		shift := float64(rng.IntN(3)) - 1
		for i := range x {
			x[i] = math.Round(rng.NormFloat64()*scale)/scale + shift
		}
		for i := range y {
			y[i] = math.Round(rng.NormFloat64()*scale) / scale
		}
		sort.Float64s(x)
		sort.Float64s(y)
		want := stat.KolmogorovSmirnov(x, nil, y, nil)
		got := ksDistance(x, y)
		if sz[0]&(sz[0]-1) == 0 && sz[1]&(sz[1]-1) == 0 {
			if got != want {
				t.Fatalf("ksDistance(%v, %v) = %v, gonum %v", x, y, got, want)
			}
		} else if math.Abs(got-want) > 1e-12 {
			t.Fatalf("ksDistance(%v, %v) = %v, gonum %v", x, y, got, want)
		}
	}
	if got := ksDistance(nil, []float64{1}); got != 1 {
		t.Errorf("ksDistance(empty, one value) = %v, want 1", got)
	}
}

// TestBadInput feeds every detector NaN, infinities, repeated and
// backwards timestamps, huge values, constants and counter resets: no
// panic, no NaN, bands in order.
func TestBadInput(t *testing.T) {
	inputs := map[string][]Point{
		"empty-ish": {{T: 0, V: math.NaN()}},
		"one":       {{T: 0, V: 1}},
		"two":       {{T: 0, V: 1}, {T: 1, V: 2}},
		"constant":  constant(3000, 7),
		"zeros":     constant(3000, 0),
		"bad":       withBad(noisy(3000, minute, 1)),
		"huge":      scaled(noisy(3000, minute, 2), 1e300),
		"tiny":      scaled(noisy(3000, minute, 3), 1e-300),
		"steps":     stepChange(3000),
		"gaps":      withGaps(noisy(3000, minute, 4)),
		"counter":   counter(3000),
	}
	for _, name := range Names() {
		for in, pts := range inputs {
			for _, ctr := range []bool{false, true} {
				d := newDetector(t, name, Config{Counter: ctr})
				for i, p := range pts {
					checkResult(t, name+"/"+in, i, d.Update(p.T, p.V))
				}
			}
		}
	}
}

func constant(n int, v float64) []Point {
	pts := make([]Point, n)
	for i := range pts {
		pts[i] = Point{T: int64(i) * minute, V: v}
	}
	return pts
}

func withBad(pts []Point) []Point {
	bad := []float64{math.NaN(), math.Inf(1), math.Inf(-1)}
	out := slices.Clone(pts)
	for i := 0; i < len(out); i += 7 {
		out[i].V = bad[i%3]
	}
	for i := 5; i < len(out); i += 11 {
		out[i].T = out[i-1].T // duplicate
	}
	for i := 9; i < len(out); i += 13 {
		out[i].T = out[i-3].T // backwards
	}
	return out
}

func scaled(pts []Point, f float64) []Point {
	out := slices.Clone(pts)
	for i := range out {
		out[i].V *= f
	}
	return out
}

func stepChange(n int) []Point {
	pts := make([]Point, n)
	for i := range pts {
		v := 1.0
		if (i/300)%2 == 1 {
			v = 1e6
		}
		pts[i] = Point{T: int64(i) * minute, V: v}
	}
	return pts
}

func withGaps(pts []Point) []Point {
	out := slices.Clone(pts)
	for i := range out {
		out[i].T += int64(i/500) * 3 * int64(day/time.Millisecond)
	}
	return out
}

func counter(n int) []Point {
	pts := make([]Point, n)
	var c float64
	for i := range pts {
		c += float64(5 + i%3)
		if i%700 == 699 {
			c = 0 // restart
		}
		pts[i] = Point{T: int64(i) * 15000, V: c}
	}
	return pts
}

// TestCausal checks that feeding more samples never changes earlier
// results: every prefix scores the same as the start of the whole.
func TestCausal(t *testing.T) {
	pts := noisy(4000, 5*minute, 9)
	for i := 3000; i < 3050; i++ {
		pts[i].V += 8 // an incident, so scores are not all zero
	}
	for _, name := range Names() {
		full := Score(newDetector(t, name, Config{}), pts)
		for _, n := range []int{1, 33, 1000, 3010, 3999} {
			part := Score(newDetector(t, name, Config{}), pts[:n])
			if diff := cmp.Diff(full[:n], part); diff != "" {
				t.Fatalf("%s: prefix %d scores differ (-full +prefix):\n%s", name, n, diff)
			}
		}
		// Appending samples after a prefix, on the same detector, gives
		// the same results as the whole run.
		d := newDetector(t, name, Config{})
		Score(d, pts[:2000])
		rest := Score(d, pts[2000:])
		if diff := cmp.Diff(full[2000:], rest); diff != "" {
			t.Fatalf("%s: continued scores differ:\n%s", name, diff)
		}
	}
}

// TestBoundedState checks that, once warm, Update allocates nothing, so a
// detector's memory cannot grow with the length of the series.
func TestBoundedState(t *testing.T) {
	pts := noisy(40000, minute, 5)
	for _, name := range Names() {
		d := newDetector(t, name, Config{})
		Score(d, pts[:30000])
		i := 30000
		scored := 0
		allocs := testing.AllocsPerRun(5000, func() {
			if d.Update(pts[i].T, pts[i].V).Warm {
				scored++
			}
			i++
		})
		if scored < 5000 {
			t.Fatalf("%s: only %d of the measured updates were scored", name, scored)
		}
		if allocs != 0 {
			t.Errorf("%s: %v allocations per warm Update, want 0", name, allocs)
		}
	}
}

// peak is the highest score in res[from:to].
func peak(res []Result, from, to int) float64 {
	var p float64
	for _, r := range res[from:to] {
		p = max(p, r.Score)
	}
	return p
}

// alarms counts the scores >= 0.9 in res[from:to].
func alarms(res []Result, from, to int) int {
	n := 0
	for _, r := range res[from:to] {
		if r.Score >= AlertScore {
			n++
		}
	}
	return n
}

// TestDetectsIncidents gives each detector the kind of incident it is
// for, in a series long enough to have learnt what normal is, and checks
// that it alerts (score >= 0.9) soon after the incident starts.
func TestDetectsIncidents(t *testing.T) {
	const at = 3000
	shift := func(d float64) []Point {
		pts := noisy(3600, 5*minute, 11)
		for i := at; i < len(pts); i++ {
			pts[i].V += d
		}
		return pts
	}
	spike := noisy(3600, 5*minute, 12)
	spike[at].V += 15
	spread := noisy(3600, 5*minute, 13)
	for i := at; i < len(spread); i++ {
		spread[i].V = 10 + 6*(spread[i].V-10)
	}
	// A daily cycle whose peak fails to come one day: every value stays
	// within the usual range, only its time of day is wrong.
	daily := noisy(3600, 5*minute, 14)
	for i := range daily {
		daily[i].V = 10 + 0.3*(daily[i].V-10) + 8*math.Sin(2*math.Pi*float64(i)/288)
		if i >= at && i < at+144 && math.Sin(2*math.Pi*float64(i)/288) > 0 {
			daily[i].V = 10 + 0.3*(daily[i].V-10) - 8*math.Sin(2*math.Pi*float64(i)/288)
		}
	}
	cases := []struct {
		detector string
		incident string
		pts      []Point
		within   int
	}{
		{NameMAD, "level shift of 10σ", shift(10), 5},
		{NameMAD, "spike of 15σ", spike, 1},
		{NameSkyline, "level shift of 10σ", shift(10), 5},
		{NameSeasonal, "missing daily peak", daily, 100},
		{NameKS, "spread grows sixfold", spread, 24},
		{NameChangepoint, "level shift of 1σ", shift(1), 60},
		{NameEnsemble, "level shift of 10σ", shift(10), 2},
		{NameEnsemble, "spike of 15σ", spike, 1},
		{NameEnsemble, "spread grows sixfold", spread, 16},
		{NameEnsemble, "missing daily peak", daily, 100},
	}
	for _, c := range cases {
		res := Score(newDetector(t, c.detector, Config{}), c.pts)
		if p := peak(res, at, at+c.within); p < AlertScore {
			t.Errorf("%s, %s: peak score %.3f within %d samples, want >= %v", c.detector, c.incident, p, c.within, AlertScore)
		}
	}
}

// TestQuietOnNoise checks that no detector cries wolf on plain noise or a
// clean daily cycle once it has learnt them.
func TestQuietOnNoise(t *testing.T) {
	cycle := noisy(6000, 5*minute, 21)
	for i := range cycle {
		cycle[i].V += 10 * math.Sin(2*math.Pi*float64(i)/288)
	}
	for in, pts := range map[string][]Point{"noise": noisy(6000, 5*minute, 20), "daily cycle": cycle} {
		for _, name := range Names() {
			res := Score(newDetector(t, name, Config{}), pts)
			// At most one alarm per 500 samples after a learning period:
			// on noise, alarms come from new records, which keep
			// happening (about ln(n) of them in n samples).
			if n := alarms(res, 1000, len(res)); n > 10 {
				t.Errorf("%s on %s: %d alarms in 5000 samples, want at most 10", name, in, n)
			}
		}
	}
}

// TestTrend documents a known limit: a gauge that keeps growing keeps
// setting records, and the ensemble's level statistic alerts on records.
// The hold makes a steady climb one alert, but a noisy one (here 60σ over
// the series) re-alerts every few hundred samples; such series are better
// scored through their rate.
func TestTrend(t *testing.T) {
	trend := noisy(6000, 5*minute, 22)
	for i := range trend {
		trend[i].V += 0.01 * float64(i)
	}
	res := Score(NewEnsemble(Config{}), trend)
	if n := alarms(res, 1000, len(res)); n > 12 {
		t.Errorf("%d alarms in 5000 samples of a noisy trend, want at most 12", n)
	}
	steady := constant(6000, 0)
	for i := range steady {
		steady[i].V = float64(i)
	}
	res = Score(NewEnsemble(Config{}), steady)
	if n := alarms(res, 1000, len(res)); n > 1 {
		t.Errorf("%d alarms on a steady climb, want at most 1", n)
	}
}

// TestHold checks that one alert holds the following scores down, for as
// long as the incident goes on.
func TestHold(t *testing.T) {
	// Weight 2: any new record alerts, as the ensemble's level does.
	c := newCalibrator([]statSpec{{weight: 2, twoSided: true}})
	for i := range 1000 {
		c.score([]float64{float64(i % 10)}, true)
	}
	if s := c.score([]float64{1e6}, true); s < AlertScore {
		t.Fatalf("a record by far scored %v, want >= %v", s, AlertScore)
	}
	// Records keep coming for a while: each extends the hold.
	for i := range 3 * holdSamples {
		if s := c.score([]float64{2e6 * float64(i+1)}, true); s >= holdDamping {
			t.Fatalf("sample %d of the hold scored %v, want < %v", i, s, holdDamping)
		}
	}
	// Then the incident is over; after holdSamples quiet samples a new
	// record alerts again.
	for i := range holdSamples {
		if s := c.score([]float64{float64(i % 10)}, true); s >= holdDamping {
			t.Fatalf("quiet sample %d scored %v", i, s)
		}
	}
	if s := c.score([]float64{1e12}, true); s < AlertScore {
		t.Fatalf("after the hold, a new record scored %v, want >= %v", s, AlertScore)
	}
	// A fresh alarm during the hold that is more surprising than the
	// incident held is a new incident: not damped.
	c.score([]float64{5}, true)
	if s := c.score([]float64{1e18}, true); s < AlertScore {
		t.Fatalf("a larger incident during the hold scored %v, want >= %v", s, AlertScore)
	}
	// So is a fresh alarm after incidentGap quiet samples, however large;
	// closer to the last alarm, a smaller one is the same incident.
	for i := range incidentGap / 2 {
		c.score([]float64{float64(i % 10)}, true)
	}
	if s := c.score([]float64{2e12}, true); s >= holdDamping {
		t.Fatalf("a smaller alarm %d samples after the last scored %v, want < %v", incidentGap/2, s, holdDamping)
	}
	for i := range incidentGap + 1 {
		c.score([]float64{float64(i % 10)}, true)
	}
	if s := c.score([]float64{3e12}, true); s < AlertScore {
		t.Fatalf("an alarm %d quiet samples after the last scored %v, want >= %v", incidentGap+1, s, AlertScore)
	}
}

// TestHoldForgetsOldPeaks: an incident held long enough by echoes that
// keep alarming must not hide a new one for being less surprising than
// its own first alarm. Here the first alarm is a young series' kind (a
// surprise judged on a handful of samples, far beyond anything), smaller
// alarms recur every few samples for long after it, and then a clearly
// larger one comes: it is a new incident. A fresh alarm only a little
// more surprising than the echoes is still one of them.
func TestHoldForgetsOldPeaks(t *testing.T) {
	c := newCalibrator([]statSpec{{weight: 1, surprise: true}, {weight: 2, twoSided: true}})
	for i := range 1000 {
		c.score([]float64{0, float64(i % 10)}, true)
	}
	if s := c.score([]float64{300, 5}, true); s < AlertScore {
		t.Fatalf("a young series' kind of surprise scored %v, want >= %v", s, AlertScore)
	}
	// Echoes: a record by a little every few samples, each an alarm that
	// extends the hold (it would have ended after holdSamples otherwise).
	echo := 20.0
	for i := range 2 * holdSamples {
		x := float64(i % 10)
		if i%(incidentGap/2) == 0 {
			echo++
			x = echo
		}
		if s := c.score([]float64{0, x}, true); s >= holdDamping {
			t.Fatalf("sample %d of the echoes scored %v, want < %v (damped)", i, s, holdDamping)
		}
	}
	// Far beyond the echoes (a surprise of about 30), yet less than the
	// first alarm's 300.
	c.score([]float64{0, 5}, true)
	if s := c.score([]float64{0, echo + 200}, true); s < AlertScore {
		t.Fatalf("an alarm far larger than the echoes, %d samples after the last one, scored %v, want >= %v", incidentGap/2, s, AlertScore)
	}
}

func TestStepInference(t *testing.T) {
	f := newFront(Config{}, newMAD())
	for i := range 20 {
		f.Update(int64(i)*15000, 1)
	}
	if f.step != 15000 {
		t.Errorf("step = %d ms, want 15000", f.step)
	}
}

func TestCounterRate(t *testing.T) {
	var got []float64
	f := newFront(Config{Counter: true}, modelFunc(func(s sample, _ []float64) Result {
		got = append(got, s.v)
		return Result{Expected: s.v, Lower: s.v, Upper: s.v}
	}))
	// 10/s, then a reset to 5 after 10 s: rate 0.5/s, then 10/s again;
	// a NaN sample and a stale one (not newer) are not scored.
	var values []float64
	for _, p := range []Point{{0, 100}, {10000, 200}, {20000, 300}, {25000, math.NaN()}, {30000, 5}, {30000, 7}, {40000, 105}} {
		values = append(values, f.Update(p.T, p.V).Value)
	}
	if diff := cmp.Diff([]float64{10, 10, 0.5, 10}, got); diff != "" {
		t.Errorf("rates (-want +got):\n%s", diff)
	}
	// Result.Value is what was scored, NaN where nothing was (the first
	// sample has no rate yet).
	nan := math.NaN()
	if diff := cmp.Diff([]float64{nan, 10, 10, nan, 0.5, nan, 10}, values, cmpopts.EquateNaNs()); diff != "" {
		t.Errorf("Result.Value (-want +got):\n%s", diff)
	}
	g := newFront(Config{}, modelFunc(func(s sample, _ []float64) Result { return Result{} }))
	if v := g.Update(0, 3.5).Value; v != 3.5 {
		t.Errorf("gauge: Result.Value = %v, want the sample's 3.5", v)
	}
}

type modelFunc func(sample, []float64) Result

func (m modelFunc) update(s sample, st []float64) Result { return m(s, st) }
func (m modelFunc) specs() []statSpec                    { return nil }

// TestPrometheusSteps runs the ensemble on series scraped every 15 s and
// every minute, and on a counter: the same incident is found at every
// step, and plain noise stays quiet.
func TestPrometheusSteps(t *testing.T) {
	const at = 5000
	for _, step := range []int64{15000, minute} {
		pts := noisy(6000, step, 31)
		quiet := Score(NewEnsemble(Config{}), pts)
		if n := alarms(quiet, 1000, len(quiet)); n > 10 {
			t.Errorf("step %d ms: %d alarms on 5000 samples of noise, want at most 10", step, n)
		}
		for i := at; i < len(pts); i++ {
			pts[i].V += 6
		}
		res := Score(NewEnsemble(Config{}), pts)
		if p := peak(res, at, at+3); p < AlertScore {
			t.Errorf("step %d ms: peak %.3f after a 6σ shift, want >= %v", step, p, AlertScore)
		}
	}
	// A counter growing by about 100/s whose rate doubles, with resets
	// along the way that must not alert.
	rng := rand.New(rand.NewPCG(32, 1))
	var c float64
	pts := make([]Point, 6000)
	for i := range pts {
		rate := 100 + 5*rng.NormFloat64()
		if i >= at {
			rate *= 2
		}
		c += rate * 15
		if i%1500 == 700 {
			c = 0
		}
		pts[i] = Point{T: int64(i) * 15000, V: c}
	}
	res := Score(NewEnsemble(Config{Counter: true}), pts)
	if n := alarms(res, 1000, at); n > 5 {
		t.Errorf("counter: %d alarms before the change (resets included), want at most 5", n)
	}
	if p := peak(res, at, at+3); p < AlertScore {
		t.Errorf("counter: peak %.3f after the rate doubled, want >= %v", p, AlertScore)
	}
	if r := res[at-1]; math.Abs(r.Expected-100) > 5 {
		t.Errorf("counter: expected rate %v before the change, want about 100/s", r.Expected)
	}
}

// BenchmarkUpdate measures one warm Update of each detector.
func BenchmarkUpdate(b *testing.B) {
	pts := noisy(20000, 15000, 41)
	for _, name := range Names() {
		b.Run(name, func(b *testing.B) {
			d := newDetector(b, name, Config{})
			Score(d, pts[:10000])
			b.ReportAllocs()
			t0 := pts[9999].T
			i := 1
			for b.Loop() {
				d.Update(t0+int64(i)*15000, pts[10000+i%10000].V)
				i++
			}
		})
	}
}

// BenchmarkBackfill measures what scoring a series the detector has not
// seen costs per sample: a fresh detector over 6 h at 15 s, as the
// detector's backfill and the datasource's on-demand scoring run it (the
// warm-up paths included), for a gauge and for a counter.
func BenchmarkBackfill(b *testing.B) {
	const n = 1440
	gauge := noisy(n, 15000, 43)
	counter := make([]Point, n)
	total := 0.0
	for i, p := range noisy(n, 15000, 44) {
		total += max(p.V, 0)
		counter[i] = Point{T: p.T, V: total}
	}
	for _, name := range Names() {
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				Score(newDetector(b, name, Config{}), gauge)
				Score(newDetector(b, name, Config{Counter: true}), counter)
			}
			b.ReportMetric(b.Elapsed().Seconds()*1e9/float64(b.N*2*n), "ns/sample")
		})
	}
}

// TestTraceScores checks that re-weighting a trace gives exactly what an
// ensemble with those weights scores, ignored samples and counters
// included, for the default weights and for others.
func TestTraceScores(t *testing.T) {
	pts := noisy(3000, minute, 51)
	for i := 2000; i < 2100; i++ {
		pts[i].V += 8
	}
	pts[100].V = math.NaN()
	pts[200].T = pts[199].T // out of order: ignored
	other := DefaultWeights()
	other[StatLevel], other[StatKS] = 0.5, 2
	for _, cfg := range []Config{{}, {Counter: true}} {
		tr := NewTrace(cfg, pts)
		for _, w := range []Weights{DefaultWeights(), other} {
			c := cfg
			c.Weights = &w
			var want []float64
			for _, r := range Score(NewEnsemble(c), pts) {
				want = append(want, r.Score)
			}
			got := tr.Scores(w)
			if diff := cmp.Diff(want, got); diff != "" {
				t.Fatalf("counter=%v weights %v: trace scores differ (-ensemble +trace):\n%s", cfg.Counter, w, diff)
			}
			if peak := slices.Max(got); peak < AlertScore {
				t.Fatalf("weights %v: no alarm on an 8σ shift (peak %v): the test would prove nothing", w, peak)
			}
		}
	}
}

// at15s returns n samples at 15 s steps of a level-100 series with noise
// of standard deviation 5 plus shape(i), deterministic for seed.
func at15s(n int, seed uint64, shape func(i int) float64) []Point {
	rng := rand.New(rand.NewPCG(seed, 3))
	pts := make([]Point, n)
	for i := range pts {
		pts[i] = Point{T: 1_700_000_000_000 + int64(i)*15000, V: 100 + 5*rng.NormFloat64() + shape(i)}
	}
	return pts
}

// dailyCycle is a daily cycle of amplitude 50 (10σ) at 15 s steps.
func dailyCycle(i int) float64 { return 50 * math.Sin(2*math.Pi*float64(i)/5760) }

// firstAlarm is the index of the first alarm in res[from:to], or -1.
func firstAlarm(res []Result, from, to int) int {
	for i := from; i < to && i < len(res); i++ {
		if res[i].Score >= AlertScore {
			return i
		}
	}
	return -1
}

// TestLiveIncidents runs the ensemble through incidents of live series at
// Prometheus's 15 s step in the situations where an alarm is easy to
// miss: while an earlier alarm holds, during a series' first day (a daily
// cycle not yet learnt) or on a trend, right after a series appears, and
// a second change shortly after a first. Each must alarm within 3 samples.
func TestLiveIncidents(t *testing.T) {
	flat := func(int) float64 { return 0 }
	trend := func(i int) float64 { return 0.02 * float64(i) }
	type incident struct {
		name  string
		at    int
		apply func(pts []Point, at int)
	}
	spike := func(d float64) func([]Point, int) {
		return func(pts []Point, at int) { pts[at].V += d }
	}
	shift := func(d float64) func([]Point, int) {
		return func(pts []Point, at int) {
			for i := at; i < len(pts); i++ {
				pts[i].V += d
			}
		}
	}
	stuck := func(pts []Point, at int) {
		for i := at; i < len(pts); i++ {
			pts[i].V = pts[at-1].V
		}
	}
	zero := func(pts []Point, at int) {
		for i := at; i < len(pts); i++ {
			pts[i].V = 0
		}
	}
	cases := []struct {
		name   string
		n      int
		shape  func(int) float64
		before []incident // earlier incidents, which must alarm too
		want   incident
	}{
		{"larger spike during a hold", 6000, flat, []incident{{"8σ spike", 5000, spike(40)}}, incident{"20σ spike", 5030, spike(100)}},
		{"second, larger level shift", 6000, flat, []incident{{"6σ shift", 5000, shift(30)}}, incident{"10σ shift", 5060, shift(50)}},
		{"first day: level shift", 2000, dailyCycle, nil, incident{"6σ shift", 1500, shift(30)}},
		{"first day: spike", 2000, dailyCycle, nil, incident{"8σ spike", 1500, spike(40)}},
		{"first day: drop to zero", 2000, dailyCycle, nil, incident{"drop to zero", 1500, zero}},
		{"trend: spike", 6000, trend, nil, incident{"8σ spike", 5000, spike(40)}},
		{"trend: drop to zero", 6000, trend, nil, incident{"drop to zero", 5000, zero}},
		{"stuck value", 6000, flat, nil, incident{"stuck value", 5000, stuck}},
		{"first day: stuck value", 2000, dailyCycle, nil, incident{"stuck value", 1500, stuck}},
		{"young: spike", 40, flat, nil, incident{"8σ spike", 30, spike(40)}},
		{"young: level shift", 40, flat, nil, incident{"8σ shift", 28, shift(40)}},
	}
	// Each case runs on seeds series; at least 80% of its incidents must
	// alarm in time (a shift's first sample carries one sample's noise: a
	// 6σ shift drawn with -2σ of noise is a 4σ surprise), and no series
	// may alarm before its first incident.
	const seeds = 20
	for _, c := range cases {
		missed := map[string]int{}
		for seed := range uint64(seeds) {
			pts := at15s(c.n, 100+seed, c.shape)
			all := append(slices.Clone(c.before), c.want)
			for _, in := range all {
				in.apply(pts, in.at)
			}
			res := Score(NewEnsemble(Config{}), pts)
			for _, in := range all {
				if i := firstAlarm(res, in.at, in.at+3); i < 0 {
					missed[in.name]++
				}
			}
			if i := firstAlarm(res, 0, all[0].at); i >= 0 {
				t.Errorf("%s, seed %d: false alarm at %d before the incident", c.name, seed, i)
			}
		}
		for name, n := range missed {
			if n > seeds/5 {
				t.Errorf("%s: the %s was not alarmed on within 3 samples in %d of %d series, want at most %d", c.name, name, n, seeds, seeds/5)
			}
		}
	}
}

// TestKSDeviates: the KS statistic's table of deviates gives what the
// p-value's series gives for the same windows.
func TestKSDeviates(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for trial := range 2000 {
		x, y := make([]float64, ksProbe), make([]float64, ksRef)
		shift := float64(trial%7) / 3
		for i := range x {
			x[i] = math.Round(4*(rng.NormFloat64()+shift)) / 4
		}
		for i := range y {
			y[i] = math.Round(4*rng.NormFloat64()) / 4
		}
		slices.Sort(x)
		slices.Sort(y)
		want := pToZ(ksPValue(ksDistance(x, y), ksProbe, ksRef))
		if got := ksDeviates()[ksCount(x, y)]; got != want {
			t.Fatalf("trial %d: table %v, series %v", trial, got, want)
		}
	}
}

// TestKSRanksMatchMerge: the statistic the KS part keeps up to date from
// its ranks is, at every sample, the one a merge of both windows' sorted
// values gives, on a quantised series full of ties and with a change of
// level.
func TestKSRanksMatchMerge(t *testing.T) {
	rng := rand.New(rand.NewPCG(8, 9))
	d := newKS()
	checked := 0
	for i := range 3000 {
		x := math.Round(2 * rng.NormFloat64())
		if i >= 1500 {
			x += 3
		}
		got := d.stat(x)
		if !d.ref.full() {
			continue
		}
		probe := slices.Sorted(slices.Values(d.probe.ring))
		ref := slices.Sorted(slices.Values(d.ref.ring))
		if want := ksDeviates()[ksCount(probe, ref)]; got != want {
			t.Fatalf("sample %d: statistic %v from the ranks, %v from a merge", i, got, want)
		}
		checked++
	}
	if checked < 2800 {
		t.Fatalf("only %d samples checked", checked)
	}
}

// TestSearchFloats: the windows' lower bound is the standard library's,
// for every length up to 70, ties and values outside the range included.
func TestSearchFloats(t *testing.T) {
	rng := rand.New(rand.NewPCG(10, 11))
	for n := range 70 {
		s := make([]float64, n)
		for i := range s {
			s[i] = float64(rng.IntN(n/2 + 1))
		}
		slices.Sort(s)
		for x := -1.0; x <= float64(n/2+1); x += 0.5 {
			want, _ := slices.BinarySearch(s, x)
			if got := searchFloats(s, x); got != want {
				t.Fatalf("searchFloats(%v, %v) = %d, want %d", s, x, got, want)
			}
		}
	}
}

// TestSeasonalLearnsAfterAConstantStart: a series that is constant for
// longer than the seasonal model takes to settle, then varies, gets the
// model's expectation and scores: its error was not held at 0 by the
// clipping that keeps one incident from inflating it.
func TestSeasonalLearnsAfterAConstantStart(t *testing.T) {
	pts := noisy(6000, minute, 61)
	for i := range 300 {
		pts[i].V = 10
	}
	pts[5000].V += 12
	res := Score(newDetector(t, NameSeasonal, Config{}), pts)
	if r := res[2000]; !r.Warm {
		t.Fatalf("sample 2000, 1700 samples after the series began to vary: not warm (%+v)", r)
	}
	if p := peak(res, 5000, 5001); p < AlertScore {
		t.Errorf("a 12σ spike scores %.3f, want >= %v", p, AlertScore)
	}
}

// TestRunMustBeTwiceTheLongest: on a series whose values repeat now and
// then (runs of 2, and one of 3), a run one sample longer than any before
// is not judged at all; a value stuck for twice as long as any run before
// is an incident.
func TestRunMustBeTwiceTheLongest(t *testing.T) {
	pts := noisy(6000, minute, 71)
	for i := 100; i < 4000; i += 50 {
		pts[i+1].V = pts[i].V
	}
	pts[3001].V, pts[3002].V = pts[3000].V, pts[3000].V
	// A run of 4 at 4500, a stuck value from 5500 on.
	for k := 1; k < 4; k++ {
		pts[4500+k].V = pts[4500].V
	}
	for i := 5501; i < 5600; i++ {
		pts[i].V = pts[5500].V
	}
	tr := NewTrace(Config{}, pts)
	for i := 4500; i < 4504; i++ {
		if u := tr.u[i][StatRun]; u != 0 {
			t.Errorf("sample %d, run of %d where the longest was 3: run surprise %.2f, want 0", i, i-4499, u)
		}
	}
	res := Score(NewEnsemble(Config{}), pts)
	if p := peak(res, 5500, 5510); p < AlertScore {
		t.Errorf("a value stuck from sample 5500: peak %.3f in its first 10 samples, want >= %v", p, AlertScore)
	}
}
