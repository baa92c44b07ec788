package anomaly

import "math"

// madWindow is how many recent samples the robust baseline is taken over.
const madWindow = 512

// madWarm is how many samples the robust baseline needs before it scores.
const madWarm = 32

// madK converts a MAD into a standard deviation for normal data:
// 1/Φ⁻¹(3/4) ≈ 1.4826 (Rousseeuw and Croux 1993).
const madK = 1.482602218505602

// mad is the robust baseline: the median of the recent window is the
// expected value and the MAD the scale,
//
//	z = |x - median| / (1.4826 · MAD)
//
// (Hampel 1974; Rousseeuw and Croux, "Alternatives to the median absolute
// deviation", JASA 1993); z (signed) is its statistic. When more than half of
// the window is one value the MAD is 0; the scale then falls back to the
// mean absolute deviation from the median (times √(π/2), its normal
// consistency factor), and on a constant window to a tiny fraction of the
// value's size, so a constant series scores 0 until it changes.
type mad struct {
	w *window
}

func newMAD() *mad { return &mad{w: newWindow(madWindow)} }

func (d *mad) specs() []statSpec { return []statSpec{{weight: statWeight, twoSided: true}} }

func (d *mad) update(s sample, st []float64) Result {
	var r Result
	if d.w.len() >= madWarm {
		m := d.w.median()
		sc := robustScale(d.w, m)
		st[0] = (s.v - m) / sc
		r = Result{
			Expected: m,
			Lower:    m - bandZ*sc,
			Upper:    m + bandZ*sc,
			Warm:     true,
		}
	} else {
		r = Result{Expected: s.v, Lower: s.v, Upper: s.v}
	}
	d.w.push(s.v)
	return r
}

// robustScale is the standard-deviation estimate of the window around its
// median m: 1.4826·MAD, else √(π/2)·mean|x-m|, else a floor proportional
// to |m| (or 1e-9 for an all-zero window).
func robustScale(w *window, m float64) float64 {
	if s := madK * w.mad(m); s > 0 {
		return s
	}
	// Half the values or more equal m; only the others count, read off
	// the sorted values on either side of m.
	lo, hi := w.countBelow(m), w.countAtMost(m)
	var sum float64
	for _, x := range w.sorted[:lo] {
		sum += m - x
	}
	for _, x := range w.sorted[hi:] {
		sum += x - m
	}
	if sum > 0 {
		return math.Sqrt(math.Pi/2) * sum / float64(w.len())
	}
	return scaleFloor(m)
}

// scaleFloor is the smallest scale used for a series that has not varied:
// a change of one part in a thousand of its level counts as one standard
// deviation, so that any real change of a flat line stands out.
func scaleFloor(level float64) float64 {
	return math.Max(math.Abs(level)*1e-3, 1e-9)
}

// bandZ is the half-width of the normal band, in standard deviations.
const bandZ = 4

// statWeight is the weight of a statistic that stands alone.
const statWeight = 1.25
