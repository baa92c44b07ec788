package anomaly

import "math"

const (
	// tailHistory is how many past values of a statistic its rarity is
	// judged against.
	tailHistory = 4000
	// tailBlocks splits that history into blocks that expire one at a
	// time, so it slides in steps of tailHistory/tailBlocks samples.
	tailBlocks = 8
	// tailKeep is how many of the most extreme values of each block are
	// kept, in each direction: ranks are exact for values more extreme
	// than the tailKeep-th of some block, which covers every tail
	// probability below tailKeep/tailHistory = 0.2%, where alerts are.
	tailKeep = 8
	// tailWarm is how many values a statistic needs before its rarity
	// means anything.
	tailWarm = 20
)

// tail measures how rare a value of a statistic is against the last
// tailHistory values of that same statistic — the "is this unusual for this
// series" question, independent of the statistic's units. It returns the
// surprise u = -log10 p where, with n past values of which k are at least
// as extreme,
//
//	p = (k+1)/(n+1)
//
// (the empirical tail probability, with the current value counted), and for
// a value beyond the most extreme one seen, m, an exponential tail
// (peaks over threshold with a zero shape parameter; Pickands 1975,
// Siffer et al., "Anomaly detection in streams with extreme value theory",
// KDD 2017):
//
//	p = 1/(n+1) · exp(-|x-m|/β),   β = |m - median| / ln(n/2)
//
// β makes m the expected maximum of n draws of an exponential tail that
// starts at the median, so exceeding the record by a lot is much rarer
// than merely setting one.
//
// Only the tails are kept: the history is cut into tailBlocks blocks, and
// each keeps its tailKeep largest and smallest values and a P² estimate of
// its median; the median of the history is taken as the median of the
// block medians. Ranks are exact in the tails. Between the median and the
// held tails the count of values held is only a lower bound on k (it
// would make every value there about 1.8 rare, a floor under every
// score), so there the history is taken to fall off exponentially from
// the median (p = 1/2) to the edge e of the held tails (p as counted at
// e), as beyond the record:
//
//	-log10 p = log10 2 + (x - median)/(e - median) · (-log10 pₑ - log10 2)
//
// Each block also counts the values equal to its largest and to its
// smallest, so the extremes of a quantised series, which can be common,
// are counted whole. On the near side of the median u is 0. Memory is
// fixed (1.4 KB) whatever the history length: only the block being filled
// keeps a P² estimator; a completed block keeps the median it ended with,
// which no later value changes.
type tail struct {
	hi, lo [tailBlocks][tailKeep]float64 // hi descending, lo ascending
	nhi    [tailBlocks]int8
	nlo    [tailBlocks]int8
	// hiTies and loTies count the values of each block equal to its
	// largest and smallest: on a quantised series the extremes can be
	// common, more than tailKeep of them.
	hiTies [tailBlocks]int16
	loTies [tailBlocks]int16
	// med estimates the median of the block being filled; blockMed holds
	// each completed block's.
	med      p2
	blockMed [tailBlocks]float64
	cur      int // block being filled
	fill     int // values in the current block
	done     int // completed blocks held, at most tailBlocks-1

	// unit is the statistic's resolution, the least scale of its tail.
	unit float64
	// The medians of the completed blocks, sorted, change only when a
	// block completes; median caches them.
	doneMeds [tailBlocks]float64
	nDone    int
	medsOK   bool
	// done summarises the completed blocks for side (see aggregate),
	// which then reads only the block being filled; doneOK says it is up
	// to date.
	doneHi, doneLo tailSummary
	doneOK         bool
}

// tailSummary is what side reads of the completed blocks on one side,
// when the value judged is short of every one of their held tails: how
// many values they count, their most extreme value, the least extreme
// held value of the full ones (the edge) and of all of them (the reach).
type tailSummary struct {
	k                int
	ext, edge, reach float64
}

const tailBlockLen = tailHistory / tailBlocks

// count is how many past values the history holds.
func (t *tail) count() int { return t.done*tailBlockLen + t.fill }

