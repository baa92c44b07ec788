package nab_test

import (
	"slices"
	"testing"

	"github.com/telltale-dev/telltale/pkg/nab"
)

// TestCrossValidateSplit checks the rule of cross-validation: the
// constants that score a file were fitted on other categories only, every
// file is scored exactly once, and the held-out scores are what is scored.
func TestCrossValidateSplit(t *testing.T) {
	dir := t.TempDir()
	synthCorpus(t, dir)
	c, err := nab.LoadCorpus(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Categories(); !slices.Equal(got, []string{"other", "synth"}) {
		t.Fatalf("categories %v, want [other synth]", got)
	}
	category := map[string]string{}
	for _, f := range c.Files {
		category[f.Path] = f.Category()
	}
	type params struct{ fittedOn []string }
	scored := map[string]int{}
	fit := func(train *nab.Corpus) (params, error) {
		var p params
		for _, f := range train.Files {
			p.fittedOn = append(p.fittedOn, f.Path)
		}
		return p, nil
	}
	score := func(p params, f *nab.File) []float64 {
		if slices.Contains(p.fittedOn, f.Path) {
			t.Errorf("%s scored with constants fitted on it (fitted on %v)", f.Path, p.fittedOn)
		}
		for _, other := range p.fittedOn {
			if category[other] == f.Category() {
				t.Errorf("%s scored with constants fitted on %s, of its own category", f.Path, other)
			}
		}
		scored[f.Path]++
		s := make([]float64, len(f.Times))
		if len(f.Windows) > 0 {
			s[len(s)-1] = 1 // one late false alarm each, so scores are not all 0
		}
		return s
	}
	cv, err := nab.CrossValidate(c, fit, score)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range c.Files {
		if scored[f.Path] != 1 {
			t.Errorf("%s scored %d times, want once", f.Path, scored[f.Path])
		}
	}
	if len(cv.Folds) != 2 {
		t.Fatalf("%d folds, want one per category", len(cv.Folds))
	}
	for _, fo := range cv.Folds {
		for _, p := range fo.Test {
			if slices.Contains(fo.Train, p) {
				t.Errorf("fold %s: %s both fitted on and scored", fo.Held, p)
			}
		}
	}
	want, err := c.ScoreAll(cv.Scores)
	if err != nil {
		t.Fatal(err)
	}
	if want[0] != cv.Results[0] {
		t.Errorf("cross-validated result %+v, want the held-out scores' %+v", cv.Results[0], want[0])
	}
	one := c.Subset(func(f *nab.File) bool { return f.Category() == "synth" })
	if _, err := nab.CrossValidate(one, fit, score); err == nil {
		t.Error("a corpus of one category was cross-validated")
	}
}
