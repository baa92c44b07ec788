package anomaly

import "math"

const (
	// cusumK is the CUSUM reference value (allowance) in standard
	// deviations: half the smallest shift worth detecting quickly (1σ).
	cusumK = 0.5
	// cusumH is the decision interval in standard deviations. With k=0.5
	// and h=5 the in-control average run length is about 930 samples and
	// a 1σ shift is found in about 10 (Montgomery, Introduction to
	// Statistical Quality Control, table 9.3).
	cusumH = 5
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
// with k = cusumK, clipping z at ±(h + k) so that one wild sample is
// scored by the other detectors rather than declared a change by itself.
// The score is scoreOfZ(4·max(S⁺, S⁻)/h): reaching the decision interval h
// scores 0.9. On a change (S ≥ h) the new level is accepted as normal:
// the sums and the baseline window restart, and the detector warms up on
// the new regime.
type changepoint struct {
	w          *window
	sPos, sNeg float64
}

func newChangepoint() *changepoint { return &changepoint{w: newWindow(cusumWindow)} }

func (d *changepoint) update(s sample) Result {
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
	st := math.Max(d.sPos, d.sNeg)
	r := Result{
		Score:    scoreOfZ(bandZ * st / cusumH),
		Expected: m,
		Lower:    m - bandZ*sc,
		Upper:    m + bandZ*sc,
		Warm:     true,
	}
	if st >= cusumH {
		d.sPos, d.sNeg = 0, 0
		d.w.reset()
	}
	d.w.push(s.v)
	return r
}
