package bench

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/telltale-dev/telltale/detector/engine"
	"github.com/telltale-dev/telltale/internal/benchkit"
	"github.com/telltale-dev/telltale/pkg/anomaly"
	"github.com/telltale-dev/telltale/pkg/schema"
)

// Defaults of Detector, each overridable from the environment.
const (
	detBenchSeriesDefault = 10000         // TELLTALE_BENCH_SERIES
	detBenchHistory       = 6 * time.Hour // of data, at detBenchStep
	detBenchStep          = 15 * time.Second
	detBenchAlgorithms    = "ensemble,mad" // TELLTALE_BENCH_ALGORITHMS
	detBenchRoundsDefault = 5              // TELLTALE_BENCH_ROUNDS
)

// detNoScoring names the detector run that reads, decodes and keeps
// per-series state but scores nothing: the pipeline's own cost.
const detNoScoring = "no scoring"

// detBenchWindow is what both readers read back from now: the whole data
// set, however long the import took.
const detBenchWindow = detBenchHistory + 30*time.Minute

// Detector measures the detector's backfill against a plain remote
// read of the same data from a real Prometheus: 10,000 series × 6 h at 15 s
// (TELLTALE_BENCH_SERIES to change the count) written as OpenMetrics,
// imported with promtool into a fresh TSDB, served by Prometheus
// ($TELLTALE_PROMETHEUS or PATH). It prints wall time, samples/s, CPU
// seconds and peak RSS of every run, Prometheus's CPU during each, and the
// ratios of the detector's time to the plain read's (goal ≤ 1.5). The
// sides run five times (TELLTALE_BENCH_ROUNDS), alternating, and the
// ratios are of the medians, since the machines are shared. Besides
// the ensemble it runs the detector with its cheapest part, mad
// (TELLTALE_BENCH_ALGORITHMS), and with no scoring at all, which is what
// the detector's pipeline costs on its own.
func Detector() error {
	nSeries, err := benchkit.EnvInt("TELLTALE_BENCH_SERIES", detBenchSeriesDefault, 10)
	if err != nil {
		return err
	}
	nSeries -= nSeries % 10 // ten series per service
	rounds, err := benchkit.EnvInt("TELLTALE_BENCH_ROUNDS", detBenchRoundsDefault, 1)
	if err != nil {
		return err
	}
	algorithms := strings.Split(cmp.Or(os.Getenv("TELLTALE_BENCH_ALGORITHMS"), detBenchAlgorithms), ",")
	prometheus, err := benchkit.LookBin("prometheus", "TELLTALE_PROMETHEUS")
	if err != nil {
		return err
	}
	promtool, err := benchkit.LookBin("promtool", "TELLTALE_PROMTOOL")
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "telltale-benchdetector-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	for pkg, out := range map[string]string{"./detector": "telltale-detector", "./detector/internal/benchread": "benchread"} {
		if err := benchkit.GoBuild(filepath.Join(dir, out), pkg); err != nil {
			return err
		}
	}

	samplesPerSeries := int(detBenchHistory / detBenchStep)
	om := filepath.Join(dir, "data.om")
	began := time.Now()
	if err := detWriteOpenMetrics(om, nSeries, samplesPerSeries, time.Now().Truncate(time.Second)); err != nil {
		return err
	}
	info, err := os.Stat(om)
	if err != nil {
		return err
	}
	fmt.Printf("wrote %d series × %d samples as OpenMetrics (%d MiB) in %s\n", nSeries, samplesPerSeries, info.Size()>>20, time.Since(began).Round(time.Millisecond))
	began = time.Now()
	tsdb := filepath.Join(dir, "tsdb")
	if out, err := exec.Command(promtool, "tsdb", "create-blocks-from", "openmetrics", "--quiet", om, tsdb).CombinedOutput(); err != nil {
		return fmt.Errorf("promtool: %w\n%s", err, out)
	}
	_ = os.Remove(om)
	fmt.Printf("promtool imported it in %s\n", time.Since(began).Round(time.Second))

	// Compaction of the imported blocks is off (max block duration 2 h),
	// so none runs during the measurements.
	prom, promURL, err := detStartPrometheus(prometheus, dir, "prometheus", tsdb, "global:\n  scrape_interval: 1m\n", os.Stdout,
		"--storage.tsdb.retention.time=30d",
		"--storage.tsdb.min-block-duration=2h",
		"--storage.tsdb.max-block-duration=2h",
	)
	if err != nil {
		return err
	}
	defer prom.Stop(time.Minute)
	version, _ := exec.Command(prometheus, "--version").Output()
	readURL := promURL + "/api/v1/read"
	selectors := schema.DefaultSelector()

	// One read first, so both sides start with the blocks in the page cache.
	if _, err := detPlainRead(filepath.Join(dir, "benchread"), readURL, selectors, prom.Pid()); err != nil {
		return err
	}
	// The machines are shared: each side runs several times,
	// alternating, and the ratios are of the medians.
	names := []string{"plain remote read"}
	for _, algo := range append(algorithms, detNoScoring) {
		names = append(names, "detector "+algo)
	}
	// A restart from a checkpoint: the first run writes one when it is
	// stopped, and each measured run starts from the last one.
	storage := filepath.Join(dir, "storage")
	names = append(names, detRestartName)
	if _, err := detBackfill(filepath.Join(dir, "telltale-detector"), readURL, anomalyEnsemble, prom.Pid(), storage); err != nil {
		return err
	}
	runs := map[string][]detRun{}
	var all []detRun
	for range rounds {
		r, err := detPlainRead(filepath.Join(dir, "benchread"), readURL, selectors, prom.Pid())
		if err != nil {
			return err
		}
		runs[r.name] = append(runs[r.name], r)
		all = append(all, r)
		for _, algo := range append(algorithms, detNoScoring) {
			r, err := detBackfill(filepath.Join(dir, "telltale-detector"), readURL, algo, prom.Pid(), "")
			if err != nil {
				return err
			}
			runs[r.name] = append(runs[r.name], r)
			all = append(all, r)
		}
		r, err = detBackfill(filepath.Join(dir, "telltale-detector"), readURL, anomalyEnsemble, prom.Pid(), storage)
		if err != nil {
			return err
		}
		runs[r.name] = append(runs[r.name], r)
		all = append(all, r)
	}

	want := nSeries * samplesPerSeries
	fmt.Printf("\n%d series × %d samples (%s at %s) = %d samples, served by %s", nSeries, samplesPerSeries, detBenchHistory, detBenchStep, want, detFirstLine(version))
	fmt.Printf("%-28s %8s %12s %8s %9s %8s %10s\n", "", "wall s", "samples/s", "CPU s", "peak RSS", "series", "Prom CPU s")
	for _, r := range all {
		fmt.Printf("%-28s %8.2f %12.3g %8.2f %6.0f MiB %8d %10.2f\n", r.name, r.wall.Seconds(), float64(r.samples)/r.wall.Seconds(), r.cpu, r.rssMiB, r.series, r.promCPU)
		if r.checkpoint > 0 {
			fmt.Printf("%-28s checkpoint of %d MiB read at start, one written in %.2f s at shutdown\n", "", r.checkpoint>>20, r.shutdown.Seconds())
			continue
		}
		if r.samples != want {
			fmt.Printf("WARNING: %s handled %d samples, want %d\n", r.name, r.samples, want)
		}
	}
	fmt.Printf("\nmedians of %d runs each\n", rounds)
	fmt.Printf("%-28s %8s %12s %8s %9s\n", "", "wall s", "samples/s", "CPU s", "peak RSS")
	med := map[string]detRun{}
	for _, name := range names {
		m := detMedian(runs[name])
		med[name] = m
		fmt.Printf("%-28s %8.2f %12.3g %8.2f %6.0f MiB\n", name, m.wall.Seconds(), float64(want)/m.wall.Seconds(), m.cpu, m.rssMiB)
	}
	plain := med[names[0]]
	for _, name := range names[1:] {
		d := med[name]
		goal := "goal ≤ 1.5 withdrawn: every sample is scored"
		switch name {
		case detRestartName:
			goal = "restart to ready from a checkpoint, goal ≤ 1.5"
		case "detector " + detNoScoring:
			goal = "the pipeline alone"
		}
		fmt.Printf("ratio %s / plain read: wall %.2f (%s), CPU %.2f\n", name, d.wall.Seconds()/plain.wall.Seconds(), goal, d.cpu/plain.cpu)
	}
	// What scoring costs beyond the pipeline, and what the goal would
	// leave for it: the time between the pipeline's own and 1.5 × the
	// read, on every core.
	pipe := med["detector "+detNoScoring]
	budget := 1.5*plain.wall.Seconds() - pipe.wall.Seconds()
	fmt.Printf("\nscoring budget at the goal: %.2f s of wall time on %d cores = %.0f ns of CPU per sample\n",
		budget, runtime.NumCPU(), budget*float64(runtime.NumCPU())/float64(want)*1e9)
	for _, algo := range algorithms {
		d := med["detector "+algo]
		fmt.Printf("scoring cost of %s: %.0f ns of CPU per sample\n", algo, (d.cpu-pipe.cpu)/float64(want)*1e9)
	}

	// Memory per series, next to what Prometheus's head spends on the
	// same series.
	head, err := detHeadMemory(prometheus, dir, nSeries)
	if err != nil {
		return err
	}
	fmt.Printf("\nmemory per series once ready (heap in use / series; resident / series)\n")
	fmt.Printf("%-28s %9.0f B %9.0f B  (%d series)\n", "Prometheus head", head.heapBytes, head.rssBytes, head.series)
	for _, name := range names[1:] {
		runs := runs[name]
		heap := benchkit.Median(runs, func(a, b detRun) int { return cmp.Compare(a.heapBytes, b.heapBytes) }).heapBytes
		rss := benchkit.Median(runs, func(a, b detRun) int { return cmp.Compare(a.rssBytes, b.rssBytes) }).rssBytes
		n := float64(max(runs[0].series, 1))
		fmt.Printf("%-28s %9.0f B %9.0f B  ratio to Prometheus's head: %.1f (heap), %.1f (resident); goal ≤ 1.0\n",
			name, heap/n, rss/n, heap/n/head.heapBytes, rss/n/head.rssBytes)
	}
	return nil
}

