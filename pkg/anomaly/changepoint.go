package anomaly

import "math"

const (
	// cusumK is the CUSUM reference value (allowance) in standard
	// deviations: half the smallest shift worth detecting quickly (1σ).
	cusumK = 0.5
	// cusumH is the classic decision interval in standard deviations.
	// With k=0.5 and h=5 the in-control average run length is about 930
	// samples and a 1σ shift is found in about 10 (Montgomery,
	// Introduction to Statistical Quality Control, table 9.3). Here it
	// only bounds each sample's contribution; the calibrator decides how
	// large a sum is unusual for the series.
	cusumH = 5
	// cusumAccept is the sum at which a change is taken as the new normal
	// and the baseline restarts: four decision intervals, reached only by
	// a shift that has clearly persisted.
	cusumAccept = 4 * cusumH
	// cusumWindow is how many samples the in-control baseline is taken
	// over.
	cusumWindow = 256
	// cusumWarm is how many samples of a new regime are needed before
	// the detector watches it.
	cusumWarm = 32
)

// changepoint is a two-sided tabular CUSUM (Page, "Continuous inspection
// schemes", Biometrika 1954) on robustly standardised samples:
//
//	z  = (x - median) / (1.4826·MAD)   over the in-control window
//	S⁺ = max(0, S⁺ + z - k),  S⁻ = max(0, S⁻ - z - k)
//
// with k = cusumK, clipping z at ±(h + k): one wild sample is a spike for
// the other detectors, not a change of level by itself. max(S⁺, S⁻) is
// the detector's statistic, so it speaks of persistent shifts, however
// small, and leaves large sudden ones to the others. Once the sum reaches
// cusumAccept the new level is accepted as normal: the sums and the
// baseline window restart, and the detector warms up on the new regime.
type changepoint struct {
	w          *window
	sPos, sNeg float64
}

func newChangepoint() *changepoint { return &changepoint{w: newWindow(cusumWindow)} }

func (d *changepoint) specs() []statSpec { return []statSpec{{weight: statWeight}} }

func (d *changepoint) update(s sample, st []float64) Result {
	if d.w.len() < cusumWarm {
		d.w.push(s.v)
		return Result{Expected: s.v, Lower: s.v, Upper: s.v}
	}
	m := d.w.median()
	sc := robustScale(d.w, m)
	z := (s.v - m) / sc
	z = math.Max(math.Min(z, cusumH+cusumK), -(cusumH + cusumK))
	d.sPos = math.Max(0, d.sPos+z-cusumK)
	d.sNeg = math.Max(0, d.sNeg-z-cusumK)
	sum := math.Max(d.sPos, d.sNeg)
	st[0] = sum
	r := Result{
		Expected: m,
		Lower:    m - bandZ*sc,
		Upper:    m + bandZ*sc,
		Warm:     true,
	}
	if sum >= cusumAccept {
		d.sPos, d.sNeg = 0, 0
		d.w.reset()
	}
	d.w.push(s.v)
	return r
}
