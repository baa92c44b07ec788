package nab_test

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/telltale-dev/telltale/pkg/anomaly"
	"github.com/telltale-dev/telltale/pkg/nab"
)

// synthCorpus writes a small NAB-layout corpus: three files of noisy
// daily cycles, two with a labelled level shift, and the results of a
// published "oracle" detector that fires at each anomaly's start.
func synthCorpus(tb testing.TB, dir string) {
	tb.Helper()
	rng := rand.New(rand.NewPCG(1, 2))
	t0 := time.Date(2016, 3, 1, 0, 0, 0, 0, time.UTC)
	const n = 2000
	windows := map[string][][2]string{}
	for k, name := range []string{"synth/quiet.csv", "synth/shift.csv", "other/spike.csv"} {
		var data, oracle strings.Builder
		data.WriteString("timestamp,value\n")
		oracle.WriteString("timestamp,value,anomaly_score,label\n")
		at := 1200 + 300*k
		for i := range n {
			ts := t0.Add(time.Duration(i) * 5 * time.Minute)
			v := 50 + 10*math.Sin(2*math.Pi*float64(i)/288) + rng.NormFloat64()
			if k == 1 && i >= at {
				v += 40
			}
			if k == 2 && i >= at && i < at+3 {
				v += 80
			}
			s := 0.0
			if k > 0 && i == at {
				s = 1
			}
			fmt.Fprintf(&data, "%s,%.3f\n", ts.Format(time.DateTime), v)
			fmt.Fprintf(&oracle, "%s,%.3f,%g,0\n", ts.Format(time.DateTime), v, s)
		}
		if k > 0 {
			windows[name] = [][2]string{{
				t0.Add(time.Duration(at-50)*5*time.Minute).Format(time.DateTime) + ".000000",
				t0.Add(time.Duration(at+49)*5*time.Minute).Format(time.DateTime) + ".000000",
			}}
		} else {
			windows[name] = [][2]string{}
		}
		write(tb, filepath.Join(dir, "data", name), data.String())
		d, f := filepath.Split(name)
		write(tb, filepath.Join(dir, "results", "oracle", d, "oracle_"+f), oracle.String())
	}
	js, err := json.Marshal(windows)
	if err != nil {
		tb.Fatal(err)
	}
	write(tb, filepath.Join(dir, nab.LabelsPath), string(js))
	// A published detector with a missing file is reported, not fatal.
	write(tb, filepath.Join(dir, "results", "broken", "synth", "broken_quiet.csv"), "timestamp,value,anomaly_score\n")
}

func write(tb testing.TB, p, body string) {
	tb.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		tb.Fatal(err)
	}
}

// TestBenchmarkSyntheticCorpus runs the benchmark as `mage nabDir <dir>`
// does, on a corpus made here, with Telltale's real detectors.
func TestBenchmarkSyntheticCorpus(t *testing.T) {
	dir := t.TempDir()
	synthCorpus(t, dir)
	out := filepath.Join(t.TempDir(), "results")
	var dets []nab.Detector
	for _, name := range anomaly.Names() {
		dets = append(dets, nab.Detector{Name: "tt" + name, New: func() func(time.Time, float64) float64 {
			d, err := anomaly.New(name, anomaly.Config{})
			if err != nil {
				t.Fatal(err)
			}
			return func(ts time.Time, v float64) float64 { return d.Update(ts.UnixMilli(), v).Score }
		}})
	}
	rep, err := nab.Benchmark(dir, out, dets)
	if err != nil {
		t.Fatal(err)
	}
	var table strings.Builder
	if err := rep.WriteTable(&table); err != nil {
		t.Fatal(err)
	}
	t.Log("\n" + table.String())
	if len(rep.Entries) != len(dets)+1 || len(rep.Skipped) != 1 || !strings.HasPrefix(rep.Skipped[0], "broken:") {
		t.Fatalf("entries %d skipped %v, want %d entries and broken skipped", len(rep.Entries), rep.Skipped, len(dets)+1)
	}
	js, err := rep.JSON()
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]map[string]float64
	if err := json.Unmarshal(js, &m); err != nil {
		t.Fatal(err)
	}
	// The oracle fires halfway through each window (relative position
	// -0.5), worth σₛ(-0.5)/σₛ(-1) of a window each.
	if got, want := m["oracle"]["standard"], 100*(nab.ScaledSigmoid(-0.5)/nab.ScaledSigmoid(-1)+1)/2; math.Abs(got-want) > 1e-9 {
		t.Errorf("oracle standard score %v, want %v", got, want)
	}
	for _, d := range dets {
		p, ok := m[d.Name]
		if !ok || len(p) != 3 {
			t.Fatalf("JSON lacks %s: %s", d.Name, js)
		}
		for prof, v := range p {
			if math.IsNaN(v) || v > 100 {
				t.Errorf("%s %s = %v", d.Name, prof, v)
			}
		}
		if _, err := os.Stat(filepath.Join(out, d.Name, "synth", d.Name+"_shift.csv")); err != nil {
			t.Errorf("results file not written: %v", err)
		}
	}
	// Both anomalies are blatant: the ensemble must find them without
	// a false alarm.
	if got := m["ttensemble"]["standard"]; got < m["oracle"]["standard"]-1 {
		t.Errorf("ensemble standard score %v on blatant anomalies, want about the oracle's %v", got, m["oracle"]["standard"])
	}
	for _, e := range rep.Entries {
		if e.Ours && !(e.SamplesPerSecondPerCore > 0) {
			t.Errorf("%s: throughput %v", e.Detector, e.SamplesPerSecondPerCore)
		}
	}
}
