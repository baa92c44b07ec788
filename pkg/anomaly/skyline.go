package anomaly

import (
	"math"
	"time"

	"gonum.org/v1/gonum/stat"
	"gonum.org/v1/gonum/stat/distuv"
)

// Skyline's parameters, from etsy/skyline's settings.py and earthgecko
// Skyline's NAB detector.
const (
	// skylineDuration is Skyline's FULL_DURATION: the algorithms look at
	// the last day.
	skylineDuration = 24 * time.Hour
	// skylineMaxSamples bounds the window for fast series (a day at one
	// sample a minute); a series scraped more often sees a shorter span.
	skylineMaxSamples = 1440
	// skylineMinSamples is the window for series with a step longer than
	// a day's worth would give.
	skylineMinSamples = 64
	// skylineWarm is how many samples Skyline needs before it votes.
	skylineWarm = 32
	// skylineExpiration is earthgecko Skyline's EXPIRATION_TIME for NAB:
	// after an anomaly the series is not analysed again for 12 hours.
	skylineExpiration = 12 * time.Hour
	// skylineSpare is how many of the voting algorithms may disagree and
	// still make a consensus: earthgecko runs 7 algorithms with
	// CONSENSUS=5, or 9 with 7.
	skylineSpare = 2
	// skylineMinVoters is how many algorithms must vote (not abstain) for
	// a consensus to count.
	skylineMinVoters = 5
)

// skyline is the Skyline ensemble (etsy/skyline, Abe Stanway 2013, and its
// maintained fork earthgecko/skyline by Gary Wilson), rebuilt from its
// published description in streaming, bounded form. Nine algorithms look
// at the last day of the series (at most skylineMaxSamples samples); each
// either triggers, does not, or abstains when its statistic is undefined
// (a zero deviation, too few samples). The series is anomalous when all
// but skylineSpare of the algorithms that voted triggered, and at least
// skylineMinVoters voted. tail is the mean of the last three values
// (Skyline's tail_avg).
//
//   - median_absolute_deviation: |x - median| / MAD > 6; abstains when
//     MAD = 0.
//   - first_hour_average: |tail - μ₁| > 3σ₁ where μ₁, σ₁ are the mean and
//     standard deviation of the oldest hour of the day's window (the oldest
//     1/24 of it); abstains until the window spans a day.
//   - stddev_from_average: |tail - μ| > 3σ over the window; abstains when
//     σ = 0.
//   - stddev_from_moving_average: |x - EWMA| > 3·EWMSD with pandas'
//     ewm(com=50, adjust=True) weights wᵢ = (1-α)ⁱ, α = 1/51, and the
//     bias-corrected weighted variance
//     Σwᵢ(xᵢ-μ)² / (Σwᵢ - Σwᵢ²/Σwᵢ).
//   - mean_subtraction_cumulation: |x - μ'| > 3σ' where μ', σ' are the
//     mean and deviation of the window without its last value.
//   - least_squares: fit y = m·t + c over the window; with residuals eᵢ,
//     |mean(e of the last three)| > 3·std(e); abstains when std(e) = 0.
//   - histogram_bins: 15 equal bins between the window's min and max; the
//     tail falls in a bin holding at most 1/72 of the window (Skyline's 20
//     of a day at one sample a minute).
//   - grubbs: |tail - μ|/σ (σ with n in the denominator) exceeds Grubbs'
//     critical value ((n-1)/√n)·√(t²/(n-2+t²)), t the upper α/(2n)
//     quantile of Student's t with n-2 degrees of freedom, α = 0.05
//     (Grubbs 1969).
//   - ks_test: the two-sample Kolmogorov–Smirnov test between the last ten
//     minutes and the fifty minutes before: p < 0.05 and D > 0.5. It
//     abstains with fewer than 20 samples on either side, as Skyline does.
//     Skyline's extra Augmented Dickey–Fuller stationarity check on the
//     reference is not done.
//
// Like earthgecko Skyline, after a consensus the series is not analysed for
// skylineExpiration (the statistic is undefined meanwhile), which removes
// the repeated alerts of one incident. The statistic is the fraction of
// voters that triggered, plus 1 on a consensus, so that ranking by it
// puts consensus first and near-consensus before quiet samples.
type skyline struct {
	w       *window
	pending []float64 // samples seen before the step was known
	ew      ewm
	expires int64 // no analysis before this time (Unix ms)
	gCrit   float64
	gN      int // n for which gCrit was computed
	ksRef   []float64
	ksProbe []float64
}

