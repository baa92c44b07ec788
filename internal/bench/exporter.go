// Package bench holds the benchmark programs the mage targets run: each
// measures a Telltale program side by side with its peer in one run,
// alternating the two, and prints the figures and their ratio. They are
// programs, not timed tests; internal/benchkit holds what they share.
package bench

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/telltale-dev/telltale/internal/benchkit"
	"github.com/telltale-dev/telltale/pkg/schema"
)

// Exporter measures the exporter in binDir, CPU seconds per scrape and
// peak RSS, with about 1000 extra processes on the host, side by side with
// Debian's prometheus-process-exporter grouping every process by name, and
// prints the ratio.
func Exporter(binDir string) error {
	peer, err := exec.LookPath("prometheus-process-exporter")
	if err != nil {
		return fmt.Errorf("prometheus-process-exporter not found: apt-get install prometheus-process-exporter")
	}
	const extra = 1000
	sleepers, err := startSleepers(extra)
	if err != nil {
		return err
	}
	defer sleepers.Kill()

	dir, err := os.MkdirTemp("", "telltale-bench")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	cfg := filepath.Join(dir, "process-exporter.yml")
	if err := os.WriteFile(cfg, []byte("process_names:\n  - name: \"{{.Comm}}\"\n    cmdline: ['.+']\n"), 0o644); err != nil {
		return err
	}

	ttAddr, err := benchkit.FreeAddr()
	if err != nil {
		return err
	}
	peAddr, err := benchkit.FreeAddr()
	if err != nil {
		return err
	}
	tt, err := benchkit.Start(filepath.Join(binDir, "telltale-exporter"), "--web.listen-address="+ttAddr, "--log.level=warn")
	if err != nil {
		return err
	}
	defer tt.Kill()
	pe, err := benchkit.Start(peer, "-config.path="+cfg, "-web.listen-address="+peAddr)
	if err != nil {
		return err
	}
	defer pe.Kill()

	subjects := []struct {
		name string
		p    *benchkit.Process
		url  string
	}{
		{"telltale-exporter", tt, "http://" + ttAddr + "/metrics"},
		{"process-exporter", pe, "http://" + peAddr + "/metrics"},
	}
	for _, s := range subjects {
		if err := benchkit.WaitHTTP(context.Background(), s.url, 30*time.Second, nil); err != nil {
			return fmt.Errorf("%s: %w", s.name, err)
		}
		for range 3 { // warm up caches on both sides
			if _, err := scrapeSamples(s.url); err != nil {
				return err
			}
		}
	}

	const rounds = 30
	cpu := make([]float64, len(subjects))
	series := make([]int, len(subjects))
	for range rounds {
		// Interleaved, so both see the same host.
		for i, s := range subjects {
			before, err := benchkit.CPUSeconds(s.p.Pid())
			if err != nil {
				return err
			}
			n, err := scrapeSamples(s.url)
			if err != nil {
				return fmt.Errorf("%s: %w", s.name, err)
			}
			after, err := benchkit.CPUSeconds(s.p.Pid())
			if err != nil {
				return err
			}
			cpu[i] += after - before
			series[i] = n
		}
	}
	procs, _ := countProcesses()
	fmt.Printf("exporter benchmark: %d processes on the host (%d started for the benchmark), %d scrapes each, interleaved\n", procs, extra, rounds)
	fmt.Printf("%-20s %16s %14s %10s\n", "exporter", "CPU s/scrape", "peak RSS MiB", "series")
	for i, s := range subjects {
		rss, err := benchkit.PeakRSS(s.p.Pid())
		if err != nil {
			return err
		}
		fmt.Printf("%-20s %16.4f %14.1f %10d\n", s.name, cpu[i]/rounds, rss/(1<<20), series[i])
	}
	if cpu[1] == 0 {
		return fmt.Errorf("process-exporter used no measurable CPU")
	}
	fmt.Printf("ratio telltale/process-exporter CPU per scrape: %.3f (goal <= 0.10)\n", cpu[0]/cpu[1])
	return nil
}

