package anomaly

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

func TestTailByHand(t *testing.T) {
	var tl tail
	for i := range 1000 {
		tl.push(float64(i))
	}
	if tl.count() != 1000 {
		t.Fatalf("count %d, want 1000", tl.count())
	}
	near := func(name string, got, want float64) {
		t.Helper()
		if math.Abs(got-want) > 1e-9*math.Max(1, math.Abs(want)) {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
	// 995..999 are at least 995: p = (5+1)/(1000+1).
	up, _ := tl.surprise(995)
	near("upper surprise of 995", up, -math.Log10(6.0/1001))
	// 0..3 are at most 3: p = (4+1)/1001.
	_, down := tl.surprise(3)
	near("lower surprise of 3", down, -math.Log10(5.0/1001))
	// Beyond the record 999 by 101: exponential tail with
	// β = (999 - median)/ln(500), the median being that of the block
	// medians (249.5 and 749.5 estimated by P²).
	med := tl.median()
	if math.Abs(med-499.5) > 5 {
		t.Fatalf("median %v, want about 499.5", med)
	}
	up, _ = tl.surprise(1100)
	beta := (999 - med) / math.Log(500)
	near("upper surprise of 1100", up, math.Log10(1001)+101/beta/math.Ln10)
	// Nothing below: the lower tail of a record high is 0.
	if _, d := tl.surprise(1100); d != 0 {
		t.Errorf("lower surprise of 1100 = %v, want 0", d)
	}
}

func TestTailForgets(t *testing.T) {
	var tl tail
	tl.push(1e6)
	for range tailHistory + tailBlockLen {
		tl.push(1)
	}
	if n := tl.count(); n > tailHistory || n < tailHistory-tailBlockLen {
		t.Fatalf("count %d, want within one block of %d", n, tailHistory)
	}
	// The old extreme has expired: 2 is a new record above all-ones.
	up, _ := tl.surprise(2)
	if up < math.Log10(float64(tl.count()+1)) {
		t.Errorf("surprise of a new record %v, want >= log10(n+1)", up)
	}
}

func TestTailMatchesExactRanks(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 5))
	var tl tail
	var hist []float64
	for i := range 6000 {
		x := rng.NormFloat64()
		if i > 100 && i%97 == 0 {
			// Compare, in the exact region (tail probability below
			// tailKeep/tailHistory), with ranks over the real history.
			n := tl.count()
			h := hist[len(hist)-n:]
			q := slices.Clone(h)
			slices.Sort(q)
			probe := q[len(q)-1-rng.IntN(min(tailKeep, len(q)/tailBlocks+1))]
			k := 0
			for _, v := range h {
				if v >= probe {
					k++
				}
			}
			want := -math.Log10(float64(k+1) / float64(n+1))
			if got, _ := tl.surprise(probe); math.Abs(got-want) > 1e-9 {
				t.Fatalf("sample %d: surprise of %v = %v, exact %v", i, probe, got, want)
			}
		}
		tl.push(x)
		hist = append(hist, x)
	}
}

func TestP2Median(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 9))
	e := newP2(0.5)
	var xs []float64
	for range 10000 {
		x := rng.ExpFloat64()
		e.push(x)
		xs = append(xs, x)
	}
	slices.Sort(xs)
	exact := (xs[4999] + xs[5000]) / 2
	if got := e.value(); math.Abs(got-exact) > 0.02 {
		t.Errorf("P² median %v, exact %v", got, exact)
	}
	small := newP2(0.5)
	for _, x := range []float64{5, 1, 3} {
		small.push(x)
	}
	if got := small.value(); got != 3 {
		t.Errorf("median of 5 1 3 = %v, want 3", got)
	}
}

// surprise returns the surprise of x in each tail separately, both 0
// until tailWarm values were seen, for the tests to check one at a time.
func (t *tail) surprise(x float64) (up, down float64) {
	n := t.count()
	if n < tailWarm {
		return 0, 0
	}
	med := t.median()
	return t.side(x, true, n, med), t.side(x, false, n, med)
}