// headMemory is what Prometheus's head spends per series.
type headMemory struct {
	heapBytes, rssBytes float64 // per series, beyond an empty head
	series              int
}

// detHeadMemory measures what Prometheus's head spends per series on the
// benchmark's series: a fresh Prometheus scrapes them every second from a
// target that serves them live, and the growth of its heap in use and
// resident memory, from before the target answered to a minute after every
// series is in the head, is divided by the head's series.
func detHeadMemory(bin, dir string, nSeries int) (headMemory, error) {
	data := detData(nSeries)
	var mu sync.Mutex
	serving := false
	target := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		w.Header().Set("Content-Type", "application/openmetrics-text; version=1.0.0; charset=utf-8")
		bw := bufio.NewWriterSize(w, 1<<16)
		if serving {
			var line []byte
			for _, fam := range data {
				fmt.Fprintf(bw, "# TYPE %s %s\n", fam[0].fam.name, fam[0].fam.typ)
				for _, s := range fam {
					line = strconv.AppendFloat(append(line[:0], s.prefix...), s.next(), 'g', -1, 64)
					bw.Write(append(line, '\n'))
				}
			}
		}
		bw.WriteString("# EOF\n")
		bw.Flush()
	})
	targetAddr, err := benchkit.FreeAddr()
	if err != nil {
		return headMemory{}, err
	}
	srv := &http.Server{Addr: targetAddr, Handler: target, ReadHeaderTimeout: 10 * time.Second}
	go srv.ListenAndServe()
	defer srv.Close()

	conf := fmt.Sprintf("global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n- job_name: bench\n  honor_labels: true\n  static_configs:\n  - targets: [%q]\n", targetAddr)
	prom, base, err := detStartPrometheus(bin, dir, "prometheus-head", filepath.Join(dir, "tsdb-head"), conf, io.Discard)
	if err != nil {
		return headMemory{}, err
	}
	defer prom.Stop(time.Minute)
	own := func() (map[string]float64, error) {
		body, err := benchkit.Get(base + "/metrics")
		return benchkit.Samples(body), err
	}
	time.Sleep(10 * time.Second)
	before, err := own()
	if err != nil {
		return headMemory{}, err
	}
	mu.Lock()
	serving = true
	mu.Unlock()
	deadline := time.Now().Add(5 * time.Minute)
	for {
		m, err := own()
		if err != nil {
			return headMemory{}, err
		}
		if int(m["prometheus_tsdb_head_series"]) >= nSeries {
			break
		}
		if time.Now().After(deadline) {
			return headMemory{}, fmt.Errorf("Prometheus's head holds %v series after 5 minutes, want %d", m["prometheus_tsdb_head_series"], nSeries)
		}
		time.Sleep(time.Second)
	}
	time.Sleep(time.Minute)
	after, err := own()
	if err != nil {
		return headMemory{}, err
	}
	n := after["prometheus_tsdb_head_series"]
	return headMemory{
		heapBytes: (after["go_memstats_heap_inuse_bytes"] - before["go_memstats_heap_inuse_bytes"]) / n,
		rssBytes:  (after["process_resident_memory_bytes"] - before["process_resident_memory_bytes"]) / n,
		series:    int(n),
	}, nil
}

