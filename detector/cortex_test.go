package main

import (
	"fmt"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/model"

	"github.com/telltale-dev/telltale/internal/cortex"
	"github.com/telltale-dev/telltale/internal/proctest"
	"github.com/telltale-dev/telltale/internal/promtest"
	"github.com/telltale-dev/telltale/internal/testenv"
	"github.com/telltale-dev/telltale/pkg/schema"
)

// scoredSeries returns the series a detector scores, each as its label set
// with the scored metric's name under __name__, in Prometheus's notation.
func scoredSeries(tb testing.TB, base string) map[string]bool {
	tb.Helper()
	out := map[string]bool{}
	for _, m := range detectorMetrics(tb, base)[schema.AnomalyScore.Name].GetMetric() {
		ls := model.LabelSet{}
		for _, l := range m.GetLabel() {
			name := l.GetName()
			if name == schema.LabelMetric {
				name = model.MetricNameLabel
			}
			ls[model.LabelName(name)] = model.LabelValue(l.GetValue())
		}
		out[ls.String()] = true
	}
	return out
}

// TestCortexShards runs the detector against a real distributed store: a
// single-process Cortex with local storage, into which a real Prometheus
// remote-writes the exporter's and a KPI app's series under a tenant, and
// three detector replicas with --shard.count=3 reading Cortex's remote read
// with the tenant header. Every selected series must be scored by exactly
// one replica; stopping one must leave the others' series as they were;
// restarted, it must resume from its checkpoint, reading only what it
// missed.
func TestCortexShards(t *testing.T) {
	testenv.Live(t)
	bin, err := cortex.Binary()
	if err != nil {
		testenv.Missing(t, "%v", err)
	}
	promtest.Binary(t)
	detectorBin, exporterBin := binaries(t)
	ctx := t.Context()

	_, grpc, _ := net.SplitHostPort(testenv.FreeAddr(t))
	grpcPort, _ := strconv.Atoi(grpc)
	cx, err := cortex.Start(ctx, bin, t.TempDir(), testenv.FreeAddr(t), grpcPort)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cx.Stop()
		if t.Failed() {
			t.Logf("cortex logs:\n%s", cx.Logs())
		}
	})

	_, appAddr, exporterAddr := sources(t, exporterBin, 3)

	// Prometheus writes through a gateway that adds the tenant, as an
	// nginx in front of Cortex does: Debian's Prometheus 2.42 does not
	// send remote_write's headers (checked: the push arrives without
	// them, and Cortex answers 401 "no org id").
	const tenant = "telltale-test"
	push, _ := url.Parse(cx.PushURL())
	gateway := httputil.NewSingleHostReverseProxy(&url.URL{Scheme: push.Scheme, Host: push.Host})
	gw := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Header.Set(cortex.TenantHeader, tenant)
		r.URL.Path = push.Path
		gateway.ServeHTTP(w, r)
	}))
	t.Cleanup(gw.Close)
	promtest.Start(t, promtest.Options{Config: fmt.Sprintf(`
global:
  scrape_interval: 1s
  scrape_timeout: 900ms
scrape_configs:
  - job_name: shop
    static_configs: [{targets: [%q]}]
  - job_name: telltale-exporter
    scrape_interval: 2s
    scrape_timeout: 1900ms
    static_configs: [{targets: [%q]}]
remote_write:
  - url: %s
    queue_config: {batch_send_deadline: 1s}
`, appAddr, exporterAddr, gw.URL)})

	// What the replicas must score together: the default selection and
	// the KPI the app declares, as Cortex holds them over the window they
	// read.
	const window = 10 * time.Minute
	selected := func() map[string]bool {
		out := map[string]bool{}
		for _, sel := range []string{schema.DefaultSelector(), "shop_queue_depth"} {
			now := time.Now()
			series, err := cx.Series(ctx, tenant, sel, now.Add(-window), now)
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range series {
				ls := model.LabelSet{}
				for k, v := range s {
					ls[model.LabelName(k)] = model.LabelValue(v)
				}
				out[ls.String()] = true
			}
		}
		return out
	}
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(time.Second) {
		got := selected()
		if len(got) > 10 && slices.ContainsFunc(slices.Collect(maps.Keys(got)), func(s string) bool { return strings.Contains(s, "shop_queue_depth") }) {
			t.Logf("Cortex holds %d selected series of tenant %s; 20 s of history more for the backfill", len(got), tenant)
			time.Sleep(20 * time.Second)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after a minute Cortex holds %d selected series of tenant %s, want the exporter's and the KPI", len(got), tenant)
		}
	}

	type replica struct {
		proc *proctest.Process
		url  string
		args []string
	}
	replicas := make([]*replica, 3)
	start := func(i int) {
		r := replicas[i]
		r.proc = proctest.Start(t, "", detectorBin, r.args...)
		proctest.WaitHTTP(t, r.url+"/-/ready", time.Minute, r.proc)
	}
	storage := t.TempDir()
	for i := range replicas {
		addr := testenv.FreeAddr(t)
		replicas[i] = &replica{url: "http://" + addr, args: []string{
			"--remote-read.url=" + cx.ReadURL(),
			"--remote-read.header=" + cortex.TenantHeader + ": " + tenant,
			"--shard.count=3", "--shard.index=" + strconv.Itoa(i),
			"--storage.path=" + filepath.Join(storage, strconv.Itoa(i)),
			"--web.listen-address=" + addr,
			"--score.interval=1s", "--score.overlap=5s",
			"--backfill.duration=" + window.String(), "--series.stale-after=" + window.String(),
			"--remote-read.timeout=10s",
		}}
		start(i)
	}
	// Remote read has no server-side sharding: each replica reads every
	// selected sample and scores its share.
	readRE := regexp.MustCompile(`msg="backfill done".* duration=(\S+) .*samples=(\d+) bytes=(\d+)`)
	for i, r := range replicas {
		m := readRE.FindStringSubmatch(r.proc.Output())
		if m == nil {
			t.Fatalf("replica %d logged no backfill:\n%s", i, r.proc.Output())
		}
		t.Logf("replica %d of 3: backfill read %s samples (%s bytes) in %s, scored %.0f", i, m[2], m[3], m[1],
			scrapeDetector(t, r.url, schema.DetectorSamplesScored.Name))
	}

	// Each selected series by exactly one replica, and all of them. The
	// exporter's services come and go on a shared machine, so the union
	// is compared until it settles; a series scored twice fails at once.
	partition := func() []map[string]bool {
		var last string
		for deadline := time.Now().Add(time.Minute); ; time.Sleep(time.Second) {
			parts := make([]map[string]bool, len(replicas))
			union := map[string]bool{}
			for i, r := range replicas {
				parts[i] = scoredSeries(t, r.url)
				if len(parts[i]) == 0 {
					t.Fatalf("replica %d of 3 scores nothing", i)
				}
				for s := range parts[i] {
					if union[s] {
						t.Fatalf("%s is scored by two replicas", s)
					}
					union[s] = true
				}
			}
			want := selected()
			missing, extra := setDiff(want, union), setDiff(union, want)
			if len(missing) == 0 && len(extra) == 0 {
				t.Logf("the replicas score %d, %d and %d of the %d selected series", len(parts[0]), len(parts[1]), len(parts[2]), len(want))
				return parts
			}
			last = fmt.Sprintf("not scored: %v\nscored but not selected: %v", missing, extra)
			if time.Now().After(deadline) {
				t.Fatalf("after a minute the replicas' series are not the selection:\n%s", last)
			}
		}
	}
	before := partition()

	// One replica stops (and checkpoints); the others go on as they were.
	replicas[1].proc.Stop()
	scored := func(i int) float64 { return scrapeDetector(t, replicas[i].url, schema.DetectorSamplesScored.Name) }
	was := []float64{scored(0), scored(2)}
	time.Sleep(5 * time.Second)
	for k, i := range []int{0, 2} {
		if now := scored(i); now <= was[k] {
			t.Errorf("replica %d scored no sample in the 5 s after replica 1 stopped (%v, then %v)", i, was[k], now)
		}
		// New series come to a replica as the exporter finds them; none
		// of replica 1's, and none of its own goes.
		got, sel := scoredSeries(t, replicas[i].url), selected()
		for s := range before[i] {
			if !got[s] && sel[s] {
				t.Errorf("replica %d stopped scoring %s when replica 1 stopped", i, s)
			}
		}
		for s := range before[1] {
			if got[s] {
				t.Errorf("replica %d took over %s, replica 1's, when it stopped", i, s)
			}
		}
	}

	// Restarted, replica 1 resumes from its checkpoint.
	start(1)
	log := replicas[1].proc.Output()
	if !strings.Contains(log, "checkpoint restored") || !strings.Contains(log, "reads_only_what_was_missed=true") {
		t.Errorf("replica 1 did not resume from its checkpoint:\n%s", log)
	}
	if m := regexp.MustCompile(`msg="backfill done".* window=(\S+)`).FindStringSubmatch(log); m == nil {
		t.Errorf("replica 1 logged no first read:\n%s", log)
	} else if d, err := time.ParseDuration(m[1]); err != nil || d >= window/2 {
		t.Errorf("replica 1's first read after the restart spanned %s, want only what it missed (well under the %s backfill)", m[1], window)
	}
	// Its share again, the same as before for the series still there.
	after := partition()
	for s := range before[1] {
		if !after[1][s] && selected()[s] {
			t.Errorf("replica 1 no longer scores %s after its restart", s)
		}
	}
}

// setDiff returns the members of a that b lacks, sorted.
func setDiff(a, b map[string]bool) []string {
	var out []string
	for s := range a {
		if !b[s] {
			out = append(out, s)
		}
	}
	slices.Sort(out)
	return out
}
