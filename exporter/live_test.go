package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/prometheus/common/promslog"
	"golang.org/x/crypto/bcrypt"

	"github.com/telltale-dev/telltale/exporter/collector"
	"github.com/telltale-dev/telltale/internal/proctest"
	"github.com/telltale-dev/telltale/internal/promtest"
	"github.com/telltale-dev/telltale/internal/testenv"
	"github.com/telltale-dev/telltale/pkg/schema"
)

// buildDir holds binaries built once for all the tests of this package.
var (
	buildDir string
	builds   = &proctest.Builds{}
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "telltale-exporter-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	buildDir = dir
	builds.Dir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// readPort reads a port number a child printed.
func readPort(tb testing.TB, p *proctest.Process) int {
	tb.Helper()
	line := p.ReadLine(tb)
	n, err := strconv.Atoi(strings.TrimSpace(line))
	if err != nil {
		tb.Fatalf("read port from %q: %v", line, err)
	}
	return n
}

// families scrapes a /metrics URL and parses it.
func families(tb testing.TB, url string) map[string]*dto.MetricFamily {
	tb.Helper()
	resp, err := http.Get(url)
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		tb.Fatalf("GET %s: %s\n%s", url, resp.Status, b)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		tb.Fatalf("parse %s: %v", url, err)
	}
	// Every live scrape also checks what it got against the contract.
	for _, err := range schema.Check(fams, schema.Exporter) {
		tb.Errorf("GET %s: %v", url, err)
	}
	return fams
}

// value returns the value of the sample of family name whose labels include
// all of want, and whether there is one.
func value(fams map[string]*dto.MetricFamily, name string, want map[string]string) (float64, bool) {
	f := fams[name]
	if f == nil {
		return 0, false
	}
next:
	for _, m := range f.Metric {
		have := map[string]string{}
		for _, l := range m.Label {
			have[l.GetName()] = l.GetValue()
		}
		for k, v := range want {
			if have[k] != v {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue(), true
		case m.Gauge != nil:
			return m.Gauge.GetValue(), true
		case m.Untyped != nil:
			return m.Untyped.GetValue(), true
		}
	}
	return 0, false
}

func svc(name string, extra ...string) map[string]string {
	m := map[string]string{"service": name}
	for i := 0; i+1 < len(extra); i += 2 {
		m[extra[i]] = extra[i+1]
	}
	return m
}

// liveExporter serves the exporter over the host's real /proc.
func liveExporter(tb testing.TB) string {
	tb.Helper()
	h, closeFn, err := newHandler(collector.NewConfig("/proc"), promslog.NewNopLogger(), handlerOptions{metricsPath: "/metrics"})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = closeFn() })
	srv := httptest.NewServer(h)
	tb.Cleanup(srv.Close)
	return srv.URL + "/metrics"
}

const workerPy = `import os, sys, time
# A Python service: some CPU, some writes.
with open(sys.argv[1], "wb") as f:
    while True:
        sum(i * i for i in range(20000))
        f.write(b"x" * 4096)
        f.flush()
        os.fsync(f.fileno())
        time.sleep(0.02)
`

const pipelineSh = `# A shell pipeline: a loop feeding gzip, counted by wc.
while :; do
  head -c 100000 /dev/urandom
  sleep 0.05
done | gzip -1 | wc -c
`

