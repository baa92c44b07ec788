package nab

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"slices"
)

// Profile is one of NAB's application profiles: the weights of a true
// positive, a false positive and a false negative (config/profiles.json).
type Profile struct {
	Name       string
	TP, FP, FN float64
}

// Profiles returns NAB's three profiles.
func Profiles() []Profile {
	return []Profile{
		{Name: "standard", TP: 1, FP: 0.11, FN: 1},
		{Name: "reward_low_FP_rate", TP: 1, FP: 0.22, FN: 1},
		{Name: "reward_low_FN_rate", TP: 1, FP: 0.11, FN: 2},
	}
}

// ProbationPercent is the share of each file, from its start, that is not
// scored while detectors learn.
const ProbationPercent = 0.15

// Probation is the number of leading rows of an n-row file that are not
// scored: ⌊0.15·n⌋, at most 0.15·5000 = 750 (nab/sweeper.py).
func Probation(n int) int {
	return min(int(math.Floor(ProbationPercent*float64(n))), int(ProbationPercent*5000))
}

// ScaledSigmoid is NAB's reward for a detection at relative position y: y
// runs from -1 at a window's left edge to 0 at its right edge, then counts
// window lengths past it.
//
//	σₛ(y) = 2/(1 + e^(5y)) - 1    (y < 3),   -1 for y ≥ 3
//
// so σₛ(-1) = 0.98661, σₛ(-0.5) = 0.84828, σₛ(0) = 0 and σₛ(1) = -0.98661.
func ScaledSigmoid(y float64) float64 {
	if y >= 3 {
		return -1
	}
	return 2/(1+math.Exp(5*y)) - 1
}

// point is one scorable row: its anomaly score, what detecting it is worth
// (its sweep score) and the window it lies in (-1 for none).
type point struct {
	score  float64
	sweep  float64
	window int
}

// sweep turns every scorable row of the corpus into a point, following
// nab/sweeper.py's calcSweepScore: a row inside a window is worth
// tp·σₛ(-(end-i+1)/width)/σₛ(-1), so the earliest row is worth tp; a row
// outside is worth fp·σₛ(|i-end'|/(width'-1)) after a window (end',
// width') and -fp before any. Rows in the probationary period are left out,
// and a window left without a scorable row can be neither found nor
// missed. It returns the points and the number of windows.
func (c *Corpus) sweep(s Scores, p Profile) ([]point, int, error) {
	var pts []point
	nwin := 0
	maxTP := ScaledSigmoid(-1)
	for _, f := range c.Files {
		scores, ok := s[f.Path]
		if !ok {
			return nil, 0, fmt.Errorf("no scores for %s", f.Path)
		}
		if len(scores) != len(f.Times) {
			return nil, 0, fmt.Errorf("%s: %d scores for %d rows", f.Path, len(scores), len(f.Times))
		}
		prob := Probation(len(f.Times))
		cur, prev := -1, -1 // window index in f.spans
		for i, sc := range scores {
			if math.IsNaN(sc) {
				return nil, 0, fmt.Errorf("%s: row %d: anomaly score is NaN", f.Path, i)
			}
			if cur < 0 && prev+1 < len(f.spans) && i == f.spans[prev+1][0] {
				cur = prev + 1
			}
			var w float64
			win := -1
			if cur >= 0 {
				sp := f.spans[cur]
				width := float64(sp[1] - sp[0] + 1)
				w = ScaledSigmoid(-float64(sp[1]-i+1)/width) * p.TP / maxTP
				win = nwin + cur
			} else if prev < 0 {
				w = -p.FP
			} else {
				sp := f.spans[prev]
				width := float64(sp[1] - sp[0] + 1)
				pos := math.Inf(1)
				if width > 1 {
					pos = math.Abs(float64(sp[1]-i)) / (width - 1)
				}
				w = ScaledSigmoid(pos) * p.FP
			}
			if i >= prob {
				pts = append(pts, point{score: sc, sweep: w, window: win})
			}
			if cur >= 0 && i == f.spans[cur][1] {
				prev, cur = cur, -1
			}
		}
		nwin += len(f.spans)
	}
	return pts, nwin, nil
}

// Result is a detector's score on a corpus for one profile.
type Result struct {
	Profile string
	// Threshold is the anomaly-score threshold that maximises Raw over
	// the corpus: a row is a detection when its score is >= Threshold.
	Threshold float64
	// Raw is NAB's unnormalised score at that threshold.
	Raw float64
	// Null and Perfect are the raw scores of the null detector and of a
	// perfect one, and Score = 100·(Raw-Null)/(Perfect-Null).
	Null, Perfect, Score float64
	// Detected counts the windows with a detection, FP the detections
	// outside windows, Windows all windows.
	Detected, FP, Windows int
}

type optimum struct {
	threshold, raw float64
	detected, fp   int
}