// push adds x to the history.
func (t *tail) push(x float64) {
	b := t.cur
	if t.fill == 0 {
		t.med = newP2(0.5)
	}
	switch {
	case t.nhi[b] == 0 || x > t.hi[b][0]:
		t.hiTies[b] = 1
	case x == t.hi[b][0]:
		t.hiTies[b]++
	}
	switch {
	case t.nlo[b] == 0 || x < t.lo[b][0]:
		t.loTies[b] = 1
	case x == t.lo[b][0]:
		t.loTies[b]++
	}
	t.nhi[b] = insertExtreme(&t.hi[b], int(t.nhi[b]), x, true)
	t.nlo[b] = insertExtreme(&t.lo[b], int(t.nlo[b]), x, false)
	t.med.push(x)
	t.fill++
	if t.fill == tailBlockLen {
		// The block is complete: its median is final. The oldest block
		// makes room for the next one.
		t.blockMed[b] = t.med.value()
		t.cur = (t.cur + 1) % tailBlocks
		t.fill = 0
		t.done = min(t.done+1, tailBlocks-1)
		t.nhi[t.cur], t.nlo[t.cur] = 0, 0
		t.medsOK, t.doneOK = false, false
	}
}

// insertExtreme inserts x into the n most extreme values held in s (sorted,
// descending when up) keeping at most tailKeep, and returns the new count.
func insertExtreme(s *[tailKeep]float64, n int, x float64, up bool) int8 {
	i := n
	for i > 0 && ((up && x > s[i-1]) || (!up && x < s[i-1])) {
		i--
	}
	if i >= tailKeep {
		return int8(n)
	}
	if n < tailKeep {
		n++
	}
	copy(s[i+1:n], s[i:n-1])
	s[i] = x
	return int8(n)
}

// rarity is the surprise u = -log10 p of x against the history: of the
// upper tail, or for a two-sided statistic the larger of both tails'; 0
// until tailWarm values were seen.
func (t *tail) rarity(x float64, twoSided bool) float64 {
	n := t.count()
	if n < tailWarm {
		return 0
	}
	med := t.median()
	u := t.side(x, true, n, med)
	if twoSided {
		if d := t.side(x, false, n, med); d > u {
			u = d
		}
	}
	return u
}

// log10Two is math.Log10(2), computed once: the calibrator's hot path
// needs it for most values.
var log10Two = math.Log10(2)

// log10Counts holds log10 of every count a tail can hold, and one more:
// the calibrator takes the logarithm of a count for most values it
// judges, and a table lookup is a fraction of math.Log10's cost.
var log10Counts = func() (l [tailHistory + 2]float64) {
	for i := range l {
		l[i] = math.Log10(float64(i))
	}
	return l
}()

// log10Count is log10(i) for a count i >= 1.
func log10Count(i int) float64 {
	if i < len(log10Counts) {
		return log10Counts[i]
	}
	return math.Log10(float64(i))
}

// blockLive reports whether block b holds values of the history.
func (t *tail) blockLive(b int) bool { return t.nhi[b] > 0 }

