package anomalybench

import (
	"crypto/sha256"
	"math"
	"testing"
)

func digest(tb testing.TB, c *Corpus) [32]byte {
	tb.Helper()
	h := sha256.New()
	if err := c.Write(h); err != nil {
		tb.Fatal(err)
	}
	var d [32]byte
	copy(d[:], h.Sum(nil))
	return d
}

// TestDeterministic checks that a seed always writes the same bytes, and
// another seed other bytes.
func TestDeterministic(t *testing.T) {
	a, b := digest(t, Generate(1)), digest(t, Generate(1))
	if a != b {
		t.Fatal("two corpora of seed 1 differ")
	}
	if digest(t, Generate(2)) == a {
		t.Fatal("seeds 1 and 2 wrote the same corpus")
	}
}

// TestShape checks the corpus against what the package promises: enough
// series and days, a third healthy, every kind present.
func TestShape(t *testing.T) {
	c := Generate(1)
	if len(c.Series) < 200 {
		t.Fatalf("%d series, want at least 200", len(c.Series))
	}
	healthy := 0
	kinds := map[Kind]int{}
	counters := map[bool]int{}
	for _, s := range c.Series {
		if span := s.Points[len(s.Points)-1].T - s.Points[0].T; span < (Days*24-1)*3600*1000 {
			t.Errorf("%s spans %d ms, want %d days", s.Name, span, Days)
		}
		if len(s.Anomalies) == 0 {
			healthy++
		}
		for _, a := range s.Anomalies {
			kinds[a.Kind]++
		}
		if s.Counter {
			counters[len(s.Anomalies) == 0]++
		}
	}
	if healthy*3 < len(c.Series) {
		t.Errorf("%d healthy series of %d, want a third", healthy, len(c.Series))
	}
	for _, k := range Kinds() {
		if kinds[k] == 0 {
			t.Errorf("no anomaly of kind %s", k)
		}
	}
	if counters[true] == 0 || counters[false] == 0 {
		t.Errorf("counters healthy/anomalous: %v, want both", counters)
	}
}

// TestLabelsMatchSeries renders every anomalous series again without its
// anomalies and checks each label against the difference: the series is
// untouched outside its labelled spans, and inside them it differs the
// way the kind says.
func TestLabelsMatchSeries(t *testing.T) {
	c := Generate(1)
	for i, s := range c.Series {
		if len(s.Anomalies) == 0 {
			continue
		}
		healthy := clean(c.Seed, i)
		ref := map[int64]float64{}
		prev := map[int64]int64{}
		for k, p := range healthy.Points {
			ref[p.T] = p.V
			if k > 0 {
				prev[p.T] = healthy.Points[k-1].T
			}
		}
		val := func(k int) float64 { return s.Points[k].V }
		// inc is the increase of a counter into sample k, for series and
		// reference alike.
		inc := func(k int) (got, want float64, ok bool) {
			if k == 0 || s.Points[k-1].T != prev[s.Points[k].T] {
				return 0, 0, false
			}
			return val(k) - val(k-1), ref[s.Points[k].T] - ref[s.Points[k-1].T], true
		}
		in := make([]bool, len(s.Points))
		for _, a := range s.Anomalies {
			for k := a.Start; k < a.End && k < len(in); k++ {
				in[k] = true
			}
		}
		for k, p := range s.Points {
			if in[k] {
				continue
			}
			want, ok := ref[p.T]
			if !ok {
				t.Fatalf("%s: sample at %d not in the healthy series", s.Name, p.T)
			}
			if s.Counter {
				// A counter's increase into the first sample after an
				// anomaly still holds the anomaly's end when scrapes
				// were missing.
				if k > 0 && in[k-1] {
					continue
				}
				if g, w, ok := inc(k); ok && g >= 0 && w >= 0 && math.Abs(g-w) > 1.5 {
					t.Fatalf("%s: increase %v into sample %d outside any anomaly, healthy %v", s.Name, g, k, w)
				}
				continue
			}
			if p.V != want {
				t.Fatalf("%s: sample %d = %v outside any anomaly, healthy %v", s.Name, k, p.V, want)
			}
		}
		for _, a := range s.Anomalies {
			k := a.Start
			if a.Size < MinSize && a.Kind != VarianceUp && a.Kind != BrokenDaily {
				t.Errorf("%s: %s of %.1fσ, want at least %vσ", s.Name, a.Kind, a.Size, MinSize)
			}
			if s.Counter {
				continue
			}
			got, want := val(k), ref[s.Points[k].T]
			switch a.Kind {
			case Spike, ShiftUp, TrendChange:
				if !(got > want) {
					t.Errorf("%s: %s at %d: %v, not above the healthy %v", s.Name, a.Kind, k, got, want)
				}
			case Dip, ShiftDown:
				if !(got < want) && !(got == 0 && want == 0) {
					t.Errorf("%s: %s at %d: %v, not below the healthy %v", s.Name, a.Kind, k, got, want)
				}
			case DropToZero:
				for j := a.Start; j < a.End; j++ {
					if val(j) != 0 {
						t.Errorf("%s: drop to zero: sample %d is %v", s.Name, j, val(j))
					}
				}
			case Stuck:
				for j := a.Start; j < a.End; j++ {
					if val(j) != val(a.Start) {
						t.Errorf("%s: stuck value: sample %d is %v, sample %d %v", s.Name, j, val(j), a.Start, val(a.Start))
					}
				}
			case Disappearance:
				if gap := s.Points[k].T - s.Points[k-1].T; gap < 30*60*1000 {
					t.Errorf("%s: disappearance before sample %d lasts %d ms, want 30 minutes or more", s.Name, k, gap)
				}
			}
		}
	}
}