// startSleepers starts n idle processes in one process group: one shell
// that forks n sleeps keeps them in its group, stopped together.
func startSleepers(n int) (*benchkit.Process, error) {
	p, err := benchkit.Start("/bin/sh", "-c", fmt.Sprintf("for i in $(seq %d); do sleep 3600 & done; wait", n))
	if err != nil {
		return nil, fmt.Errorf("start sleepers: %w", err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		c, err := countChildren(p.Pid())
		if err != nil {
			p.Kill()
			return nil, err
		}
		if c >= n {
			return p, nil
		}
		if time.Now().After(deadline) {
			p.Kill()
			return nil, fmt.Errorf("only %d of %d sleepers started", c, n)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// scrapeSamples fetches a /metrics page and returns its number of samples.
func scrapeSamples(url string) (int, error) {
	body, err := benchkit.Get(url)
	if err != nil {
		return 0, err
	}
	n := 0
	for l := range strings.Lines(body) {
		if l != "\n" && l[0] != '#' {
			n++
		}
	}
	return n, nil
}

func countProcesses() (int, error) {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return 0, err
	}
	n := 0
	for _, e := range ents {
		if _, err := strconv.Atoi(e.Name()); err == nil {
			n++
		}
	}
	return n, nil
}

func countChildren(ppid int) (int, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", ppid, ppid))
	if err != nil {
		return 0, err
	}
	return len(strings.Fields(string(data))), nil
}

// Edges measures the exporter in binDir, CPU seconds per scrape, with
// 10,000 established loopback connections between a few services, side by
// side with `ss -tinp` (which reads the same sockets with tcp_info and
// their processes), and prints the ratio.
func Edges(binDir string) error {
	ss, err := exec.LookPath("ss")
	if err != nil {
		return fmt.Errorf("ss not found: apt-get install iproute2")
	}
	dir, err := os.MkdirTemp("", "telltale-bench-edges")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	for _, p := range []struct{ pkg, name string }{{"./exporter/testdata/shopd", "ordersd"}, {"./exporter/testdata/loadgen", "loadgen"}} {
		if err := benchkit.GoBuild(filepath.Join(dir, p.name), p.pkg); err != nil {
			return err
		}
	}
	// Two servers, four client services of 2500 connections each.
	var servers []string
	for _, name := range []string{"ordersd", "stockd"} {
		bin := filepath.Join(dir, name)
		if name != "ordersd" {
			if err := copyExec(filepath.Join(dir, "ordersd"), bin); err != nil {
				return err
			}
		}
		p, err := benchkit.StartPiped(bin)
		if err != nil {
			return err
		}
		defer p.Kill()
		port, err := p.ReadLine()
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		servers = append(servers, "127.0.0.1:"+port)
	}
	const perClient = 2500
	for i, name := range []string{"web", "api", "worker", "batch"} {
		bin := filepath.Join(dir, name)
		if err := copyExec(filepath.Join(dir, "loadgen"), bin); err != nil {
			return err
		}
		p, err := benchkit.StartPiped(bin, "-addr="+servers[i%2], fmt.Sprint("-conns=", perClient), "-interval=0")
		if err != nil {
			return err
		}
		defer p.Kill()
		if line, err := p.ReadLine(); err != nil || line != "ready" {
			return fmt.Errorf("%s: %q %v", name, line, err)
		}
	}

	addr, err := benchkit.FreeAddr()
	if err != nil {
		return err
	}
	exp, err := benchkit.Start(filepath.Join(binDir, "telltale-exporter"), "--web.listen-address="+addr, "--log.level=warn")
	if err != nil {
		return err
	}
	defer exp.Kill()
	url := "http://" + addr + "/metrics"
	if err := benchkit.WaitHTTP(context.Background(), url, 30*time.Second, nil); err != nil {
		return err
	}
	for range 3 {
		if _, err := scrapeSamples(url); err != nil {
			return err
		}
	}

	const rounds = 15
	var expCPU, ssCPU float64
	var ssLines int
	for range rounds {
		before, err := benchkit.CPUSeconds(exp.Pid())
		if err != nil {
			return err
		}
		if _, err := scrapeSamples(url); err != nil {
			return err
		}
		after, err := benchkit.CPUSeconds(exp.Pid())
		if err != nil {
			return err
		}
		expCPU += after - before

		cmd := exec.Command(ss, "-tinp")
		var buf strings.Builder
		cmd.Stdout = &buf
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("ss -tinp: %w", err)
		}
		ru := cmd.ProcessState.SysUsage().(*syscall.Rusage)
		ssCPU += float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
		ssLines = strings.Count(buf.String(), "\n")
	}
	body, err := benchkit.Get(url)
	if err != nil {
		return err
	}
	conns := 0.0
	for l := range strings.Lines(body) {
		if strings.HasPrefix(l, schema.EdgeConnections.Name+"{") {
			l = strings.TrimSpace(l)
			if v, err := strconv.ParseFloat(l[strings.LastIndexByte(l, ' ')+1:], 64); err == nil {
				conns += v
			}
		}
	}
	fmt.Printf("edges benchmark: %d client connections held by 4 services to 2 servers on loopback; the exporter reports %.0f connections on its edges; ss printed %d lines; %d rounds, interleaved\n",
		4*perClient, conns, ssLines, rounds)
	fmt.Printf("%-20s %14s\n", "reader", "CPU s/run")
	fmt.Printf("%-20s %14.4f\n", "telltale-exporter", expCPU/rounds)
	fmt.Printf("%-20s %14.4f\n", "ss -tinp", ssCPU/rounds)
	if ssCPU == 0 {
		return fmt.Errorf("ss used no measurable CPU")
	}
	fmt.Printf("ratio exporter/ss CPU per scrape: %.3f (goal <= 1.0)\n", expCPU/ssCPU)
	return nil
}

func copyExec(src, dst string) error {
	data, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	return os.WriteFile(dst, data, 0o755)
}
