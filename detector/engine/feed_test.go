package engine

import (
	"math"
	"testing"

	"github.com/telltale-dev/telltale/pkg/anomaly"
	"github.com/telltale-dev/telltale/pkg/remoteread"
)

// echo scores each sample with its own value, so the test can tell which
// samples reached the detector and which score was kept.
type echo struct{ seen []int64 }

func (e *echo) Update(t int64, v float64) anomaly.Result {
	e.seen = append(e.seen, t)
	return anomaly.Result{Score: v, Expected: v}
}

func TestFeed(t *testing.T) {
	d := &echo{}
	st := &seriesState{det: d, lastT: minTime}
	samples := []remoteread.Sample{{T: 1, V: 0.1}, {T: 2, V: 0.9}, {T: 3, V: math.NaN()}, {T: 4, V: 0.2}}

	// Backfill: only samples after the cutoff count towards the score.
	if n := st.feed(samples, 2); n != 3 {
		t.Errorf("fed %d samples, want 3 (the NaN staleness marker skipped)", n)
	}
	if !st.touched || st.roundMax != 0.2 || st.lastT != 4 || st.result.Expected != 0.2 {
		t.Errorf("after backfill: touched %v, round max %v, last %d, expected %v; want true, 0.2, 4, 0.2", st.touched, st.roundMax, st.lastT, st.result.Expected)
	}
	st.touched = false

	// A later round re-reads an overlap and brings a late spike: samples
	// already fed are skipped, the spike counts.
	more := []remoteread.Sample{{T: 4, V: 0.2}, {T: 5, V: 0.95}, {T: 6, V: 0.3}}
	if n := st.feed(more, math.MinInt64); n != 2 {
		t.Errorf("fed %d samples, want 2 (t=4 was scored already)", n)
	}
	if st.roundMax != 0.95 || st.result.Score != 0.3 {
		t.Errorf("round max %v, last score %v; want 0.95 and 0.3", st.roundMax, st.result.Score)
	}
	want := []int64{1, 2, 4, 5, 6}
	if len(d.seen) != len(want) {
		t.Fatalf("detector saw %v, want %v", d.seen, want)
	}
	for i := range want {
		if d.seen[i] != want[i] {
			t.Fatalf("detector saw %v, want %v", d.seen, want)
		}
	}
}