// TestLiveServices starts real processes (a Go server on IPv4 and IPv6
// loopback, a Python script, a shell pipeline) and checks that each shows
// as the expected service, with its ports and resources that move.
func TestLiveServices(t *testing.T) {
	python := testenv.Binary(t, "python3", "")
	dir := t.TempDir()
	shopd := filepath.Join(dir, "shopd")
	if err := proctest.Deploy(builds.Get(t, "shopd-v1", "./testdata/shopd"), shopd); err != nil {
		t.Fatal(err)
	}
	out := proctest.Start(t, dir, shopd)
	port4, port6 := readPort(t, out), readPort(t, out)
	if err := os.WriteFile(filepath.Join(dir, "worker.py"), []byte(workerPy), 0o644); err != nil {
		t.Fatal(err)
	}
	proctest.Start(t, dir, python, "worker.py", filepath.Join(dir, "worker.out"), "--password=hunter2")
	if err := os.WriteFile(filepath.Join(dir, "pipeline.sh"), []byte(pipelineSh), 0o644); err != nil {
		t.Fatal(err)
	}
	proctest.Start(t, dir, "/bin/bash", "pipeline.sh")

	url := liveExporter(t)
	var fams map[string]*dto.MetricFamily
	deadline := time.Now().Add(20 * time.Second)
	for {
		fams = families(t, url)
		cpu := func(s string) float64 {
			u, _ := value(fams, schema.ServiceCPU.Name, svc(s, "mode", "user"))
			k, _ := value(fams, schema.ServiceCPU.Name, svc(s, "mode", "system"))
			return u + k
		}
		if cpu("shopd") > 0 && cpu("worker") > 0 && cpu("pipeline") > 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}

	for _, tc := range []struct {
		service      string
		minProcesses float64
		ports        []string // protocol/port
	}{
		{"shopd", 1, []string{fmt.Sprint("tcp/", port4), fmt.Sprint("tcp6/", port6)}},
		{"worker", 1, nil},
		// bash, the loop's subshell, gzip and wc (head comes and goes).
		{"pipeline", 4, nil},
	} {
		t.Run(tc.service, func(t *testing.T) {
			n, ok := value(fams, schema.ServiceProcesses.Name, svc(tc.service))
			if !ok || n < tc.minProcesses {
				t.Errorf("processes = %v (found %v), want at least %v", n, ok, tc.minProcesses)
			}
			for _, name := range []string{schema.ServiceMemory.Name, schema.ServiceFDs.Name, schema.ServiceThreads.Name, schema.ServiceStartTime.Name} {
				if v, _ := value(fams, name, svc(tc.service)); v <= 0 {
					t.Errorf("%s = %v, want > 0", name, v)
				}
			}
			u, _ := value(fams, schema.ServiceCPU.Name, svc(tc.service, "mode", "user"))
			k, _ := value(fams, schema.ServiceCPU.Name, svc(tc.service, "mode", "system"))
			if u+k <= 0 {
				t.Errorf("cpu seconds = %v, want > 0", u+k)
			}
			if v, _ := value(fams, schema.ServiceSwitches.Name, svc(tc.service, "type", "voluntary")); v <= 0 {
				t.Errorf("voluntary context switches = %v, want > 0", v)
			}
			if _, ok := value(fams, schema.ServiceBuildInfo.Name, svc(tc.service)); !ok {
				t.Errorf("no build info")
			}
			for _, p := range tc.ports {
				proto, port, _ := strings.Cut(p, "/")
				if _, ok := value(fams, schema.ServicePortInfo.Name, svc(tc.service, "protocol", proto, "port", port)); !ok {
					t.Errorf("no port_info for %s", p)
				}
			}
		})
	}
	if v, _ := value(fams, schema.ServiceWriteSyscalls.Name, svc("worker")); v <= 0 {
		t.Errorf("worker write syscalls = %v, want > 0", v)
	}
	if v, ok := value(fams, schema.ServiceBuildInfo.Name, svc("shopd", "source", "gnu-build-id")); !ok || v != 1 {
		t.Errorf("shopd build_info with a GNU build-id: %v %v", v, ok)
	}
	for name, f := range fams {
		for _, m := range f.Metric {
			for _, l := range m.Label {
				if strings.Contains(l.GetValue(), "hunter2") || l.GetName() == "pid" {
					t.Errorf("%s has label %s=%q", name, l.GetName(), l.GetValue())
				}
			}
		}
	}
}

