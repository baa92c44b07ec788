//go:build chaos

package chaos

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/telltale-dev/telltale/internal/proctest"
	"github.com/telltale-dev/telltale/internal/promtest"
	"github.com/telltale-dev/telltale/internal/testenv"
	"github.com/telltale-dev/telltale/internal/webserver"
	"github.com/telltale-dev/telltale/pkg/schema"
)

var builds = &proctest.Builds{}

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "telltale-chaos-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	builds.Dir = dir
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

func exporterBin(tb testing.TB) string {
	return builds.Get(tb, "telltale-exporter", "../../exporter")
}

func detectorBin(tb testing.TB) string {
	return builds.Get(tb, "telltale-detector", "../../detector")
}

// report logs a probe's figure, appends it to the report file when the
// mage target asked for one, and fails the test when the probe did not
// hold.
func report(tb testing.TB, probe string, held bool, format string, args ...any) {
	tb.Helper()
	fig := fmt.Sprintf(format, args...)
	tb.Logf("%s: %s", probe, fig)
	if p := os.Getenv(ReportEnv); p != "" {
		if err := Append(p, Result{Probe: probe, Figure: fig, Held: held}); err != nil {
			tb.Errorf("report: %v", err)
		}
	}
	if !held {
		tb.Errorf("%s did not hold: %s", probe, fig)
	}
}

// envDuration is the duration in the environment variable name, or def.
func envDuration(tb testing.TB, name string, def time.Duration) time.Duration {
	tb.Helper()
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		tb.Fatalf("%s=%q: want a Go duration above 0, such as 90s", name, v)
	}
	return d
}

// startExporter runs the built exporter with args and waits until it
// serves.
func startExporter(tb testing.TB, args ...string) (*proctest.Process, string) {
	tb.Helper()
	addr := testenv.FreeAddr(tb)
	p := proctest.Start(tb, "", exporterBin(tb), append([]string{"--web.listen-address=" + addr, "--log.level=warn"}, args...)...)
	base := "http://" + addr
	proctest.WaitHTTP(tb, base+"/-/healthy", 30*time.Second, p)
	return p, base
}

