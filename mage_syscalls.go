//go:build mage

package main

// Targets of the eBPF syscall tracer in pkg/syscalls: regenerating its
// committed generated files, and measuring its overhead.

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/magefile/mage/mg"
	"github.com/magefile/mage/sh"
	"golang.org/x/sys/unix"

	"github.com/telltale-dev/telltale/pkg/syscalls"
)

// syscallsDir holds the tracer's sources and generated files.
const syscallsDir = "pkg/syscalls"

// syscallsBPFSources are the C sources of pkg/syscalls' BPF objects, whose
// checksums tie the committed objects to them.
var syscallsBPFSources = []string{"bucket.h", "tracer.bpf.c", "bucketprobe.bpf.c"}

// GenerateSyscalls rebuilds pkg/syscalls' generated files: the BPF objects
// and their Go wrappers (bpf2go; needs clang, llvm-strip and libbpf-dev),
// the checksums that tie them to their C sources, and the syscall name
// tables (from the golang.org/x/sys in go.mod). Commit the results:
// building and testing the package needs none of these tools.
func GenerateSyscalls() error {
	multiarch, err := sh.Output("gcc", "-print-multiarch")
	if err != nil {
		return fmt.Errorf("find the multiarch include directory (gcc -print-multiarch): %w", err)
	}
	cflags := []string{
		// Task storage needs Linux 5.11, which runs the v3 instruction set.
		"-mcpu=v3", "-Wall", "-Werror", "-I/usr/include/" + strings.TrimSpace(multiarch),
	}
	for _, obj := range []struct {
		ident, source, suffix string
		types                 []string
	}{
		{"tracer", "tracer.bpf.c", "", []string{"stat_key", "stat_val", "err_key", "proc"}},
		// Only the tests load this one.
		{"bucketprobe", "bucketprobe.bpf.c", "_test", []string{"bucket_args"}},
	} {
		args := []string{"tool", "bpf2go", "-go-package", "syscalls", "-tags", "linux", "-target", "bpfel"}
		if obj.suffix != "" {
			args = append(args, "-output-suffix", obj.suffix)
		}
		for _, t := range obj.types {
			args = append(args, "-type", t)
		}
		args = append(append(args, obj.ident, obj.source, "--"), cflags...)
		bpf2go := exec.Command(mg.GoCmd(), args...)
		bpf2go.Dir = syscallsDir
		bpf2go.Stdout, bpf2go.Stderr = os.Stdout, os.Stderr
		if err := bpf2go.Run(); err != nil {
			return fmt.Errorf("bpf2go %s: %w", obj.source, err)
		}
	}
	var sums strings.Builder
	for _, name := range syscallsBPFSources {
		src, err := os.ReadFile(filepath.Join(syscallsDir, name))
		if err != nil {
			return err
		}
		sum := sha256.Sum256(src)
		fmt.Fprintf(&sums, "%s  %s\n", hex.EncodeToString(sum[:]), name)
	}
	if err := os.WriteFile(filepath.Join(syscallsDir, "bpf.sha256"), []byte(sums.String()), 0o644); err != nil {
		return err
	}
	gen := exec.Command(mg.GoCmd(), "run", "./internal/gensysnum", "-out", "sysnum_tables.go", "amd64", "arm64")
	gen.Dir = syscallsDir
	gen.Stdout, gen.Stderr = os.Stdout, os.Stderr
	return gen.Run()
}

