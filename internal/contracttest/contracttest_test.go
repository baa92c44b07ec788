package contracttest

import (
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/prometheus/promql/parser"

	"github.com/telltale-dev/telltale/pkg/schema"
)

// contract writes the contract's names into an expression: SCORE,
// EXPECTED, CPU, THREADS and FDS.
func contract(expr string) string {
	return strings.NewReplacer("SCORE", schema.AnomalyScore.Name, "EXPECTED", schema.AnomalyExpected.Name,
		"CPU", schema.ServiceCPU.Name, "THREADS", schema.ServiceThreads.Name, "FDS", schema.ServiceFDs.Name).Replace(expr)
}

func TestScoreThresholds(t *testing.T) {
	for _, tc := range []struct {
		expr string
		want []float64
	}{
		{`max_over_time(SCORE[15m]) >= 0.9`, []float64{0.9}},
		{`count(SCORE{instance=~"x"} > 0.8) or vector(0)`, []float64{0.8}},
		{`0.7 < (SCORE)`, []float64{0.7}},
		{`EXPECTED > 3`, nil},
		{`SCORE * 2`, nil},
		{`sum(rate(x_total[5m])) > 0.9`, nil},
	} {
		e, err := parser.ParseExpr(contract(tc.expr))
		if err != nil {
			t.Fatal(err)
		}
		if got := ScoreThresholds(e); !slices.Equal(got, tc.want) {
			t.Errorf("ScoreThresholds(%s) = %v, want %v", tc.expr, got, tc.want)
		}
	}
}

func TestValuesAreScores(t *testing.T) {
	for expr, want := range map[string]bool{
		`SCORE`: true,
		`topk(10, max by (service) (SCORE{service!=""}))`: true,
		`max_over_time(SCORE[5m])`:                        true,
		`SCORE and on (metric) EXPECTED > 1`:              true,
		`count(SCORE > 0.9) or vector(0)`:                 false,
		`sum(SCORE)`:                                      false,
		`EXPECTED`:                                        false,
		`SCORE * 2`:                                       false,
	} {
		e, err := parser.ParseExpr(contract(expr))
		if err != nil {
			t.Fatal(err)
		}
		if got := ValuesAreScores(e); got != want {
			t.Errorf("ValuesAreScores(%s) = %v, want %v", expr, got, want)
		}
	}
}

func TestRatedNames(t *testing.T) {
	e, err := parser.ParseExpr(contract(`sum(rate(CPU[5m])) / rate(THREADS[5m]) + increase(x_total[1m]) + FDS`))
	if err != nil {
		t.Fatal(err)
	}
	got := RatedNames(e)
	if want := []string{schema.ServiceCPU.Name, schema.ServiceThreads.Name, "x_total"}; !slices.Equal(got, want) {
		t.Fatalf("RatedNames = %v, want %v", got, want)
	}
	if errs := ContractCounterErrors(got); len(errs) != 1 || !strings.HasPrefix(errs[0], schema.ServiceThreads.Name+" ") {
		t.Errorf("ContractCounterErrors = %v, want one, of %s", errs, schema.ServiceThreads.Name)
	}
}
