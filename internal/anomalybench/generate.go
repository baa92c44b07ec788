// Package anomalybench generates a Prometheus-shaped anomaly benchmark
// and scores a detector on it. Every series is made from a seed, so the
// corpus is the same bytes on every machine, and every anomaly in it is
// labelled with its kind, where it starts and ends, and its size in
// standard deviations of the series' noise.
//
// # The corpus
//
// Series are scraped every 15 s for 7 days (40,320 samples). Each has a
// shape and a noise:
//
//	shapes  flat: a constant level
//	        daily: a level with a daily cycle (amplitude 3–10σ, random phase)
//	        weekly: a daily cycle whose amplitude drops 60% at weekends
//	        business: a KPI with a strong day/night cycle (night at 15% of
//	                  day) and quieter weekends
//	        trend: a level that grows steadily (5–20σ a day)
//	noises  gaussian; laplace (heavy-tailed); poisson (low integer counts,
//	        mean 4–12); quantised (Gaussian rounded to whole σ); lognormal
//	        (a latency quantile: the shape times e^(0.1·N))
//
// plus counters: a per-second rate (one of the shapes, Gaussian noise)
// accumulated into a counter that resets to 0 a few times a week, scored
// as a rate. About one sample in 500 is missing, and every series has a
// few scrape gaps of 1–5 minutes.
//
// A third of the series have no anomaly. Each of the others has four
// anomalies of one kind, at random times at least 8 hours apart, the
// first after 6 hours:
//
//	spike, dip                one sample ±4–10σ
//	level_shift_up, _down     ±4–10σ for 1–6 hours
//	trend_change              a ramp of 4–10σ per hour for 30–90 minutes
//	variance_change           noise ×4 for 1–6 hours
//	broken_daily_pattern      the daily cycle missing for 6 hours (cycling shapes)
//	stuck_value               the last value repeated for 30–240 minutes (a
//	                          counter stops growing)
//	drop_to_zero              0 for 30–240 minutes
//	disappearance             no samples for 30–240 minutes
//
// Sizes are in σ, the standard deviation of the series' noise at the
// anomaly (for Poisson noise, the square root of the local mean; for
// lognormal, 0.1 times the local median).
package anomalybench

import (
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"strconv"

	"github.com/telltale-dev/telltale/pkg/anomaly"
)

// Kind is a kind of labelled anomaly.
type Kind string

// The anomaly kinds the corpus holds.
const (
	Spike         Kind = "spike"
	Dip           Kind = "dip"
	ShiftUp       Kind = "level_shift_up"
	ShiftDown     Kind = "level_shift_down"
	TrendChange   Kind = "trend_change"
	VarianceUp    Kind = "variance_change"
	BrokenDaily   Kind = "broken_daily_pattern"
	Stuck         Kind = "stuck_value"
	DropToZero    Kind = "drop_to_zero"
	Disappearance Kind = "disappearance"
)

// Kinds lists every kind, in the order reports print them.
func Kinds() []Kind {
	return []Kind{Spike, Dip, ShiftUp, ShiftDown, TrendChange, VarianceUp, BrokenDaily, Stuck, DropToZero, Disappearance}
}

// Anomaly is one labelled anomaly: samples [Start, End) of its series
// (indices into Points) are affected, or for a disappearance Start is the
// first sample after the series came back.
type Anomaly struct {
	Kind       Kind
	Start, End int
	// Size is the anomaly's size in noise standard deviations.
	Size float64
}

// Series is one generated series.
type Series struct {
	Name    string
	Shape   string
	Noise   string
	Counter bool
	Points  []anomaly.Point
	// Anomalies are in time order; none means a healthy series.
	Anomalies []Anomaly
}

// Corpus is a generated benchmark.
type Corpus struct {
	Seed   uint64
	Series []Series
}