// TestLiveRestartAndDeploy replaces a running server by a new process of
// the same build (a restart), then by a different build at the same path (a
// restart and a deploy).
func TestLiveRestartAndDeploy(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "paymentsd")
	v1 := builds.Get(t, "shopd-v1", "./testdata/shopd")
	v2 := builds.Get(t, "shopd-v2", "-ldflags=-X main.build=v2", "./testdata/shopd")
	if err := proctest.Deploy(v1, bin); err != nil {
		t.Fatal(err)
	}
	url := liveExporter(t)
	run := func() *proctest.Process {
		p := proctest.Start(t, dir, bin)
		readPort(t, p)
		readPort(t, p)
		return p
	}
	get := func(name string, extra ...string) float64 {
		t.Helper()
		v, ok := value(families(t, url), name, svc("paymentsd", extra...))
		if !ok {
			t.Fatalf("no %s for paymentsd", name)
		}
		return v
	}
	cmd := run()
	if r, d := get(schema.ServiceRestarts.Name), get(schema.ServiceDeploys.Name); r != 0 || d != 0 {
		t.Fatalf("at start: restarts %v deploys %v", r, d)
	}
	cmd.Kill()
	cmd = run()
	if r, d := get(schema.ServiceRestarts.Name), get(schema.ServiceDeploys.Name); r != 1 || d != 0 {
		t.Errorf("after a restart of the same build: restarts %v deploys %v, want 1 0", r, d)
	}
	cmd.Kill()
	if err := proctest.Deploy(v2, bin); err != nil {
		t.Fatal(err)
	}
	run()
	if r, d := get(schema.ServiceRestarts.Name), get(schema.ServiceDeploys.Name); r != 2 || d != 1 {
		t.Errorf("after a new build: restarts %v deploys %v, want 2 1", r, d)
	}
}

// TestLiveChurn scrapes while hundreds of short-lived processes come and
// go: every scrape succeeds, no read error is counted for them, and no
// counter ever goes down (Prometheus would read that as a reset, and a
// rate as large as the whole total).
func TestLiveChurn(t *testing.T) {
	url := liveExporter(t)
	before := families(t, url)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	churn := exec.CommandContext(ctx, "/bin/sh", "-c", "while :; do /bin/true & /bin/true & wait; done")
	if err := churn.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cancel(); _ = churn.Wait() }()
	var after map[string]*dto.MetricFamily
	counters := map[string]float64{}
	checked := 0
	shortLived := 0
	for scrape := range 30 {
		after = families(t, url)
		// A command that lives less than a scrape is no service.
		if _, ok := value(after, schema.ServiceProcesses.Name, svc("true")); ok {
			shortLived++
		}
		for _, c := range []string{"services", "ports", "deploys"} {
			if v, _ := value(after, schema.ScrapeCollectorSuccess.Name, map[string]string{"collector": c}); v != 1 {
				t.Fatalf("collector %s failed during churn", c)
			}
		}
		for name, f := range after {
			if f.GetType() != dto.MetricType_COUNTER {
				continue
			}
			for _, m := range f.GetMetric() {
				key := name + fmt.Sprint(m.GetLabel())
				v := m.GetCounter().GetValue()
				if prev, ok := counters[key]; ok {
					checked++
					if v < prev {
						t.Errorf("scrape %d: %s went down from %v to %v", scrape, key, prev, v)
					}
				}
				counters[key] = v
			}
		}
	}
	if checked == 0 {
		t.Fatal("no counter was seen twice")
	}
	if shortLived > 0 {
		t.Errorf("a service \"true\" (a command living a millisecond) was exported in %d of 30 scrapes", shortLived)
	}
	// Permission errors (PID 1 of a sandbox may refuse some files) are
	// counted once per process; anything else here would be a bug.
	for _, m := range after[schema.ExporterReadErrors.Name].GetMetric() {
		labels := map[string]string{}
		for _, l := range m.Label {
			labels[l.GetName()] = l.GetValue()
		}
		prev, _ := value(before, schema.ExporterReadErrors.Name, labels)
		if labels["reason"] != "permission" && m.Counter.GetValue() > prev {
			t.Errorf("read errors %v grew from %v to %v during churn", labels, prev, m.Counter.GetValue())
		}
	}
}