// scrape GETs url as Prometheus does, with its scrape timeout header, and
// returns the status, the metric families of a 200 and how long it took.
// The client waits past the timeout, so that a scrape that overruns it is
// measured, not cut.
func scrape(url string, timeout time.Duration) (int, map[string]*dto.MetricFamily, time.Duration, error) {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return 0, nil, 0, err
	}
	req.Header.Set("X-Prometheus-Scrape-Timeout-Seconds", strconv.FormatFloat(timeout.Seconds(), 'f', -1, 64))
	req.Header.Set("Accept", "text/plain;version=0.0.4")
	start := time.Now()
	resp, err := (&http.Client{Timeout: timeout + 30*time.Second}).Do(req)
	if err != nil {
		return 0, nil, time.Since(start), err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	took := time.Since(start)
	if err != nil || resp.StatusCode != http.StatusOK {
		return resp.StatusCode, nil, took, err
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(bytes.NewReader(body))
	return resp.StatusCode, fams, took, err
}

// labelsOf renders a metric's labels, sorted, for a series key.
func labelsOf(m *dto.Metric) string {
	var parts []string
	for _, l := range m.GetLabel() {
		parts = append(parts, l.GetName()+"="+strconv.Quote(l.GetValue()))
	}
	slices.Sort(parts)
	return "{" + strings.Join(parts, ",") + "}"
}

// cumulative returns the values of every cumulative series of the
// families by series key: counters, and the counts and buckets of
// histograms and summaries.
func cumulative(fams map[string]*dto.MetricFamily) map[string]float64 {
	out := map[string]float64{}
	for name, f := range fams {
		for _, m := range f.GetMetric() {
			key := name + labelsOf(m)
			switch f.GetType() {
			case dto.MetricType_COUNTER:
				out[key] = m.GetCounter().GetValue()
			case dto.MetricType_HISTOGRAM:
				out[key+"_count"] = float64(m.GetHistogram().GetSampleCount())
				for _, b := range m.GetHistogram().GetBucket() {
					out[key+fmt.Sprintf("_bucket{le=%g}", b.GetUpperBound())] = float64(b.GetCumulativeCount())
				}
			case dto.MetricType_SUMMARY:
				out[key+"_count"] = float64(m.GetSummary().GetSampleCount())
			}
		}
	}
	return out
}

// gauge is the sum of a family's values of the given labels (all of the
// family's series when none are given); ok is false when none matched.
func gauge(fams map[string]*dto.MetricFamily, name string, want map[string]string) (float64, bool) {
	sum, ok := 0.0, false
	for _, m := range fams[name].GetMetric() {
		match := true
		for k, v := range want {
			found := false
			for _, l := range m.GetLabel() {
				if l.GetName() == k && l.GetValue() == v {
					found = true
				}
			}
			match = match && found
		}
		if match {
			ok = true
			sum += m.GetGauge().GetValue() + m.GetCounter().GetValue()
		}
	}
	return sum, ok
}

// panicked reports whether a program's standard error shows a Go panic or
// a fatal runtime error.
func panicked(stderr string) bool {
	return strings.Contains(stderr, "panic:") || strings.Contains(stderr, "fatal error:") || strings.Contains(stderr, "goroutine ") && strings.Contains(stderr, "[running]")
}

// TestChurn: short-lived processes by the hundred each second while the
// exporter is scraped every second with a one-second timeout. No
// cumulative series may ever go down while it exists (Prometheus would
// read a reset, and a rate as large as the whole total), and no scrape may
// overrun its timeout.
func TestChurn(t *testing.T) {
	t.Parallel()
	length := envDuration(t, "TELLTALE_CHAOS_CHURN", 90*time.Second)
	p, base := startExporter(t)
	ctx, cancel := context.WithTimeout(context.Background(), length)
	defer cancel()
	var spawned atomic.Int64
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				if exec.Command("/bin/true").Run() == nil {
					spawned.Add(1)
				}
			}
		}()
	}
	const timeout = time.Second
	start := time.Now()
	last := map[string]float64{}
	var (
		decreases, scrapes, over, failed int
		slowest                          time.Duration
		first                            []string
	)
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
		case <-tick.C:
		}
		if ctx.Err() != nil {
			break
		}
		code, fams, took, err := scrape(base+"/metrics", timeout)
		scrapes++
		slowest = max(slowest, took)
		if took > timeout {
			over++
		}
		if err != nil || code != http.StatusOK {
			failed++
			t.Logf("scrape %d: %d %v", scrapes, code, err)
			continue
		}
		for key, v := range cumulative(fams) {
			if prev, ok := last[key]; ok && v < prev {
				decreases++
				if len(first) < 5 {
					first = append(first, fmt.Sprintf("%s %v → %v", key, prev, v))
				}
			}
			last[key] = v
		}
	}
	wg.Wait()
	rate := float64(spawned.Load()) / time.Since(start).Seconds()
	for _, f := range first {
		t.Logf("went down: %s", f)
	}
	held := decreases == 0 && rate >= 300 && over == 0 && failed == 0 && p.Running() && !panicked(p.Output())
	report(t, "churn", held, "%d decreases of %d cumulative series in %s of churn at %.0f processes/s (want ≥ 300); %d scrapes, %d over their %s timeout (slowest %s), %d failed",
		decreases, len(last), length, rate, scrapes, over, timeout, slowest.Round(time.Millisecond), failed)
}