func (t *tail) side(x float64, up bool, n int, med float64) float64 {
	if (up && x <= med) || (!up && x >= med) {
		// On the near side of the median nothing is unusual (p >= 1/2),
		// and only the tails are kept to count it anyway.
		return 0
	}
	k := 0
	ext := math.Inf(-1)
	// edge is the least extreme value held by the full blocks whose held
	// tail x does not reach; body stays true while x reaches no block's
	// held tail.
	edge := math.Inf(1)
	if !up {
		ext, edge = math.Inf(1), math.Inf(-1)
	}
	body := true
	if !t.doneOK {
		t.doneHi, t.doneLo = t.summarise(true), t.summarise(false)
		t.doneOK = true
	}
	// Usually x is short of every completed block's held tail: then their
	// summary stands for them, and only the block being filled is read.
	// The sums, maxima and minima are the loop's own, in another order:
	// the result is the same.
	from, to := 0, tailBlocks
	if d := &t.doneHi; up && x <= d.reach {
		k, ext, edge, from, to = d.k, max(ext, d.ext), min(edge, d.edge), t.cur, t.cur+1
	} else if d := &t.doneLo; !up && x >= d.reach {
		k, ext, edge, from, to = d.k, min(ext, d.ext), max(edge, d.edge), t.cur, t.cur+1
	}
	for b := from; b < to; b++ {
		if !t.blockLive(b) {
			continue
		}
		// Plain comparisons, not math.Max and math.Min: the values are
		// finite, and this loop is the calibrator's hot spot.
		if up {
			s := &t.hi[b]
			m := int(t.nhi[b])
			if s[0] > ext {
				ext = s[0]
			}
			if m > 0 && s[m-1] >= x {
				// All held are at least as extreme (the usual case: x
				// is nowhere near this block's tail); when they all tie
				// with the block's largest, so do its other ties.
				if m == tailKeep && s[m-1] == s[0] {
					k += max(m, int(t.hiTies[b]))
				} else {
					k += m
				}
				if m == tailKeep && s[m-1] < edge {
					edge = s[m-1]
				}
				continue
			}
			body = false
			for i := 0; i < m && s[i] >= x; i++ {
				k++
			}
		} else {
			s := &t.lo[b]
			m := int(t.nlo[b])
			if s[0] < ext {
				ext = s[0]
			}
			if m > 0 && s[m-1] <= x {
				if m == tailKeep && s[m-1] == s[0] {
					k += max(m, int(t.loTies[b]))
				} else {
					k += m
				}
				if m == tailKeep && s[m-1] > edge {
					edge = s[m-1]
				}
				continue
			}
			body = false
			for i := 0; i < m && s[i] <= x; i++ {
				k++
			}
		}
	}
	fn := float64(n)
	if (up && x <= ext) || (!up && x >= ext) {
		u := log10Count(n+1) - log10Count(k+1)
		if body && !math.IsInf(edge, 0) && edge != med {
			// x lies between the median and every block's held tail,
			// where k counts only the values held: a lower bound (see
			// the type's doc).
			u = min(u, log10Two+(x-med)/(edge-med)*(u-log10Two))
		}
		return u
	}
	beta := math.Abs(ext-med) / math.Log(fn/2)
	if !(beta > 0) {
		beta = scaleFloor(ext)
	}
	beta = max(beta, t.unit)
	return log10Count(n+1) + math.Abs(x-ext)/beta/math.Ln10
}

// summarise sums up the completed blocks held, on the upper side or the
// lower one, as side's loop counts a block whose held tail x does not
// reach.
func (t *tail) summarise(up bool) tailSummary {
	d := tailSummary{ext: math.Inf(-1), edge: math.Inf(1), reach: math.Inf(1)}
	if !up {
		d = tailSummary{ext: math.Inf(1), edge: math.Inf(-1), reach: math.Inf(-1)}
	}
	for b := range tailBlocks {
		if b == t.cur || !t.blockLive(b) {
			continue
		}
		s, m, ties := &t.hi[b], int(t.nhi[b]), int(t.hiTies[b])
		if !up {
			s, m, ties = &t.lo[b], int(t.nlo[b]), int(t.loTies[b])
		}
		if m == tailKeep && s[m-1] == s[0] {
			d.k += max(m, ties)
		} else {
			d.k += m
		}
		if up {
			d.ext, d.reach = max(d.ext, s[0]), min(d.reach, s[m-1])
			if m == tailKeep {
				d.edge = min(d.edge, s[m-1])
			}
		} else {
			d.ext, d.reach = min(d.ext, s[0]), max(d.reach, s[m-1])
			if m == tailKeep {
				d.edge = max(d.edge, s[m-1])
			}
		}
	}
	return d
}