// TestPrometheusScrapesExporter runs the built exporter and a real
// Prometheus that scrapes it, and reads per-service series back through
// Prometheus's HTTP API.
func TestPrometheusScrapesExporter(t *testing.T) {
	exporter := builds.Get(t, "telltale-exporter", ".")
	addr := testenv.FreeAddr(t)
	proctest.Start(t, ".", exporter, "--web.listen-address="+addr, "--log.level=warn")
	prom := promtest.Start(t, promtest.Options{Config: fmt.Sprintf(`
global:
  scrape_interval: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: telltale
    static_configs:
      - targets: [%q]
`, addr)})
	prom.WaitFor(`up{job="telltale"} == 1`, 30*time.Second, promtest.NonEmpty)
	// The exporter's own process is a service of this host.
	v := prom.WaitFor(schema.ServiceProcesses.Name+`{service="telltale-exporter"}`, 30*time.Second, promtest.NonEmpty)
	if v[0].Value < 1 {
		t.Errorf(schema.ServiceProcesses.Name+"{service=telltale-exporter} = %v", v[0].Value)
	}
	prom.WaitFor(`rate(`+schema.ServiceCPU.Name+`{service="telltale-exporter"}[5s]) > 0`, 30*time.Second, promtest.NonEmpty)
	prom.WaitFor(fmt.Sprintf(schema.ServicePortInfo.Name+`{service="telltale-exporter",port=%q}`, addr[strings.LastIndexByte(addr, ':')+1:]), 30*time.Second, promtest.NonEmpty)
	prom.WaitFor(schema.ScrapeCollectorSuccess.Name+` == 1`, 30*time.Second, func(v model.Vector) bool { return len(v) >= 3 })
}

// TestLiveSyscalls loads the eBPF collector, runs a child that makes a known
// number of getppid calls and of failing openat calls, and finds them under
// the child's service, the failures under ENOENT.
func TestLiveSyscalls(t *testing.T) {
	testenv.Root(t)
	cfg := collector.NewConfig("/proc")
	if err := cfg.Enable("syscalls", true); err != nil {
		t.Fatal(err)
	}
	h, closeFn, err := newHandler(cfg, promslog.NewNopLogger(), handlerOptions{metricsPath: "/metrics"})
	if err != nil {
		t.Fatal(err)
	}
	defer closeFn()
	srv := httptest.NewServer(h)
	defer srv.Close()
	if _, ok := value(families(t, srv.URL+"/metrics"), schema.ExporterUnavailable.Name, map[string]string{"collector": "syscalls"}); ok {
		t.Fatal("syscalls collector unavailable while running as root")
	}

	const n = 5000
	cmd := exec.Command(builds.Get(t, "sysprobe", "./testdata/sysprobe"), fmt.Sprint("-n=", n))
	cmd.Dir = t.TempDir()
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out := proctest.StartCmd(t, cmd)
	if line, err := out.Stdout.ReadString('\n'); err != nil || strings.TrimSpace(line) != "started" {
		t.Fatalf("sysprobe: %q, %v", line, err)
	}
	// A new process counts for its parent's service until it has lived
	// through a scrape: the calls are made once it is a service of its own.
	for range 2 {
		families(t, srv.URL+"/metrics")
	}
	fmt.Fprintln(stdin, "go")
	if line, err := out.Stdout.ReadString('\n'); err != nil || strings.TrimSpace(line) != "ready" {
		t.Fatalf("sysprobe: %q, %v", line, err)
	}
	fams := families(t, srv.URL+"/metrics")
	if v, _ := value(fams, schema.ServiceSyscalls.Name, svc("sysprobe", "syscall", "getppid")); v < n {
		t.Errorf("getppid calls of sysprobe = %v, want at least %d", v, n)
	}
	if v, _ := value(fams, schema.ServiceSyscallErrors.Name, svc("sysprobe", "syscall", "openat", "errno", "ENOENT")); v < n {
		t.Errorf("openat ENOENT errors of sysprobe = %v, want at least %d", v, n)
	}
	// Latency is timed for a sample of calls: the histogram's count is at
	// most the calls, and every timed call is in its +Inf bucket.
	var hist *dto.Histogram
	for _, m := range fams[schema.ServiceSyscallLatency.Name].GetMetric() {
		labels := map[string]string{}
		for _, l := range m.Label {
			labels[l.GetName()] = l.GetValue()
		}
		if labels["service"] == "sysprobe" && labels["syscall"] == "openat" {
			hist = m.Histogram
		}
	}
	if hist == nil {
		t.Fatal("no latency histogram for sysprobe's openat")
	}
	calls, _ := value(fams, schema.ServiceSyscalls.Name, svc("sysprobe", "syscall", "openat"))
	if float64(hist.GetSampleCount()) > calls {
		t.Errorf("openat latency observations %d > calls %v", hist.GetSampleCount(), calls)
	}
	for _, b := range hist.GetBucket() {
		if b.GetCumulativeCount() > hist.GetSampleCount() {
			t.Errorf("bucket le=%v holds %d > count %d", b.GetUpperBound(), b.GetCumulativeCount(), hist.GetSampleCount())
		}
	}
}

