//go:build mage

package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/magefile/mage/mg"

	"github.com/telltale-dev/telltale/pkg/schema"
)

// BenchExporter measures the exporter's CPU seconds per scrape and peak RSS
// with about 1000 extra processes on the host, side by side with Debian's
// prometheus-process-exporter grouping every process by name, and prints
// the ratio.
func BenchExporter() error {
	mg.Deps(Build)
	peer, err := exec.LookPath("prometheus-process-exporter")
	if err != nil {
		return fmt.Errorf("prometheus-process-exporter not found: apt-get install prometheus-process-exporter")
	}
	const extra = 1000
	sleepers, err := startSleepers(extra)
	if err != nil {
		return err
	}
	defer killGroup(sleepers)

	dir, err := os.MkdirTemp("", "telltale-bench")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	cfg := filepath.Join(dir, "process-exporter.yml")
	if err := os.WriteFile(cfg, []byte("process_names:\n  - name: \"{{.Comm}}\"\n    cmdline: ['.+']\n"), 0o644); err != nil {
		return err
	}

	ttAddr, peAddr := freeAddr(), freeAddr()
	tt, err := startServer(filepath.Join(binDir, "telltale-exporter"), "--web.listen-address="+ttAddr, "--log.level=warn")
	if err != nil {
		return err
	}
	defer killGroup(tt)
	pe, err := startServer(peer, "-config.path="+cfg, "-web.listen-address="+peAddr)
	if err != nil {
		return err
	}
	defer killGroup(pe)

	subjects := []struct {
		name string
		cmd  *exec.Cmd
		url  string
	}{
		{"telltale-exporter", tt, "http://" + ttAddr + "/metrics"},
		{"process-exporter", pe, "http://" + peAddr + "/metrics"},
	}
	for _, s := range subjects {
		if err := waitHTTP(s.url, 30*time.Second); err != nil {
			return fmt.Errorf("%s: %w", s.name, err)
		}
		for range 3 { // warm up caches on both sides
			if _, err := scrape(s.url); err != nil {
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
			before, err := cpuSeconds(s.cmd.Process.Pid)
			if err != nil {
				return err
			}
			n, err := scrape(s.url)
			if err != nil {
				return fmt.Errorf("%s: %w", s.name, err)
			}
			after, err := cpuSeconds(s.cmd.Process.Pid)
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
		rss, err := peakRSS(s.cmd.Process.Pid)
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

// startSleepers starts n idle processes in one process group.
func startSleepers(n int) (*exec.Cmd, error) {
	// One shell that forks n sleeps keeps them in its group, killed together.
	cmd := exec.Command("/bin/sh", "-c", fmt.Sprintf("for i in $(seq %d); do sleep 3600 & done; wait", n))
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start sleepers: %w", err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		c, err := countChildren(cmd.Process.Pid)
		if err != nil {
			return nil, err
		}
		if c >= n {
			return cmd, nil
		}
		if time.Now().After(deadline) {
			killGroup(cmd)
			return nil, fmt.Errorf("only %d of %d sleepers started", c, n)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func startServer(bin string, args ...string) (*exec.Cmd, error) {
	cmd := exec.Command(bin, args...)
	cmd.Stderr = os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	return cmd, nil
}

func killGroup(cmd *exec.Cmd) {
	if cmd == nil || cmd.Process == nil {
		return
	}
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	_ = cmd.Wait()
}

func freeAddr() string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func waitHTTP(url string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not up after %s: %v", url, timeout, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// scrape fetches a /metrics page and returns its number of samples.
func scrape(url string) (int, error) {
	resp, err := http.Get(url)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		return 0, fmt.Errorf("GET %s: %s: %s", url, resp.Status, b)
	}
	n := 0
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if l := sc.Text(); l != "" && l[0] != '#' {
			n++
		}
	}
	return n, sc.Err()
}

// cpuSeconds is a process's user+system CPU time from /proc/<pid>/stat.
func cpuSeconds(pid int) (float64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	f := strings.Fields(string(data[strings.LastIndexByte(string(data), ')')+2:]))
	ut, err1 := strconv.ParseFloat(f[11], 64)
	st, err2 := strconv.ParseFloat(f[12], 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("parse /proc/%d/stat", pid)
	}
	return (ut + st) / 100, nil
}

// peakRSS is VmHWM from /proc/<pid>/status, in bytes.
func peakRSS(pid int) (float64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, l := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(l, "VmHWM:"); ok {
			kb, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
			return kb * 1024, err
		}
	}
	return 0, fmt.Errorf("no VmHWM in /proc/%d/status", pid)
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

// BenchEdges measures the exporter's CPU seconds per scrape with 10,000
// established loopback connections between a few services, side by side
// with `ss -tinp` (which reads the same sockets with tcp_info and their
// processes) for the same sockets, and prints the ratio.
func BenchEdges() error {
	mg.Deps(Build)
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
		if err := goBuild(p.pkg, filepath.Join(dir, p.name)); err != nil {
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
		cmd, out, err := startPiped(bin)
		if err != nil {
			return err
		}
		defer killGroup(cmd)
		port, err := readLine(out)
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
		cmd, out, err := startPiped(bin, "-addr="+servers[i%2], fmt.Sprint("-conns=", perClient), "-interval=0")
		if err != nil {
			return err
		}
		defer killGroup(cmd)
		if line, err := readLine(out); err != nil || line != "ready" {
			return fmt.Errorf("%s: %q %v", name, line, err)
		}
	}

	addr := freeAddr()
	exp, err := startServer(filepath.Join(binDir, "telltale-exporter"), "--web.listen-address="+addr, "--log.level=warn")
	if err != nil {
		return err
	}
	defer killGroup(exp)
	url := "http://" + addr + "/metrics"
	if err := waitHTTP(url, 30*time.Second); err != nil {
		return err
	}
	for range 3 {
		if _, err := scrape(url); err != nil {
			return err
		}
	}

	const rounds = 15
	var expCPU, ssCPU float64
	var ssLines int
	for range rounds {
		before, err := cpuSeconds(exp.Process.Pid)
		if err != nil {
			return err
		}
		if _, err := scrape(url); err != nil {
			return err
		}
		after, err := cpuSeconds(exp.Process.Pid)
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
	fams, err := scrapeBody(url)
	if err != nil {
		return err
	}
	conns := 0.0
	for _, l := range strings.Split(fams, "\n") {
		if strings.HasPrefix(l, schema.EdgeConnections.Name+"{") {
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

func goBuild(pkg, out string) error {
	cmd := exec.Command(mg.GoCmd(), "build", "-o", out, pkg)
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go build %s: %w", pkg, err)
	}
	return nil
}

func copyExec(src, dst string) error {
	data, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	return os.WriteFile(dst, data, 0o755)
}

func startPiped(bin string, args ...string) (*exec.Cmd, *bufio.Reader, error) {
	cmd := exec.Command(bin, args...)
	cmd.Stderr = os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, nil, fmt.Errorf("start %s: %w", bin, err)
	}
	return cmd, bufio.NewReader(out), nil
}

func readLine(r *bufio.Reader) (string, error) {
	l, err := r.ReadString('\n')
	return strings.TrimSpace(l), err
}

func scrapeBody(url string) (string, error) {
	resp, err := http.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}
