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
	"syscall"
	"time"

	"github.com/telltale-dev/telltale/internal/benchkit"
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

	prom, promURL, err := detStartPrometheus(prometheus, dir, tsdb)
	if err != nil {
		return err
	}
	defer func() {
		_ = prom.Process.Signal(syscall.SIGTERM)
		_ = prom.Wait()
	}()
	version, _ := exec.Command(prometheus, "--version").Output()
	readURL := promURL + "/api/v1/read"
	selectors := schema.DefaultSelector()

	// One read first, so both sides start with the blocks in the page cache.
	if _, err := detPlainRead(filepath.Join(dir, "benchread"), readURL, selectors, prom.Process.Pid); err != nil {
		return err
	}
	// The machines are shared: each side runs several times,
	// alternating, and the ratios are of the medians.
	names := []string{"plain remote read"}
	for _, algo := range append(algorithms, detNoScoring) {
		names = append(names, "detector "+algo)
	}
	runs := map[string][]detRun{}
	var all []detRun
	for range rounds {
		r, err := detPlainRead(filepath.Join(dir, "benchread"), readURL, selectors, prom.Process.Pid)
		if err != nil {
			return err
		}
		runs[r.name] = append(runs[r.name], r)
		all = append(all, r)
		for _, algo := range append(algorithms, detNoScoring) {
			r, err := detBackfill(filepath.Join(dir, "telltale-detector"), readURL, algo, prom.Process.Pid)
			if err != nil {
				return err
			}
			runs[r.name] = append(runs[r.name], r)
			all = append(all, r)
		}
	}

	want := nSeries * samplesPerSeries
	fmt.Printf("\n%d series × %d samples (%s at %s) = %d samples, served by %s", nSeries, samplesPerSeries, detBenchHistory, detBenchStep, want, detFirstLine(version))
	fmt.Printf("%-28s %8s %12s %8s %9s %8s %10s\n", "", "wall s", "samples/s", "CPU s", "peak RSS", "series", "Prom CPU s")
	for _, r := range all {
		fmt.Printf("%-28s %8.2f %12.3g %8.2f %6.0f MiB %8d %10.2f\n", r.name, r.wall.Seconds(), float64(r.samples)/r.wall.Seconds(), r.cpu, r.rssMiB, r.series, r.promCPU)
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
		fmt.Printf("ratio %s / plain read: wall %.2f (goal ≤ 1.5), CPU %.2f\n", name, d.wall.Seconds()/plain.wall.Seconds(), d.cpu/plain.cpu)
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
	return nil
}

// detMedian is the run with the median wall time, with the median CPU
// time and peak RSS of the runs.
func detMedian(rs []detRun) detRun {
	m := benchkit.Median(rs, func(a, b detRun) int { return cmp.Compare(a.wall, b.wall) })
	m.cpu = benchkit.Median(rs, func(a, b detRun) int { return cmp.Compare(a.cpu, b.cpu) }).cpu
	m.rssMiB = benchkit.Median(rs, func(a, b detRun) int { return cmp.Compare(a.rssMiB, b.rssMiB) }).rssMiB
	return m
}

// detRun is one measured run.
type detRun struct {
	name    string
	wall    time.Duration
	cpu     float64 // seconds, user+system
	rssMiB  float64
	samples int
	series  int
	promCPU float64 // Prometheus's CPU seconds over the run
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
// is until the backfill has been read and every sample scored.
func detBackfill(bin, readURL, algo string, promPID int) (detRun, error) {
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
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	began := time.Now()
	if err := cmd.Start(); err != nil {
		return detRun{}, err
	}
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
	}()
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
	cpu, err := benchkit.CPUSeconds(cmd.Process.Pid)
	if err != nil {
		return detRun{}, err
	}
	promAfter, err := benchkit.CPUSeconds(promPID)
	if err != nil {
		return detRun{}, err
	}
	rss, err := benchkit.PeakRSS(cmd.Process.Pid)
	if err != nil {
		return detRun{}, err
	}
	body, err := benchkit.Get("http://" + addr + "/metrics")
	if err != nil {
		return detRun{}, err
	}
	metrics := benchkit.Samples(body)
	return detRun{
		name:    "detector " + algo,
		wall:    wall,
		cpu:     cpu,
		rssMiB:  rss / (1 << 20),
		samples: int(metrics[schema.DetectorSamplesScored.Name]),
		series:  int(metrics[schema.DetectorSeries.Name]),
		promCPU: promAfter - promBefore,
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

// detWriteOpenMetrics writes nSeries Telltale-like series (ten per service:
// five counter series, five gauges) of n samples each, ending at end. Each
// family's series are contiguous and each series is in time order, as
// promtool wants.
func detWriteOpenMetrics(path string, nSeries, n int, end time.Time) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	services := nSeries / 10
	start := end.Add(-time.Duration(n-1) * detBenchStep)
	families := []struct {
		name, typ string
		variants  []string
		next      func(rng *rand.Rand, i int, prev float64) float64
	}{
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
	var line []byte
	seed := uint64(0)
	for _, fam := range families {
		fmt.Fprintf(w, "# TYPE %s %s\n", fam.name, fam.typ)
		sample := fam.name
		if fam.typ == "counter" {
			sample += "_total"
		}
		for s := range services {
			for _, v := range fam.variants {
				seed++
				rng := rand.New(rand.NewPCG(seed, 42))
				labels := fmt.Sprintf(`instance="host-%02d:10171",job="telltale",service="svc-%04d"`, s%50, s)
				if v != "" {
					labels += "," + v
				}
				prefix := sample + "{" + labels + "} "
				val := 0.0
				for i := range n {
					val = fam.next(rng, i, val)
					t := start.Add(time.Duration(i) * detBenchStep)
					line = append(line[:0], prefix...)
					line = strconv.AppendFloat(line, val, 'g', -1, 64)
					line = append(line, ' ')
					line = strconv.AppendInt(line, t.Unix(), 10)
					line = append(line, '\n')
					if _, err := w.Write(line); err != nil {
						return err
					}
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

// detStartPrometheus serves the TSDB with compaction of the imported blocks
// turned off (max block duration 2 h), so no compaction runs during the
// measurements.
func detStartPrometheus(bin, dir, tsdb string) (*exec.Cmd, string, error) {
	addr, err := benchkit.FreeAddr()
	if err != nil {
		return nil, "", err
	}
	cfg := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfg, []byte("global:\n  scrape_interval: 1m\n"), 0o644); err != nil {
		return nil, "", err
	}
	cmd := exec.Command(bin, benchkit.PrometheusFlags(cfg, tsdb, addr,
		"--storage.tsdb.retention.time=30d",
		"--storage.tsdb.min-block-duration=2h",
		"--storage.tsdb.max-block-duration=2h",
	)...)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, "", err
	}
	url := "http://" + addr
	if err := benchkit.WaitHTTP(context.Background(), benchkit.PrometheusReady(url), 2*time.Minute, nil); err != nil {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		return nil, "", fmt.Errorf("prometheus: %w", err)
	}
	return cmd, url, nil
}

func detFirstLine(b []byte) string {
	line, _, _ := strings.Cut(string(b), "\n")
	return line + "\n"
}

// openMetricsFamily is a counter family's name in OpenMetrics, where the
// samples add _total to it.
func openMetricsFamily(m schema.Metric) string { return strings.TrimSuffix(m.Name, "_total") }
