package anomaly

import (
	"math"

	"gonum.org/v1/gonum/stat"
)

const (
	// ksProbe is how many of the latest samples are compared against the
	// reference.
	ksProbe = 16
	// ksRef is how many samples before the probe form the reference.
	ksRef = 128
)

// ks is a distribution-shift test: the two-sample Kolmogorov–Smirnov
// statistic between the latest ksProbe samples and the ksRef samples
// before them,
//
//	D = sup_x |F_probe(x) - F_ref(x)|
//
// (gonum's stat.KolmogorovSmirnov), with its asymptotic p-value (ksPValue).
// The p-value is turned into the equivalent two-sided normal deviate
// z = √2·erfc⁻¹(p), the detector's statistic. Both windows are kept
// sorted, so an update costs
// two binary insertions and one O(ksProbe+ksRef) merge. It catches changes
// of shape or spread that leave the median alone (the KS test of Skyline,
// here on windows counted in samples so it also runs on slow series).
type ks struct {
	probe, ref *window
}

func newKS() *ks { return &ks{probe: newWindow(ksProbe), ref: newWindow(ksRef)} }

func (d *ks) specs() []statSpec { return []statSpec{{weight: statWeight}} }

func (d *ks) update(s sample, st []float64) Result {
	if d.probe.full() {
		d.ref.push(d.probe.at(0))
	}
	d.probe.push(s.v)
	m := d.ref.median()
	sc := 0.0
	if d.ref.len() > 0 {
		sc = robustScale(d.ref, m)
	}
	r := Result{Expected: m, Lower: m - bandZ*sc, Upper: m + bandZ*sc}
	if d.ref.len() == 0 {
		r = Result{Expected: s.v, Lower: s.v, Upper: s.v}
	}
	if !d.ref.full() {
		return r
	}
	r.Warm = true
	dStat := stat.KolmogorovSmirnov(d.probe.sorted, nil, d.ref.sorted, nil)
	st[0] = pToZ(ksPValue(dStat, ksProbe, ksRef))
	return r
}

// pToZ is the two-sided normal deviate of p-value p: Φ⁻¹(1-p/2), computed
// as √2·erfc⁻¹(p) so that tiny p-values keep their precision.
func pToZ(p float64) float64 {
	if p >= 1 {
		return 0
	}
	if p <= 0 {
		return math.Inf(1)
	}
	return math.Sqrt2 * math.Erfcinv(p)
}
