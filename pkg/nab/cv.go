package nab

import (
	"fmt"
	"path"
	"slices"
)

// Category is the file's NAB category: the folder it lies in under data/
// ("realTweets" for "realTweets/Twitter_volume_AAPL.csv").
func (f *File) Category() string { return path.Dir(f.Path) }

// Categories lists the corpus's categories, sorted.
func (c *Corpus) Categories() []string {
	var out []string
	for _, f := range c.Files {
		if !slices.Contains(out, f.Category()) {
			out = append(out, f.Category())
		}
	}
	slices.Sort(out)
	return out
}

// Subset returns a corpus of the files for which keep is true, in corpus
// order. The files are shared, not copied.
func (c *Corpus) Subset(keep func(*File) bool) *Corpus {
	s := &Corpus{Dir: c.Dir}
	for _, f := range c.Files {
		if keep(f) {
			s.Files = append(s.Files, f)
		}
	}
	return s
}

// Fold is one split of leave-one-category-out cross-validation: constants
// are chosen on Train, which holds every category but Held, and Test,
// Held's files, is scored with them.
type Fold struct {
	Held        string
	Train, Test *Corpus
}

// Folds splits the corpus by category, one fold per category.
func (c *Corpus) Folds() []Fold {
	var out []Fold
	for _, cat := range c.Categories() {
		out = append(out, Fold{
			Held:  cat,
			Train: c.Subset(func(f *File) bool { return f.Category() != cat }),
			Test:  c.Subset(func(f *File) bool { return f.Category() == cat }),
		})
	}
	return out
}

// FoldResult is what one fold of a cross-validation chose.
type FoldResult[P any] struct {
	Held   string
	Params P
	// Train lists the files Params were fitted on, Test the files
	// scored with them.
	Train, Test []string
}

// CV is the outcome of a cross-validation.
type CV[P any] struct {
	Folds []FoldResult[P]
	// Scores holds every file's scores, each computed with the
	// constants of the fold that held the file out.
	Scores Scores
	// Results scores Scores over the whole corpus, with NAB's threshold
	// optimisation (which is part of NAB's rules, not a tuned constant
	// of the detector), in Profiles order.
	Results []Result
}

// CrossValidate measures a detector whose constants are tuned on data by
// leave-one-category-out cross-validation: for each category, fit chooses
// the constants on the other categories only, and score scores each file
// of the held-out category with them. The held-out scores of all folds
// together are scored as one corpus, so the result estimates how the
// detector does on data its constants were not chosen on. A corpus of one
// category can't be cross-validated this way.
func CrossValidate[P any](c *Corpus, fit func(train *Corpus) (P, error), score func(p P, f *File) []float64) (*CV[P], error) {
	folds := c.Folds()
	if len(folds) < 2 {
		return nil, fmt.Errorf("cross-validation needs at least two categories (folders under data/), the corpus has %d", len(folds))
	}
	cv := &CV[P]{Scores: make(Scores, len(c.Files))}
	for _, fo := range folds {
		p, err := fit(fo.Train)
		if err != nil {
			return nil, fmt.Errorf("fit without %s: %w", fo.Held, err)
		}
		fr := FoldResult[P]{Held: fo.Held, Params: p}
		for _, f := range fo.Train.Files {
			fr.Train = append(fr.Train, f.Path)
		}
		for _, f := range fo.Test.Files {
			cv.Scores[f.Path] = score(p, f)
			fr.Test = append(fr.Test, f.Path)
		}
		cv.Folds = append(cv.Folds, fr)
	}
	res, err := c.ScoreAll(cv.Scores)
	if err != nil {
		return nil, err
	}
	cv.Results = res
	return cv, nil
}