// TestSyscallsUnavailable runs the exporter without privileges and the
// syscalls collector asked for: one clear log line, a metric saying the
// collector is unavailable, and the other collectors carry on.
func TestSyscallsUnavailable(t *testing.T) {
	testenv.Root(t) // to drop to nobody
	exporter := builds.Get(t, "telltale-exporter", ".")
	if err := os.Chmod(buildDir, 0o755); err != nil {
		t.Fatal(err)
	}
	addr := testenv.FreeAddr(t)
	cmd := exec.Command(exporter, "--web.listen-address="+addr, "--collector.syscalls")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	logs := proctest.StartCmd(t, cmd)
	url := "http://" + addr + "/metrics"
	proctest.WaitHTTP(t, url, 20*time.Second, logs)
	fams := families(t, url)
	if v, _ := value(fams, schema.ExporterUnavailable.Name, map[string]string{"collector": "syscalls"}); v != 1 {
		t.Errorf(schema.ExporterUnavailable.Name+"{collector=syscalls} = %v, want 1", v)
	}
	if v, _ := value(fams, schema.ScrapeCollectorSuccess.Name, map[string]string{"collector": "services"}); v != 1 {
		t.Errorf("services collector success = %v, want 1", v)
	}
	if _, ok := value(fams, schema.ServiceProcesses.Name, svc("telltale-exporter")); !ok {
		t.Error("no services reported next to the unavailable collector")
	}
	lines := 0
	for l := range strings.Lines(logs.Output()) {
		if strings.Contains(l, "collector unavailable") {
			lines++
			if !strings.Contains(l, "not permitted") {
				t.Errorf("log line does not say why: %s", l)
			}
		}
	}
	if lines != 1 {
		t.Errorf("%d 'collector unavailable' log lines, want 1:\n%s", lines, logs.Output())
	}
}

