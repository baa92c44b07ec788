package bench

import (
	"cmp"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/telltale-dev/telltale/internal/benchkit"
	"github.com/telltale-dev/telltale/pkg/syscalls"
)

// Syscalls measures what the syscall tracer costs a process that does
// nothing but syscalls: loops of cheap syscalls, each run with the tracer
// off and in each setting (the default, which samples latency; latency of
// every call; counts only), alternating, in one run. It prints the time
// per call and the ratios of wall times (on/off). The goal is a ratio of at
// most 1.5 in the default setting. Needs root.
//
// The default setting times the calls that start in one window per
// sampling period, so each loop runs for whole periods to pay its fair
// share of windows. Over seconds, a shared machine takes the CPU away from
// the loop now and then, so the loop is timed in 1 ms slices, and the
// slices in which the loop's thread ran all the time (its CPU time is its
// wall time) give the undisturbed wall time per call. Which slices are
// disturbed does not depend on whether a window was open, as slices are
// of fixed length, so the windows keep their share.
func Syscalls() error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("the syscalls benchmark loads eBPF programs: run it as root")
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
		rounds    = 4
		loopFor   = 2 * syscalls.LatencySamplePeriod
		slice     = time.Millisecond
		batch     = 64   // iterations between looks at the clock
		steadyCPU = 0.98 // a slice is undisturbed if the thread ran this share of it
	)
	// Four settings: tracer off, the default (latency sampled), latency of
	// every call, counting only (Options.NoLatency).
	settings := []struct {
		name string
		opts *syscalls.Options
	}{
		{"off", nil},
		{"default", &syscalls.Options{}},
		{"every call", &syscalls.Options{LatencySampleEvery: 1}},
		{"counts only", &syscalls.Options{NoLatency: true}},
	}
	const defaultSetting = 1

	// The thread's CPU time (user + kernel, BPF programs included) leaves
	// out the time other processes took the CPU; wall time does not.
	threadCPU := func() time.Duration {
		var ts unix.Timespec
		unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &ts)
		return time.Duration(ts.Nano())
	}
	// totals sums, for one loop in one setting, the slices of every round.
	type totals struct {
		wall, cpu, steadyWall time.Duration
		iters, steadyIters    int
		slices, steadySlices  int
		roundWall             []float64 // ns per iteration, per round
	}
	runLoop := func(iter func(), t *totals) {
		var wall time.Duration
		var iters int
		for end := time.Now().Add(loopFor); time.Now().Before(end); {
			cpu0, wall0 := threadCPU(), time.Now()
			n := 0
			for time.Since(wall0) < slice {
				for range batch {
					iter()
				}
				n += batch
			}
			w, c := time.Since(wall0), threadCPU()-cpu0
			t.wall += w
			t.cpu += c
			t.iters += n
			t.slices++
			if float64(c) >= steadyCPU*float64(w) {
				t.steadyWall += w
				t.steadyIters += n
				t.steadySlices++
			}
			wall += w
			iters += n
		}
		t.roundWall = append(t.roundWall, float64(wall.Nanoseconds())/float64(iters))
	}

	loadavg, _ := os.ReadFile("/proc/loadavg")
	fmt.Printf("syscall tracer overhead: %d rounds, settings alternating; each loop runs %v (%d sampling periods) in %v slices\n",
		rounds, loopFor, loopFor/syscalls.LatencySamplePeriod, slice)
	fmt.Printf("settings: default = latency sampled (windows of 1/%d of the time); every call = LatencySampleEvery 1; counts only = NoLatency\n",
		syscalls.DefaultLatencySampleEvery)
	fmt.Printf("host: %d CPUs, load average %s\n", runtime.NumCPU(), strings.Join(strings.Fields(string(loadavg))[:3], " "))

	res := make([][]totals, len(settings)) // [setting][loop]
	for i := range res {
		res[i] = make([]totals, len(loops))
	}
	// The calls of this process the default setting counted and timed, per
	// loop: the check that the loops got their share of windows.
	counted, timed := make([]uint64, len(loops)), make([]uint64, len(loops))
	self := uint32(os.Getpid())
	ownCalls := func(tr *syscalls.Tracer) (count, sampled uint64, err error) {
		snap, err := tr.Snapshot()
		if err != nil {
			return 0, 0, err
		}
		if p := snap.Processes[self]; p != nil {
			for _, s := range p.Syscalls {
				count += s.Count
				sampled += s.Sampled
			}
		}
		return count, sampled, nil
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
				var c0, s0 uint64
				if si == defaultSetting {
					if c0, s0, err = ownCalls(tr); err != nil {
						return err
					}
				}
				runLoop(l.iter, &res[si][li])
				if si == defaultSetting {
					c1, s1, err := ownCalls(tr)
					if err != nil {
						return err
					}
					counted[li] += c1 - c0
					timed[li] += s1 - s0
				}
			}
			if tr != nil {
				if err := tr.Close(); err != nil {
					return err
				}
			}
		}
	}

	fmt.Println("ns per syscall: wall time of the undisturbed slices (share of slices undisturbed), median of the")
	fmt.Println("rounds' wall time over all slices, CPU time over all slices; ratios on/off of each")
	fmt.Println("goal: undisturbed wall ratio ≤ 1.5 in the default setting")
	fmt.Printf("%-20s %-12s %17s %8s %8s %9s %9s %9s  %s\n", "loop", "tracer", "undisturbed", "all", "CPU", "undist.", "all", "CPU", "goal")
	for li, l := range loops {
		type figures struct{ steady, all, cpu float64 }
		fig := func(t *totals) figures {
			calls := float64(l.calls)
			slices.Sort(t.roundWall)
			return figures{
				steady: float64(t.steadyWall.Nanoseconds()) / float64(max(t.steadyIters, 1)) / calls,
				all:    t.roundWall[len(t.roundWall)/2] / calls,
				cpu:    float64(t.cpu.Nanoseconds()) / float64(t.iters) / calls,
			}
		}
		off := fig(&res[0][li])
		for si, st := range settings {
			t := &res[si][li]
			f := fig(t)
			name := ""
			if si == 0 {
				name = l.name
			}
			fmt.Printf("%-20s %-12s %7.0f (%5.1f%%) %8.0f %8.0f", name, st.name, f.steady, 100*float64(t.steadySlices)/float64(t.slices), f.all, f.cpu)
			if si == 0 {
				fmt.Println()
				continue
			}
			ratio := f.steady / off.steady
			fmt.Printf(" %9.2f %9.2f %9.2f", ratio, f.all/off.all, f.cpu/off.cpu)
			if si == defaultSetting {
				verdict := "met"
				if ratio > 1.5 {
					verdict = "NOT met"
				}
				fmt.Printf("  %s (1 call in %.1f timed)", verdict, float64(counted[li])/float64(max(timed[li], 1)))
			}
			fmt.Println()
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
	return benchkit.Median(ds, cmp.Compare[time.Duration]), slices.Min(ds)
}
