package anomalybench

import (
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
)

// Ideal is what an ideal detector finds of the corpus's one-sample
// anomalies (spikes and dips) at a given false-alarm rate: a detector that
// knows each series' noiseless shape and its noise law exactly, and alarms
// on a sample whose residual r = (value − shape)/σ is beyond the noise's
// two-sided quantile t at that rate (|r| > t on healthy samples at exactly
// that rate, measured on the corpus's own healthy renderings). A one-sample
// anomaly of size s shows as s plus one draw of noise, so at 1 false alarm
// per 10,000 samples a 4σ spike in Gaussian noise (t ≈ 3.9σ) is found only
// about half of the time, and in Laplace noise (t ≈ 6.5σ) hardly ever: no
// per-sample detector that knows less can do better on this corpus. It is
// the ceiling to read the engine's spike and dip recall against. Counter
// series are left out (their rates' noise depends on the scrape times).
type Ideal struct {
	Per10k  float64
	ByNoise []IdealNoise
	// Anomalies and Found count spikes and dips, by kind.
	Anomalies, Found map[Kind]int
}

// IdealNoise is the ideal detector's threshold and finds for one noise.
type IdealNoise struct {
	Noise string
	// Threshold is t, in σ.
	Threshold        float64
	Anomalies, Found int
}

// Recall is the ideal detector's recall of kind k.
func (id *Ideal) Recall(k Kind) float64 {
	if id.Anomalies[k] == 0 {
		return math.NaN()
	}
	return float64(id.Found[k]) / float64(id.Anomalies[k])
}

// IdealPointRecall runs the ideal detector over the corpus of seed at
// per10k false alarms per 10,000 samples.
func IdealPointRecall(seed uint64, per10k float64) *Ideal {
	type point struct {
		kind  Kind
		noise string
		r     float64 // residual in σ, in the anomaly's direction
	}
	resid := map[string][]float64{}
	var anoms []point
	slot := func(t int64) int { return int((t - start) / Step) }
	for i := range NumSeries {
		p := plan(seed, i, Kinds())
		if p.counter {
			continue
		}
		for _, pt := range p.render(false).Points {
			b := p.base(slot(pt.T), true)
			resid[p.noise] = append(resid[p.noise], math.Abs(pt.V-b)/p.sigmaAt(b))
		}
		if p.kind != Spike && p.kind != Dip {
			continue
		}
		s := p.render(true)
		for _, a := range s.Anomalies {
			pt := s.Points[a.Start]
			b := p.base(slot(pt.T), true)
			r := (pt.V - b) / p.sigmaAt(b)
			if a.Kind == Dip {
				r = -r
			}
			anoms = append(anoms, point{a.Kind, p.noise, r})
		}
	}
	id := &Ideal{Per10k: per10k, Anomalies: map[Kind]int{}, Found: map[Kind]int{}}
	for _, n := range noises {
		rs := resid[n]
		if len(rs) == 0 {
			continue
		}
		slices.Sort(rs)
		// The largest t with at most per10k/10⁴ of the residuals above it.
		above := int(math.Floor(float64(len(rs)) * per10k / 1e4))
		t := rs[len(rs)-1-min(above, len(rs)-1)]
		in := IdealNoise{Noise: n, Threshold: t}
		for _, a := range anoms {
			if a.noise != n {
				continue
			}
			in.Anomalies++
			id.Anomalies[a.kind]++
			if a.r > t {
				in.Found++
				id.Found[a.kind]++
			}
		}
		id.ByNoise = append(id.ByNoise, in)
	}
	return id
}

// WriteTable prints the ideal detector's thresholds and recall.
func (id *Ideal) WriteTable(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "ideal detector at %.2f false alarms per 10,000 samples (knows each series' shape and noise law; spikes and dips of non-counter series): spike %.0f%%, dip %.0f%%\n",
		id.Per10k, 100*id.Recall(Spike), 100*id.Recall(Dip))
	for _, n := range id.ByNoise {
		fmt.Fprintf(&b, "  %-10s threshold %5.2fσ  found %3d of %3d\n", n.Noise, n.Threshold, n.Found, n.Anomalies)
	}
	_, err := io.WriteString(w, b.String())
	return err
}