const (
	// Step is the scrape interval of every series.
	Step = 15_000 // ms
	// Days is how long every series is.
	Days = 7
	// NumSeries is how many series the corpus has.
	NumSeries = 240
	// start is the first timestamp: a Monday, 00:00 UTC.
	start = 1_700_438_400_000

	samplesPerDay  = 24 * 3600 * 1000 / Step
	samplesPerHour = samplesPerDay / 24
	perSeries      = Days * samplesPerDay
)

var (
	shapes  = []string{"flat", "daily", "weekly", "business", "trend"}
	noises  = []string{"gaussian", "laplace", "poisson", "quantised", "lognormal"}
	cycling = map[string]bool{"daily": true, "weekly": true, "business": true}
)

// Generate makes the corpus for seed.
func Generate(seed uint64) *Corpus {
	c := &Corpus{Seed: seed}
	kinds := Kinds()
	for i := range NumSeries {
		p := plan(seed, i, kinds)
		c.Series = append(c.Series, p.render(true))
	}
	return c
}

// clean renders series i of the corpus without its anomalies, from the
// same random streams: what the series would have been if healthy.
func clean(seed uint64, i int) Series {
	return plan(seed, i, Kinds()).render(false)
}

// spec is everything random about a series, drawn before it is rendered.
type spec struct {
	name, shape, noise string
	counter            bool
	seed               uint64
	level, sigma, amp  float64 // level and noise σ; amp: cycle amplitude in σ
	phase, slope       float64
	kind               Kind
	anoms              []Anomaly // Start/End in sample slots, before missing samples are dropped
}

func plan(seed uint64, i int, kinds []Kind) spec {
	rng := rand.New(rand.NewPCG(seed, uint64(i)))
	s := spec{seed: rng.Uint64()}
	s.shape = shapes[rng.IntN(len(shapes))]
	s.noise = noises[rng.IntN(len(noises))]
	// One series in seven is a counter; its rate has Gaussian noise.
	if i%7 == 3 {
		s.counter, s.noise = true, "gaussian"
	}
	switch s.noise {
	case "poisson":
		s.level = 4 + 8*rng.Float64()
		s.sigma = math.Sqrt(s.level)
	case "lognormal":
		s.level = 0.05 + 0.5*rng.Float64()
		s.sigma = 0.1 * s.level
	default:
		s.level = math.Round(100 * math.Pow(10, 2*rng.Float64()))
		s.sigma = s.level / (8 + 12*rng.Float64())
	}
	s.amp = 3 + 7*rng.Float64()
	s.phase = rng.Float64()
	s.slope = (5 + 15*rng.Float64()) / samplesPerDay
	// Every third series is healthy; the others cycle through the kinds
	// that apply to them.
	if i%3 != 0 {
		k := kinds[(i/3)%len(kinds)]
		if k == BrokenDaily && !cycling[s.shape] {
			s.shape = []string{"daily", "weekly", "business"}[i%3]
		}
		if k == DropToZero && s.noise == "poisson" && s.level < 16 {
			// Zero is too ordinary a count to be an anomaly.
			k = Stuck
		}
		s.kind = k
		at := 6 * samplesPerHour
		for range 4 {
			at += rng.IntN(16 * samplesPerHour)
			a := Anomaly{Kind: k, Start: at, Size: 4 + 6*rng.Float64()}
			switch k {
			case Spike, Dip:
				a.End = at + 1
			case TrendChange:
				a.End = at + samplesPerHour/2 + rng.IntN(samplesPerHour)
			case BrokenDaily:
				a.End = at + 6*samplesPerHour
				a.Size = s.amp
			case Stuck, DropToZero, Disappearance:
				a.End = at + samplesPerHour/2 + rng.IntN(7*samplesPerHour/2)
			default:
				a.End = at + samplesPerHour + rng.IntN(5*samplesPerHour)
			}
			if k == VarianceUp {
				a.Size = 4
			}
			if a.End >= perSeries {
				break
			}
			s.anoms = append(s.anoms, a)
			at = a.End + 8*samplesPerHour
		}
	}
	s.name = fmt.Sprintf("series_%03d_%s_%s", i, s.shape, s.noise)
	if s.counter {
		s.name = fmt.Sprintf("series_%03d_%s_counter_total", i, s.shape)
	}
	return s
}