// optimize finds the threshold that maximises the corpus score, as
// nab/sweeper.py's calcScoreByThreshold and nab/optimizer.py do: sweep the
// points from the highest anomaly score down; a window's part is -fn until
// its first detection and then the best sweep score found in it (that of
// its earliest detection); false positives add up. Every distinct score is
// a candidate threshold, as is 1.1 (no detection at all); on a tie the
// higher threshold wins.
func optimize(pts []point, nwin int, p Profile) optimum {
	// Sorting the points themselves: equal scores form one threshold, so
	// their order within it does not matter.
	order := slices.Clone(pts)
	slices.SortFunc(order, func(a, b point) int { return cmp.Compare(b.score, a.score) })
	part := make([]float64, nwin)
	has := make([]bool, nwin)
	for _, q := range pts {
		if q.window >= 0 && !has[q.window] {
			has[q.window] = true
		}
	}
	total := 0.0
	for w := range part {
		if has[w] {
			part[w] = -p.FN
			total -= p.FN
		}
	}
	best := optimum{threshold: 1.1, raw: total}
	found := make([]bool, nwin)
	detected, fp := 0, 0
	for k := 0; k < len(order); {
		th := order[k].score
		for ; k < len(order) && order[k].score == th; k++ {
			q := order[k]
			if q.window < 0 {
				total += q.sweep
				fp++
				continue
			}
			if !found[q.window] {
				found[q.window] = true
				detected++
			}
			if q.sweep > part[q.window] {
				total += q.sweep - part[q.window]
				part[q.window] = q.sweep
			}
		}
		if total > best.raw {
			best = optimum{threshold: th, raw: total, detected: detected, fp: fp}
		}
	}
	return best
}

// nullScore is the anomaly score NAB's null detector gives every row.
const nullScore = 0.5

// Score scores a detector on the corpus for one profile: the best corpus
// threshold, the raw score there, and the score normalised between NAB's
// null detector (a constant 0.5, optimised the same way) and a perfect
// detector (tp for every window of the corpus), as nab/runner.py's
// normalize does.
func (c *Corpus) Score(s Scores, p Profile) (Result, error) {
	pts, nwin, err := c.sweep(s, p)
	if err != nil {
		return Result{}, err
	}
	best := optimize(pts, nwin, p)
	nb, err := c.nullOptimum(p)
	if err != nil {
		return Result{}, err
	}
	perfect := float64(nwin) * p.TP
	if perfect-nb.raw <= 0 {
		return Result{}, errors.New("the corpus has no anomaly windows: scores can't be normalised")
	}
	return Result{
		Profile:   p.Name,
		Threshold: best.threshold,
		Raw:       best.raw,
		Null:      nb.raw,
		Perfect:   perfect,
		Score:     100 * (best.raw - nb.raw) / (perfect - nb.raw),
		Detected:  best.detected,
		FP:        best.fp,
		Windows:   nwin,
	}, nil
}

// nullOptimum is the null detector's optimum for profile p, computed once
// per corpus.
func (c *Corpus) nullOptimum(p Profile) (optimum, error) {
	c.nullMu.Lock()
	defer c.nullMu.Unlock()
	if o, ok := c.null[p]; ok {
		return o, nil
	}
	null := make(Scores, len(c.Files))
	for _, f := range c.Files {
		ns := make([]float64, len(f.Times))
		for i := range ns {
			ns[i] = nullScore
		}
		null[f.Path] = ns
	}
	pts, nwin, err := c.sweep(null, p)
	if err != nil {
		return optimum{}, err
	}
	o := optimize(pts, nwin, p)
	if c.null == nil {
		c.null = make(map[Profile]optimum)
	}
	c.null[p] = o
	return o, nil
}

// ScoreAll scores a detector for every profile, in Profiles order.
func (c *Corpus) ScoreAll(s Scores) ([]Result, error) {
	var out []Result
	for _, p := range Profiles() {
		r, err := c.Score(s, p)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, nil
}

// FileResult is one file's share of a corpus score at a given threshold.
type FileResult struct {
	Path string
	// Raw is the file's part of the corpus raw score.
	Raw float64
	// Detected counts the windows found, Windows all of them, FP the
	// detections outside windows; First holds, per window, the row of its
	// earliest detection or -1.
	Detected, Windows, FP int
	First                 []int
}

// Breakdown scores each file at a fixed threshold (a detection is a
// score >= threshold), showing where a detector gains and loses points.
// Its Raw values add up to the corpus raw score at that threshold.
func (c *Corpus) Breakdown(s Scores, p Profile, threshold float64) ([]FileResult, error) {
	var out []FileResult
	for _, f := range c.Files {
		one := &Corpus{Files: []*File{f}}
		pts, nwin, err := one.sweep(s, p)
		if err != nil {
			return nil, err
		}
		fr := FileResult{Path: f.Path, Windows: nwin, First: make([]int, nwin)}
		part := make([]float64, nwin)
		has := make([]bool, nwin)
		for _, q := range pts {
			if q.window >= 0 {
				has[q.window] = true
			}
		}
		for w := range part {
			fr.First[w] = -1
			if has[w] {
				part[w] = -p.FN
			}
		}
		prob := Probation(len(f.Times))
		for k, q := range pts {
			if q.score < threshold {
				continue
			}
			if q.window < 0 {
				fr.Raw += q.sweep
				fr.FP++
				continue
			}
			if fr.First[q.window] < 0 {
				fr.First[q.window] = prob + k
				fr.Detected++
			}
			part[q.window] = max(part[q.window], q.sweep)
		}
		for _, v := range part {
			fr.Raw += v
		}
		out = append(out, fr)
	}
	return out, nil
}
