package anomaly

import (
	"math"
	"slices"
	"time"
)

// stepHistory is how many recent gaps the step estimate is the median of.
const stepHistory = 9

// gapSteps is how many steps without a sample make a gap.
const gapSteps = 3

// maxValue bounds the magnitude of the values the models see, so that
// sums of squares over a window can't overflow.
const maxValue = 1e100

// front is the part every detector shares: it drops samples that can't be
// scored, infers the step, turns counters into rates and hands clean
// samples to the model.
type front struct {
	m       model
	cal     *calibrator
	st      []float64
	counter bool
	fixed   int64 // configured step in ms, 0 when inferred

	started bool
	lastT   int64
	lastV   float64 // last raw value (for counters)

	gaps  [stepHistory]int64 // ring of recent positive gaps
	nGaps int
	step  int64

	last Result // last result, returned for ignored samples (with score 0)
	fed  int    // samples handed to the model
}

func newFront(cfg Config, m model) *front {
	specs := m.specs()
	return &front{m: m, cal: newCalibrator(specs), st: make([]float64, len(specs)), counter: cfg.Counter, fixed: cfg.Step.Milliseconds()}
}

// feed hands one clean sample to the model and scores it.
func (f *front) feed(s sample) Result {
	for i := range f.st {
		f.st[i] = math.NaN()
	}
	r := f.m.update(s, f.st)
	r.Value = s.v
	f.fed++
	r.Score = f.cal.score(f.st, r.Warm)
	return r
}

// Update implements Detector.
func (f *front) Update(t int64, v float64) Result {
	if !finite(v) || (f.started && t <= f.lastT) {
		r := f.last
		r.Score, r.Value = 0, math.NaN()
		return r
	}
	if !f.started {
		f.started = true
		f.lastT, f.lastV = t, v
		if f.counter {
			// A counter's first sample has no rate yet.
			f.last = Result{Value: math.NaN()}
			return f.last
		}
		f.last = f.feed(sample{t: t, v: clampValue(v), step: f.fixed})
		return f.last
	}
	dt := t - f.lastT
	// The median of the recent gaps stays what it was when the gap
	// forgotten was the same as the new one, as it is on a regular series.
	slot := &f.gaps[f.nGaps%stepHistory]
	same := f.nGaps >= stepHistory && *slot == dt
	*slot = dt
	f.nGaps++
	if !same {
		f.step = f.estimateStep()
	}
	gap := dt > gapSteps*f.step
	x := v
	if f.counter {
		inc := v - f.lastV
		if inc < 0 {
			// A reset: the counter restarted from zero, as Prometheus's
			// rate() assumes.
			inc = v
		}
		x = inc / (float64(dt) / float64(time.Second/time.Millisecond))
	}
	f.lastT, f.lastV = t, v
	x = clampValue(x)
	f.last = f.feed(sample{t: t, v: x, step: f.step, gap: gap})
	return f.last
}

// clampValue bounds the finite x to ±maxValue.
func clampValue(x float64) float64 {
	if x > maxValue {
		return maxValue
	}
	if x < -maxValue {
		return -maxValue
	}
	return x
}

// estimateStep is the configured step, else the median of recent gaps.
func (f *front) estimateStep() int64 {
	if f.fixed > 0 {
		return f.fixed
	}
	n := min(f.nGaps, stepHistory)
	var buf [stepHistory]int64
	copy(buf[:], f.gaps[:n])
	s := buf[:n]
	slices.Sort(s)
	return s[n/2]
}