// TestSecrets: programs read from standard input with secrets on their
// command lines — those the report found, and generated ones — must give
// no label a secret.
func TestSecrets(t *testing.T) {
	seed := uint64(1)
	if v := os.Getenv("TELLTALE_CHAOS_SEED"); v != "" {
		s, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			t.Fatalf("TELLTALE_CHAOS_SEED=%q: want an unsigned integer", v)
		}
		seed = s
	}
	p, base := startExporter(t)
	lines := [][]string{
		{"python3", "-", "--password", "hunter2", "--token", "abc123"},
		{"node", "-", "--token", "abc123"},
		{"perl", "-", "--token", "s3cr3tperl"},
	}
	reported := len(lines)
	// Each interpreter with the argument that makes it read its program
	// from standard input; what follows goes to the program.
	stdin := map[string]string{"python3": "-", "perl": "-", "node": "-", "sh": "-s", "bash": "-s"}
	interps := slices.Sorted(maps.Keys(stdin))
	flags := []string{"--token", "--password", "-p", "--api-key", "-u", "--", "-"}
	rng := rand.New(rand.NewPCG(seed, 0x5ec7e7))
	word := func() string {
		const letters = "abcdefghijklmnopqrstuvwxyz0123456789"
		b := []byte{letters[rng.IntN(26)]}
		for range 7 + rng.IntN(6) {
			b = append(b, letters[rng.IntN(len(letters))])
		}
		return string(b)
	}
	for range 30 {
		in := interps[rng.IntN(len(interps))]
		args := []string{in, stdin[in]}
		for range 1 + rng.IntN(5) {
			if rng.IntN(2) == 0 {
				args = append(args, flags[rng.IntN(len(flags))])
			}
			s := word()
			if rng.IntN(4) == 0 {
				s = flags[rng.IntN(3)] + "=" + s
			}
			args = append(args, s)
		}
		lines = append(lines, args)
	}
	// The secrets are the words after the interpreter's own arguments
	// that are not flags, and the values of flag=value words.
	var secrets []string
	for _, l := range lines {
		for _, a := range l[2:] {
			if _, v, ok := strings.Cut(a, "="); ok {
				a = v
			}
			if !slices.Contains(flags, a) {
				secrets = append(secrets, a)
			}
		}
	}
	for _, l := range lines {
		cmd := exec.Command(testenv.Binary(t, l[0], ""), l[1:]...)
		in, err := cmd.StdinPipe()
		if err != nil {
			t.Fatal(err)
		}
		proctest.StartCmd(t, cmd)
		t.Cleanup(func() { _ = in.Close() })
	}
	// The exporter scans when scraped, and a new process counts for its
	// parent's service until it has lived through one scan (pkg/service):
	// the second scrape sees each program as a service of its own.
	time.Sleep(time.Second)
	var fams map[string]*dto.MetricFamily
	for range 2 {
		code, f, _, err := scrape(base+"/metrics", 10*time.Second)
		if err != nil || code != http.StatusOK {
			t.Fatalf("scrape: %d %v", code, err)
		}
		fams = f
		time.Sleep(time.Second)
	}
	leaks, series := 0, 0
	for name, f := range fams {
		for _, m := range f.GetMetric() {
			series++
			for _, l := range m.GetLabel() {
				for _, s := range secrets {
					if strings.Contains(l.GetValue(), s) {
						leaks++
						t.Logf("secret %q in %s{%s=%q}", s, name, l.GetName(), l.GetValue())
					}
				}
			}
		}
	}
	// The probe proves something only if the programs were seen: as
	// services named after them (python3 may be python3.11, its
	// executable's name).
	var seen []string
	for _, in := range []string{"python3", "node", "perl"} {
		for _, m := range fams[schema.ServiceProcesses.Name].GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "service" && strings.HasPrefix(l.GetValue(), in) && !slices.Contains(seen, l.GetValue()) {
					seen = append(seen, l.GetValue())
				}
			}
		}
	}
	held := leaks == 0 && len(seen) == 3 && !panicked(p.Output())
	report(t, "secrets", held, "%d secrets in the labels of %d series, across %d command lines (%d from the report, %d generated with seed %d); services seen: %s",
		leaks, series, len(lines), reported, len(lines)-reported, seed, strings.Join(seen, ", "))
}

// closed reports whether the server closed c (a read ends at once, with
// EOF or a reset) rather than keeping it open (the read times out).
func closed(c net.Conn) bool {
	_ = c.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	var b [512]byte
	for {
		n, err := c.Read(b[:])
		if n > 0 && err == nil {
			continue // what the server said before closing
		}
		var ne net.Error
		return !(errors.As(err, &ne) && ne.Timeout())
	}
}