func newSkyline() *skyline { return &skyline{ew: newEWM(1.0 / 51)} }

func (d *skyline) init(step int64) {
	n := skylineMinSamples
	if step > 0 {
		n = int(skylineDuration.Milliseconds() / step)
	}
	n = min(max(n, skylineMinSamples), skylineMaxSamples)
	d.w = newWindow(n)
	for _, v := range d.pending {
		d.w.push(v)
	}
	d.pending = nil
}

func (d *skyline) specs() []statSpec { return []statSpec{{weight: statWeight}} }

func (d *skyline) update(s sample, st []float64) Result {
	if d.w == nil {
		if s.step <= 0 {
			d.pending = append(d.pending, s.v)
			d.ew.push(s.v)
			return Result{Expected: s.v, Lower: s.v, Upper: s.v}
		}
		d.init(s.step)
	}
	d.w.push(s.v)
	d.ew.push(s.v)
	w := d.w
	mu, sd := w.mean(), w.std()
	r := Result{Expected: mu, Lower: mu - 3*sd, Upper: mu + 3*sd}
	if w.len() < skylineWarm {
		return r
	}
	r.Warm = true
	if s.t < d.expires {
		return r
	}
	votes, triggered := 0, 0
	vote := func(trig, ok bool) {
		if ok {
			votes++
			if trig {
				triggered++
			}
		}
	}
	tail := (w.last(0) + w.last(1) + w.last(2)) / 3
	vote(d.medianAbsoluteDeviation(s.v))
	vote(d.firstHourAverage(tail, s.step))
	vote(abs(tail-mu) > 3*sd, sd > 0)
	vote(d.ew.deviates(s.v, 3))
	vote(d.meanSubtractionCumulation(s.v))
	vote(d.leastSquares())
	vote(d.histogramBins(tail), true)
	vote(d.grubbs(tail))
	// The KS test is the costly one: run it only when it can decide the
	// consensus, as earthgecko Skyline stops once consensus is settled.
	need := max(skylineMinVoters, votes+1-skylineSpare)
	if triggered+1 >= need || triggered >= need {
		vote(d.ksTest(s.t, s.step))
	}
	if votes == 0 {
		return r
	}
	st[0] = float64(triggered) / float64(votes)
	if votes >= skylineMinVoters && triggered >= votes-skylineSpare {
		st[0]++
		d.expires = s.t + skylineExpiration.Milliseconds()
	}
	return r
}

func abs(x float64) float64 { return math.Abs(x) }

func (d *skyline) medianAbsoluteDeviation(x float64) (bool, bool) {
	m := d.w.median()
	dev := d.w.mad(m)
	if dev == 0 {
		return false, false
	}
	return abs(x-m)/dev > 6, true
}

func (d *skyline) firstHourAverage(tail float64, step int64) (bool, bool) {
	if step <= 0 || int64(d.w.len())*step < (skylineDuration-time.Hour).Milliseconds() {
		return false, false
	}
	k := max(d.w.len()/24, 2)
	var sum, sumSq float64
	for i := range k {
		v := d.w.at(i)
		sum += v
		sumSq += v * v
	}
	n := float64(k)
	mu := sum / n
	v := (sumSq - sum*sum/n) / (n - 1)
	if !(v > 0) {
		return false, false
	}
	return abs(tail-mu) > 3*math.Sqrt(v), true
}

