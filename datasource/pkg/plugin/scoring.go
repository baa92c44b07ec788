package plugin

import (
	"context"
	"math"
	"runtime"
	"time"

	"github.com/prometheus/common/model"
	"golang.org/x/sync/errgroup"

	"github.com/telltale-dev/telltale/pkg/anomaly"
)

// Scoring on demand: a series is put on the query's step grid (the last raw
// sample of each step, the way a range query picks it) and fed to a fresh
// anomaly.Ensemble, starting a warm-up period before the range so the first
// scores shown already rest on history.
const (
	// warmupSteps is how many steps of history before the range the
	// ensemble sees, bounded by minWarmup and maxWarmup.
	warmupSteps = 200
	minWarmup   = time.Hour
	maxWarmup   = 7 * 24 * time.Hour
	// lookback is how long a sample stands for the steps after it with no
	// sample of their own: Prometheus's default lookback delta.
	lookback = 5 * time.Minute
	// AlertThreshold is the documented score threshold for alerting.
	AlertThreshold = anomaly.AlertScore
)

// warmup is how much history before a range on-demand scoring reads.
func warmup(step time.Duration) time.Duration {
	return min(max(warmupSteps*step, minWarmup), maxWarmup)
}

// warmStart is where on-demand scoring of q starts reading: a warm-up
// before the range (q.warm when set, else warmup(q.Step)), shortened so
// that a range query over it still stays within Prometheus's limit of
// points per series.
func (q Query) warmStart() time.Time {
	room := time.Duration(maxPointsPerSeries-1)*q.Step - q.To.Sub(q.From)
	w := warmup(q.Step)
	if q.warm > 0 {
		w = q.warm
	}
	return q.From.Add(-max(min(w, room), 0))
}

// grid is the timeline of a range query: start, start+step, … up to end.
type grid struct {
	start, step int64 // Unix milliseconds
	n           int
}

// newGrid returns the grid of a range query over [start, end] at step.
func newGrid(start, end time.Time, step time.Duration) grid {
	g := grid{start: start.UnixMilli(), step: step.Milliseconds()}
	if g.step <= 0 {
		g.step = 1000
	}
	if span := end.UnixMilli() - g.start; span >= 0 {
		g.n = int(span/g.step) + 1
	}
	return g
}

// at returns the time of point i in Unix milliseconds.
func (g grid) at(i int) int64 { return g.start + int64(i)*g.step }

// times returns the times of the grid's points. The series put on one grid
// share them (nothing writes to a band series' Times).
func (g grid) times() []time.Time {
	t := make([]time.Time, g.n)
	for i := range t {
		t[i] = time.UnixMilli(g.at(i)).UTC()
	}
	return t
}

// bucket returns the index of the grid point a sample at t counts for: the
// first point at or after t, so point i holds the samples in
// (at(i-1), at(i)]. It is -1 or n for samples outside the grid.
func (g grid) bucket(t int64) int {
	if t <= g.start {
		if t == g.start {
			return 0
		}
		return -1
	}
	i := int((t - g.start + g.step - 1) / g.step)
	return min(i, g.n)
}

// stepSeries is a series put on a grid: for each point, the last raw sample
// of its step, if any.
type stepSeries struct {
	labels model.Metric
	t      []int64 // raw timestamp of the sample kept, 0 when none
	v      []float64
}

func newStepSeries(labels model.Metric, n int) *stepSeries {
	return &stepSeries{labels: labels, t: make([]int64, n), v: make([]float64, n)}
}

// values returns the finite values of the steps [from, to) that have a
// sample.
func (s *stepSeries) values(from, to int) []float64 {
	to = min(to, len(s.v))
	var out []float64
	for i := max(from, 0); i < to; i++ {
		if s.t[i] != 0 && !math.IsNaN(s.v[i]) && !math.IsInf(s.v[i], 0) {
			out = append(out, s.v[i])
		}
	}
	return out
}

// add files a raw sample; samples come in time order, so the last one of a
// step wins.
func (s *stepSeries) add(g grid, t int64, v float64) {
	i := g.bucket(t)
	if i < 0 || i >= g.n {
		return
	}
	s.t[i], s.v[i] = t, v
}

