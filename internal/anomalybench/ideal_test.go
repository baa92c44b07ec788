package anomalybench

import (
	"math"
	"testing"
)

// TestIdealThresholds checks the ideal detector against the noise laws
// the corpus draws from: at 1 false alarm per 10,000 samples its two-sided
// threshold is the normal quantile Φ⁻¹(1 − 0.5·10⁻⁴) ≈ 3.89σ for Gaussian
// noise and ln(10⁴)/√2 ≈ 6.51σ for Laplace noise (whose tail is
// exp(−√2·t)). Wrong shapes or σ in the residuals would miss both.
func TestIdealThresholds(t *testing.T) {
	id := IdealPointRecall(1, 1)
	want := map[string]float64{
		"gaussian": math.Sqrt2 * math.Erfcinv(1e-4),
		"laplace":  math.Log(1e4) / math.Sqrt2,
	}
	seen := 0
	for _, n := range id.ByNoise {
		w, ok := want[n.Noise]
		if !ok {
			continue
		}
		seen++
		if math.Abs(n.Threshold-w) > 0.1*w {
			t.Errorf("%s: threshold %.2fσ, want %.2fσ within 10%%", n.Noise, n.Threshold, w)
		}
	}
	if seen != len(want) {
		t.Errorf("thresholds for %d of %d noises: %+v", seen, len(want), id.ByNoise)
	}
	if id.Anomalies[Spike] == 0 || id.Anomalies[Dip] == 0 || id.Found[Spike] > id.Anomalies[Spike] {
		t.Errorf("spikes %d found of %d, dips %d of %d", id.Found[Spike], id.Anomalies[Spike], id.Found[Dip], id.Anomalies[Dip])
	}
}