// TestTailBody: a value between the median and the kept tails is as rare
// as its rank says, about, not as rare as the tails' lower bound on its
// rank would make it (p of 64 in 4000, a surprise of 1.8 for any value
// above the median: a floor under every healthy series' score). Between
// the median and the tails the history is taken to fall off
// exponentially, as beyond the record: exact for Laplace noise, and for
// Gaussian noise, whose tails are lighter, an overstatement of up to a
// third of a decade near the tails.
func TestTailBody(t *testing.T) {
	for _, c := range []struct {
		name string
		draw func(*rand.Rand) float64
		// the value of quantile q
		quantile func(q float64) float64
	}{
		{"gaussian", (*rand.Rand).NormFloat64, func(q float64) float64 { return math.Sqrt2 * math.Erfinv(2*q-1) }},
		{"laplace", func(r *rand.Rand) float64 {
			if r.IntN(2) == 0 {
				return r.ExpFloat64()
			}
			return -r.ExpFloat64()
		}, func(q float64) float64 { return -math.Log(2 * (1 - q)) }},
	} {
		rng := rand.New(rand.NewPCG(7, 7))
		var tl tail
		for range tailHistory {
			tl.push(c.draw(rng))
		}
		for _, q := range []float64{0.6, 0.7, 0.8, 0.9, 0.95} {
			x := c.quantile(q)
			up, _ := tl.surprise(x)
			want := -math.Log10(1 - q)
			if math.Abs(up-want) > 0.4 {
				t.Errorf("%s: surprise of the %v quantile %.3f, want %.3f ± 0.4", c.name, q, up, want)
			}
			_, down := tl.surprise(-x)
			if math.Abs(down-want) > 0.4 {
				t.Errorf("%s: lower surprise of the %.2f quantile %.3f, want %.3f ± 0.4", c.name, 1-q, down, want)
			}
		}
	}
}

// TestTailTies: on a quantised series the largest value may be common; its
// rarity is how common it is, not how few values the tails can hold.
func TestTailTies(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 9))
	var tl tail
	for range tailHistory {
		tl.push(19 + float64(rng.IntN(2)+rng.IntN(2))) // 19, 20, 21 at 1/4, 1/2, 1/4
	}
	want := -math.Log10(0.25)
	if up, _ := tl.surprise(21); math.Abs(up-want) > 0.1 {
		t.Errorf("surprise of the common maximum %.3f, want %.3f ± 0.1", up, want)
	}
	if _, down := tl.surprise(19); math.Abs(down-want) > 0.1 {
		t.Errorf("lower surprise of the common minimum %.3f, want %.3f ± 0.1", down, want)
	}
	// A new record is still one.
	if up, _ := tl.surprise(22); up < math.Log10(float64(tailHistory)) {
		t.Errorf("surprise of a new record %.3f, want >= log10 n", up)
	}
}

// TestTailSummaryIsExact checks the shortcut of side, the summary of the
// completed blocks, against its loop over every block: the same surprise,
// bit for bit, on continuous and on quantised values, across block
// completions.
func TestTailSummaryIsExact(t *testing.T) {
	// Coarse steps make a block's held extremes all tie, so its count
	// comes from its ties.
	for _, quantum := range []float64{0, 1, 4} {
		rng := rand.New(rand.NewPCG(5, uint64(quantum)))
		var tl tail
		tl.unit = 1
		for i := range 3 * tailHistory {
			v := rng.NormFloat64() * 3
			if quantum > 0 {
				v = quantum * math.Round(v/quantum)
			}
			if i%97 == 0 {
				for _, x := range []float64{v, v * 3, -v * 4, 0, 1, -1, 4, -4, 12, -12} {
					n, med := tl.count(), tl.median()
					for _, up := range []bool{true, false} {
						if n < tailWarm {
							continue
						}
						fast := tl.side(x, up, n, med)
						hi, lo := tl.doneHi.reach, tl.doneLo.reach
						tl.doneHi.reach, tl.doneLo.reach = math.Inf(-1), math.Inf(1) // never short of them: the loop
						slow := tl.side(x, up, n, med)
						tl.doneHi.reach, tl.doneLo.reach = hi, lo
						if math.Float64bits(fast) != math.Float64bits(slow) {
							t.Fatalf("quantum %v, after %d values: side(%v, up=%v) = %v with the summary, %v without", quantum, i, x, up, fast, slow)
						}
					}
				}
			}
			tl.push(v)
		}
	}
}
