package plugin

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/backend"
	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"

	"github.com/telltale-dev/telltale/internal/promtest"
)

// The benchmark's data: 50 gauge series, one sample every 15 s for 7 days,
// a daily cycle with noise, and a level shift in a few series.
const (
	benchSeries   = 50
	benchInterval = 15 * time.Second
	benchSpan     = 7 * 24 * time.Hour
	benchMetric   = "bench_value"
	// benchMaxDataPoints is what a wide Grafana panel asks for.
	benchMaxDataPoints = 1000
	// benchReps is how many times each side runs in one benchmark run.
	benchReps = 3
)

// medianDuration returns the median of d (d is reordered).
func medianDuration(d []time.Duration) time.Duration {
	slices.Sort(d)
	return d[len(d)/2]
}

// writeBenchOpenMetrics writes the benchmark's series, ending at end, in the
// OpenMetrics text format promtool imports.
func writeBenchOpenMetrics(path string, end time.Time) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	fmt.Fprintf(w, "# HELP %s A benchmark series.\n# TYPE %s gauge\n", benchMetric, benchMetric)
	start := end.Add(-benchSpan)
	for s := 0; s < benchSeries; s++ {
		for t := start; !t.After(end); t = t.Add(benchInterval) {
			day := 2 * math.Pi * float64(t.Unix()%86400) / 86400
			v := 100 + 10*float64(s%7) + 20*math.Sin(day) + 3*wave(t, float64(s))
			if s%10 == 0 && t.After(end.Add(-24*time.Hour)) {
				v += 40
			}
			fmt.Fprintf(w, "%s{series=\"%02d\"} %.3f %d\n", benchMetric, s, v, t.Unix())
		}
	}
	fmt.Fprintln(w, "# EOF")
	if err := w.Flush(); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}

