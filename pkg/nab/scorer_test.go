package nab

import (
	"math"
	"path/filepath"
	"testing"
	"time"
)

var t0 = time.Date(2015, 1, 1, 0, 0, 0, 0, time.UTC)

// oneFile returns a corpus of one n-row, 5-minute file with windows over
// the given row spans.
func oneFile(tb testing.TB, n int, spans ...[2]int) *Corpus {
	tb.Helper()
	f := &File{Path: "cat/f.csv"}
	for i := range n {
		f.Times = append(f.Times, t0.Add(time.Duration(i)*5*time.Minute))
		f.Values = append(f.Values, float64(i))
	}
	for _, s := range spans {
		f.Windows = append(f.Windows, Window{Start: f.Times[s[0]], End: f.Times[s[1]]})
	}
	if err := f.index(); err != nil {
		tb.Fatal(err)
	}
	return &Corpus{Files: []*File{f}}
}

// detections returns n zero scores with the given rows set.
func detections(n int, at map[int]float64) Scores {
	s := make([]float64, n)
	for i, v := range at {
		s[i] = v
	}
	return Scores{"cat/f.csv": s}
}

func sigma(y float64) float64 { return 2/(1+math.Exp(5*y)) - 1 }

func TestScaledSigmoid(t *testing.T) {
	for _, c := range []struct{ y, want float64 }{
		{-1, 0.98661}, {-0.5, 0.84828}, {0, 0}, {1, -0.98661}, {3, -1}, {10, -1},
	} {
		if got := ScaledSigmoid(c.y); math.Abs(got-c.want) > 1e-5 {
			t.Errorf("ScaledSigmoid(%v) = %v, want %v", c.y, got, c.want)
		}
	}
}

func TestProbation(t *testing.T) {
	for _, c := range []struct{ n, want int }{{0, 0}, {3, 0}, {100, 15}, {4000, 600}, {5000, 750}, {20000, 750}} {
		if got := Probation(c.n); got != c.want {
			t.Errorf("Probation(%d) = %d, want %d", c.n, got, c.want)
		}
	}
}

// TestScoreByHand checks scores worked out by hand on a 100-row file
// with one 10-row window at rows 50..59 (probation: rows 0..14).
func TestScoreByHand(t *testing.T) {
	std := Profiles()[0]
	mid := sigma(-0.5) / sigma(-1) // detection halfway: 0.85980
	after := sigma(11.0/9) * 0.11  // an FP 11 rows after the window's end
	cases := []struct {
		name      string
		at        map[int]float64
		raw       float64
		threshold float64
		score     float64
	}{
		{"first row of window", map[int]float64{50: 1}, 1, 1, 100},
		{"halfway", map[int]float64{55: 1}, mid, 1, 100 * (mid + 1) / 2},
		{"last row of window", map[int]float64{59: 1}, sigma(-0.1) / sigma(-1), 1, 100 * (sigma(-0.1)/sigma(-1) + 1) / 2},
		{"false positive only: better not to detect", map[int]float64{30: 1}, -1, 1.1, 0},
		{"detection in probation is ignored", map[int]float64{5: 1}, -1, 1.1, 0},
		{"threshold between a hit and a false alarm", map[int]float64{55: 0.9, 30: 0.8, 70: 1}, mid + after, 0.9, 100 * (mid + after + 1) / 2},
		{"earliest detection counts", map[int]float64{52: 0.5, 57: 0.9}, sigma(-0.8) / sigma(-1), 0.5, 100 * (sigma(-0.8)/sigma(-1) + 1) / 2},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			corp := oneFile(t, 100, [2]int{50, 59})
			r, err := corp.Score(detections(100, c.at), std)
			if err != nil {
				t.Fatal(err)
			}
			if math.Abs(r.Raw-c.raw) > 1e-12 || r.Threshold != c.threshold || math.Abs(r.Score-c.score) > 1e-9 {
				t.Errorf("raw %v threshold %v score %v, want %v %v %v", r.Raw, r.Threshold, r.Score, c.raw, c.threshold, c.score)
			}
			if r.Null != -1 || r.Perfect != 1 {
				t.Errorf("null %v perfect %v, want -1 and 1", r.Null, r.Perfect)
			}
		})
	}
}

// TestFalsePositiveWeights checks the cost of a false positive before any
// window (-fp) for each profile, and the doubled miss of reward_low_FN.
func TestFalsePositiveWeights(t *testing.T) {
	// Two windows; the first found at its first row, the second missed; a
	// false alarm before the first window at the same score.
	corp := oneFile(t, 200, [2]int{100, 109}, [2]int{150, 159})
	s := detections(200, map[int]float64{100: 1, 40: 1})
	for _, p := range Profiles() {
		r, err := corp.Score(s, p)
		if err != nil {
			t.Fatal(err)
		}
		want := 1 - p.FP - p.FN
		if math.Abs(r.Raw-want) > 1e-12 {
			t.Errorf("%s: raw %v, want %v", p.Name, r.Raw, want)
		}
		if r.Detected != 1 || r.FP != 1 || r.Windows != 2 {
			t.Errorf("%s: detected %d fp %d windows %d, want 1 1 2", p.Name, r.Detected, r.FP, r.Windows)
		}
	}
}

// TestRepeatedTimestamps checks NAB's rule for files that repeat
// timestamps: a window ends at the first row carrying its end time.
func TestRepeatedTimestamps(t *testing.T) {
	f := &File{Path: "cat/f.csv"}
	for i := range 20 {
		ts := t0.Add(time.Duration(i) * time.Minute)
		if i >= 10 && i < 13 {
			ts = t0.Add(10 * time.Minute) // rows 10, 11, 12 share a time
		}
		f.Times = append(f.Times, ts)
		f.Values = append(f.Values, 0)
	}
	f.Windows = []Window{{Start: t0.Add(8 * time.Minute), End: t0.Add(10 * time.Minute)}}
	if err := f.index(); err != nil {
		t.Fatal(err)
	}
	if f.spans[0] != [2]int{8, 10} {
		t.Errorf("span %v, want [8 10]", f.spans[0])
	}
}

// TestBreakdownAddsUp checks that the per-file parts of a score add up to
// the corpus score at the same threshold.
func TestBreakdownAddsUp(t *testing.T) {
	c := loadKit(t)
	s, err := c.LoadResults(filepath.Join(kitDir(), "results"), "numenta")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range Profiles() {
		r, err := c.Score(s, p)
		if err != nil {
			t.Fatal(err)
		}
		parts, err := c.Breakdown(s, p, r.Threshold)
		if err != nil {
			t.Fatal(err)
		}
		var raw float64
		var det, fp int
		for _, fr := range parts {
			raw += fr.Raw
			det += fr.Detected
			fp += fr.FP
		}
		if math.Abs(raw-r.Raw) > 1e-9 || det != r.Detected || fp != r.FP {
			t.Errorf("%s: breakdown raw %v detected %d fp %d, corpus %v %d %d", p.Name, raw, det, fp, r.Raw, r.Detected, r.FP)
		}
	}
}
