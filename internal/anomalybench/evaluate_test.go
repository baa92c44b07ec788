package anomalybench

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/telltale-dev/telltale/pkg/anomaly"
)

// alarmAt is a detector that alarms on the samples whose value is
// negative, and scores every other sample 0.
type alarmAt struct{}

func (alarmAt) Update(_ int64, v float64) anomaly.Result {
	if v < 0 {
		return anomaly.Result{Score: 1, Warm: true}
	}
	return anomaly.Result{Warm: true}
}

func series(n int, alarms ...int) []anomaly.Point {
	pts := make([]anomaly.Point, n)
	for i := range pts {
		pts[i] = anomaly.Point{T: int64(i) * Step, V: 1}
	}
	for _, i := range alarms {
		pts[i].V = -1
	}
	return pts
}

// TestEvaluateCounts checks the report's arithmetic on a corpus whose
// alarms are known: recall in time, delays, precision and false alarms.
func TestEvaluateCounts(t *testing.T) {
	c := &Corpus{Series: []Series{
		{Name: "healthy", Noise: "gaussian", Points: series(10000, 10, 20)},
		// Two spikes: the first found 2 samples late, the second missed;
		// one alarm far from both is false.
		{Name: "spiky", Noise: "gaussian", Points: series(10000, 102, 5000),
			Anomalies: []Anomaly{{Kind: Spike, Start: 100, End: 101, Size: 5}, {Kind: Spike, Start: 300, End: 301, Size: 5}}},
		// A stuck value found 7 samples in: too late for recall, found.
		{Name: "stuck", Noise: "gaussian", Points: series(10000, 57),
			Anomalies: []Anomaly{{Kind: Stuck, Start: 50, End: 80}}},
	}}
	r := Evaluate(c, func(bool) anomaly.Detector { return alarmAt{} })
	if r.HealthyAlarms != 2 || r.HealthySamples != 10000 || r.FalseAlarmsPer10k != 2 {
		t.Errorf("healthy: %d alarms in %d samples = %v per 10k, want 2 in 10000 = 2", r.HealthyAlarms, r.HealthySamples, r.FalseAlarmsPer10k)
	}
	kinds := map[Kind]KindResult{}
	for _, k := range r.Kinds {
		kinds[k.Kind] = k
	}
	sp := kinds[Spike]
	if sp.Anomalies != 2 || sp.InTime != 1 || sp.Found != 1 || sp.MedianDelay != 2 || sp.Alarms != 2 || sp.True != 1 || sp.First != 1 || sp.FirstInTime != 1 {
		t.Errorf("spikes: %+v", sp)
	}
	st := kinds[Stuck]
	if st.InTime != 0 || st.Found != 1 || st.MedianDelay != 7 || st.Precision != 1 {
		t.Errorf("stuck: %+v", st)
	}
	var b strings.Builder
	if err := r.WriteTable(&b); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "2.00 per 10,000") {
		t.Errorf("table:\n%s", b.String())
	}
	js, err := r.JSON()
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(js, &m); err != nil || m["false_alarms_per_10k"] != 2.0 {
		t.Errorf("JSON %s: %v", js, err)
	}
}