// bandSeries is a scored series on a grid, the anomalies query's unit.
// Missing points are NaN.
type bandSeries struct {
	Labels                               model.Metric
	Times                                []time.Time
	Value, Expected, Lower, Upper, Score []float64
	// levels caches the level before each point (see levelBefore).
	levels map[levelKey]refLevel
}

// newBandSeries returns a band series of n NaN points at zero times.
func newBandSeries(labels model.Metric, n int) *bandSeries {
	return bandSeriesAt(labels, make([]time.Time, n))
}

// bandSeriesAt returns a band series of NaN points at the given times,
// which it shares.
func bandSeriesAt(labels model.Metric, times []time.Time) *bandSeries {
	n := len(times)
	// One array for the five columns: one allocation, not five.
	all := make([]float64, 5*n)
	for i := range all {
		all[i] = math.NaN()
	}
	return &bandSeries{Labels: labels, Times: times,
		Value: all[:n:n], Expected: all[n : 2*n : 2*n], Lower: all[2*n : 3*n : 3*n], Upper: all[3*n : 4*n : 4*n], Score: all[4*n:]}
}

// slice returns the points from index i on, at times (the points' times
// from i on, shared with the other series of the grid).
func (b *bandSeries) slice(i int, times []time.Time) *bandSeries {
	i = min(i, len(b.Times))
	// Copies, so that the points before i (a warm-up of up to an hour
	// of steps) are freed.
	out := bandSeriesAt(b.Labels, times)
	copy(out.Value, b.Value[i:])
	copy(out.Expected, b.Expected[i:])
	copy(out.Lower, b.Lower[i:])
	copy(out.Upper, b.Upper[i:])
	copy(out.Score, b.Score[i:])
	return out
}

// scoreSteps runs a fresh ensemble over a step series and returns the band
// series on the same grid. Value is what the ensemble scored (for a
// counter, the per-second rate between the samples kept), which is what its
// band is in. A point with no sample of its own repeats the previous one for
// up to the lookback, as a range query would.
func scoreSteps(g grid, times []time.Time, s *stepSeries, counter bool) *bandSeries {
	det := anomaly.NewEnsemble(anomaly.Config{Step: time.Duration(g.step) * time.Millisecond, Counter: counter})
	out := bandSeriesAt(s.labels, times)
	var (
		last  anomaly.Result
		lastT int64 = math.MinInt64
		lb          = lookback.Milliseconds()
	)
	for i := 0; i < g.n; i++ {
		if t := s.t[i]; t != 0 {
			last, lastT = det.Update(t, s.v[i]), t
		}
		if lastT == math.MinInt64 || g.at(i)-lastT > lb {
			continue
		}
		out.Value[i] = last.Value
		if last.Warm {
			out.Score[i] = last.Score
			out.Expected[i], out.Lower[i], out.Upper[i] = last.Expected, last.Lower, last.Upper
		}
	}
	return out
}

// scoreAll scores step series in parallel, one ensemble each, and keeps
// the points from index from on (all of them when from is 0). It takes the
// step series: each is dropped once scored.
func scoreAll(ctx context.Context, g grid, in []*stepSeries, counter func(model.Metric) bool, from int) ([]*bandSeries, error) {
	out := make([]*bandSeries, len(in))
	times := g.times()
	eg, ctx := errgroup.WithContext(ctx)
	eg.SetLimit(runtime.GOMAXPROCS(0))
	for i, s := range in {
		eg.Go(func() error {
			if err := ctx.Err(); err != nil {
				return err
			}
			b := scoreSteps(g, times, s, counter(s.labels))
			if from > 0 {
				b = b.slice(from, times[min(from, len(times)):])
			}
			// Only what is kept stays: the series' samples and its
			// points before from are freed as it goes.
			out[i], in[i] = b, nil
			return nil
		})
	}
	return out, eg.Wait()
}

// matrixSteps puts the series of a range query answer on its grid.
func matrixSteps(g grid, m model.Matrix) []*stepSeries {
	out := make([]*stepSeries, 0, len(m))
	for _, ss := range m {
		s := newStepSeries(ss.Metric, g.n)
		for _, p := range ss.Values {
			s.add(g, int64(p.Timestamp), float64(p.Value))
		}
		out = append(out, s)
	}
	return out
}
