package main

import (
	"bytes"
	"flag"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/prometheus/common/promslog"

	"github.com/telltale-dev/telltale/exporter/collector"
	"github.com/telltale-dev/telltale/internal/promtest"
	"github.com/telltale-dev/telltale/pkg/schema"
)

var update = flag.Bool("update", false, "rewrite golden files with the current output")

const (
	fixtureProc = "testdata/proc"
	goldenFile  = "testdata/metrics.golden"
)

// volatile are sample lines whose values change from run to run (timings,
// the Go version in build info); their HELP and TYPE lines stay.
var volatile = regexp.MustCompile(`^(` + schema.ScrapeCollectorDuration.Name + `|` + schema.ExporterScanDuration.Name + `|` + schema.ExporterBuildInfo.Name + `)[{ ]`)

// scrapeFixture serves /metrics for the fixture /proc tree and returns the
// body of the n-th scrape (counters that only move between scrapes need two).
func scrapeFixture(tb testing.TB, scrapes int) string {
	tb.Helper()
	cfg := collector.NewConfig(fixtureProc)
	h, closeFn, err := newHandler(cfg, promslog.NewNopLogger(), handlerOptions{metricsPath: "/metrics"})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = closeFn() })
	srv := httptest.NewServer(h)
	tb.Cleanup(srv.Close)
	var body []byte
	for range scrapes {
		resp, err := http.Get(srv.URL + "/metrics")
		if err != nil {
			tb.Fatal(err)
		}
		body, err = io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			tb.Fatal(err)
		}
		if resp.StatusCode != http.StatusOK {
			tb.Fatalf("GET /metrics: %s\n%s", resp.Status, body)
		}
	}
	var out strings.Builder
	for line := range strings.Lines(string(body)) {
		if !volatile.MatchString(line) {
			out.WriteString(line)
		}
	}
	return out.String()
}

// TestGoldenMetrics compares the whole /metrics output for the fixture /proc
// tree with testdata/metrics.golden. Run with -update to rewrite it.
func TestGoldenMetrics(t *testing.T) {
	got := scrapeFixture(t, 2)
	if *update {
		if err := os.WriteFile(goldenFile, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(goldenFile)
	if err != nil {
		t.Fatalf("%v (run go test ./exporter -run TestGoldenMetrics -update)", err)
	}
	if diff := cmp.Diff(string(want), got); diff != "" {
		t.Errorf("/metrics differs from %s (-want +got):\n%s", goldenFile, diff)
	}
}

// TestGoldenPassesPromtool lints the golden output the way Prometheus's own
// tooling does.
func TestGoldenPassesPromtool(t *testing.T) {
	promtool := promtest.Promtool(t)
	data, err := os.ReadFile(goldenFile)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = bytes.NewReader(data)
	out, err := cmd.CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Errorf("promtool check metrics %s: %v\n%s", goldenFile, err, out)
	}
}

// TestNoSecretsInOutput checks that command-line arguments of the fixture's
// processes (which include passwords and tokens) appear nowhere.
func TestNoSecretsInOutput(t *testing.T) {
	got := scrapeFixture(t, 1)
	for _, secret := range []string{"hunter2", "abc123", "s3cr3t", "--key=abc", "daemon off", "Corefile", "-Xmx1g", "*:6379", "pid="} {
		if strings.Contains(got, secret) {
			t.Errorf("/metrics contains %q", secret)
		}
	}
	matches, err := filepath.Glob(filepath.Join(fixtureProc, "*", "cmdline"))
	if err != nil || len(matches) < 10 {
		t.Fatalf("fixture cmdlines: %v, %d found", err, len(matches))
	}
}

// TestReadErrorsLogged: each kind of /proc read failure of the fixture is
// logged once, naming the process (and its service when it has one) and
// what would fix it; a second scrape logs nothing new.
func TestReadErrorsLogged(t *testing.T) {
	var logs bytes.Buffer
	cfg := collector.NewConfig(fixtureProc)
	h, closeFn, err := newHandler(cfg, promslog.New(&promslog.Config{Writer: &logs}), handlerOptions{metricsPath: "/metrics"})
	if err != nil {
		t.Fatal(err)
	}
	defer closeFn()
	srv := httptest.NewServer(h)
	defer srv.Close()
	scrape := func() {
		resp, err := http.Get(srv.URL + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	scrape()
	first := logs.String()
	for _, want := range []string{
		`file=io reason=missing first="pid 902 of service gone" fix="the kernel keeps no per-task I/O accounting`,
		`file=stat reason=malformed first="pid 900"`,
		`file=status reason=missing first="pid 902 of service gone"`,
	} {
		if !strings.Contains(first, want) {
			t.Errorf("log lacks %q:\n%s", want, first)
		}
	}
	if n := strings.Count(first, "cannot read a /proc file"); n != 5 {
		t.Errorf("%d read-error lines, want 5 (one per kind of failure):\n%s", n, first)
	}
	scrape()
	if again := strings.TrimPrefix(logs.String(), first); strings.Contains(again, "cannot read a /proc file") {
		t.Errorf("the second scrape logged read errors again:\n%s", again)
	}
}

// TestFixtureFollowsTheSchema checks the fixture's /metrics against the
// contract (pkg/schema): names, types, help and labels of every family.
func TestFixtureFollowsTheSchema(t *testing.T) {
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(strings.NewReader(scrapeFixture(t, 2)))
	if err != nil {
		t.Fatal(err)
	}
	for _, err := range schema.Check(fams, schema.Exporter) {
		t.Error(err)
	}
	// The fixture has no eBPF and no tcp_info: most families, not all.
	if len(fams) < 25 {
		t.Errorf("the fixture shows %d families; checking them proves little", len(fams))
	}
}
