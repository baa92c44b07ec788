package engine

import (
	"fmt"
	"log/slog"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"

	"github.com/telltale-dev/telltale/pkg/anomaly"
	"github.com/telltale-dev/telltale/pkg/schema"
)

// BenchmarkBackfill runs the engine's backfill against a real Prometheus
// holding 1000 series × 6 h at 15 s, with no scoring at all and with each
// anomaly detector, to split the detector's cost between its pipeline and
// the scoring. The mage target benchDetector measures the whole process
// against a plain read.
func BenchmarkBackfill(b *testing.B) {
	const nSeries, n = 1000, 1440
	var series []omSeries
	for k := range nSeries {
		rng := rand.New(rand.NewPCG(uint64(k), 1))
		name, typ, family := schema.ServiceFDs.Name, "gauge", schema.ServiceFDs.Name
		if k%2 == 1 {
			name, typ, family = schema.ServiceReadSyscalls.Name, "counter", schema.ServicePrefix+"read_syscalls"
		}
		total := 0.0
		series = append(series, omSeries{family, typ, name, fmt.Sprintf(`service="s%04d"`, k), func(int) float64 {
			total += float64(rng.IntN(100))
			if typ == "gauge" {
				return float64(30 + rng.IntN(20))
			}
			return total
		}})
	}
	// Families must be contiguous: gauges first, then counters.
	var sorted []omSeries
	for _, want := range []string{"gauge", "counter"} {
		for _, s := range series {
			if s.typ == want {
				sorted = append(sorted, s)
			}
		}
	}
	srv := prometheusWithData(b, time.Now().Add(-time.Minute).Truncate(time.Second), testStep, n, sorted)
	detectors := map[string]func(bool) anomaly.Detector{
		"none": func(bool) anomaly.Detector { return NoScoring{} },
	}
	for _, name := range anomaly.Names() {
		detectors[name] = func(counter bool) anomaly.Detector {
			d, _ := anomaly.New(name, anomaly.Config{Counter: counter})
			return d
		}
	}
	for _, name := range append([]string{"none"}, anomaly.Names()...) {
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				e, _ := testEngine(b, srv.URL+"/api/v1/read", func(c *Config) {
					c.KPIs = false
					c.Backfill = 7 * time.Hour
					c.BackfillTimeout = time.Hour
					c.NewDetector = detectors[name]
				})
				e.round(b.Context())
				if !e.ready.Load() || e.tracked.Load() != nSeries {
					b.Fatalf("backfill failed: ready %v, %d series", e.ready.Load(), e.tracked.Load())
				}
			}
			b.ReportMetric(float64(b.N*nSeries*n)/b.Elapsed().Seconds(), "samples/s")
		})
	}
}

// BenchmarkCheckpoint writes and reads back a checkpoint of 2000 series
// whose ensembles have seen 6 h at 15 s each.
func BenchmarkCheckpoint(b *testing.B) {
	const nSeries, n = 2000, 1440
	e := New(Config{
		StoragePath: b.TempDir(), Workers: 2, MaxSeries: nSeries,
		NewDetector: func(counter bool) anomaly.Detector { return anomaly.NewEnsemble(anomaly.Config{Counter: counter}) },
	}, slog.New(slog.DiscardHandler))
	for k := range nSeries {
		ls := labels.FromStrings(labels.MetricName, schema.ServiceFDs.Name, "service", fmt.Sprintf("s%04d", k))
		st := e.newState(ls)
		rng := rand.New(rand.NewPCG(uint64(k), 1))
		for i := range n {
			st.result = st.det.Update(int64(i)*15000, float64(30+rng.IntN(20)))
		}
		st.lastT = int64(n-1) * 15000
		h := labels.StableHash(ls)
		e.shards[e.worker(h)].series[h] = st
	}
	b.Run("write", func(b *testing.B) {
		for b.Loop() {
			if _, err := e.checkpoint(); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N*nSeries), "µs/series")
	})
	b.Run("read", func(b *testing.B) {
		if _, err := e.checkpoint(); err != nil {
			b.Fatal(err)
		}
		for b.Loop() {
			rs, err := readCheckpoint(e.checkpointPath(), func() anomaly.Detector { return anomaly.NewEnsemble(anomaly.Config{}) }, 2)
			if err != nil || len(rs.series) != nSeries {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N*nSeries), "µs/series")
	})
}
