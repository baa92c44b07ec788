package engine

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/telltale-dev/telltale/internal/promtest"
)

// omSeries is one series to write as OpenMetrics: its family, type,
// sample name, labels in exposition syntax, and value at sample i.
type omSeries struct {
	family, typ, name, labels string
	value                     func(i int) float64
}

// writeOpenMetrics writes n samples per series, every step, ending at end.
// Each family's series are contiguous and each series is in time order, as
// promtool wants.
func writeOpenMetrics(tb testing.TB, path string, end time.Time, step time.Duration, n int, series []omSeries) {
	tb.Helper()
	f, err := os.Create(path)
	if err != nil {
		tb.Fatal(err)
	}
	w := bufio.NewWriter(f)
	start := end.Add(-time.Duration(n-1) * step)
	family := ""
	for _, s := range series {
		if s.family != family {
			fmt.Fprintf(w, "# TYPE %s %s\n", s.family, s.typ)
			family = s.family
		}
		for i := range n {
			t := start.Add(time.Duration(i) * step)
			fmt.Fprintf(w, "%s{%s} %s %s\n", s.name, s.labels,
				strconv.FormatFloat(s.value(i), 'g', -1, 64),
				strconv.FormatFloat(float64(t.UnixMilli())/1000, 'f', 3, 64))
		}
	}
	fmt.Fprintln(w, "# EOF")
	if err := w.Flush(); err != nil {
		tb.Fatal(err)
	}
	if err := f.Close(); err != nil {
		tb.Fatal(err)
	}
}

// prometheusWithData starts a real Prometheus whose storage holds the
// series: promtool turns them into blocks while the server is stopped.
func prometheusWithData(tb testing.TB, end time.Time, step time.Duration, n int, series []omSeries) *promtest.Server {
	tb.Helper()
	promtool := promtest.Promtool(tb)
	s := promtest.Start(tb, promtest.Options{Config: "global:\n  scrape_interval: 1m\n"})
	s.Stop()
	om := filepath.Join(tb.TempDir(), "data.om")
	writeOpenMetrics(tb, om, end, step, n, series)
	out, err := exec.Command(promtool, "tsdb", "create-blocks-from", "openmetrics", "--quiet", om, filepath.Join(s.Dir, "data")).CombinedOutput()
	if err != nil {
		tb.Fatalf("promtool: %v\n%s", err, out)
	}
	s.Start()
	return s
}
