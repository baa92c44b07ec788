package anomaly

import (
	"math"
	"slices"
	"sort"
)

// window holds the last cap values both in arrival order (a ring) and sorted,
// so that order statistics (median, quantiles, ranks) cost a binary search
// and one memmove per update instead of a sort.
type window struct {
	ring   []float64
	head   int // index of the oldest value when full
	sorted []float64
	// unsorted is set while sorted is not kept up to date (see keepSorted).
	unsorted bool
	sum      float64
	sumSq    float64
	pushes   int // updates since the running sums were last recomputed
}

func newWindow(capacity int) *window {
	return &window{ring: make([]float64, 0, capacity), sorted: make([]float64, 0, capacity)}
}

// reset empties the window, keeping its capacity.
func (w *window) reset() {
	w.ring, w.sorted = w.ring[:0], w.sorted[:0]
	w.head, w.sum, w.sumSq, w.pushes = 0, 0, 0, 0
}

// len is the number of values held.
func (w *window) len() int { return len(w.ring) }

// full reports whether the window holds cap values.
func (w *window) full() bool { return len(w.ring) == cap(w.ring) }

// push adds x, evicting the oldest value when the window is full. A full
// window replaces the old value by x in the sorted values with one shift of
// the values between their two places.
func (w *window) push(x float64) {
	if w.full() {
		old := w.ring[w.head]
		w.ring[w.head] = x
		if w.head++; w.head == len(w.ring) {
			w.head = 0
		}
		if s := w.sorted; !w.unsorted {
			i, j := searchFloats2(s, old, x) // s[i] == old
			if j <= i {
				copy(s[j+1:i+1], s[j:i])
				s[j] = x
			} else {
				copy(s[i:j-1], s[i+1:j])
				s[j-1] = x
			}
		}
		w.sum -= old
		w.sumSq -= old * old
	} else {
		w.ring = append(w.ring, x)
		if !w.unsorted {
			i := searchFloats(w.sorted, x)
			w.sorted = append(w.sorted, 0)
			copy(w.sorted[i+1:], w.sorted[i:])
			w.sorted[i] = x
		}
	}
	w.sum += x
	w.sumSq += x * x
	// Running sums drift when values of very different size come and go;
	// recompute them exactly once per window length.
	w.pushes++
	if w.pushes >= cap(w.ring) {
		w.pushes = 0
		w.sum, w.sumSq = 0, 0
		for _, v := range w.ring {
			w.sum += v
			w.sumSq += v * v
		}
	}
}

// keepSorted turns the sorted copy off or back on. While it is off,
// pushes only update the ring and the sums, the order statistics must not
// be used, and the sorted copy's memory is freed; turning it on sorts the
// values held once. For a window that is only needed now and then (the
// ensemble's robust baseline, once the seasonal model stands in for it).
func (w *window) keepSorted(on bool) {
	if on == !w.unsorted {
		return
	}
	w.unsorted = !on
	if !on {
		w.sorted = nil
		return
	}
	w.sorted = append(make([]float64, 0, cap(w.ring)), w.ring...)
	slices.Sort(w.sorted)
}

// at returns the i-th value in arrival order, 0 the oldest.
func (w *window) at(i int) float64 {
	if !w.full() {
		return w.ring[i]
	}
	return w.ring[(w.head+i)%len(w.ring)]
}

// last returns the i-th most recent value, 0 the newest.
func (w *window) last(i int) float64 { return w.at(w.len() - 1 - i) }

// quantile returns the q-quantile with linear interpolation between order
// statistics (type 7 in Hyndman and Fan 1996, numpy's default).
func (w *window) quantile(q float64) float64 {
	n := len(w.sorted)
	if n == 0 {
		return 0
	}
	h := q * float64(n-1)
	lo := int(math.Floor(h))
	if lo >= n-1 {
		return w.sorted[n-1]
	}
	return w.sorted[lo] + (h-float64(lo))*(w.sorted[lo+1]-w.sorted[lo])
}

// median is quantile(0.5).
func (w *window) median() float64 { return w.quantile(0.5) }

// mean is the arithmetic mean of the values held.
func (w *window) mean() float64 {
	if w.len() == 0 {
		return 0
	}
	return w.sum / float64(w.len())
}

// std is the sample standard deviation (n-1 in the denominator), 0 for
// fewer than two values.
func (w *window) std() float64 {
	n := float64(w.len())
	if n < 2 {
		return 0
	}
	v := (w.sumSq - w.sum*w.sum/n) / (n - 1)
	if v <= 0 {
		return 0
	}
	return math.Sqrt(v)
}