// median is the median of the live blocks' P² medians.
func (t *tail) median() float64 {
	if !t.medsOK {
		m := 0
		for b := range tailBlocks {
			if b != t.cur && t.blockLive(b) {
				t.doneMeds[m] = t.blockMed[b]
				m++
			}
		}
		sortSmall(t.doneMeds[:m])
		t.nDone, t.medsOK = m, true
	}
	meds := t.doneMeds[:t.nDone]
	// A block only just started has too few values to say much.
	if !t.blockLive(t.cur) || (t.done > 0 && t.fill < tailBlockLen/4) {
		if len(meds) == 0 {
			return 0
		}
		return (meds[(len(meds)-1)/2] + meds[len(meds)/2]) / 2
	}
	// The median of meds with v inserted after the ones not above it,
	// read off in place: the value at rank r of that merge.
	v := t.med.value()
	p := 0
	for p < len(meds) && meds[p] <= v {
		p++
	}
	at := func(r int) float64 {
		switch {
		case r < p:
			return meds[r]
		case r == p:
			return v
		}
		return meds[r-1]
	}
	m := len(meds) + 1
	return (at((m-1)/2) + at(m/2)) / 2
}

// p2 estimates one quantile of a stream in constant memory with the P²
// algorithm (Jain and Chlamtac, "The P² algorithm for dynamic calculation
// of quantiles and histograms without storing observations", CACM 1985):
// five markers whose heights are adjusted with a piecewise-parabolic
// formula as their positions drift from the ideal ones.
type p2 struct {
	p   float64
	q   [5]float64 // marker heights
	n   [5]float64 // marker positions
	np  [5]float64 // desired positions
	dn  [5]float64 // desired position increments
	cnt int
}

func newP2(p float64) p2 {
	return p2{p: p, dn: [5]float64{0, p / 2, p, (1 + p) / 2, 1}}
}

func (e *p2) push(x float64) {
	if e.cnt < 5 {
		e.q[e.cnt] = x
		e.cnt++
		if e.cnt == 5 {
			sortSmall(e.q[:])
			e.n = [5]float64{0, 1, 2, 3, 4}
			e.np = [5]float64{0, 2 * e.p, 4 * e.p, 2 + 2*e.p, 4}
		}
		return
	}
	e.cnt++
	// x falls in cell k, q[k] <= x < q[k+1] (the outer markers stretch to
	// take it in), and the markers above it move up one position. Counted
	// without branches: where x falls is what a processor can't predict.
	if x < e.q[0] {
		e.q[0] = x
	}
	if x > e.q[4] {
		e.q[4] = x
	}
	e.n[1] += float64(b2i(x < e.q[1]))
	e.n[2] += float64(b2i(x < e.q[2]))
	e.n[3] += float64(b2i(x < e.q[3]))
	e.n[4]++
	for i := range e.np {
		e.np[i] += e.dn[i]
	}
	for i := 1; i <= 3; i++ {
		d := e.np[i] - e.n[i]
		if (d >= 1 && e.n[i+1]-e.n[i] > 1) || (d <= -1 && e.n[i-1]-e.n[i] < -1) {
			ds := math.Copysign(1, d)
			qp := e.q[i] + ds/(e.n[i+1]-e.n[i-1])*
				((e.n[i]-e.n[i-1]+ds)*(e.q[i+1]-e.q[i])/(e.n[i+1]-e.n[i])+
					(e.n[i+1]-e.n[i]-ds)*(e.q[i]-e.q[i-1])/(e.n[i]-e.n[i-1]))
			if e.q[i-1] < qp && qp < e.q[i+1] {
				e.q[i] = qp
			} else {
				j := i + int(ds)
				e.q[i] += ds * (e.q[j] - e.q[i]) / (e.n[j] - e.n[i])
			}
			e.n[i] += ds
		}
	}
}

// value is the current estimate (exact for fewer than five values).
func (e *p2) value() float64 {
	if e.cnt == 0 {
		return 0
	}
	if e.cnt < 5 {
		var b [5]float64
		copy(b[:], e.q[:e.cnt])
		sortSmall(b[:e.cnt])
		return b[int(e.p*float64(e.cnt-1)+0.5)]
	}
	return e.q[2]
}

// sortSmall is an insertion sort for a handful of values.
func sortSmall(s []float64) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}

// record is the largest value of the history (-Inf when empty).
func (t *tail) record() float64 {
	r := math.Inf(-1)
	for b := range tailBlocks {
		if t.blockLive(b) {
			r = max(r, t.hi[b][0])
		}
	}
	return r
}