// base is the noiseless value at slot j.
func (s *spec) base(j int, cycle bool) float64 {
	day := float64(j%samplesPerDay) / samplesPerDay
	weekday := (j / samplesPerDay) % 7 // 0 is Monday
	weekend := weekday >= 5
	c := math.Sin(2 * math.Pi * (day + s.phase))
	if !cycle {
		c = 0
	}
	switch s.shape {
	case "daily":
		return s.floor(s.level + s.amp*s.sigma*c)
	case "weekly":
		if weekend {
			c *= 0.4
		}
		return s.floor(s.level + s.amp*s.sigma*c)
	case "business":
		// Day at the level, night at 15% of it, weekends at 60%.
		f := 0.575 + 0.425*c
		if weekend {
			f *= 0.6
		}
		if !cycle {
			f = 0.575
		}
		return s.level * f
	case "trend":
		return s.level + s.slope*s.sigma*float64(j)
	}
	return s.level
}

// floor keeps a cycle of a positive quantity (counts, latencies) above a
// fifth of its level.
func (s *spec) floor(b float64) float64 {
	if s.noise == "poisson" || s.noise == "lognormal" {
		return math.Max(b, 0.2*s.level)
	}
	return b
}

// render draws the series; with anomalies=false it draws the same series
// without them (and without the samples a disappearance removes).
func (s spec) render(anomalies bool) Series {
	rng := rand.New(rand.NewPCG(s.seed, 1))
	out := Series{Name: s.name, Shape: s.shape, Noise: s.noise, Counter: s.counter}
	var total float64
	resetAt := map[int]bool{}
	for range 2 + rng.IntN(3) {
		resetAt[rng.IntN(perSeries)] = true
	}
	// The first sample of an anomaly is always scraped, in the healthy
	// rendering too, so that both have the same samples around it.
	starts := map[int]bool{}
	for _, a := range s.anoms {
		if a.Kind != Disappearance {
			starts[a.Start] = true
		}
	}
	next := 0 // next anomaly
	var stuckV float64
	var last float64
	gapLeft := 0
	for j := range perSeries {
		// Every random draw happens whatever the anomalies, so the clean
		// and the anomalous series share their noise.
		n := rng.NormFloat64()
		u := rng.Float64()
		missing := rng.Float64() < 0.002
		if rng.Float64() < 2.0/samplesPerDay {
			gapLeft = 4 + rng.IntN(17) // 1–5 minutes
		}
		var a *Anomaly
		for next < len(s.anoms) && s.anoms[next].End <= j {
			next++
		}
		if anomalies && next < len(s.anoms) && s.anoms[next].Start <= j {
			a = &s.anoms[next]
		}
		cycle := !(a != nil && a.Kind == BrokenDaily)
		b := s.base(j, cycle)
		noiseScale := 1.0
		if a != nil && a.Kind == VarianceUp {
			noiseScale = a.Size
		}
		v := s.noisy(b, n, u, noiseScale)
		localSigma := s.sigmaAt(b)
		if a != nil {
			switch a.Kind {
			case Spike, ShiftUp:
				v += a.Size * localSigma
			case Dip, ShiftDown:
				v -= a.Size * localSigma
			case TrendChange:
				v += a.Size * localSigma * float64(j-a.Start+1) / samplesPerHour
			case Stuck:
				if j == a.Start {
					stuckV = last
				}
				v = stuckV
				if s.counter {
					// A stuck counter is one whose value stops growing.
					v = 0
				}
			case DropToZero:
				v = 0
			}
			if s.noise == "poisson" || s.counter {
				v = math.Max(v, 0)
			}
		}
		last = v
		if s.counter {
			// The counter counts whether or not it is scraped.
			if resetAt[j] {
				total = 0
			}
			total += v * Step / 1000
		}
		if a != nil && a.Kind == Disappearance {
			continue
		}
		if starts[j] {
			gapLeft, missing = 0, false
		}
		if gapLeft > 0 {
			gapLeft--
			continue
		}
		if missing {
			continue
		}
		t := int64(start + j*Step)
		if s.counter {
			out.Points = append(out.Points, anomaly.Point{T: t, V: math.Round(total)})
			continue
		}
		out.Points = append(out.Points, anomaly.Point{T: t, V: v})
	}
	if anomalies {
		out.Anomalies = s.indexAnomalies(out.Points)
	}
	return out
}