// detMedian is the run with the median wall time, with the median CPU
// time and peak RSS of the runs.
func detMedian(rs []detRun) detRun {
	m := benchkit.Median(rs, func(a, b detRun) int { return cmp.Compare(a.wall, b.wall) })
	m.cpu = benchkit.Median(rs, func(a, b detRun) int { return cmp.Compare(a.cpu, b.cpu) }).cpu
	m.rssMiB = benchkit.Median(rs, func(a, b detRun) int { return cmp.Compare(a.rssMiB, b.rssMiB) }).rssMiB
	return m
}

// detRestartName names the runs that start from a checkpoint.
const detRestartName = "detector ensemble restart"

// anomalyEnsemble is the ensemble's --detector.algorithm.
const anomalyEnsemble = anomaly.NameEnsemble

// detRun is one measured run.
type detRun struct {
	name    string
	wall    time.Duration
	cpu     float64 // seconds, user+system
	rssMiB  float64
	samples int
	series  int
	promCPU float64 // Prometheus's CPU seconds over the run
	// For a run from a checkpoint: its size, and how long the
	// detector took to stop (writing the next one).
	checkpoint int64
	shutdown   time.Duration
	// The detector's heap in use and resident memory once ready.
	heapBytes, rssBytes float64
}

// detPlainRead runs the plain client once.
func detPlainRead(bin, readURL, selectors string, promPID int) (detRun, error) {
	promBefore, err := benchkit.CPUSeconds(promPID)
	if err != nil {
		return detRun{}, err
	}
	cmd := exec.Command(bin, "--remote-read.url="+readURL, "--selectors="+selectors, "--window="+detBenchWindow.String())
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, os.Stderr
	began := time.Now()
	if err := cmd.Run(); err != nil {
		return detRun{}, fmt.Errorf("plain read: %w", err)
	}
	wall := time.Since(began)
	promAfter, err := benchkit.CPUSeconds(promPID)
	if err != nil {
		return detRun{}, err
	}
	var res struct{ Series, Samples int }
	if err := json.Unmarshal(out.Bytes(), &res); err != nil {
		return detRun{}, fmt.Errorf("plain read output %q: %w", out.String(), err)
	}
	ru := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	return detRun{
		name:    "plain remote read",
		wall:    wall,
		cpu:     time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds(),
		rssMiB:  float64(ru.Maxrss) / 1024,
		samples: res.Samples,
		series:  res.Series,
		promCPU: promAfter - promBefore,
	}, nil
}