// TestSlowClients: half-sent requests and idle keep-alive connections to
// the exporter and the detector are closed by the servers' own limits
// (webserver.Default), and the servers keep answering meanwhile.
func TestSlowClients(t *testing.T) {
	t.Parallel()
	limits := webserver.Default()
	_, exporter := startExporter(t)
	addr := testenv.FreeAddr(t)
	// The detector reads from a port nothing listens on: it serves
	// regardless.
	det := proctest.Start(t, "", detectorBin(t), "--remote-read.url=http://127.0.0.1:1/api/v1/read", "--web.listen-address="+addr, "--log.level=error")
	detector := "http://" + addr
	proctest.WaitHTTP(t, detector+"/-/healthy", 30*time.Second, det)
	const halves, idles = 200, 20
	type server struct {
		name, base         string
		half, idle         []net.Conn
		halfOpen, idleOpen int
		unanswered         int
	}
	servers := []*server{{name: "exporter", base: exporter}, {name: "detector", base: detector}}
	for _, s := range servers {
		host := strings.TrimPrefix(s.base, "http://")
		for range halves {
			c, err := net.Dial("tcp", host)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = c.Close() })
			if _, err := io.WriteString(c, "GET /metrics HTTP/1.1\r\nHost: chaos\r\n"); err != nil {
				t.Fatal(err)
			}
			s.half = append(s.half, c)
		}
		for range idles {
			c, err := net.Dial("tcp", host)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = c.Close() })
			if _, err := io.WriteString(c, "GET /-/healthy HTTP/1.1\r\nHost: chaos\r\n\r\n"); err != nil {
				t.Fatal(err)
			}
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				t.Fatalf("%s: an idle connection's first request: %v", s.name, err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			s.idle = append(s.idle, c)
		}
	}
	// Each server answers others while the slow clients wait.
	answer := func(s *server) {
		resp, err := (&http.Client{Timeout: 5 * time.Second}).Get(s.base + "/-/healthy")
		if err != nil || resp.StatusCode != http.StatusOK {
			s.unanswered++
		}
		if err == nil {
			resp.Body.Close()
		}
	}
	wait := func(d time.Duration) {
		for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(time.Second) {
			for _, s := range servers {
				answer(s)
			}
		}
	}
	count := func(cs []net.Conn) int {
		n := 0
		for _, c := range cs {
			if !closed(c) {
				n++
			}
		}
		return n
	}
	headerWait := limits.ReadHeader + 5*time.Second
	wait(headerWait)
	for _, s := range servers {
		s.halfOpen = count(s.half)
	}
	idleWait := limits.Idle + 15*time.Second
	wait(idleWait - headerWait)
	held := true
	var figs []string
	for _, s := range servers {
		s.idleOpen = count(s.idle)
		held = held && s.halfOpen == 0 && s.idleOpen == 0 && s.unanswered == 0
		figs = append(figs, fmt.Sprintf("%s: %d of %d half-sent requests open after %s, %d of %d idle connections open after %s, %d health checks unanswered",
			s.name, s.halfOpen, halves, headerWait, s.idleOpen, idles, idleWait, s.unanswered))
	}
	held = held && !panicked(det.Output())
	report(t, "slow clients", held, "%s", strings.Join(figs, "; "))
}

// TestStuckProcfs: a copied procfs where one process's exe is /dev/zero
// and, later, its stat a FIFO that blocks the read. The first scan must
// not hash the endless file; scrapes behind the blocked one must be
// answered within their timeout; /-/healthy must say it is stuck; and
// once the read returns, scrapes are served again.
func TestStuckProcfs(t *testing.T) {
	dir := t.TempDir()
	for _, sub := range []string{"proc", "bin", "rootfs"} {
		if out, err := exec.Command("cp", "-a", filepath.Join("../../exporter/testdata", sub), filepath.Join(dir, sub)).CombinedOutput(); err != nil {
			t.Fatalf("copy the procfs fixture: %v: %s", err, out)
		}
	}
	root := filepath.Join(dir, "proc")
	// The fixture's processes 100 (nginx) and 200: one reads forever, the
	// other blocks.
	exe := filepath.Join(root, "200", "exe")
	if err := os.Remove(exe); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/dev/zero", exe); err != nil {
		t.Fatal(err)
	}
	p, base := startExporter(t, "--path.procfs="+root)
	code, _, firstScan, err := scrape(base+"/metrics", 10*time.Second)
	if err != nil || code != http.StatusOK {
		t.Fatalf("first scrape: %d %v", code, err)
	}

	statPath := filepath.Join(root, "100", "stat")
	stat, err := os.ReadFile(statPath)
	if err != nil {
		t.Fatal(err)
	}
	fifo := statPath + ".fifo"
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(fifo, statPath); err != nil {
		t.Fatal(err)
	}
	release := func() {
		// Opening the FIFO for reading and writing never blocks and
		// lets the blocked reader go; a regular file replaces it.
		if f, err := os.OpenFile(statPath, os.O_RDWR, 0); err == nil {
			_, _ = f.Write(stat)
			_ = os.WriteFile(statPath+".new", stat, 0o644)
			_ = os.Rename(statPath+".new", statPath)
			f.Close()
		}
	}
	t.Cleanup(release)
	// A scrape with no timeout (curl) reaches the FIFO and blocks.
	stuck := make(chan int, 1)
	go func() {
		sent := time.Now()
		resp, err := http.Get(base + "/metrics")
		t.Logf("the scrape without a timeout, sent %s: %v after %s", sent.Format("15:04:05.000"), err, time.Since(sent).Round(time.Millisecond))
		if err != nil {
			stuck <- 0
			return
		}
		resp.Body.Close()
		stuck <- resp.StatusCode
	}()
	time.Sleep(time.Second)
	const n, timeout = 20, time.Second
	var (
		over, refused int
		slowest       time.Duration
		mu            sync.Mutex
		wg            sync.WaitGroup
	)
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sent := time.Now()
			code, _, took, err := scrape(base+"/metrics", timeout)
			mu.Lock()
			defer mu.Unlock()
			t.Logf("scrape sent %s: %d in %s %v", sent.Format("15:04:05.000"), code, took.Round(time.Millisecond), err)
			slowest = max(slowest, took)
			if took > timeout {
				over++
			}
			if code == http.StatusServiceUnavailable {
				refused++
			}
		}()
		time.Sleep(100 * time.Millisecond)
	}
	wg.Wait()
	healthy := 0
	if resp, err := http.Get(base + "/-/healthy"); err == nil {
		healthy = resp.StatusCode
		resp.Body.Close()
	}
	release()
	recovered := false
	select {
	case <-stuck:
		code, _, _, err := scrape(base+"/metrics", 5*time.Second)
		recovered = err == nil && code == http.StatusOK
	case <-time.After(10 * time.Second):
	}
	held := firstScan < 5*time.Second && over == 0 && healthy == http.StatusServiceUnavailable && recovered && p.Running() && !panicked(p.Output())
	report(t, "stuck procfs", held, "exe → /dev/zero: first scrape in %s; behind a read blocked on a FIFO, %d scrapes with a %s timeout: %d over it (slowest %s), %d refused with 503; /-/healthy %d while stuck; served again once the read returned: %v",
		firstScan.Round(time.Millisecond), n, timeout, over, slowest.Round(time.Millisecond), refused, healthy, recovered)
}