// countBelow is the number of values < x.
func (w *window) countBelow(x float64) int { return searchFloats(w.sorted, x) }

// counts is the number of values < x and of values <= x, for a finite x.
func (w *window) counts(x float64) (lt, le int) {
	if len(w.sorted) == 0 {
		return 0, 0
	}
	// No value lies strictly between x and the next float up: the values
	// <= x are those < it.
	return searchFloats2(w.sorted, x, math.Nextafter(x, math.Inf(1)))
}

// countAtMost is the number of values <= x.
func (w *window) countAtMost(x float64) int {
	return sort.Search(len(w.sorted), func(i int) bool { return w.sorted[i] > x })
}

// mad is the median absolute deviation from the median m, found in
// O(log² n) by bisection on the sorted values: the MAD is the smallest d
// such that at least half of the values lie in [m-d, m+d].
func (w *window) mad(m float64) float64 {
	n := len(w.sorted)
	if n == 0 {
		return 0
	}
	// The median of |x-m| over n values, with the same interpolation as
	// median(): average of the two middle deviations for even n.
	k1 := (n - 1) / 2 // 0-based ranks of the middle deviations
	k2 := n / 2
	d1 := w.kthDeviation(m, k1)
	if k2 == k1 {
		return d1
	}
	return (d1 + w.kthDeviation(m, k2)) / 2
}

// kthDeviation returns the k-th smallest (0-based) |x-m| over the window by
// merging outwards from m: the deviations to the left and right of m are
// each sorted, so the k-th smallest of their union is found by a two-way
// selection in O(log n) steps.
func (w *window) kthDeviation(m float64, k int) float64 {
	s := w.sorted
	p := searchFloats(s, m) // s[:p] < m <= s[p:]
	// left deviations: m - s[p-1], m - s[p-2], ... (ascending)
	// right deviations: s[p]-m, s[p+1]-m, ... (ascending)
	nl, nr := p, len(s)-p
	left := func(i int) float64 { return m - s[p-1-i] }
	right := func(i int) float64 { return s[p+i] - m }
	// Binary search for how many of the k+1 smallest come from the left.
	lo, hi := max(0, k+1-nr), min(k+1, nl)
	for lo < hi {
		i := (lo + hi) / 2 // take i from left, k+1-i from right
		j := k + 1 - i
		if j > 0 && i < nl && right(j-1) > left(i) {
			lo = i + 1
		} else {
			hi = i
		}
	}
	i, j := lo, k+1-lo
	var a, b float64 = math.Inf(-1), math.Inf(-1)
	if i > 0 {
		a = left(i - 1)
	}
	if j > 0 {
		b = right(j - 1)
	}
	return math.Max(a, b)
}

// searchFloats2 is searchFloats(s, a), searchFloats(s, b) for a
// non-empty s of finite values, in one loop: the two searches' loads do
// not wait on each other.
func searchFloats2(s []float64, a, b float64) (int, int) {
	if a != a || b != b {
		return searchFloats(s, a), searchFloats(s, b)
	}
	n := len(s)
	ba, bb := 0, 0
	for n > 1 {
		half := n >> 1
		ba += half & -b2i(s[ba+half] < a)
		bb += half & -b2i(s[bb+half] < b)
		n -= half
	}
	if s[ba] < a {
		ba++
	}
	if s[bb] < b {
		bb++
	}
	return ba, bb
}

// searchFloats is the index of the first value of the sorted s that is >=
// x. The windows hold finite values only (the front drops NaN and clamps
// the rest), for which a plain lower-bound search is what
// slices.BinarySearch gives, without its NaN-aware comparisons (the
// windows' updates spend most of their time searching).
func searchFloats(s []float64, x float64) int {
	if x != x {
		i, _ := slices.BinarySearch(s, x)
		return i
	}
	// A lower bound without a branch on the data: the interval halves
	// whatever the comparison says, and the comparison only picks which
	// half, as a mask (the compiler branches on a float comparison in an
	// if), so the processor never mispredicts it.
	n := len(s)
	if n == 0 {
		return 0
	}
	base := 0
	for n > 1 {
		half := n >> 1
		base += half & -b2i(s[base+half] < x)
		n -= half
	}
	if s[base] < x {
		base++
	}
	return base
}
