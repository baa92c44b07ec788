package nab

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/telltale-dev/telltale/internal/testenv"
)

// kitDir is where the NAB kit is: $TELLTALE_NAB_DIR, else the kit shipped
// next to the repository.
func kitDir() string {
	if d := os.Getenv(KitEnv); d != "" {
		return d
	}
	return "../../../shared/nab"
}

// loadKit loads the NAB kit; without it the test is skipped on a
// developer machine and fails in CI.
func loadKit(tb testing.TB) *Corpus {
	tb.Helper()
	if _, err := os.Stat(filepath.Join(kitDir(), LabelsPath)); err != nil {
		testenv.Missing(tb, "NAB kit not found at %s: %v; %s", kitDir(), err, KitHint)
	}
	c, err := LoadCorpus(kitDir())
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

// TestReproducesPublishedScores scores the published detectors' results
// with this package and compares with what NAB's own scorer gave.
func TestReproducesPublishedScores(t *testing.T) {
	c := loadKit(t)
	raw, err := os.ReadFile(filepath.Join(kitDir(), "expected_scores.json"))
	if err != nil {
		t.Fatal(err)
	}
	var want map[string]map[string]float64
	if err := json.Unmarshal(raw, &want); err != nil {
		t.Fatal(err)
	}
	if len(want) == 0 {
		t.Fatal("expected_scores.json lists no detector")
	}
	for det, profiles := range want {
		s, err := c.LoadResults(filepath.Join(kitDir(), "results"), det)
		if err != nil {
			t.Fatal(err)
		}
		res, err := c.ScoreAll(s)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range res {
			w, ok := profiles[r.Profile]
			if !ok {
				t.Fatalf("%s: expected_scores.json has no %s", det, r.Profile)
			}
			t.Logf("%-18s %-20s %8.4f (NAB %8.4f) threshold %v detected %d/%d fp %d", det, r.Profile, r.Score, w, r.Threshold, r.Detected, r.Windows, r.FP)
			if math.Abs(r.Score-w) > 0.1 {
				t.Errorf("%s %s: score %.4f, NAB's scorer gave %.4f", det, r.Profile, r.Score, w)
			}
		}
	}
}
