package anomaly

import (
	"fmt"
	"math"

	"gonum.org/v1/gonum/stat/distuv"
)

// Ensemble is Telltale's detector: it runs the robust baseline, the
// seasonal model, the distribution-shift test and the change-point
// detector on the series, adds multi-scale views of its level, and turns
// all of them into one score with the calibrator, with the expected value
// and band of the best-fitting baseline. Create one per series with
// NewEnsemble.
type Ensemble struct {
	f *front
}

// NewEnsemble returns an Ensemble for one series.
func NewEnsemble(cfg Config) *Ensemble {
	return &Ensemble{f: newFront(cfg, newCombined(cfg.weights()))}
}

// Update implements Detector.
func (e *Ensemble) Update(t int64, v float64) Result { return e.f.Update(t, v) }

// Stat names one of the ensemble's statistics, in the order Weights
// holds them.
type Stat int

// The ensemble's statistics.
const (
	StatLevel   Stat = iota // x itself
	StatSpike16             // x - median of the previous 16 samples
	StatSpike64             // x - median of the previous 64 samples
	StatShift               // mean of the last 4 samples - mean of the last 64
	StatDaily               // residual of the daily seasonal model
	StatKS                  // KS test deviate between recent and older samples
	StatYoung               // while the series is young: surprise of x against all samples so far
	StatRun                 // how many samples in a row had exactly this value
	NumStats                // how many there are
)

var statNames = [NumStats]string{"level", "spike16", "spike64", "shift", "daily", "ks", "young", "run"}

// String returns the statistic's short name.
func (s Stat) String() string {
	if s < 0 || s >= NumStats {
		return fmt.Sprintf("Stat(%d)", int(s))
	}
	return statNames[s]
}

// Weights weighs each of the ensemble's statistics, indexed by Stat: a
// statistic's surprise is multiplied by its weight before the ensemble
// takes the largest. They are the ensemble's only constants fitted to data
// (see DefaultWeights); everything else follows from a stated principle.
type Weights [NumStats]float64

// DefaultWeights returns the weights the ensemble uses when Config.Weights
// is nil: 1 for every statistic. No statistic is preferred, and a score
// of AlertScore means the same for each: a value about 10⁻⁵ rare for this
// series. These are not fitted to any data set; `go tool mage nab` shows
// what fitting them to NAB would gain there, cross-validated, and what it
// would cost on healthy series.
func DefaultWeights() Weights { return EqualWeights(1) }

// EqualWeights returns weights that are all k.
func EqualWeights(k float64) Weights {
	var w Weights
	for i := range w {
		w[i] = k
	}
	return w
}

// weights is cfg.Weights, or the defaults.
func (cfg Config) weights() Weights {
	if cfg.Weights != nil {
		return *cfg.Weights
	}
	return DefaultWeights()
}

// Trace is what the ensemble's models said of each sample of a series
// before weighting: enough to score the series again under any Weights
// without running the models, which is what makes tuning weights cheap.
type Trace struct {
	u    [][NumStats]float64 // unweighted surprises
	warm []bool
	fed  []bool // false for samples the ensemble ignored
}

// NewTrace runs the ensemble's models over pts (cfg.Weights is not used).
func NewTrace(cfg Config, pts []Point) *Trace {
	f := newFront(cfg, newCombined(Weights{}))
	tr := &Trace{u: make([][NumStats]float64, len(pts)), warm: make([]bool, len(pts)), fed: make([]bool, len(pts))}
	for i, p := range pts {
		n := f.fed
		r := f.Update(p.T, p.V)
		if f.fed != n {
			tr.fed[i], tr.warm[i] = true, r.Warm
			copy(tr.u[i][:], f.cal.u)
		}
	}
	return tr
}

// Scores returns the score of every sample of the trace under weights w:
// exactly what an Ensemble with Config.Weights = &w returns.
func (tr *Trace) Scores(w Weights) []float64 {
	c := newCalibrator(newCombined(w).specs())
	out := make([]float64, len(tr.u))
	for i := range tr.u {
		if tr.fed[i] {
			out[i] = c.judge(tr.u[i][:], tr.warm[i])
		}
	}
	return out
}

// combined is the ensemble's model. Its statistics:
//
//	level    x                                      two-sided
//	spike16  x - median(x[t-16..t-1])               two-sided
//	spike64  x - median(x[t-64..t-1])               two-sided
//	shift    mean(x[t-3..t]) - mean(x[t-63..t])     two-sided
//	daily    x - (L₁ + D(t)) of the seasonal model  two-sided
//	ks       KS deviate z of the ks model
//	young    surprise of x against the first samples (see young)
//	run      samples in a row with exactly the value of x
//
// Each statistic is judged by its rarity for this series (see calibrator):
// the level catches values never seen before, the spikes short excursions
// from the recent level at two horizons, the shift a sustained move, the
// daily residual values wrong for the time of day, KS a change of
// distribution, young a value far from the few samples of a series that
// has just appeared, and run a value that stopped changing (a stuck gauge,
// a counter that stopped), judged against the runs the series has had.
// Every statistic has the same weight (DefaultWeights). The shift
// statistic only starts after 256 samples, so that its history is not
// seeded with the start-up transients of the averages. Two models are not
// among the parts because they added nothing the others did not see: the
// Skyline ensemble's consensus, at several times their cost, and the
// changepoint model's CUSUM, a fifth of the ensemble's cost (with it and
// without it the NAB kit's scores and the generated benchmark's recall of
// every kind were the same).
type combined struct {
	mad      *mad
	seasonal *seasonal
	ks       *ks

	med64 *window
	sum4  runningMean
	sub   [1]float64
	n     int
	prev  float64 // the last value
	run   int     // how many samples in a row had it
	w     Weights
}

