// Package nabtune fits the anomaly ensemble's weights on a NAB corpus and
// measures the fit honestly, by leave-one-category-out cross-validation:
// the weights that score a file are never chosen with that file.
package nabtune

import (
	"fmt"
	"io"
	"math"
	"runtime"
	"strings"
	"sync"

	"github.com/telltale-dev/telltale/pkg/anomaly"
	"github.com/telltale-dev/telltale/pkg/nab"
)

// Traces holds the ensemble's trace of every file of a corpus, by path.
type Traces map[string]*anomaly.Trace

// NewTraces runs the ensemble's models once over every file of c, on all
// cores; weights are applied later (anomaly.Trace.Scores).
func NewTraces(c *nab.Corpus) Traces {
	out := make(Traces, len(c.Files))
	var mu sync.Mutex
	jobs := make(chan *nab.File)
	var wg sync.WaitGroup
	for range runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			for f := range jobs {
				pts := make([]anomaly.Point, len(f.Times))
				for i, t := range f.Times {
					pts[i] = anomaly.Point{T: t.UnixMilli(), V: f.Values[i]}
				}
				tr := anomaly.NewTrace(anomaly.Config{}, pts)
				mu.Lock()
				out[f.Path] = tr
				mu.Unlock()
			}
		})
	}
	for _, f := range c.Files {
		jobs <- f
	}
	close(jobs)
	wg.Wait()
	return out
}

// Score is the file's scores under weights w.
func (t Traces) Score(w anomaly.Weights, f *nab.File) []float64 { return t[f.Path].Scores(w) }

// Fit chooses the ensemble's weights on c, reading only the traces of c's
// own files. Every statistic gets the same weight k — no statistic is
// preferred, since which one sees an incident first depends on the data —
// and k, the one constant fitted, is the value of fitGrid that maximises
// the standard-profile NAB score on c (the smallest on a tie). Fitting a
// weight per statistic was tried and measured: it raised the in-sample
// score and lowered the cross-validated one.
func (t Traces) Fit(c *nab.Corpus) (anomaly.Weights, error) {
	var best anomaly.Weights
	bestScore := math.Inf(-1)
	for _, k := range fitGrid {
		w := anomaly.EqualWeights(k)
		s, err := t.objective(c, w)
		if err != nil {
			return best, err
		}
		if s > bestScore {
			best, bestScore = w, s
		}
	}
	return best, nil
}

// fitGrid are the weights Fit chooses from: steps of 5% around 1.
var fitGrid = func() []float64 {
	var g []float64
	for k := 0.75; k < 1.5; k *= 1.05 {
		g = append(g, k)
	}
	return g
}()

// objective is the standard-profile score of weights w on c.
func (t Traces) objective(c *nab.Corpus, w anomaly.Weights) (float64, error) {
	s := make(nab.Scores, len(c.Files))
	for _, f := range c.Files {
		tr, ok := t[f.Path]
		if !ok {
			return 0, fmt.Errorf("no trace of %s", f.Path)
		}
		s[f.Path] = tr.Scores(w)
	}
	r, err := c.Score(s, nab.Profiles()[0])
	if err != nil {
		return 0, err
	}
	return r.Score, nil
}

// Fitter is one way of choosing the ensemble's weights from a corpus.
type Fitter struct {
	// Name names it in reports and in the benchmark's JSON.
	Name string
	Fit  func(t Traces, train *nab.Corpus) (anomaly.Weights, error)
}

// Fitters are the ways `go tool mage nab` cross-validates: the shipped
// ensemble, which fits nothing (anomaly.DefaultWeights), and one shared
// weight fitted to the training categories (Traces.Fit).
func Fitters() []Fitter {
	return []Fitter{
		{Name: "telltaleEnsemble", Fit: func(Traces, *nab.Corpus) (anomaly.Weights, error) { return anomaly.DefaultWeights(), nil }},
		{Name: "telltaleEnsembleFittedWeight", Fit: Traces.Fit},
	}
}

// Result is one fitter's in-sample and cross-validated scores.
type Result struct {
	Fitter string
	// InSample scores the weights fitted on every file, on every file.
	InSample []nab.Result // in Profiles order
	Fitted   anomaly.Weights
	// CV is leave-one-category-out cross-validation.
	CV *nab.CV[anomaly.Weights]
}

// Report holds the result of every fitter.
type Report struct {
	Results []Result
}

// Run cross-validates every fitter on c, running the ensemble's models
// over the corpus once.
func Run(c *nab.Corpus, fitters []Fitter) (*Report, error) {
	t := NewTraces(c)
	rep := &Report{}
	for _, ft := range fitters {
		fit := func(train *nab.Corpus) (anomaly.Weights, error) { return ft.Fit(t, train) }
		w, err := fit(c)
		if err != nil {
			return nil, err
		}
		s := make(nab.Scores, len(c.Files))
		for _, f := range c.Files {
			s[f.Path] = t.Score(w, f)
		}
		in, err := c.ScoreAll(s)
		if err != nil {
			return nil, err
		}
		cv, err := nab.CrossValidate(c, fit, t.Score)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", ft.Name, err)
		}
		rep.Results = append(rep.Results, Result{Fitter: ft.Name, InSample: in, Fitted: w, CV: cv})
	}
	return rep, nil
}

// WriteTable prints, per fitter, the in-sample and cross-validated score
// of each profile and the weight each fold chose.
func (r *Report) WriteTable(w io.Writer) error {
	var b strings.Builder
	for _, res := range r.Results {
		fmt.Fprintf(&b, "%s: leave-one-category-out cross-validation (%d folds)\n", res.Fitter, len(res.CV.Folds))
		fmt.Fprintf(&b, "  %-22s %10s %16s\n", "profile", "in-sample", "cross-validated")
		for i, p := range res.InSample {
			fmt.Fprintf(&b, "  %-22s %10.2f %16.2f\n", p.Profile, p.Score, res.CV.Results[i].Score)
		}
		fmt.Fprintf(&b, "  weight on all files: %.3f; per fold:", res.Fitted[0])
		for _, f := range res.CV.Folds {
			fmt.Fprintf(&b, " %s %.3f", f.Held, f.Params[0])
		}
		b.WriteString("\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// Entries returns each fitter's cross-validated results as benchmark
// entries named <fitter>CV.
func (r *Report) Entries() []nab.Entry {
	var out []nab.Entry
	for _, res := range r.Results {
		out = append(out, nab.Entry{Detector: res.Fitter + "CV", Ours: true, Results: res.CV.Results})
	}
	return out
}