func (d *skyline) meanSubtractionCumulation(x float64) (bool, bool) {
	n := float64(d.w.len() - 1)
	if n < 2 {
		return false, false
	}
	sum, sumSq := d.w.sum-x, d.w.sumSq-x*x
	mu := sum / n
	v := (sumSq - sum*sum/n) / (n - 1)
	if !(v > 0) {
		return false, false
	}
	return abs(x-mu) > 3*math.Sqrt(v), true
}

// leastSquares fits the window against its sample index (the samples are
// regularly spaced, so the index is time in steps).
func (d *skyline) leastSquares() (bool, bool) {
	n := d.w.len()
	if n < 3 {
		return false, false
	}
	// Center x at the window's middle so the sums stay well conditioned.
	var sx, sy, sxx, sxy, syy float64
	mid := float64(n-1) / 2
	for i := range n {
		x := float64(i) - mid
		y := d.w.at(i)
		sx += x
		sy += y
		sxx += x * x
		sxy += x * y
		syy += y * y
	}
	fn := float64(n)
	slope := (sxy - sx*sy/fn) / (sxx - sx*sx/fn)
	icpt := (sy - slope*sx) / fn
	sse := syy - icpt*sy - slope*sxy
	if !(sse > 0) {
		return false, false
	}
	sd := math.Sqrt(sse / fn)
	var t float64
	for j := range 3 {
		i := n - 1 - j
		t += d.w.at(i) - (slope*(float64(i)-mid) + icpt)
	}
	t /= 3
	return abs(t) > 3*sd, true
}

func (d *skyline) histogramBins(tail float64) bool {
	s := d.w.sorted
	lo, hi := s[0], s[len(s)-1]
	if hi <= lo {
		return tail != lo
	}
	if tail < lo || tail > hi {
		return true
	}
	const bins = 15
	width := (hi - lo) / bins
	b := min(int((tail-lo)/width), bins-1)
	a, z := lo+float64(b)*width, lo+float64(b+1)*width
	var count int
	if b == bins-1 {
		count = len(s) - d.w.countBelow(a)
	} else {
		count = d.w.countBelow(z) - d.w.countBelow(a)
	}
	return float64(count) <= float64(len(s))/72
}

func (d *skyline) grubbs(tail float64) (bool, bool) {
	n := d.w.len()
	fn := float64(n)
	mu := d.w.mean()
	v := d.w.sumSq/fn - mu*mu
	if !(v > 0) || n < 3 {
		return false, false
	}
	if d.gN != n {
		d.gN = n
		t := distuv.StudentsT{Mu: 0, Sigma: 1, Nu: fn - 2}.Quantile(1 - 0.05/(2*fn))
		d.gCrit = (fn - 1) / math.Sqrt(fn) * math.Sqrt(t*t/(fn-2+t*t))
	}
	return abs(tail-mu)/math.Sqrt(v) > d.gCrit, true
}

func (d *skyline) ksTest(t, step int64) (bool, bool) {
	if step <= 0 {
		return false, false
	}
	probeN := int((10 * time.Minute).Milliseconds() / step)
	refN := int((50 * time.Minute).Milliseconds() / step)
	if probeN < 20 || refN < 20 || d.w.len() < probeN+refN {
		return false, false
	}
	d.ksProbe = d.ksProbe[:0]
	d.ksRef = d.ksRef[:0]
	n := d.w.len()
	for i := n - probeN - refN; i < n-probeN; i++ {
		d.ksRef = append(d.ksRef, d.w.at(i))
	}
	for i := n - probeN; i < n; i++ {
		d.ksProbe = append(d.ksProbe, d.w.at(i))
	}
	sortFloats(d.ksRef)
	sortFloats(d.ksProbe)
	dStat := stat.KolmogorovSmirnov(d.ksRef, nil, d.ksProbe, nil)
	return ksPValue(dStat, len(d.ksRef), len(d.ksProbe)) < 0.05 && dStat > 0.5, true
}