// ensembleMADWindow is the robust baseline's window in the ensemble. The
// baseline stands in only until the seasonal model has settled (its first
// 1/errAlpha samples) or while all the seasonal model's errors are 0,
// which only a series that has long been constant gets, so the window
// needs to hold no more than those first samples, or the last of a
// constant stretch: a quarter of the standalone detector's.
const ensembleMADWindow = 128

func newCombined(w Weights) *combined {
	return &combined{
		w:   w,
		mad: &mad{w: newWindow(ensembleMADWindow)}, seasonal: newSeasonal(), ks: newKS(),
		med64: newWindow(64),
		sum4:  newRunningMean(4),
	}
}

func (c *combined) specs() []statSpec {
	return []statSpec{
		StatLevel:   {weight: c.w[StatLevel], twoSided: true},
		StatSpike16: {weight: c.w[StatSpike16], twoSided: true},
		StatSpike64: {weight: c.w[StatSpike64], twoSided: true},
		StatShift:   {weight: c.w[StatShift], twoSided: true},
		StatDaily:   {weight: c.w[StatDaily], twoSided: true},
		StatKS:      {weight: c.w[StatKS]},
		StatYoung:   {weight: c.w[StatYoung], surprise: true},
		StatRun:     {weight: c.w[StatRun], unit: 1 / math.Ln10, run: true},
	}
}

func (c *combined) update(s sample, st []float64) Result {
	x := s.v
	rz := c.seasonal.update(s, c.sub[:])
	if c.seasonal.dailyOK {
		st[StatDaily] = c.seasonal.dailyResid
	}
	// The robust baseline's expectation and band stand in until the
	// seasonal model is warm (or while its errors are all 0, on a constant
	// series); otherwise it only needs to keep its window, unsorted.
	var rm Result
	if rz.Warm {
		c.mad.w.keepSorted(false)
		c.mad.w.push(x)
	} else {
		c.mad.w.keepSorted(true)
		if n := c.mad.w.len(); n >= youngStart && n < madWarm+tailWarm {
			rm = c.young(x, st)
		}
		c.sub[0] = math.NaN()
		if r := c.mad.update(s, c.sub[:]); r.Warm {
			rm = r
		}
	}
	// The KS part's probe holds the last ksProbe samples, sorted: the
	// short spike statistic's median is theirs, read before x joins them.
	if c.ks.nRank >= ksProbe/2 {
		st[StatSpike16] = x - c.ks.median()
	}
	st[StatKS] = c.ks.stat(x)

	st[StatLevel] = x
	if c.n > 0 {
		if x == c.prev {
			c.run++
		} else {
			c.run = 1
		}
		st[StatRun] = float64(c.run)
	}
	c.prev = x
	if c.med64.len() >= 32 {
		st[StatSpike64] = x - c.med64.median()
	}
	c.med64.push(x)
	c.sum4.push(x)
	c.n++
	// The window of the long spike statistic keeps the running sum of
	// the same 64 samples.
	if c.med64.full() && c.n >= 256 {
		st[StatShift] = c.sum4.mean() - c.med64.mean()
	}
	if rz.Warm {
		return rz
	}
	return rm
}

const (
	// youngStart is how many samples a series needs before it is scored.
	youngStart = 10
)

// young scores x while the series is too young for the other statistics
// to know their own tails: x against every sample so far (the robust
// baseline's window, not yet full), as a robust z,
//
//	z = (x - median) / (1.4826·MAD) / √(1 + 1/n)
//
// whose surprise is taken from Student's t with n-1 degrees of freedom, as
// for the next draw from a normal sample of n values with estimated mean
// and scale: -log10 of its two-sided tail probability. So a young score
// says how far x is from the few samples seen, in their own spread, with
// the uncertainty of so few; it assumes no heavy tail, which only a longer
// history can show. The statistic stops once the robust baseline has seen
// madWarm samples and the others' histories tailWarm values.
func (c *combined) young(x float64, st []float64) Result {
	w := c.mad.w
	n := float64(w.len())
	m := w.median()
	sc := max(robustScale(w, m), w.std())
	z := math.Abs(x-m) / sc / math.Sqrt(1+1/n)
	p := 2 * distuv.StudentsT{Mu: 0, Sigma: 1, Nu: n - 1}.Survival(z)
	st[StatYoung] = -math.Log10(max(p, 1e-300))
	return Result{Expected: m, Lower: m - bandZ*sc, Upper: m + bandZ*sc, Warm: true}
}

// runningMean is the mean of the last n values, in O(1) per update.
type runningMean struct {
	buf    []float64
	head   int
	n      int
	sum    float64
	pushes int
}

func newRunningMean(n int) runningMean { return runningMean{buf: make([]float64, n)} }

func (r *runningMean) push(x float64) {
	if r.n == len(r.buf) {
		r.sum -= r.buf[r.head]
	} else {
		r.n++
	}
	r.buf[r.head] = x
	r.head = (r.head + 1) % len(r.buf)
	r.sum += x
	// Recompute the sum exactly once per window so rounding can't drift.
	r.pushes++
	if r.pushes == len(r.buf) {
		r.pushes = 0
		r.sum = 0
		for _, v := range r.buf[:r.n] {
			r.sum += v
		}
	}
}

func (r *runningMean) full() bool    { return r.n == len(r.buf) }
func (r *runningMean) mean() float64 { return r.sum / float64(r.n) }