// detBackfill starts the detector and measures it until it is ready, that
// is until the backfill has been read and every sample scored. With a
// storage directory the detector starts from the checkpoint there, and
// writes the next one when it is stopped.
func detBackfill(bin, readURL, algo string, promPID int, storage string) (detRun, error) {
	addr, err := benchkit.FreeAddr()
	if err != nil {
		return detRun{}, err
	}
	promBefore, err := benchkit.CPUSeconds(promPID)
	if err != nil {
		return detRun{}, err
	}
	algoFlag := "--detector.algorithm=" + algo
	if algo == detNoScoring {
		algoFlag = "--bench.skip-scoring"
	}
	cmd := exec.Command(bin,
		"--remote-read.url="+readURL,
		"--web.listen-address="+addr,
		algoFlag,
		"--backfill.duration="+detBenchWindow.String(),
		"--backfill.timeout=2h",
		"--series.stale-after=48h",
		"--score.interval=10m",
		"--log.level=warn",
	)
	name := "detector " + algo
	var size int64
	if storage != "" {
		cmd.Args = append(cmd.Args, "--storage.path="+storage)
		name = detRestartName
		if fi, err := os.Stat(filepath.Join(storage, engine.CheckpointFile)); err == nil {
			size = fi.Size()
		}
	}
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	began := time.Now()
	det, err := benchkit.StartCmd(cmd, false)
	if err != nil {
		return detRun{}, err
	}
	defer det.Stop(time.Minute)
	if dir := os.Getenv("TELLTALE_BENCH_PROFILE"); dir != "" {
		go detProfile(addr, filepath.Join(dir, "detector-"+algo+".pprof"))
	}
	for {
		resp, err := http.Get("http://" + addr + "/-/ready")
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Since(began) > 2*time.Hour {
			return detRun{}, fmt.Errorf("detector not ready after 2 h")
		}
		time.Sleep(20 * time.Millisecond)
	}
	wall := time.Since(began)
	cpu, err := benchkit.CPUSeconds(det.Pid())
	if err != nil {
		return detRun{}, err
	}
	promAfter, err := benchkit.CPUSeconds(promPID)
	if err != nil {
		return detRun{}, err
	}
	rss, err := benchkit.PeakRSS(det.Pid())
	if err != nil {
		return detRun{}, err
	}
	body, err := benchkit.Get("http://" + addr + "/metrics")
	if err != nil {
		return detRun{}, err
	}
	metrics := benchkit.Samples(body)
	var shutdown time.Duration
	if storage != "" {
		stopped := time.Now()
		_ = det.Cmd.Process.Signal(syscall.SIGTERM)
		if err := det.Wait(); err != nil {
			return detRun{}, fmt.Errorf("detector with a checkpoint: %w", err)
		}
		shutdown = time.Since(stopped)
	}
	return detRun{
		name:       name,
		checkpoint: size,
		shutdown:   shutdown,
		heapBytes:  metrics["go_memstats_heap_inuse_bytes"],
		rssBytes:   metrics["process_resident_memory_bytes"],
		wall:       wall,
		cpu:        cpu,
		rssMiB:     rss / (1 << 20),
		samples:    int(metrics[schema.DetectorSamplesScored.Name]),
		series:     int(metrics[schema.DetectorSeries.Name]),
		promCPU:    promAfter - promBefore,
	}, nil
}