// noisy adds the series' noise to the base value b.
func (s *spec) noisy(b, n, u, scale float64) float64 {
	switch s.noise {
	case "laplace":
		// Inverse CDF of a Laplace with standard deviation σ.
		l := -math.Copysign(1, u-0.5) * math.Log(1-2*math.Abs(u-0.5)) / math.Sqrt2
		return b + scale*s.sigma*l
	case "poisson":
		return poisson(math.Max(b, 0), n, u, scale)
	case "quantised":
		return math.Round((b+scale*s.sigma*n)/s.sigma) * s.sigma
	case "lognormal":
		return b * math.Exp(0.1*scale*n)
	}
	return b + scale*s.sigma*n
}

// sigmaAt is the noise's standard deviation around the base value b.
func (s *spec) sigmaAt(b float64) float64 {
	switch s.noise {
	case "poisson":
		return math.Sqrt(math.Max(b, 1))
	case "lognormal":
		return 0.1 * b
	}
	return s.sigma
}

// poisson draws a Poisson count of mean m from the uniform u by inverting
// its CDF (exact for the small means of the corpus), widened by scale
// through a normal approximation when scale > 1.
func poisson(m, n, u, scale float64) float64 {
	if scale != 1 {
		return math.Max(0, math.Round(m+scale*math.Sqrt(m)*n))
	}
	p := math.Exp(-m)
	cdf := p
	k := 0.0
	for u > cdf && k < 10*m+50 {
		k++
		p *= m / k
		cdf += p
	}
	return k
}

// indexAnomalies turns the anomalies' slots into indices of the points
// actually written (slots of missing samples have none).
func (s *spec) indexAnomalies(pts []anomaly.Point) []Anomaly {
	idx := func(slot int) int { return indexAt(pts, int64(start+slot*Step)) }
	var out []Anomaly
	for _, a := range s.anoms {
		b := a
		b.Start, b.End = idx(a.Start), idx(a.End)
		if a.Kind == Disappearance {
			b.End = b.Start + 1
		}
		out = append(out, b)
	}
	return out
}

// Write writes the corpus as text: one line per sample, `series,t,v`,
// then one line per anomaly, `#anomaly series,kind,start,end,size`. The
// same seed writes the same bytes.
func (c *Corpus) Write(w io.Writer) error {
	buf := make([]byte, 0, 64)
	for _, s := range c.Series {
		for _, p := range s.Points {
			buf = buf[:0]
			buf = append(buf, s.Name...)
			buf = append(buf, ',')
			buf = strconv.AppendInt(buf, p.T, 10)
			buf = append(buf, ',')
			buf = strconv.AppendFloat(buf, p.V, 'g', -1, 64)
			buf = append(buf, '\n')
			if _, err := w.Write(buf); err != nil {
				return err
			}
		}
		for _, a := range s.Anomalies {
			if _, err := fmt.Fprintf(w, "#anomaly %s,%s,%d,%d,%g\n", s.Name, a.Kind, a.Start, a.End, a.Size); err != nil {
				return err
			}
		}
	}
	return nil
}
