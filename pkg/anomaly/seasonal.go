package anomaly

import (
	"math"
	"time"
)

const (
	day  = 24 * time.Hour
	week = 7 * day
	// dailyMaxBins and dailyMinBins bound the daily profile's resolution:
	// one bin per step, between hourly and 5-minutely.
	dailyMaxBins = 288
	dailyMinBins = 24
	// weeklyBins gives the weekly profile hourly bins, so each bin sees
	// many samples a week even at fine steps.
	weeklyBins = 168
	// seasonAlpha is how fast a profile bin follows its new values:
	// about the last five periods count.
	seasonAlpha = 0.2
	// levelAlpha is the smoothing of the level the profiles are offsets
	// from, per sample.
	levelAlpha = 0.01
	// errAlpha smooths each model's mean absolute error, per sample.
	errAlpha = 0.01
)

// seasonal models the series as a level plus a periodic offset and scores
// the residual. Three candidate models run side by side:
//
//	none:   x̂ = L₀
//	daily:  x̂ = L₁ + D[time of day]
//	weekly: x̂ = L₂ + W[hour of week]
//
// Each model's level is an exponentially weighted moving average of the
// deseasonalised series, Lₘ ← Lₘ + α(x - Pₘ(t) - Lₘ) with α = levelAlpha
// per sample, and each profile bin an EWMA over periods (α = seasonAlpha)
// of x - Lₘ for the samples that fall in it — the additive form of
// Holt–Winters' seasonal smoothing (Winters 1960), with
// the season keyed by wall-clock time rather than by sample count so that
// gaps and irregular steps don't shift it. A bin's value is interpolated
// linearly with its neighbour. The model with the smallest running mean
// absolute error (a plain mean for the first 1/errAlpha samples, then an
// EWMA with α = errAlpha) predicts, provided it has seen two full periods;
// its error scale gives the detector's statistic
//
//	z = (x - x̂) / (√(π/2) · MAE)
//
// (√(π/2) turns a mean absolute deviation into a standard deviation for
// normal residuals). Large residuals are clipped at 5·MAE before they
// update the error, so one incident does not inflate the scale for days.
type seasonal struct {
	ready bool
	start int64 // first timestamp, for warm-up
	n     int

	levels [3]float64 // of none, daily, weekly
	daily  profile
	weekly profile
	errs   [3]float64 // running MAE of none, daily, weekly

	// dailyResid is the last sample's residual under the daily model,
	// x - (L₁ + D(t)), valid when dailyOK (two days seen).
	dailyResid float64
	dailyOK    bool
}

// profile is a periodic offset: nbins EWMA cells over a period.
type profile struct {
	period int64 // milliseconds
	bins   []float64
	seen   []uint16 // how many periods each bin has been updated in, capped
}

func newProfile(period time.Duration, nbins int) profile {
	return profile{period: period.Milliseconds(), bins: make([]float64, nbins), seen: make([]uint16, nbins)}
}

// pos returns the bin of t and the fraction of the way to the next one.
func (p *profile) pos(t int64) (int, float64) {
	ph := t % p.period
	if ph < 0 {
		ph += p.period
	}
	f := float64(ph) * float64(len(p.bins)) / float64(p.period)
	i := int(f)
	if i >= len(p.bins) {
		i = len(p.bins) - 1
	}
	return i, f - float64(i)
}

// at is the offset at bin i, a fraction f of the way to the next bin
// (see pos), interpolated between the two.
func (p *profile) at(i int, f float64) float64 {
	j := (i + 1) % len(p.bins)
	if p.seen[j] == 0 {
		return p.bins[i]
	}
	return p.bins[i]*(1-f) + p.bins[j]*f
}

// learn moves bin i towards the offset o.
func (p *profile) learn(i int, o float64) {
	if p.seen[i] == 0 {
		p.bins[i] = o
	} else {
		p.bins[i] += seasonAlpha * (o - p.bins[i])
	}
	if p.seen[i] < math.MaxUint16 {
		p.seen[i]++
	}
}

func newSeasonal() *seasonal { return &seasonal{} }

func (d *seasonal) specs() []statSpec { return []statSpec{{weight: statWeight, twoSided: true}} }

func (d *seasonal) update(s sample, st []float64) Result {
	if !d.ready {
		d.ready = true
		d.start = s.t
		d.levels = [3]float64{s.v, s.v, s.v}
		nb := dailyMaxBins
		if s.step > 0 {
			nb = int(day.Milliseconds() / s.step)
		}
		d.daily = newProfile(day, min(max(nb, dailyMinBins), dailyMaxBins))
		d.weekly = newProfile(week, weeklyBins)
	}
	span := s.t - d.start
	di, df := d.daily.pos(s.t)
	wi, wf := d.weekly.pos(s.t)
	offs := [3]float64{0, d.daily.at(di, df), d.weekly.at(wi, wf)}
	var preds [3]float64
	for m := range preds {
		preds[m] = d.levels[m] + offs[m]
	}
	// A model is usable once its error estimate has settled (1/errAlpha
	// samples) and, for a seasonal one, it has seen two periods.
	settled := d.n >= int(1/errAlpha)
	usable := [3]bool{settled, settled && span >= 2*day.Milliseconds(), settled && span >= 2*week.Milliseconds()}
	best := -1
	for m := range preds {
		if usable[m] && d.errs[m] > 0 && (best < 0 || d.errs[m] < d.errs[best]) {
			best = m
		}
	}
	d.dailyResid, d.dailyOK = s.v-preds[1], usable[1]
	var r Result
	if best >= 0 {
		sc := math.Sqrt(math.Pi/2) * d.errs[best]
		sc = math.Max(sc, scaleFloor(preds[best]))
		st[0] = (s.v - preds[best]) / sc
		r = Result{
			Expected: preds[best],
			Lower:    preds[best] - bandZ*sc,
			Upper:    preds[best] + bandZ*sc,
			Warm:     true,
		}
	} else {
		r = Result{Expected: d.levels[0], Lower: d.levels[0], Upper: d.levels[0]}
	}
	// Learn from x only after scoring it.
	for m, p := range preds {
		e := math.Abs(s.v - p)
		if !settled {
			// Until settled, a plain mean: an EWMA started from the
			// first, often tiny, error would take long to grow.
			d.errs[m] += (e - d.errs[m]) / float64(d.n+1)
			continue
		}
		if d.errs[m] > 0 {
			// Clipped, but not at 0: a model that has made no error yet
			// (a series constant so far) must be able to learn one.
			e = math.Min(e, 5*d.errs[m])
		}
		d.errs[m] += errAlpha * (e - d.errs[m])
	}
	for m := range d.levels {
		d.levels[m] += levelAlpha * (s.v - offs[m] - d.levels[m])
	}
	d.daily.learn(di, s.v-d.levels[1])
	d.weekly.learn(wi, s.v-d.levels[2])
	d.n++
	return r
}
