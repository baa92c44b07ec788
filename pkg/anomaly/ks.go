package anomaly

import (
	"math"
	"sync"
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
// (as gonum's stat.KolmogorovSmirnov computes it; see ksDistance), with
// its asymptotic p-value (ksPValue).
// The p-value is turned into the equivalent two-sided normal deviate
// z = √2·erfc⁻¹(p), the detector's statistic. The reference is kept
// sorted and the probe's values with their ranks in it (see rank), so an
// update costs a few binary searches and O(ksProbe). It catches changes
// of shape or spread that leave the median alone (the KS test of Skyline,
// here on windows counted in samples so it also runs on slow series).
type ks struct {
	probe, ref *window
	// rank holds the probe's values in ascending order with, for each, how
	// many reference values are below it and at most it. The counts change
	// by at most one per update (one value enters the reference, one
	// leaves it), so the statistic costs O(ksProbe) per update rather than
	// a merge of both windows; the probe window keeps only its arrival
	// order.
	rank  [ksProbe]ksRank
	nRank int
}

// ksRank is one probe value with its counts in the reference.
type ksRank struct {
	v      float64
	lt, le int
}

func newKS() *ks {
	d := &ks{probe: newWindow(ksProbe), ref: newWindow(ksRef)}
	d.probe.keepSorted(false)
	return d
}

func (d *ks) specs() []statSpec { return []statSpec{{weight: statWeight}} }

func (d *ks) update(s sample, st []float64) Result {
	z := d.stat(s.v)
	m := d.ref.median()
	sc := 0.0
	if d.ref.len() > 0 {
		sc = robustScale(d.ref, m)
	}
	r := Result{Expected: m, Lower: m - bandZ*sc, Upper: m + bandZ*sc}
	if d.ref.len() == 0 {
		r = Result{Expected: s.v, Lower: s.v, Upper: s.v}
	}
	if !math.IsNaN(z) {
		r.Warm = true
		st[0] = z
	}
	return r
}

// stat adds x to the windows and returns the test's deviate z, NaN until
// the reference is full. The ensemble uses this part alone.
func (d *ks) stat(x float64) float64 {
	// in is the value that moves from the probe to the reference, out the
	// one that leaves the reference; +Inf, above every value, when none
	// does, so that it counts for no rank.
	in, out := math.Inf(1), math.Inf(1)
	if d.probe.full() {
		in = d.probe.at(0)
		if d.ref.full() {
			out = d.ref.at(0)
		}
		d.ref.push(in)
		d.dropRank(in)
	}
	for k := range d.rank[:d.nRank] {
		r := &d.rank[k]
		r.lt += b2i(in < r.v) - b2i(out < r.v)
		r.le += b2i(in <= r.v) - b2i(out <= r.v)
	}
	d.probe.push(x)
	lt, le := d.ref.counts(x)
	d.addRank(ksRank{v: x, lt: lt, le: le})
	if !d.ref.full() {
		return math.NaN()
	}
	return ksDeviates()[d.count()]
}

// dropRank removes one probe value v from rank.
func (d *ks) dropRank(v float64) {
	i := 0
	for i < d.nRank && d.rank[i].v != v {
		i++
	}
	copy(d.rank[i:d.nRank], d.rank[i+1:d.nRank])
	d.nRank--
}

// addRank inserts r into rank, in order.
func (d *ks) addRank(r ksRank) {
	i := d.nRank
	for i > 0 && d.rank[i-1].v > r.v {
		d.rank[i] = d.rank[i-1]
		i--
	}
	d.rank[i] = r
	d.nRank++
}

// count is ksCount(probe, ref) from the ranks, once both windows are
// full: F_probe - F_ref changes only at the probe's values, so its largest
// size is found just below and at each distinct one.
func (d *ks) count() int {
	best := 0
	for i := 0; i < ksProbe; {
		r := &d.rank[i]
		best = max(best, absInt(i*ksRef-r.lt*ksProbe)) // just below r.v
		for i++; i < ksProbe && d.rank[i].v == r.v; i++ {
		}
		best = max(best, absInt(i*ksRef-r.le*ksProbe)) // at r.v
	}
	return best
}

// median is the median of the probe's values, as window.median computes
// it.
func (d *ks) median() float64 {
	n := d.nRank
	if n == 0 {
		return 0
	}
	h := 0.5 * float64(n-1)
	lo := int(math.Floor(h))
	if lo >= n-1 {
		return d.rank[n-1].v
	}
	return d.rank[lo].v + (h-float64(lo))*(d.rank[lo+1].v-d.rank[lo].v)
}

// ksDeviates maps the numerator b of D = b/(ksProbe·ksRef) (see ksCount)
// to the test's deviate pToZ(ksPValue(D, ksProbe, ksRef)): with windows of
// fixed lengths D takes only ksProbe·ksRef+1 values, so each deviate is
// computed once, not at every sample (the series sum behind the p-value
// was a tenth of the ensemble's time). The values are the same, bit for
// bit.
var ksDeviates = sync.OnceValue(func() []float64 {
	z := make([]float64, ksProbe*ksRef+1)
	for b := range z {
		z[b] = pToZ(ksPValue(float64(b)/float64(ksProbe*ksRef), ksProbe, ksRef))
	}
	return z
})

// ksDistance is the two-sample KS statistic D of the sorted, NaN-free x and
// y, equal to gonum's stat.KolmogorovSmirnov(x, nil, y, nil) (the tests
// hold it to that), in one merge with integer counts: between two
// consecutive values of x, F_x is constant and F_y grows, so the supremum
// is reached just below or at a value of x. gonum's general version checks
// both inputs for NaN and order and sums weights on every call, which
// made it a quarter of the ensemble's time. With window lengths that are
// powers of two, as here, both compute D exactly, so they agree bit for bit;
// otherwise to rounding.
func ksDistance(x, y []float64) float64 {
	nx, ny := len(x), len(y)
	if nx == 0 || ny == 0 {
		if nx == ny {
			return 0
		}
		return 1
	}
	return float64(ksCount(x, y)) / float64(nx*ny)
}

// ksCount is ksDistance's numerator: D·len(x)·len(y), a whole number, for
// x and y not empty.
func ksCount(x, y []float64) int {
	nx, ny := len(x), len(y)
	// |F_x - F_y| = |i·ny - j·nx| / (nx·ny), in integers until the end.
	best := 0
	dist := func(i, j int) {
		d := i*ny - j*nx
		if d < 0 {
			d = -d
		}
		best = max(best, d)
	}
	j := 0
	for i := 0; i < nx; {
		v := x[i]
		for j < ny && y[j] < v {
			j++
		}
		dist(i, j) // just below v
		for i++; i < nx && x[i] == v; i++ {
		}
		for j < ny && y[j] <= v {
			j++
		}
		dist(i, j) // at v
	}
	return best
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
