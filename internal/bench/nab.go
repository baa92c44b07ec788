package bench

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/telltale-dev/telltale/internal/anomalybench"
	"github.com/telltale-dev/telltale/internal/nabtune"
	"github.com/telltale-dev/telltale/pkg/anomaly"
	"github.com/telltale-dev/telltale/pkg/nab"
)

// NabDefaultDir is the NAB kit shipped next to the repository, used when
// nab.KitEnv is not set.
const NabDefaultDir = "../shared/nab"

// nabResultsDir is where `mage nab` writes the results files of Telltale's
// detectors, in NAB's results layout (gitignored, never inside the corpus).
var nabResultsDir = filepath.Join(".cache", "nab", "results")

// nabNames are the names Telltale's detectors get in NAB results, in NAB's
// camelCase style (NAB's tools split detector names on "_").
var nabNames = map[string]string{
	anomaly.NameMAD:         "telltaleMAD",
	anomaly.NameSkyline:     "telltaleSkyline",
	anomaly.NameSeasonal:    "telltaleSeasonal",
	anomaly.NameKS:          "telltaleKS",
	anomaly.NameChangepoint: "telltaleChangepoint",
	anomaly.NameEnsemble:    "telltaleEnsemble",
}

// Nab runs every Telltale detector over the NAB-layout corpus at dir and
// scores it, next to every published detector found in its results/, with
// Telltale's NAB scorer. It prints
// a table with the three profile scores and samples scored per second per
// core, writes the results files under .cache/nab/results, then
// cross-validates the ensemble by category, as shipped (nothing fitted)
// and with one shared weight fitted per fold (in-sample and cross-validated
// score of each profile), and ends with one JSON line {"<detector>":
// {"standard": …, …}, …} in which telltaleEnsembleCV is the shipped
// ensemble's cross-validated score.
func Nab(dir string) error {
	var dets []nab.Detector
	for _, name := range anomaly.Names() {
		if _, err := anomaly.New(name, anomaly.Config{}); err != nil {
			return err
		}
		dets = append(dets, nab.Detector{Name: nabNames[name], New: func() func(time.Time, float64) float64 {
			d, _ := anomaly.New(name, anomaly.Config{})
			return func(t time.Time, v float64) float64 { return d.Update(t.UnixMilli(), v).Score }
		}})
	}
	rep, err := nab.Benchmark(dir, nabResultsDir, dets)
	if err != nil {
		return fmt.Errorf("nab benchmark on %s: %w", dir, err)
	}
	if err := rep.WriteTable(os.Stdout); err != nil {
		return err
	}
	c, err := nab.LoadCorpus(dir)
	if err != nil {
		return err
	}
	cv, err := nabtune.Run(c, nabtune.Fitters())
	if err != nil {
		return fmt.Errorf("cross-validate on %s: %w", dir, err)
	}
	if err := cv.WriteTable(os.Stdout); err != nil {
		return err
	}
	js, err := rep.JSON(cv.Entries()...)
	if err != nil {
		return err
	}
	fmt.Println(string(js))
	return nil
}

// Anomalybench generates the project's Prometheus-shaped anomaly benchmark
// (internal/anomalybench: 240 series at 15 s over 7 days, seed 1, nothing
// downloaded) and scores the ensemble on it: per anomaly kind, recall
// within 5 samples, median detection delay and precision, then false
// alarms per 10,000 samples on the healthy series, then the recall of an
// ideal detector on the spikes and dips (see anomalybench.Ideal); the last
// line is JSON.
func Anomalybench() error {
	c := anomalybench.Generate(1)
	rep := anomalybench.Evaluate(c, func(counter bool) anomaly.Detector {
		return anomaly.NewEnsemble(anomaly.Config{Counter: counter})
	})
	if err := rep.WriteTable(os.Stdout); err != nil {
		return err
	}
	// What no per-sample detector can beat on the spikes and dips, at the
	// false-alarm rate the issue asks for.
	rep.Ideal = anomalybench.IdealPointRecall(1, 1)
	if err := rep.Ideal.WriteTable(os.Stdout); err != nil {
		return err
	}
	js, err := rep.JSON()
	if err != nil {
		return err
	}
	fmt.Println(string(js))
	return nil
}
