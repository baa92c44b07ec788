package nabtune

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/telltale-dev/telltale/pkg/nab"
)

// writeCorpus writes a NAB-layout corpus of three categories, two files
// each, every file noise with a level shift labelled, except one quiet
// file per category.
func writeCorpus(tb testing.TB, dir string) {
	tb.Helper()
	rng := rand.New(rand.NewPCG(7, 8))
	t0 := time.Date(2016, 3, 1, 0, 0, 0, 0, time.UTC)
	windows := map[string][][2]string{}
	for _, cat := range []string{"alpha", "beta", "gamma"} {
		for k, name := range []string{"quiet", "shift"} {
			var b strings.Builder
			b.WriteString("timestamp,value\n")
			at := 1200 + rng.IntN(400)
			size := 3 + 6*rng.Float64()
			for i := range 2000 {
				v := 20 + rng.NormFloat64()
				if k == 1 && i >= at {
					v += size
				}
				fmt.Fprintf(&b, "%s,%.4f\n", t0.Add(time.Duration(i)*5*time.Minute).Format(time.DateTime), v)
			}
			path := cat + "/" + name + ".csv"
			windows[path] = [][2]string{}
			if k == 1 {
				windows[path] = [][2]string{{
					t0.Add(time.Duration(at-40) * 5 * time.Minute).Format(time.DateTime),
					t0.Add(time.Duration(at+39) * 5 * time.Minute).Format(time.DateTime),
				}}
			}
			writeFile(tb, filepath.Join(dir, "data", path), b.String())
		}
	}
	js, err := json.Marshal(windows)
	if err != nil {
		tb.Fatal(err)
	}
	writeFile(tb, filepath.Join(dir, nab.LabelsPath), string(js))
}

func writeFile(tb testing.TB, p, body string) {
	tb.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		tb.Fatal(err)
	}
}

// TestRunHoldsOut runs the cross-validation as `mage nab` does and checks
// that every file was scored by the weight of a fold fitted without its
// category, and that the fitted weights are shared by all statistics.
func TestRunHoldsOut(t *testing.T) {
	dir := t.TempDir()
	writeCorpus(t, dir)
	c, err := nab.LoadCorpus(dir)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := Run(c, Fitters())
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Results) != len(Fitters()) {
		t.Fatalf("%d results for %d fitters", len(rep.Results), len(Fitters()))
	}
	// The shipped ensemble fits nothing: cross-validation must agree
	// with scoring it on the whole corpus.
	if shipped := rep.Results[0]; shipped.CV.Results[0].Score != shipped.InSample[0].Score {
		t.Errorf("shipped ensemble: cross-validated %.2f, in-sample %.2f, want equal", shipped.CV.Results[0].Score, shipped.InSample[0].Score)
	}
	r := rep.Results[1]
	if len(r.CV.Folds) != 3 {
		t.Fatalf("%d folds, want 3", len(r.CV.Folds))
	}
	scoredBy := map[string]string{}
	for _, fo := range r.CV.Folds {
		for _, p := range fo.Train {
			if strings.HasPrefix(p, fo.Held+"/") {
				t.Errorf("fold %s fitted on %s", fo.Held, p)
			}
		}
		for _, p := range fo.Test {
			if !strings.HasPrefix(p, fo.Held+"/") || slices.Contains(fo.Train, p) {
				t.Errorf("fold %s scored %s", fo.Held, p)
			}
			if prev, ok := scoredBy[p]; ok {
				t.Errorf("%s scored by folds %s and %s", p, prev, fo.Held)
			}
			scoredBy[p] = fo.Held
		}
		for _, w := range fo.Params {
			if w != fo.Params[0] {
				t.Errorf("fold %s: weights %v are not shared", fo.Held, fo.Params)
			}
		}
	}
	if len(scoredBy) != len(c.Files) {
		t.Errorf("%d of %d files scored", len(scoredBy), len(c.Files))
	}
	for i, p := range r.InSample {
		if !(p.Score > 0) || !(r.CV.Results[i].Score > 0) {
			t.Errorf("%s: in-sample %.2f, cross-validated %.2f: the level shifts should be found", p.Profile, p.Score, r.CV.Results[i].Score)
		}
	}
	var b strings.Builder
	if err := rep.WriteTable(&b); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "cross-validated") || strings.Count(b.String(), " gamma ") != 2 {
		t.Errorf("table:\n%s", b.String())
	}
}
