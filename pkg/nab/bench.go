package nab

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"
)

// Detector is a detector to run over a corpus: New returns a fresh
// per-file scoring function, called once per row in order with the row's
// time and value, returning the anomaly score.
type Detector struct {
	Name string
	New  func() func(t time.Time, v float64) float64
}

// Run feeds every file of the corpus through a fresh instance of d, the
// files spread over workers goroutines, and returns the scores with the
// CPU time the run used (process user+system time where the platform
// tells it, else the time the workers were busy).
func (c *Corpus) Run(d Detector, workers int) (Scores, time.Duration) {
	cpu0 := cpuTime()
	workers = max(workers, 1)
	out := make(Scores, len(c.Files))
	var mu sync.Mutex
	var busy time.Duration
	jobs := make(chan *File)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for f := range jobs {
				s := make([]float64, len(f.Times))
				score := d.New()
				start := time.Now()
				for i, t := range f.Times {
					s[i] = score(t, f.Values[i])
				}
				el := time.Since(start)
				mu.Lock()
				out[f.Path] = s
				busy += el
				mu.Unlock()
			}
		})
	}
	for _, f := range c.Files {
		jobs <- f
	}
	close(jobs)
	wg.Wait()
	if cpu := cpuTime() - cpu0; cpu > 0 {
		return out, cpu
	}
	return out, busy
}

// Rows is the number of rows in the corpus.
func (c *Corpus) Rows() int {
	n := 0
	for _, f := range c.Files {
		n += len(f.Times)
	}
	return n
}

// Entry is one line of a benchmark report.
type Entry struct {
	Detector string
	// Ours is true for detectors run by the benchmark, false for
	// published results read from the corpus.
	Ours    bool
	Results []Result // in Profiles order
	// SamplesPerSecondPerCore is the detector's throughput (ours only).
	SamplesPerSecondPerCore float64
}

// Report is the outcome of a benchmark run.
type Report struct {
	Dir     string
	Files   int
	Rows    int
	Windows int
	Entries []Entry
	// Skipped lists published detectors whose results could not be read,
	// with the reason.
	Skipped []string
	// ResultsDir is where our detectors' results files were written.
	ResultsDir string
}

// Benchmark runs each of ours over the corpus in dir, writes their results
// files under outDir in NAB's layout, scores them and every published
// detector found in dir/results with this package, and returns the report.
func Benchmark(dir, outDir string, ours []Detector) (*Report, error) {
	c, err := LoadCorpus(dir)
	if err != nil {
		return nil, err
	}
	rep := &Report{Dir: dir, Files: len(c.Files), Rows: c.Rows(), ResultsDir: outDir}
	for _, f := range c.Files {
		rep.Windows += len(f.Windows)
	}
	workers := runtime.GOMAXPROCS(0)
	for _, d := range ours {
		s, busy := c.Run(d, workers)
		if err := os.RemoveAll(filepath.Join(outDir, d.Name)); err != nil {
			return nil, fmt.Errorf("clear old results: %w", err)
		}
		if err := c.WriteResults(outDir, d.Name, s); err != nil {
			return nil, err
		}
		res, err := c.ScoreAll(s)
		if err != nil {
			return nil, fmt.Errorf("score %s: %w", d.Name, err)
		}
		rate := 0.0
		if busy > 0 {
			rate = float64(rep.Rows) / busy.Seconds()
		}
		rep.Entries = append(rep.Entries, Entry{Detector: d.Name, Ours: true, Results: res, SamplesPerSecondPerCore: rate})
	}
	resultsDir := filepath.Join(dir, "results")
	published, err := Detectors(resultsDir)
	if err != nil {
		return nil, err
	}
	for _, det := range published {
		s, err := c.LoadResults(resultsDir, det)
		if err != nil {
			rep.Skipped = append(rep.Skipped, fmt.Sprintf("%s: %v", det, err))
			continue
		}
		res, err := c.ScoreAll(s)
		if err != nil {
			rep.Skipped = append(rep.Skipped, fmt.Sprintf("%s: %v", det, err))
			continue
		}
		rep.Entries = append(rep.Entries, Entry{Detector: det, Results: res})
	}
	return rep, nil
}

// WriteTable prints the report as a table: one line per detector with its
// three profile scores, the windows it found and its false positives on
// the standard profile, and for ours the throughput.
func (r *Report) WriteTable(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "NAB corpus %s: %d files, %d rows, %d windows\n", r.Dir, r.Files, r.Rows, r.Windows)
	fmt.Fprintf(&b, "%-30s %10s %20s %20s %10s %6s %16s\n", "detector", "standard", "reward_low_FP_rate", "reward_low_FN_rate", "found", "FP", "samples/s/core")
	for _, e := range r.Entries {
		name := e.Detector
		if !e.Ours {
			name += " (published)"
		}
		rate := "-"
		if e.Ours {
			rate = fmt.Sprintf("%.0f", e.SamplesPerSecondPerCore)
		}
		std := e.Results[0]
		fmt.Fprintf(&b, "%-30s %10.2f %20.2f %20.2f %10s %6d %16s\n", name, e.Results[0].Score, e.Results[1].Score, e.Results[2].Score,
			fmt.Sprintf("%d/%d", std.Detected, std.Windows), std.FP, rate)
	}
	for _, s := range r.Skipped {
		fmt.Fprintf(&b, "skipped published detector %s\n", s)
	}
	if r.ResultsDir != "" {
		fmt.Fprintf(&b, "results files of our detectors: %s\n", r.ResultsDir)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// JSON returns the report as one JSON object mapping each detector to its
// profile scores: {"<detector>": {"standard": …, "reward_low_FP_rate": …,
// "reward_low_FN_rate": …}, …}, with more entries added to it.
func (r *Report) JSON(more ...Entry) ([]byte, error) {
	m := make(map[string]map[string]float64, len(r.Entries))
	for _, e := range append(slices.Clone(r.Entries), more...) {
		p := make(map[string]float64, len(e.Results))
		for _, res := range e.Results {
			p[res.Profile] = res.Score
		}
		m[e.Detector] = p
	}
	return json.Marshal(m)
}
