// Package anomaly scores time series for anomalies, one sample at a time.
//
// Every detector here is streaming and causal: the score of the sample at
// time t is computed from the samples up to and including t only, and
// feeding more samples never changes a score already returned. Each
// detector keeps a bounded amount of state per series (fixed-size windows,
// fixed-size seasonal profiles, O(1) running sums), so thousands of series
// can be scored side by side.
//
// A detector is created per series and fed with Update:
//
//	e := anomaly.NewEnsemble(anomaly.Config{})
//	for _, p := range samples {
//		r := e.Update(p.T, p.V) // r.Score in [0,1], r.Expected, r.Lower, r.Upper
//	}
//
// or a whole slice at once with Score.
//
// # Sample interval
//
// Samples should come at a roughly regular step, but the step need not be
// configured: it is inferred from the timestamps (the median of recent gaps),
// so a NAB file at 5-minute steps and a Prometheus series scraped every 15 s
// both work. Windows are counted in samples; seasonal profiles are keyed by
// the time of day and of week, so they need no step at all. A gap (no sample
// for several steps) is simply skipped over. Samples whose timestamp is not
// after the previous one are ignored, as are NaN and ±Inf values (Prometheus
// stale markers are NaN); such calls return a zero score. Values beyond
// ±1e100 are clipped to it, so no sum of squares can overflow.
//
// # Scores
//
// Every detector works in two stages. A model (robust baseline, Skyline,
// seasonal profiles, KS test, CUSUM, or the ensemble's set of them)
// computes raw statistics for each sample — how far it is from what the
// model expected, in the model's own units — together with the expected
// value and a band. The calibrator then judges each statistic by how rare
// that value is in the statistic's own recent history (the last 4000
// values, kept as per-block extremes), as a tail probability p, and the
// score is
//
//	U = max over statistics of weight · -log10 p
//	score = 1 - 10^(-U/4.9485)
//
// so a score means the same thing on any series: 0.9, the project's
// alerting threshold (AlertScore), is a value about 10⁻⁵ rare for this
// series at the default weight of 1 — beyond anything in the statistic's
// history by a clear margin, not merely a new record. After an alarm the
// scores are halved for as long as the incident goes on and 120 samples
// after (the hold), so one incident raises one alarm; but a fresh alarm
// more surprising than anything of the incident held, or one that would
// alarm even against the incident's alarms of the last 16 samples, or one
// that comes more than 16 quiet samples after the last, is a new incident
// and is not damped. A score is in [0,1] and never NaN; it is 0 until the model is
// warm (Result.Warm).
//
// # Young series
//
// The ensemble scores a series from its 10th sample. Until the other
// statistics have histories of their own (about 50 samples), a sample is
// judged against the samples seen so far, as the next draw of a normal
// sample of that size (Student's t): a young score says how far a value
// is from the few seen, in their spread. It cannot know yet whether the
// series has heavy tails, so a young heavy-tailed series alarms more often
// (about 6 per 10,000 samples on Laplace noise, none on Gaussian).
//
// The expected value and the band [Lower, Upper] (about ±4 standard
// deviations) are for dashboards to draw; the ensemble takes them from the
// seasonal model once it has learnt a season, else from the robust
// baseline.
//
// # Quality and cost
//
// Quality is measured on two benchmarks (`go tool mage nab` and `go tool
// mage anomalybench`; the README gives the figures): the Numenta Anomaly
// Benchmark, where no constant of the ensemble is fitted (the mage target
// also cross-validates what fitting the one shared weight would give),
// and a generated Prometheus-shaped corpus with labelled anomalies of ten
// kinds and healthy series, where false alarms are counted. A value that
// sets a new record by a small margin does not alarm, so a steady trend or
// a daily cycle not yet learnt is quiet; what stays hard is an incident
// soon after another of the same statistic, which the first made look
// less rare (its values are part of the history for 4000 samples). An
// Ensemble holds about 31 KB per series once warm (most of it the
// calibrator's tails and the windows of recent values) and allocates
// nothing per Update then. Its state can be saved and restored (Stateful).
package anomaly

import (
	"fmt"
	"math"
	"time"
)

// Point is one sample: a Unix timestamp in milliseconds, as Prometheus
// stores it, and a value.
type Point struct {
	T int64
	V float64
}