// BenchSyscalls measures what the syscall tracer costs a process that does
// nothing but syscalls: loops of cheap syscalls, each timed with the tracer
// loaded and not, alternating, in one run; it prints the time per call
// and the ratio of wall times (on/off). The goal is at most 1.5. Needs root.
func BenchSyscalls() error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("benchSyscalls loads eBPF programs: run it as root")
	}
	// One OS thread, so that the loop's syscalls are one thread's.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()

	zero, err := os.Open("/dev/zero")
	if err != nil {
		return err
	}
	defer zero.Close()
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		return err
	}
	defer unix.Close(p[0])
	defer unix.Close(p[1])
	buf := make([]byte, 64)

	loops := []struct {
		name  string
		calls int // syscalls per iteration
		iter  func()
	}{
		// The cheapest syscall there is: the tracer's cost laid bare.
		{"getppid", 1, func() { unix.Getppid() }},
		// A small read from a device, a cheap call that does some work.
		{"read 64B /dev/zero", 1, func() { unix.Read(int(zero.Fd()), buf) }},
		// Write then read 64 bytes through a pipe, as IPC does.
		{"pipe write+read 64B", 2, func() { unix.Write(p[1], buf); unix.Read(p[0], buf) }},
	}
	const (
		rounds = 21
		iters  = 100_000
	)
	loadavg, _ := os.ReadFile("/proc/loadavg")
	fmt.Printf("syscall tracer overhead: %d rounds of %d iterations per loop, tracer off and on alternating\n", rounds, iters)
	fmt.Printf("host: %d CPUs, load average %s\n", runtime.NumCPU(), strings.Join(strings.Fields(string(loadavg))[:3], " "))

	// Wall time is what a program feels; on a shared machine it also holds
	// the time other processes took the CPU, which the thread's CPU time
	// (user + kernel, BPF programs included) leaves out.
	threadCPU := func() time.Duration {
		var ts unix.Timespec
		unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &ts)
		return time.Duration(ts.Nano())
	}
	type sample struct{ wall, cpu time.Duration }
	timeLoop := func(iter func()) sample {
		cpu0, wall0 := threadCPU(), time.Now()
		for range iters {
			iter()
		}
		wall := time.Since(wall0)
		return sample{wall, threadCPU() - cpu0}
	}
	// Three settings: tracer off, on with latency (the default), on
	// counting only (Options.NoLatency).
	settings := []struct {
		name string
		opts *syscalls.Options
	}{
		{"off", nil},
		{"latency", &syscalls.Options{}},
		{"counts only", &syscalls.Options{NoLatency: true}},
	}
	walls := make([][][]time.Duration, len(settings)) // [setting][loop][round]
	cpus := make([][][]time.Duration, len(settings))
	for i := range settings {
		walls[i] = make([][]time.Duration, len(loops))
		cpus[i] = make([][]time.Duration, len(loops))
	}
	var loadTimes []time.Duration
	for r := range rounds {
		// Rotate the order every round, so that drift in the machine's
		// load does not favour one setting.
		for k := range settings {
			si := (k + r) % len(settings)
			var tr *syscalls.Tracer
			if o := settings[si].opts; o != nil {
				start := time.Now()
				if tr, err = syscalls.Load(*o); err != nil {
					return err
				}
				loadTimes = append(loadTimes, time.Since(start))
			}
			for li, l := range loops {
				s := timeLoop(l.iter)
				walls[si][li] = append(walls[si][li], s.wall)
				cpus[si][li] = append(cpus[si][li], s.cpu)
			}
			if tr != nil {
				if err := tr.Close(); err != nil {
					return err
				}
			}
		}
	}

	fmt.Println("ns per syscall, median (min) of the rounds; ratios on/off of wall times (minima: the least")
	fmt.Println("disturbed rounds; medians) and of the thread's CPU time (medians); goal: wall ratio ≤ 1.5")
	fmt.Printf("%-20s %-12s %15s %15s %10s %10s %10s  %s\n", "loop", "tracer", "wall", "CPU", "wall min", "wall med", "CPU med", "goal")
	for li, l := range loops {
		perCall := func(d time.Duration) float64 { return float64(d.Nanoseconds()) / float64(iters*l.calls) }
		offWallMed, offWallMin := syscallsMedianMin(walls[0][li])
		offCPUMed, _ := syscallsMedianMin(cpus[0][li])
		for si, st := range settings {
			wallMed, wallMin := syscallsMedianMin(walls[si][li])
			cpuMed, cpuMin := syscallsMedianMin(cpus[si][li])
			name := ""
			if si == 0 {
				name = l.name
			}
			fmt.Printf("%-20s %-12s %7.0f (%5.0f) %7.0f (%5.0f)", name, st.name, perCall(wallMed), perCall(wallMin), perCall(cpuMed), perCall(cpuMin))
			if si == 0 {
				fmt.Println()
				continue
			}
			ratio := float64(wallMin) / float64(offWallMin)
			verdict := "met"
			if ratio > 1.5 {
				verdict = "NOT met"
			}
			fmt.Printf(" %10.2f %10.2f %10.2f  %s\n", ratio, float64(wallMed)/float64(offWallMed), float64(cpuMed)/float64(offCPUMed), verdict)
		}
	}
	loadMed, _ := syscallsMedianMin(loadTimes)
	fmt.Printf("Load+attach: median %v\n", loadMed.Round(time.Millisecond))
	return syscallsBenchSnapshot()
}

// syscallsBenchSnapshot prints what one Snapshot costs, the exporter's cost
// per scrape, with the host's own processes plus a crowd of idle ones.
func syscallsBenchSnapshot() error {
	tr, err := syscalls.Load(syscalls.Options{})
	if err != nil {
		return err
	}
	defer tr.Close()
	const crowd = 500
	var sleepers []*exec.Cmd
	defer func() {
		for _, c := range sleepers {
			c.Process.Kill()
			c.Wait()
		}
	}()
	for range crowd {
		c := exec.Command("sleep", "600")
		if err := c.Start(); err != nil {
			return err
		}
		sleepers = append(sleepers, c)
	}
	// Let every process on the host make some syscalls.
	time.Sleep(2 * time.Second)
	var walls, cpus []time.Duration
	var procs, pairs int
	for range 5 {
		var before, after unix.Rusage
		if err := unix.Getrusage(unix.RUSAGE_SELF, &before); err != nil {
			return err
		}
		start := time.Now()
		snap, err := tr.Snapshot()
		if err != nil {
			return err
		}
		walls = append(walls, time.Since(start))
		if err := unix.Getrusage(unix.RUSAGE_SELF, &after); err != nil {
			return err
		}
		cpus = append(cpus, time.Duration(after.Utime.Nano()+after.Stime.Nano()-before.Utime.Nano()-before.Stime.Nano()))
		procs, pairs = len(snap.Processes), 0
		for _, p := range snap.Processes {
			pairs += len(p.Syscalls)
		}
		time.Sleep(200 * time.Millisecond)
	}
	wall, _ := syscallsMedianMin(walls)
	cpu, _ := syscallsMedianMin(cpus)
	fmt.Printf("Snapshot (the exporter's cost per scrape): %d processes (%d of them idle sleep), %d (process, syscall) pairs: wall %v, CPU %v (medians of 5)\n",
		procs, crowd, pairs, wall.Round(time.Microsecond), cpu.Round(time.Microsecond))
	return nil
}

func syscallsMedianMin(ds []time.Duration) (median, minimum time.Duration) {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2], s[0]
}
