package anomaly

import (
	"math"
	"slices"

	"github.com/telltale-dev/telltale/pkg/schema"
)

const (
	// alertSurprise is the weighted surprise that scores 0.9, the
	// project's alerting threshold: with a statistic's usual weight of
	// 1.25 it is a tail probability of about 1e-4, a value more extreme
	// than any of the tailHistory before it by a clear margin.
	alertSurprise = 4.9485
	// holdSamples is how long, in samples, an alert holds: the samples
	// after it score half of what they would, so one incident raises one
	// alert rather than a burst of them, and a sample that would have
	// alerted during the hold extends it, so an incident that goes on (a
	// level that keeps setting records, a steady trend) stays one alert
	// until it has been quiet for holdSamples. Earthgecko Skyline does the
	// like with its EXPIRATION_TIME.
	holdSamples = 120
	// incidentGap is how many quiet samples separate two incidents: an
	// alarm that comes later than that after the last one is a new
	// incident, even while the hold lasts. Closer alarms are one
	// incident, echoing through the ensemble's windowed statistics
	// (16 to 64 samples long).
	incidentGap = 16
	// holdDamping is what scores are multiplied by during a hold.
	holdDamping = 0.5
)

// calibrator turns a model's raw statistics into one score in [0,1]. Each
// statistic's value is judged against that statistic's own history (a
// tail), which makes statistics of any unit, and series of any scale,
// comparable: the weighted surprise of statistic i is
//
//	uᵢ = wᵢ · -log10 pᵢ
//
// with pᵢ its tail probability (upper tail, or the rarer of both tails for
// two-sided statistics), the series' surprise is U = maxᵢ uᵢ, and
//
//	score = 1 - 10^(-U/alertSurprise)
//
// so that U = alertSurprise scores 0.9. This is the "anomaly likelihood"
// idea of Numenta's detectors (Ahmad et al., "Unsupervised real-time
// anomaly detection for streaming data", Neurocomputing 2017): score the
// rarity of a detector's output for this series rather than the output
// itself. Once a score reaches 0.9 the following scores are damped by
// holdDamping until holdSamples have passed without another 0.9, so an
// incident alerts once.
type calibrator struct {
	specs []statSpec
	// tails holds the history of each statistic judged against it; a
	// statistic that is a surprise already has none (nil).
	tails   []*tail
	runs    []float64 // the last value of each run statistic
	u       []float64 // the last sample's unweighted surprises
	hold    int
	holdLen int
	// peak is the largest weighted surprise of the incident held;
	// recent holds the weighted surprise of each of the last incidentGap
	// samples that alarmed (0 for those that did not), at recent[at]
	// the oldest. alarming is whether the last sample alarmed, before
	// damping.
	peak     float64
	recent   [incidentGap]float64
	at       int
	alarming bool
}

func newCalibrator(specs []statSpec) *calibrator {
	c := &calibrator{specs: specs, tails: make([]*tail, len(specs)), runs: make([]float64, len(specs)), u: make([]float64, len(specs)), holdLen: holdSamples}
	// One array for the tails: one allocation.
	n := 0
	for _, sp := range specs {
		if !sp.surprise {
			n++
		}
	}
	all := make([]tail, n)
	for i, sp := range specs {
		if !sp.surprise {
			c.tails[i], all = &all[0], all[1:]
			c.tails[i].unit = sp.unit
		}
	}
	return c
}

// score judges the statistics st of one sample, then adds them to their
// histories. warm=false scores 0 but still learns.
func (c *calibrator) score(st []float64, warm bool) float64 {
	c.surprises(st)
	return c.judge(c.u, warm)
}

// surprises sets c.u to each statistic's unweighted surprise -log10 p
// (0 while it is undefined), then adds the statistics to their histories.
func (c *calibrator) surprises(st []float64) {
	for i, x := range st {
		c.u[i] = 0
		if math.IsNaN(x) {
			continue
		}
		if c.specs[i].surprise {
			c.u[i] = max(x, 0)
			continue
		}
		if c.specs[i].run {
			c.u[i] = c.runSurprise(i, x)
			continue
		}
		c.u[i] = c.tails[i].rarity(x, c.specs[i].twoSided)
		c.tails[i].push(x)
	}
}

// runSurprise judges x, the length of a run still going, against the
// completed runs of statistic i, and adds a run to them once it ends (x
// is 1 again). A run is judged only on its first two values beyond twice
// the longest completed run, so one run that goes on is one incident, not
// a new surprise at every sample.
func (c *calibrator) runSurprise(i int, x float64) float64 {
	t := c.tails[i]
	if x == 1 && c.runs[i] > 0 {
		t.push(c.runs[i])
	}
	c.runs[i] = x
	// A run must be twice as long as the longest the series has had, as
	// a value must beat its record by a clear margin: a series whose
	// values repeat now and then sets a new longest run by one sample
	// every so often, and that is not a stuck value.
	if lim := 2 * t.record(); x <= lim || x > lim+2 {
		return 0
	}
	return t.rarity(x, false)
}

// judge turns unweighted surprises into the score, with the hold.
func (c *calibrator) judge(us []float64, warm bool) float64 {
	var u float64
	for i, x := range us {
		if w := c.specs[i].weight * x; w > u {
			u = w
		}
	}
	if !warm {
		return 0
	}
	s := clampScore(-math.Expm1(-u / alertSurprise * math.Ln10))
	alarm := s >= AlertScore
	onset := alarm && !c.alarming
	c.alarming = alarm
	// echo is the largest surprise among the last incidentGap samples'
	// alarms: what a fresh alarm could be an echo of.
	echo := 0.0
	if onset && c.hold > 0 {
		echo = slices.Max(c.recent[:])
	}
	c.recent[c.at] = 0
	if alarm {
		c.recent[c.at] = u
	}
	c.at = (c.at + 1) % incidentGap
	if c.hold > 0 {
		c.hold--
		if onset && (u > c.peak || u-echo >= alertSurprise || c.holdLen-c.hold > incidentGap) {
			// A new incident, which the hold must not hide: a fresh
			// alarm more surprising than anything of the incident held,
			// or one that would alarm even against the incident's
			// recent alarms (an incident's first alarm, however
			// surprising, does not make every later one look small), or
			// one after incidentGap quiet samples.
			c.hold, c.peak = c.holdLen, u
			return s
		}
		if alarm {
			// Still alarming: the same incident goes on.
			c.hold, c.peak = c.holdLen, max(c.peak, u)
		}
		return s * holdDamping
	}
	if alarm {
		c.hold, c.peak = c.holdLen, u
	}
	return s
}

// AlertScore is the alerting threshold of a score: a score at or above it
// is an alarm. It means the same on every series (see the package doc);
// the contract between the parts (pkg/schema) defines it.
const AlertScore = schema.AlertScore