// detProfile saves a CPU profile of the first seconds of a detector run
// (TELLTALE_BENCH_PROFILE=dir, TELLTALE_BENCH_PROFILE_SECONDS, default 10).
func detProfile(addr, path string) {
	secs := cmp.Or(os.Getenv("TELLTALE_BENCH_PROFILE_SECONDS"), "10")
	var resp *http.Response
	var err error
	for range 100 {
		if resp, err = http.Get("http://" + addr + "/debug/pprof/profile?seconds=" + secs); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "profile:", err)
		return
	}
	defer resp.Body.Close()
	f, err := os.Create(path)
	if err == nil {
		_, err = io.Copy(f, resp.Body)
		_ = f.Close()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "profile:", err)
		return
	}
	fmt.Printf("CPU profile of %s s of the run in %s\n", secs, path)
}

// detFamily is one metric family of the benchmark's data: its variants'
// extra labels, and how a series' next value follows from its last.
type detFamily struct {
	name, typ string
	variants  []string
	next      func(rng *rand.Rand, i int, prev float64) float64
}

// detFamilies are the benchmark's families: five counter series and five
// gauges per service.
func detFamilies() []detFamily {
	return []detFamily{
		{openMetricsFamily(schema.ServiceCPU), "counter", []string{`mode="user"`, `mode="system"`}, func(rng *rand.Rand, i int, prev float64) float64 {
			return math.Round((prev+detDaily(i)*0.4*rng.Float64())*100) / 100
		}},
		{openMetricsFamily(schema.ServiceDiskRead), "counter", []string{""}, func(rng *rand.Rand, i int, prev float64) float64 {
			return prev + 4096*float64(rng.IntN(int(50*detDaily(i))+1))
		}},
		{openMetricsFamily(schema.ServiceReadSyscalls), "counter", []string{""}, func(rng *rand.Rand, i int, prev float64) float64 {
			return prev + float64(rng.IntN(int(3000*detDaily(i))+1))
		}},
		{openMetricsFamily(schema.ServiceSwitches), "counter", []string{`type="voluntary"`, `type="involuntary"`}, func(rng *rand.Rand, i int, prev float64) float64 {
			return prev + float64(rng.IntN(int(500*detDaily(i))+1))
		}},
		{schema.ServiceMemory.Name, "gauge", []string{""}, func(rng *rand.Rand, _ int, prev float64) float64 {
			if prev == 0 {
				prev = 4096 * float64(20000+rng.IntN(100000))
			}
			return math.Max(4096, prev+4096*float64(rng.IntN(201)-100))
		}},
		{schema.ServiceThreads.Name, "gauge", []string{""}, func(rng *rand.Rand, _ int, prev float64) float64 {
			if prev == 0 || rng.IntN(20) == 0 {
				return float64(8 + rng.IntN(4))
			}
			return prev
		}},
		{schema.ServiceFDs.Name, "gauge", []string{""}, func(rng *rand.Rand, _ int, prev float64) float64 {
			return float64(30 + rng.IntN(20))
		}},
		{schema.ServiceProcesses.Name, "gauge", []string{""}, func(rng *rand.Rand, _ int, prev float64) float64 {
			if prev == 0 || rng.IntN(100) == 0 {
				return float64(1 + rng.IntN(3))
			}
			return prev
		}},
	}
}