// detectorMetric reads one of the detector's own metrics (the sum of its
// series).
func detectorMetric(tb testing.TB, base, name string) float64 {
	tb.Helper()
	_, fams, _, err := scrape(base+"/metrics", 10*time.Second)
	if err != nil {
		tb.Fatalf("scrape the detector: %v", err)
	}
	v, _ := gauge(fams, name, nil)
	return v
}

// TestPrometheusKilled: Prometheus is killed (SIGKILL) under a running
// detector and started again ten seconds later; the detector must stay up
// and healthy, count the failed reads, and score again once Prometheus is
// back.
func TestPrometheusKilled(t *testing.T) {
	promtest.Binary(t)
	_, exporter := startExporter(t)
	prom := promtest.Start(t, promtest.Options{Config: fmt.Sprintf(`
global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: telltale
    static_configs: [{targets: [%q]}]
`, strings.TrimPrefix(exporter, "http://"))})
	addr := testenv.FreeAddr(t)
	det := proctest.Start(t, "", detectorBin(t), "--remote-read.url="+prom.URL+"/api/v1/read", "--web.listen-address="+addr,
		"--score.interval=1s", "--backfill.duration=2m", "--remote-read.timeout=5s", "--log.level=warn")
	base := "http://" + addr
	proctest.WaitHTTP(t, base+"/-/ready", time.Minute, det)
	waitScored := func(than float64, within time.Duration) (float64, bool) {
		for end := time.Now().Add(within); time.Now().Before(end); time.Sleep(200 * time.Millisecond) {
			if v := detectorMetric(t, base, schema.DetectorSamplesScored.Name); v > than {
				return v, true
			}
		}
		return 0, false
	}
	if _, ok := waitScored(0, time.Minute); !ok {
		t.Fatal("the detector scored nothing in a minute")
	}
	errs := detectorMetric(t, base, schema.DetectorReadErrors.Name)
	prom.Kill()
	const outage = 10 * time.Second
	time.Sleep(outage)
	healthy := false
	if resp, err := http.Get(base + "/-/healthy"); err == nil {
		healthy = resp.StatusCode == http.StatusOK
		resp.Body.Close()
	}
	failed := detectorMetric(t, base, schema.DetectorReadErrors.Name) - errs
	scored := detectorMetric(t, base, schema.DetectorSamplesScored.Name)
	prom.Start()
	back := time.Now()
	_, again := waitScored(scored, 2*time.Minute)
	after := time.Since(back)
	held := healthy && failed >= 3 && again && det.Running() && !panicked(det.Output())
	report(t, "prometheus killed", held, "detector up through a %s outage (SIGKILL): /-/healthy 200 %v, %.0f failed reads counted; scoring again %s after Prometheus restarted: %v",
		outage, healthy, failed, after.Round(100*time.Millisecond), again)
}