// TestLiveEdges runs a server and clients as separate processes on IPv4 and
// IPv6 loopback and checks the edges between them: connection counts, byte
// counters that move, and counters that don't go backwards when a client's
// connections close.
func TestLiveEdges(t *testing.T) {
	dir := t.TempDir()
	server := filepath.Join(dir, "ordersd")
	if err := proctest.Deploy(builds.Get(t, "shopd-v1", "./testdata/shopd"), server); err != nil {
		t.Fatal(err)
	}
	out := proctest.Start(t, dir, server)
	port4, port6 := readPort(t, out), readPort(t, out)
	gen := builds.Get(t, "loadgen", "./testdata/loadgen")
	clients := map[string]struct {
		addr  string
		conns int
		port  int
	}{
		"webclient": {fmt.Sprintf("127.0.0.1:%d", port4), 3, port4},
		"apiclient": {fmt.Sprintf("[::1]:%d", port6), 2, port6},
	}
	cmds := map[string]*proctest.Process{}
	for name, c := range clients {
		bin := filepath.Join(dir, name)
		if err := proctest.Deploy(gen, bin); err != nil {
			t.Fatal(err)
		}
		cmd := proctest.Start(t, dir, bin, "-addr="+c.addr, fmt.Sprint("-conns=", c.conns))
		if line, err := cmd.Stdout.ReadString('\n'); err != nil || strings.TrimSpace(line) != "ready" {
			t.Fatalf("%s: %q %v", name, line, err)
		}
		cmds[name] = cmd
	}

	url := liveExporter(t)
	edge := func(client string, port int) map[string]string {
		return map[string]string{"client": client, "server": "ordersd", "port": fmt.Sprint(port), "client_address": "", "server_address": ""}
	}
	first := families(t, url)
	time.Sleep(500 * time.Millisecond)
	fams := families(t, url)
	for name, c := range clients {
		e := edge(name, c.port)
		if v, _ := value(fams, schema.EdgeConnections.Name, e); v != float64(c.conns) {
			t.Errorf("%s → ordersd connections = %v, want %d", name, v, c.conns)
		}
		for _, m := range []string{schema.EdgeSent.Name, schema.EdgeReceived.Name} {
			before, _ := value(first, m, e)
			after, ok := value(fams, m, e)
			if !ok || after <= before || after <= 0 {
				t.Errorf("%s %s: %v then %v, want growth", name, m, before, after)
			}
		}
		if v, ok := value(fams, schema.EdgeRTT.Name, e); !ok || v <= 0 {
			t.Errorf("%s rtt = %v (%v), want > 0", name, v, ok)
		}
	}
	// Each connection shows once, client → server: no edge the other way.
	if _, ok := value(fams, schema.EdgeConnections.Name, map[string]string{"client": "ordersd"}); ok {
		t.Error("an edge from the server to a client")
	}

	e := edge("apiclient", port6)
	sentBefore, _ := value(fams, schema.EdgeSent.Name, e)
	recvBefore, _ := value(fams, schema.EdgeReceived.Name, e)
	cmds["apiclient"].Kill()
	fams = families(t, url)
	if v, _ := value(fams, schema.EdgeConnections.Name, e); v != 0 {
		t.Errorf("apiclient connections after it exited = %v, want 0", v)
	}
	sentAfter, ok1 := value(fams, schema.EdgeSent.Name, e)
	recvAfter, ok2 := value(fams, schema.EdgeReceived.Name, e)
	if !ok1 || !ok2 || sentAfter < sentBefore || recvAfter < recvBefore {
		t.Errorf("counters after the connections closed: sent %v → %v, received %v → %v; want no decrease", sentBefore, sentAfter, recvBefore, recvAfter)
	}
}