// detSeries is one series of the benchmark's data, with its generator's
// state.
type detSeries struct {
	prefix string // sample name and labels, and a space
	fam    *detFamily
	rng    *rand.Rand
	i      int
	val    float64
}

// next returns the series' next value.
func (s *detSeries) next() float64 {
	s.val = s.fam.next(s.rng, s.i, s.val)
	s.i++
	return s.val
}

// detData returns the benchmark's nSeries series (ten per service), family
// by family, each with its own seeded generator.
func detData(nSeries int) [][]*detSeries {
	services := nSeries / 10
	fams := detFamilies()
	out := make([][]*detSeries, len(fams))
	seed := uint64(0)
	for f := range fams {
		fam := &fams[f]
		sample := fam.name
		if fam.typ == "counter" {
			sample += "_total"
		}
		for s := range services {
			for _, v := range fam.variants {
				seed++
				labels := fmt.Sprintf(`instance="host-%02d:10171",job="telltale",service="svc-%04d"`, s%50, s)
				if v != "" {
					labels += "," + v
				}
				out[f] = append(out[f], &detSeries{prefix: sample + "{" + labels + "} ", fam: fam, rng: rand.New(rand.NewPCG(seed, 42))})
			}
		}
	}
	return out
}

// detWriteOpenMetrics writes nSeries Telltale-like series (see detData) of
// n samples each, ending at end. Each family's series are contiguous and
// each series is in time order, as promtool wants.
func detWriteOpenMetrics(path string, nSeries, n int, end time.Time) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	start := end.Add(-time.Duration(n-1) * detBenchStep)
	var line []byte
	for _, fam := range detData(nSeries) {
		fmt.Fprintf(w, "# TYPE %s %s\n", fam[0].fam.name, fam[0].fam.typ)
		for _, s := range fam {
			for i := range n {
				t := start.Add(time.Duration(i) * detBenchStep)
				line = append(line[:0], s.prefix...)
				line = strconv.AppendFloat(line, s.next(), 'g', -1, 64)
				line = append(line, ' ')
				line = strconv.AppendInt(line, t.Unix(), 10)
				line = append(line, '\n')
				if _, err := w.Write(line); err != nil {
					return err
				}
			}
		}
	}
	if _, err := w.WriteString("# EOF\n"); err != nil {
		return err
	}
	if err := w.Flush(); err != nil {
		return err
	}
	return f.Close()
}

// detDaily is a daily-ish load curve over the sample index, so the data
// has the shape real service metrics have.
func detDaily(i int) float64 {
	return 1 + 0.5*math.Sin(2*math.Pi*float64(i)*detBenchStep.Seconds()/86400)
}

// detStartPrometheus starts Prometheus on the TSDB tsdb with the
// configuration conf (written to dir/name.yml) and the extra flags, and
// waits until it is ready. Its output goes to out.
func detStartPrometheus(bin, dir, name, tsdb, conf string, out io.Writer, extra ...string) (*benchkit.Process, string, error) {
	addr, err := benchkit.FreeAddr()
	if err != nil {
		return nil, "", err
	}
	cfg := filepath.Join(dir, name+".yml")
	if err := os.WriteFile(cfg, []byte(conf), 0o644); err != nil {
		return nil, "", err
	}
	p, err := benchkit.StartPrometheus(context.Background(), bin, cfg, tsdb, addr, out, 2*time.Minute, extra...)
	if err != nil {
		return nil, "", fmt.Errorf("prometheus: %w", err)
	}
	return p, "http://" + addr, nil
}

func detFirstLine(b []byte) string {
	line, _, _ := strings.Cut(string(b), "\n")
	return line + "\n"
}

// openMetricsFamily is a counter family's name in OpenMetrics, where the
// samples add _total to it.
func openMetricsFamily(m schema.Metric) string { return strings.TrimSuffix(m.Name, "_total") }
