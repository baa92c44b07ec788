package anomaly

import (
	"math"
	"sort"
)

// ewm is an exponentially weighted mean and variance with pandas'
// ewm(alpha, adjust=True) weights: the i-th most recent value has weight
// (1-α)ⁱ, normalised by their sum. It is updated in O(1) with West's
// weighted incremental algorithm (West, "Updating mean and variance
// estimates", CACM 1979), which avoids the cancellation of Σwx²-(Σwx)²/Σw.
type ewm struct {
	alpha float64
	sw    float64 // Σwᵢ
	sw2   float64 // Σwᵢ²
	mean  float64
	m2    float64 // Σwᵢ(xᵢ-mean)²
	n     int
}

func newEWM(alpha float64) ewm { return ewm{alpha: alpha} }

func (e *ewm) push(x float64) {
	d := 1 - e.alpha
	e.sw = d*e.sw + 1
	e.sw2 = d*d*e.sw2 + 1
	e.m2 *= d
	delta := x - e.mean
	e.mean += delta / e.sw
	e.m2 += delta * (x - e.mean)
	e.n++
}

// variance is the bias-corrected weighted variance
// Σwᵢ(xᵢ-μ)² / (Σwᵢ - Σwᵢ²/Σwᵢ), pandas' ewm().var(bias=False).
func (e *ewm) variance() float64 {
	den := e.sw - e.sw2/e.sw
	if e.n < 2 || !(den > 0) || !(e.m2 > 0) {
		return 0
	}
	return e.m2 / den
}

// std is the square root of variance.
func (e *ewm) std() float64 { return math.Sqrt(e.variance()) }

// deviates reports whether x is more than k standard deviations from the
// mean; ok is false (abstain) when the deviation is 0.
func (e *ewm) deviates(x, k float64) (trig, ok bool) {
	sd := e.std()
	if sd == 0 {
		return false, false
	}
	return math.Abs(x-e.mean) > k*sd, true
}

// ksPValue is the asymptotic p-value of the two-sample Kolmogorov–Smirnov
// statistic d for samples of sizes n and m: with nₑ = nm/(n+m) and
// λ = (√nₑ + 0.12 + 0.11/√nₑ)·d (Stephens 1970),
//
//	p = Q(λ) = 2 Σ_{k≥1} (-1)^(k-1) exp(-2k²λ²)
//
// (Kolmogorov 1933; Press et al., Numerical Recipes, §14.3).
func ksPValue(d float64, n, m int) float64 {
	if n == 0 || m == 0 || !(d > 0) {
		return 1
	}
	en := math.Sqrt(float64(n) * float64(m) / float64(n+m))
	lambda := (en + 0.12 + 0.11/en) * d
	return kolmogorovQ(lambda)
}

// kolmogorovQ is the Kolmogorov distribution's survival function Q(λ).
func kolmogorovQ(lambda float64) float64 {
	if lambda < 0.2 {
		return 1 // the series converges slowly here and Q is 1 to 1e-9
	}
	a2 := -2 * lambda * lambda
	var sum, prev float64
	sign := 1.0
	for k := 1; k <= 100; k++ {
		term := sign * math.Exp(a2*float64(k*k))
		sum += term
		if math.Abs(term) <= 1e-12*prev || math.Abs(term) <= 1e-300 {
			break
		}
		prev = math.Abs(term)
		sign = -sign
	}
	return math.Min(math.Max(2*sum, 0), 1)
}

func sortFloats(x []float64) { sort.Float64s(x) }

// absInt is |a|, without a branch.
func absInt(a int) int {
	m := a >> 63
	return (a ^ m) - m
}

// b2i is 1 for true, 0 for false: the KS ranks, P² and the windows'
// searches count with it instead of branching on data.
func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}
