package contracttest

import (
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/prometheus/promql/parser"
)

func TestScoreThresholds(t *testing.T) {
	for _, tc := range []struct {
		expr string
		want []float64
	}{
		{`max_over_time(telltale_anomaly_score[15m]) >= 0.9`, []float64{0.9}},
		{`count(telltale_anomaly_score{instance=~"x"} > 0.8) or vector(0)`, []float64{0.8}},
		{`0.7 < (telltale_anomaly_score)`, []float64{0.7}},
		{`telltale_anomaly_expected > 3`, nil},
		{`telltale_anomaly_score * 2`, nil},
		{`sum(rate(x_total[5m])) > 0.9`, nil},
	} {
		e, err := parser.ParseExpr(tc.expr)
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
		`telltale_anomaly_score`: true,
		`topk(10, max by (service) (telltale_anomaly_score{service!=""}))`:     true,
		`max_over_time(telltale_anomaly_score[5m])`:                            true,
		`telltale_anomaly_score and on (metric) telltale_anomaly_expected > 1`: true,
		`count(telltale_anomaly_score > 0.9) or vector(0)`:                     false,
		`sum(telltale_anomaly_score)`:                                          false,
		`telltale_anomaly_expected`:                                            false,
		`telltale_anomaly_score * 2`:                                           false,
	} {
		e, err := parser.ParseExpr(expr)
		if err != nil {
			t.Fatal(err)
		}
		if got := ValuesAreScores(e); got != want {
			t.Errorf("ValuesAreScores(%s) = %v, want %v", expr, got, want)
		}
	}
}

func TestRatedNames(t *testing.T) {
	e, err := parser.ParseExpr(`sum(rate(telltale_service_cpu_seconds_total[5m])) / rate(telltale_service_threads[5m]) + increase(x_total[1m]) + telltale_service_open_fds`)
	if err != nil {
		t.Fatal(err)
	}
	got := RatedNames(e)
	if want := []string{"telltale_service_cpu_seconds_total", "telltale_service_threads", "x_total"}; !slices.Equal(got, want) {
		t.Fatalf("RatedNames = %v, want %v", got, want)
	}
	if errs := ContractCounterErrors(got); len(errs) != 1 || !strings.HasPrefix(errs[0], "telltale_service_threads ") {
		t.Errorf("ContractCounterErrors = %v, want one, of telltale_service_threads", errs)
	}
}