// BenchmarkAnomaliesVsQueryRange times, against a real Prometheus holding 7
// days of 15 s data for 50 series (imported with promtool), the datasource's
// QueryData for an anomalies query over the whole span — scored on demand
// over remote read, the slow path, as no detector series exist — next to a
// plain query_range of the same series at the same step, as Grafana's own
// Prometheus datasource would send for the same panel. Each side runs once
// untimed (to warm Prometheus's caches), then benchReps times alternating;
// the ratio of the medians is reported. Goal: at most 1.5.
func BenchmarkAnomaliesVsQueryRange(b *testing.B) {
	promtool := promtest.Promtool(b)
	end := time.Now().Add(-time.Minute).Truncate(benchInterval)
	start := end.Add(-benchSpan)

	dir := b.TempDir()
	om := filepath.Join(dir, "bench.om")
	if err := writeBenchOpenMetrics(om, end); err != nil {
		b.Fatal(err)
	}
	prom := promtest.Start(b, promtest.Options{Config: "global:\n  scrape_interval: 1h\n", Args: []string{"--storage.tsdb.retention.time=30d"}})
	prom.Stop()
	t0 := time.Now()
	if out, err := exec.Command(promtool, "tsdb", "create-blocks-from", "openmetrics", om, filepath.Join(prom.Dir, "data")).CombinedOutput(); err != nil {
		b.Fatalf("promtool: %v\n%s", err, out)
	}
	b.Logf("promtool imported %d series × %d samples in %s", benchSeries, int(benchSpan/benchInterval)+1, time.Since(t0).Round(time.Millisecond))
	prom.Start()
	got := prom.WaitFor(fmt.Sprintf("count(count_over_time(%s[%s]))", benchMetric, promDuration(benchSpan)), time.Minute, promtest.NonEmpty)
	if n := int(got[0].Value); n != benchSeries {
		b.Fatalf("Prometheus holds %d series, want %d", n, benchSeries)
	}

	inst, err := NewDatasource(context.Background(), backend.DataSourceInstanceSettings{Type: PluginID, URL: prom.URL, JSONData: []byte(`{"timeout": 300}`)})
	if err != nil {
		b.Fatal(err)
	}
	d := inst.(*Datasource)
	raw, _ := json.Marshal(map[string]any{"queryType": QueryTypeAnomalies, "selector": benchMetric})
	dq := backend.DataQuery{
		RefID: "A", QueryType: QueryTypeAnomalies, JSON: raw, MaxDataPoints: benchMaxDataPoints,
		TimeRange: backend.TimeRange{From: start, To: end},
	}
	step := queryStep(dq)
	dq.Interval = step

	anomalies := func() time.Duration {
		t := time.Now()
		resp, err := d.QueryData(context.Background(), &backend.QueryDataRequest{Queries: []backend.DataQuery{dq}})
		el := time.Since(t)
		if err != nil {
			b.Fatal(err)
		}
		dr := resp.Responses["A"]
		if dr.Error != nil {
			b.Fatal(dr.Error)
		}
		if len(dr.Frames) != benchSeries {
			b.Fatalf("%d frames, want %d", len(dr.Frames), benchSeries)
		}
		return el
	}
	plain := func() time.Duration {
		t := time.Now()
		v, _, _, err := prom.API.QueryRange(context.Background(), benchMetric, promv1.Range{Start: start, End: end, Step: step})
		el := time.Since(t)
		if err != nil {
			b.Fatal(err)
		}
		if m := v.(model.Matrix); len(m) != benchSeries {
			b.Fatalf("query_range: %d series, want %d", len(m), benchSeries)
		}
		return el
	}
	anomalies()
	plain()

	// The machines are shared: each side runs benchReps times, alternating,
	// and the medians are compared, so a burst of someone else's work
	// weighs on one pair at most.
	b.ResetTimer()
	var ta, tp time.Duration
	for i := 0; i < b.N; i++ {
		var as, ps []time.Duration
		for r := 0; r < benchReps; r++ {
			as = append(as, anomalies())
			ps = append(ps, plain())
		}
		ta += medianDuration(as)
		tp += medianDuration(ps)
	}
	b.StopTimer()
	ratio := float64(ta) / float64(tp)
	n := time.Duration(b.N)
	b.ReportMetric((ta / n).Seconds(), "anomalies-s/op")
	b.ReportMetric((tp / n).Seconds(), "query_range-s/op")
	b.ReportMetric(ratio, "ratio")
	fmt.Printf("anomalies QueryData (on demand, remote read, %d series × %s at %s, step %s), median of %d: %s\n",
		benchSeries, benchSpan, benchInterval, step, benchReps, (ta / n).Round(time.Millisecond))
	fmt.Printf("plain query_range of the same series at the same step, median of %d: %s\n", benchReps, (tp / n).Round(time.Millisecond))
	fmt.Printf("ratio: %.2f (goal <= 1.5)\n", ratio)
}

// BenchmarkRankCauses ranks the causes of 20 windows over an hour and more
// at a 1 s step (7,200 points) among 344 noisy signals with level shifts
// and scores that often come near the alarm: the ranking's own cost in an
// insights query over a busy hour, without Prometheus or scoring.
func BenchmarkRankCauses(b *testing.B) {
	const n, signals, windows = 7200, 344, 20
	step := time.Second
	rng := rand.New(rand.NewPCG(1, 2))
	var sigs []signalSeries
	for s := range signals {
		band := newBandSeries(nil, n)
		lvl := 100.0
		for i := range n {
			band.Times[i] = shopFrom.Add(time.Duration(i) * step)
			if i%300 == 150 && rng.IntN(3) == 0 {
				lvl *= 1.5
			}
			band.Value[i] = lvl + rng.NormFloat64()
			band.Score[i] = rng.Float64() * 0.95
		}
		sigs = append(sigs, signalSeries{Kind: CauseSignal, Signal: "x", Service: fmt.Sprintf("svc%02d", s%20), Band: band})
	}
	var wins []insightWindow
	for k := range windows {
		ws := shopFrom.Add(time.Hour + time.Duration(k)*3*time.Minute)
		wins = append(wins, insightWindow{ID: k + 1, Start: ws, End: ws.Add(40 * time.Second)})
	}
	in := rankInput{KPI: KPI{Name: "k", Direction: DirectionLower}, Windows: wins, Signals: sigs, Step: step, RateInterval: 4 * step}
	for b.Loop() {
		for _, s := range sigs {
			s.Band.levels = nil // each query starts afresh
		}
		if cs := rankCauses(in); len(cs) == 0 {
			b.Fatal("no causes")
		}
	}
}
