package anomaly

import "math"

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
	specs   []statSpec
	tails   []tail
	u       []float64 // the last sample's unweighted surprises
	hold    int
	holdLen int
}

func newCalibrator(specs []statSpec) *calibrator {
	return &calibrator{specs: specs, tails: make([]tail, len(specs)), u: make([]float64, len(specs)), holdLen: holdSamples}
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
		c.u[i] = c.tails[i].rarity(x, c.specs[i].twoSided)
		c.tails[i].push(x)
	}
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
	if c.hold > 0 {
		c.hold--
		if s >= AlertScore {
			// Still alarming: the same incident goes on.
			c.hold = c.holdLen
		}
		return s * holdDamping
	}
	if s >= AlertScore {
		c.hold = c.holdLen
	}
	return s
}

// AlertScore is the documented alerting threshold of a score.
const AlertScore = 0.9