// Result is what a detector says about one sample.
type Result struct {
	// Value is the value scored: the sample's value, or for a counter the
	// per-second rate since the previous sample (a decrease read as a
	// reset from zero), clamped to ±1e100. It is NaN when nothing was
	// scored: a sample that is not finite or not newer than the last, and
	// a counter's first sample, which has no rate yet.
	Value float64
	// Score is in [0,1]: 0 normal, 1 as anomalous as the detector can say.
	// It is 0 while the detector is not Warm.
	Score float64
	// Expected is the value the detector expected at this time (for a
	// counter, the expected per-second rate).
	Expected float64
	// Lower and Upper bound the values the detector considers normal.
	// Lower <= Expected <= Upper, all finite.
	Lower, Upper float64
	// Warm is false while the detector has seen too few samples to judge.
	Warm bool
}

// Config tunes a detector. The zero value is a good default for any series.
type Config struct {
	// Step is the expected interval between samples. Zero means infer it
	// from the timestamps.
	Step time.Duration
	// Counter marks the series as a Prometheus counter: detectors score its
	// per-second rate of increase, and a decrease is a counter reset, not an
	// anomaly.
	Counter bool
	// Weights are the ensemble's statistic weights; nil means
	// DefaultWeights. Other detectors ignore them.
	Weights *Weights
}

// Detector scores one series. It is not safe for concurrent use; use one
// per series.
type Detector interface {
	// Update feeds the sample (t in Unix milliseconds, v) and returns its
	// score. Samples must come in time order; others are ignored.
	Update(t int64, v float64) Result
}

// Detector names accepted by New. NameEnsemble is the one to use; the
// others are single models, each with the same calibrated score, exposed
// for benchmarking and for series where only one model makes sense. All
// but Skyline are parts of the ensemble.
const (
	NameMAD         = "mad"
	NameSkyline     = "skyline"
	NameSeasonal    = "seasonal"
	NameKS          = "ks"
	NameChangepoint = "changepoint"
	NameEnsemble    = "ensemble"
)

// Names lists every detector New can build, the ensemble last.
func Names() []string {
	return []string{NameMAD, NameSkyline, NameSeasonal, NameKS, NameChangepoint, NameEnsemble}
}

// New returns a fresh detector by name (see Names).
func New(name string, cfg Config) (Detector, error) {
	switch name {
	case NameMAD:
		return newFront(cfg, newMAD()), nil
	case NameSkyline:
		return newFront(cfg, newSkyline()), nil
	case NameSeasonal:
		return newFront(cfg, newSeasonal()), nil
	case NameKS:
		return newFront(cfg, newKS()), nil
	case NameChangepoint:
		return newFront(cfg, newChangepoint()), nil
	case NameEnsemble:
		return NewEnsemble(cfg), nil
	}
	return nil, fmt.Errorf("unknown detector %q (want one of %v)", name, Names())
}

// Score runs a fresh detector over pts in order and returns one Result per
// point. Because the detector is causal, Score(cfg, pts[:n]) is a prefix of
// Score(cfg, pts).
func Score(d Detector, pts []Point) []Result {
	out := make([]Result, len(pts))
	for i, p := range pts {
		out[i] = d.Update(p.T, p.V)
	}
	return out
}

// model is what every detector implements behind the shared front end: it
// sees only clean samples (finite values, increasing timestamps, counters
// already turned into rates). For each sample it returns the value it
// expected and its band, and writes its raw statistics — how far the
// sample is from what it expected, in its own units — into st, one per
// entry of specs (NaN while a statistic is undefined). The calibrator turns
// the statistics into the score.
type model interface {
	update(s sample, st []float64) Result
	specs() []statSpec
}

// statSpec describes one raw statistic of a model.
type statSpec struct {
	// weight scales the statistic's surprise before the maximum is taken.
	weight float64
	// twoSided is set when unusually low values are as anomalous as high
	// ones (a level), unset for statistics that only grow with trouble
	// (a test statistic).
	twoSided bool
	// surprise is set for a statistic that is already a surprise,
	// -log10 of a tail probability, rather than a value to judge against
	// its own history.
	surprise bool
	// unit is the statistic's resolution (1 for a count), the least scale
	// of its tail: a count one beyond its record is not infinitely rare.
	unit float64
	// run is set for a statistic that is the length of a run still going
	// (1 when a new one starts): its history holds completed runs only,
	// so a run that goes on is not judged against its own start.
	run bool
}

// sample is a clean input to a model.
type sample struct {
	t    int64   // Unix milliseconds
	v    float64 // finite value (rate for counters)
	step int64   // current estimate of the sample interval, milliseconds; 0 before the second sample
	gap  bool    // true when this sample follows a gap of several steps
}

// clampScore maps any float to a valid score: NaN becomes 0.
func clampScore(s float64) float64 {
	if !(s > 0) {
		return 0
	}
	if s > 1 {
		return 1
	}
	return s
}

// finite reports whether f is neither NaN nor infinite.
func finite(f float64) bool { return !math.IsNaN(f) && !math.IsInf(f, 0) }