// TestLiveEdgesInNetworkNamespace runs a server and a client inside a
// network namespace of their own, as a container would, and finds their
// port and their edge through the namespace.
func TestLiveEdgesInNetworkNamespace(t *testing.T) {
	testenv.Root(t)
	ipBin := testenv.Binary(t, "ip", "")
	name := fmt.Sprintf("telltale-test-%d", os.Getpid())
	if out, err := exec.Command(ipBin, "netns", "add", name).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add: %v\n%s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command(ipBin, "netns", "delete", name).Run() })
	if out, err := exec.Command(ipBin, "-n", name, "link", "set", "lo", "up").CombinedOutput(); err != nil {
		t.Fatalf("ip link set lo up: %v\n%s", err, out)
	}
	dir := t.TempDir()
	server, client := filepath.Join(dir, "boxd"), filepath.Join(dir, "boxclient")
	if err := proctest.Deploy(builds.Get(t, "shopd-v1", "./testdata/shopd"), server); err != nil {
		t.Fatal(err)
	}
	if err := proctest.Deploy(builds.Get(t, "loadgen", "./testdata/loadgen"), client); err != nil {
		t.Fatal(err)
	}
	out := proctest.Start(t, dir, ipBin, "netns", "exec", name, server)
	port := readPort(t, out)
	readPort(t, out)
	cout := proctest.Start(t, dir, ipBin, "netns", "exec", name, client, fmt.Sprintf("-addr=127.0.0.1:%d", port), "-conns=2")
	if line, err := cout.Stdout.ReadString('\n'); err != nil || strings.TrimSpace(line) != "ready" {
		t.Fatalf("client: %q %v", line, err)
	}
	fams := families(t, liveExporter(t))
	if _, ok := value(fams, schema.ServicePortInfo.Name, svc("boxd", "protocol", "tcp", "port", fmt.Sprint(port))); !ok {
		t.Errorf("no port_info for boxd:%d in its namespace", port)
	}
	e := map[string]string{"client": "boxclient", "server": "boxd", "port": fmt.Sprint(port)}
	if v, _ := value(fams, schema.EdgeConnections.Name, e); v != 2 {
		t.Errorf("boxclient → boxd connections = %v, want 2", v)
	}
	if v, _ := value(fams, schema.EdgeSent.Name, e); v <= 0 {
		t.Errorf("boxclient → boxd sent bytes = %v, want > 0", v)
	}
}

// TestWebConfigBasicAuth serves metrics behind basic auth configured with
// --web.config.file (exporter-toolkit): refused without the password,
// served with it.
func TestWebConfigBasicAuth(t *testing.T) {
	exporter := builds.Get(t, "telltale-exporter", ".")
	dir := t.TempDir()
	hash, err := bcrypt.GenerateFromPassword([]byte("s3cret"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "web.yml")
	if err := os.WriteFile(cfg, []byte("basic_auth_users:\n  scraper: "+string(hash)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	addr := testenv.FreeAddr(t)
	proctest.Start(t, dir, exporter, "--web.listen-address="+addr, "--web.config.file="+cfg)
	url := "http://" + addr + "/metrics"
	var resp *http.Response
	for deadline := time.Now().Add(20 * time.Second); ; {
		resp, err = http.Get(url)
		if err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("without credentials: %s, want 401", resp.Status)
	}
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	req.SetBasicAuth("scraper", "s3cret")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), schema.ServiceProcesses.Name) {
		t.Errorf("with credentials: %s, %d bytes", resp.Status, len(body))
	}
}

// TestLiveOutputPassesPromtool lints a scrape of this host with promtool.
func TestLiveOutputPassesPromtool(t *testing.T) {
	promtool := promtest.Promtool(t)
	resp, err := http.Get(liveExporter(t))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = strings.NewReader(string(body))
	out, err := cmd.CombinedOutput()
	if err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Errorf("promtool check metrics on a live scrape: %v\n%s", err, out)
	}
}

// TestFlagsDocumented: every flag --help lists is in the README, and a bad
// listen address names the flag.
func TestFlagsDocumented(t *testing.T) {
	bin := builds.Get(t, "telltale-exporter", ".")
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	if missing := proctest.Undocumented(proctest.HelpFlags(t, bin), string(readme)); len(missing) > 0 {
		t.Errorf("flags missing from README.md: %v", missing)
	}
	// A bad value names its flag, and the program stops.
	for _, arg := range []string{"--web.listen-address=:notaport", "--service.limit=abc", "--path.procfs=/nonexistent",
		"--service.rules-file=/nonexistent", "--web.config.file=/nonexistent", "--log.level=loud"} {
		flag, value, _ := strings.Cut(arg, "=")
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		out, err := exec.CommandContext(ctx, bin, arg, "--web.listen-address=127.0.0.1:0").CombinedOutput()
		cancel()
		if err == nil || !strings.Contains(string(out), fmt.Sprintf("%s=%q", flag, value)) && !strings.Contains(string(out), fmt.Sprintf(`%s=\"%s\"`, flag, value)) {
			t.Errorf("%s: %v\n%s\nwant the program to stop with an error naming the flag", arg, err, out)
		}
	}
}
