package syscalls

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"github.com/telltale-dev/telltale/internal/testenv"
)

// childEnv makes the test binary act as a child process instead of running
// tests; its value says which part to play.
const childEnv = "TELLTALE_SYSCALLS_CHILD"

// The child's workload: distinctive syscalls nothing else in a Go program
// makes, so that the counts can be checked from both sides.
const (
	childCalls  = 2000                      // getppid calls, and failing openat calls
	childSleeps = 20                        // clock_nanosleep calls of childSleep each
	childSleep  = 2 * time.Millisecond      // long enough to land in a known bucket
	missingPath = "/nonexistent-telltale/x" // openat fails with ENOENT
)

func TestMain(m *testing.M) {
	switch os.Getenv(childEnv) {
	case "":
		os.Exit(m.Run())
	case "work":
		os.Exit(childWork())
	case "unprivileged":
		os.Exit(childUnprivileged())
	case "sample":
		os.Exit(childSample())
	default:
		fmt.Fprintf(os.Stderr, "unknown %s=%q\n", childEnv, os.Getenv(childEnv))
		os.Exit(2)
	}
}

// childWork makes the distinctive calls in two steps, each started by a
// line on stdin and acknowledged on stdout, and exits at end of input.
func childWork() int {
	in := bufio.NewScanner(os.Stdin)
	if !in.Scan() {
		return 3
	}
	for range childCalls {
		unix.Getppid()
	}
	interrupted := 0
	for range childSleeps {
		// Not nanosleep: the Go runtime uses that itself. A signal can cut
		// a sleep short (it is still a call, timed shorter): counted.
		ts := unix.NsecToTimespec(childSleep.Nanoseconds())
		switch err := unix.ClockNanosleep(unix.CLOCK_MONOTONIC, 0, &ts, nil); {
		case errors.Is(err, unix.EINTR):
			interrupted++
		case err != nil:
			fmt.Fprintln(os.Stderr, "clock_nanosleep:", err)
			return 4
		}
	}
	fmt.Println("step 1 done", interrupted)
	if !in.Scan() {
		return 3
	}
	for range childCalls {
		if _, err := unix.Openat(unix.AT_FDCWD, missingPath, unix.O_RDONLY, 0); !errors.Is(err, unix.ENOENT) {
			fmt.Fprintln(os.Stderr, "openat:", err)
			return 4
		}
	}
	fmt.Println("step 2 done")
	if _, err := io.Copy(io.Discard, os.Stdin); err != nil {
		return 3
	}
	return 0
}

// The sampling child's workload: for sampleFor, a short sleep and a run of
// getppid calls, over and over, so that both are spread evenly over time
// and over several sampling windows.
const (
	sampleFor   = 3 * LatencySamplePeriod
	sampleSleep = time.Millisecond
	sampleRun   = 100 // getppid calls per sleep
)

// childSample makes its calls when told to, then says how many it made:
// "<clock_nanosleep calls> <of them cut short by a signal> <getppid calls>".
func childSample() int {
	in := bufio.NewScanner(os.Stdin)
	if !in.Scan() {
		return 3
	}
	var sleeps, interrupted, getppids int
	ts := unix.NsecToTimespec(sampleSleep.Nanoseconds())
	for end := time.Now().Add(sampleFor); time.Now().Before(end); {
		// A signal to the runtime can cut a sleep short: still a call.
		err := unix.ClockNanosleep(unix.CLOCK_MONOTONIC, 0, &ts, nil)
		switch {
		case errors.Is(err, unix.EINTR):
			interrupted++
		case err != nil:
			fmt.Fprintln(os.Stderr, "clock_nanosleep:", err)
			return 4
		}
		sleeps++
		for range sampleRun {
			unix.Getppid()
		}
		getppids += sampleRun
	}
	fmt.Println(sleeps, interrupted, getppids)
	if _, err := io.Copy(io.Discard, os.Stdin); err != nil {
		return 3
	}
	return 0
}

// childUnprivileged gives up root (every thread: Go's Setuid applies to
// the whole process) and reports what Load says.
func childUnprivileged() int {
	if err := syscall.Setgroups(nil); err != nil {
		fmt.Println("setgroups:", err)
		return 4
	}
	if err := syscall.Setgid(65534); err != nil {
		fmt.Println("setgid:", err)
		return 4
	}
	if err := syscall.Setuid(65534); err != nil {
		fmt.Println("setuid:", err)
		return 4
	}
	tr, err := Load(Options{})
	if err == nil {
		tr.Close()
		fmt.Println("loaded without privileges")
		return 5
	}
	fmt.Println(err)
	if !errors.Is(err, ErrUnavailable) {
		return 6
	}
	return 0
}

// child is a running child process driven step by step.
type child struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	out   *bufio.Scanner
}

func startChild(tb testing.TB, role string, attr *syscall.SysProcAttr) *child {
	tb.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+role)
	cmd.Stderr = os.Stderr
	cmd.SysProcAttr = attr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		tb.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		tb.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		tb.Fatalf("start child: %v", err)
	}
	tb.Cleanup(func() {
		stdin.Close()
		cmd.Wait()
	})
	return &child{cmd: cmd, stdin: stdin, out: bufio.NewScanner(stdout)}
}

// step tells the child to do its next step, waits until it says it has,
// and returns what it said after that.
func (c *child) step(tb testing.TB, want string) string {
	tb.Helper()
	if _, err := io.WriteString(c.stdin, "go\n"); err != nil {
		tb.Fatalf("tell child: %v", err)
	}
	if !c.out.Scan() {
		tb.Fatalf("child ended before %q: %v", want, c.out.Err())
	}
	got := c.out.Text()
	rest, ok := strings.CutPrefix(got, want)
	if !ok {
		tb.Fatalf("child said %q, want %q", got, want)
	}
	return strings.TrimSpace(rest)
}

func (c *child) finish(tb testing.TB) {
	tb.Helper()
	c.stdin.Close()
	if err := c.cmd.Wait(); err != nil {
		tb.Fatalf("child: %v", err)
	}
}

// newCgroup makes a cgroup v2 for one test and returns an open descriptor
// of it, for starting a child inside it, and its ID as the kernel gives it
// (the directory's inode number).
func newCgroup(tb testing.TB) (fd int, id uint64) {
	tb.Helper()
	root, err := cgroup2Mount()
	if err != nil {
		testenv.Missing(tb, "no cgroup v2 hierarchy: %v", err)
	}
	dir := filepath.Join(root, fmt.Sprintf("telltale-syscalls-test-%d", os.Getpid()))
	if err := os.Mkdir(dir, 0o755); err != nil {
		tb.Fatalf("make cgroup: %v", err)
	}
	tb.Cleanup(func() {
		// rmdir fails while the child is still a zombie in it; retry briefly.
		for range 100 {
			if err := os.Remove(dir); err == nil || errors.Is(err, os.ErrNotExist) {
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
		tb.Errorf("remove cgroup %s", dir)
	})
	var st unix.Stat_t
	if err := unix.Stat(dir, &st); err != nil {
		tb.Fatal(err)
	}
	fd, err = unix.Open(dir, unix.O_DIRECTORY|unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { unix.Close(fd) })
	return fd, st.Ino
}

// cgroup2Mount finds where the cgroup v2 hierarchy is mounted: at
// /sys/fs/cgroup on current systems, /sys/fs/cgroup/unified on hybrid ones.
func cgroup2Mount() (string, error) {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return "", err
	}
	for line := range strings.Lines(string(b)) {
		// "... mountpoint ... - fstype source options"
		pre, post, ok := strings.Cut(line, " - ")
		if !ok || !strings.HasPrefix(post, "cgroup2 ") {
			continue
		}
		if f := strings.Fields(pre); len(f) >= 5 {
			return f[4], nil
		}
	}
	return "", errors.New("not mounted")
}

func TestLoadCountsChildProcess(t *testing.T) {
	t.Run("latency of every call", func(t *testing.T) { testCountsChildProcess(t, Options{LatencySampleEvery: 1}) })
	t.Run("sampled latency", func(t *testing.T) { testCountsChildProcess(t, Options{}) })
	t.Run("no latency", func(t *testing.T) { testCountsChildProcess(t, Options{NoLatency: true}) })
}

func testCountsChildProcess(t *testing.T, opts Options) {
	testenv.Root(t)
	tr, err := Load(opts)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	t.Cleanup(func() {
		if err := tr.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	cgFD, cgID := newCgroup(t)
	c := startChild(t, "work", &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: cgFD})
	pid := uint32(c.cmd.Process.Pid)
	getppid, openat, sleep := uint32(unix.SYS_GETPPID), uint32(unix.SYS_OPENAT), uint32(unix.SYS_CLOCK_NANOSLEEP)

	// Step 1 while the child lives: it is there, not exited.
	var short uint64
	if _, err := fmt.Sscanf(c.step(t, "step 1 done"), "%d", &short); err != nil {
		t.Fatalf("child's count of sleeps cut short: %v", err)
	}
	snap, err := tr.Snapshot()
	if err != nil {
		t.Fatalf("Snapshot: %v", err)
	}
	p := snap.Processes[pid]
	if p == nil {
		t.Fatalf("child %d not in snapshot of %d processes", pid, len(snap.Processes))
	}
	if p.Exited {
		t.Errorf("running child reported as exited")
	}
	if want := filepath.Base(os.Args[0]); p.Comm != want[:min(len(want), 15)] {
		t.Errorf("Comm = %q, want %q", p.Comm, want)
	}
	if p.PPID != uint32(os.Getpid()) {
		t.Errorf("PPID = %d, want %d", p.PPID, os.Getpid())
	}
	if p.CgroupID != cgID {
		t.Errorf("CgroupID = %d, want %d (the test's cgroup)", p.CgroupID, cgID)
	}
	checkCount(t, opts, "getppid", p.Syscalls[getppid], childCalls)
	checkCount(t, opts, "clock_nanosleep", p.Syscalls[sleep], childSleeps)
	checkSleeps(t, p.Syscalls[sleep], childSleep, short)

	// Step 2, then exit: the last snapshot with the child has the totals.
	c.step(t, "step 2 done")
	c.finish(t)
	snap, err = tr.Snapshot()
	if err != nil {
		t.Fatalf("Snapshot: %v", err)
	}
	p = snap.Processes[pid]
	if p == nil {
		t.Fatalf("exited child %d not in snapshot", pid)
	}
	if !p.Exited {
		t.Errorf("child reported as running after it exited")
	}
	checkCount(t, opts, "getppid", p.Syscalls[getppid], childCalls)
	checkCount(t, opts, "openat", p.Syscalls[openat], childCalls)
	if got := p.Syscalls[openat].Errors[unix.ENOENT]; got < childCalls {
		t.Errorf("openat ENOENT = %d, want at least %d (errors %v)", got, childCalls, p.Syscalls[openat].Errors)
	}
	if got := p.Syscalls[getppid].Errors; len(got) != 0 {
		t.Errorf("getppid errors = %v, want none", got)
	}

	// Reported as exited once, then forgotten.
	snap, err = tr.Snapshot()
	if err != nil {
		t.Fatalf("Snapshot: %v", err)
	}
	if p := snap.Processes[pid]; p != nil {
		t.Errorf("exited child still in a later snapshot: %+v", p)
	}
	if err := tr.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if _, err := tr.Snapshot(); err == nil {
		t.Errorf("Snapshot after Close succeeded")
	}
	// Other processes on the host count too, but the default maps are
	// far from full on a test machine.
	if d := snap.Dropped; d.Syscalls != 0 || d.Errors != 0 || d.Processes != 0 {
		t.Errorf("Dropped = %+v, want no map full", d)
	}
}

// checkCount checks that a syscall was counted at least n times (and not
// double-counted), and that its latency histogram is consistent: one
// observation per call with LatencySampleEvery 1, none with NoLatency, at
// most one per call when sampled. Whether a sample is what it should be is
// TestLatencySampling's business.
func checkCount(tb testing.TB, opts Options, name string, s *Syscall, n uint64) {
	tb.Helper()
	if s == nil {
		tb.Errorf("%s: not counted", name)
		return
	}
	// The child makes exactly n of these; a little slack for the runtime.
	if s.Count < n || s.Count > n+n/10 {
		tb.Errorf("%s: Count = %d, want %d (+10%%)", name, s.Count, n)
	}
	var observed uint64
	for _, b := range s.Buckets {
		observed += b
	}
	if observed != s.Sampled {
		tb.Errorf("%s: %d latency observations in the buckets, Sampled = %d", name, observed, s.Sampled)
	}
	switch {
	case opts.NoLatency:
		if s.Sampled != 0 || s.Sum != 0 {
			tb.Errorf("%s: %d calls timed, sum %v, want none without latency", name, s.Sampled, s.Sum)
		}
		return
	case opts.LatencySampleEvery == 1:
		if s.Sampled != s.Count {
			tb.Errorf("%s: %d calls timed, want every call (%d)", name, s.Sampled, s.Count)
		}
	default:
		if s.Sampled > s.Count {
			tb.Errorf("%s: %d calls timed, more than the %d made", name, s.Sampled, s.Count)
		}
	}
	if s.Sampled > 0 && s.Sum <= 0 {
		tb.Errorf("%s: Sum = %v for %d timed calls, want > 0", name, s.Sum, s.Sampled)
	}
	cum := s.CumulativeBuckets()
	if got := cum[BucketUpperBound(NumBuckets-2).Seconds()]; got > s.Sampled {
		tb.Errorf("%s: cumulative count %d exceeds Sampled %d", name, got, s.Sampled)
	}
}

// checkSleeps checks the latency against real time: every timed sleep of
// d must land in a bucket whose upper bound is above d, but for at most
// short sleeps a signal cut short.
func checkSleeps(tb testing.TB, s *Syscall, d time.Duration, short uint64) {
	tb.Helper()
	if s == nil {
		return
	}
	var below uint64
	for i, n := range s.Buckets {
		if BucketUpperBound(i) <= d {
			below += n
		}
	}
	if below > short {
		tb.Errorf("clock_nanosleep: %d timed calls of %v in buckets below %v, want at most the %d cut short (buckets %v)", below, d, d, short, s.Buckets)
	}
	if least := time.Duration(s.Sampled-min(short, s.Sampled)) * d; s.Sum < least {
		tb.Errorf("clock_nanosleep: Sum = %v for %d timed calls of %v, want at least %v", s.Sum, s.Sampled, d, least)
	}
}

// With sampled latency, Count and Errors stay exact while only the calls
// that start in a sampling window are timed: about one in
// DefaultLatencySampleEvery, spread over short and long calls alike, each
// in the right bucket.
func TestLatencySampling(t *testing.T) {
	testenv.Root(t)
	tr, err := Load(Options{})
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	defer tr.Close()
	c := startChild(t, "sample", nil)
	pid := uint32(c.cmd.Process.Pid)
	if _, err := io.WriteString(c.stdin, "go\n"); err != nil {
		t.Fatal(err)
	}
	if !c.out.Scan() {
		t.Fatalf("child ended early: %v", c.out.Err())
	}
	var sleeps, interrupted, getppids uint64
	if _, err := fmt.Sscan(c.out.Text(), &sleeps, &interrupted, &getppids); err != nil {
		t.Fatalf("child said %q: %v", c.out.Text(), err)
	}
	c.finish(t)
	snap, err := tr.Snapshot()
	if err != nil {
		t.Fatalf("Snapshot: %v", err)
	}
	p := snap.Processes[pid]
	if p == nil {
		t.Fatalf("child %d not in snapshot", pid)
	}
	if d := snap.Dropped; d.LatencyWindows != 0 {
		t.Errorf("Dropped = %+v, want every sampling window opened", d)
	}
	sleep, getppid := p.Syscalls[unix.SYS_CLOCK_NANOSLEEP], p.Syscalls[unix.SYS_GETPPID]
	opts := Options{LatencySampleEvery: DefaultLatencySampleEvery}
	checkCount(t, opts, "clock_nanosleep", sleep, sleeps)
	checkCount(t, opts, "getppid", getppid, getppids)
	checkSleeps(t, sleep, sampleSleep, interrupted)
	// The child's calls are spread evenly over three periods, so each
	// kind is timed in about 1/16 of its calls; a factor of 4 either way
	// allows for the windows' random placement, not for timing every call
	// or none.
	for _, x := range []struct {
		name string
		s    *Syscall
	}{{"clock_nanosleep", sleep}, {"getppid", getppid}} {
		if x.s == nil {
			continue
		}
		share := float64(x.s.Sampled) / float64(x.s.Count)
		t.Logf("%s: %d of %d calls timed (1 in %.1f)", x.name, x.s.Sampled, x.s.Count, 1/share)
		if lo, hi := 1/(4.0*DefaultLatencySampleEvery), 4.0/DefaultLatencySampleEvery; share < lo || share > hi {
			t.Errorf("%s: %d of %d calls timed, want between %.3f and %.3f of them", x.name, x.s.Sampled, x.s.Count, lo, hi)
		}
	}
}

// Close stops the sampling goroutine and detaches sys_enter whether or not
// a window is open: once closed, nothing holds the program in the kernel.
func TestCloseEndsSampling(t *testing.T) {
	testenv.Root(t)
	for _, wait := range []time.Duration{0, LatencySamplePeriod + LatencySamplePeriod/2} {
		tr, err := Load(Options{})
		if err != nil {
			t.Fatalf("Load: %v", err)
		}
		info, err := tr.objs.SysEnter.Info()
		if err != nil {
			t.Fatal(err)
		}
		id, ok := info.ID()
		if !ok {
			t.Fatal("kernel gives no program IDs")
		}
		time.Sleep(wait)
		start := time.Now()
		if err := tr.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		if d := time.Since(start); d > LatencySamplePeriod/2 {
			t.Errorf("after %v: Close took %v", wait, d)
		}
		// The kernel frees a program after an RCU grace period.
		for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
			prog, err := ebpf.NewProgramFromID(id)
			if errors.Is(err, os.ErrNotExist) {
				break
			}
			if err == nil {
				prog.Close()
			}
			if time.Now().After(deadline) {
				t.Fatalf("after %v: sys_enter (program %d) still in the kernel after Close: %v", wait, id, err)
			}
		}
	}
}

func TestLoadWithoutPrivilegeIsUnavailable(t *testing.T) {
	testenv.Root(t) // to give privileges up, the test must have them
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"=unprivileged")
	out, err := cmd.CombinedOutput()
	msg := strings.TrimSpace(string(out))
	if err != nil {
		t.Fatalf("unprivileged child: %v: %s", err, msg)
	}
	for _, want := range []string{"syscall tracing unavailable", "not permitted", "CAP_BPF"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q does not say %q", msg, want)
		}
	}
	if strings.Contains(strings.ToLower(msg), "memlock") {
		t.Errorf("error %q blames MEMLOCK, which is not the cause", msg)
	}
	t.Logf("unprivileged Load: %s", msg)
}

func TestSnapshotAfterManyExits(t *testing.T) {
	testenv.Root(t)
	tr, err := Load(Options{})
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	defer tr.Close()
	// Go starts a child with clone or clone3 (CLONE_VFORK): counted in
	// the parent, and not again when the child returns from it with 0.
	clones := func(p *Process) uint64 {
		var n uint64
		for _, nr := range []uint32{unix.SYS_CLONE, unix.SYS_CLONE3} {
			if s := p.Syscalls[nr]; s != nil {
				n += s.Count
			}
		}
		return n
	}
	var parentClones uint64
	exited := map[uint32]bool{}
	for round := range 5 {
		var pids []uint32
		for range 10 {
			cmd := exec.Command("/bin/true")
			if err := cmd.Run(); err != nil {
				t.Fatal(err)
			}
			pids = append(pids, uint32(cmd.Process.Pid))
		}
		snap, err := tr.Snapshot()
		if err != nil {
			t.Fatalf("Snapshot: %v", err)
		}
		for _, pid := range pids {
			p := snap.Processes[pid]
			if p == nil || !p.Exited {
				t.Errorf("round %d: /bin/true %d: %+v, want an exited process", round, pid, p)
				continue
			}
			if p.Comm != "true" {
				t.Errorf("round %d: /bin/true %d: Comm = %q", round, pid, p.Comm)
			}
			if n := clones(p); n != 0 {
				t.Errorf("round %d: /bin/true %d: %d clone calls, want none (its return from its parent's clone is not a call)", round, pid, n)
			}
			exited[pid] = true
		}
		for pid := range exited {
			if p := snap.Processes[pid]; p != nil && !slices.Contains(pids, pid) {
				t.Errorf("round %d: process %d reported again after its exit", round, pid)
			}
		}
		if p := snap.Processes[uint32(os.Getpid())]; p != nil {
			parentClones = clones(p)
		}
	}
	if parentClones < 50 {
		t.Errorf("test process: %d clone calls, want at least the 50 that started children", parentClones)
	}
}

// Maps that are too small lose counts, and say so.
func TestFullMapsCountDrops(t *testing.T) {
	testenv.Root(t)
	for _, tc := range []struct {
		opts Options
		want func(Dropped) bool
	}{
		{Options{MaxEntries: 1, MaxErrorEntries: 1}, func(d Dropped) bool { return d.Syscalls > 0 && d.Errors > 0 }},
		// A process is noted when it gets its first stats entry, so the
		// stats map must have room for this.
		{Options{MaxProcesses: 1}, func(d Dropped) bool { return d.Processes > 0 }},
	} {
		tr, err := Load(tc.opts)
		if err != nil {
			t.Fatalf("Load: %v", err)
		}
		// Two processes, several syscalls, two kinds of error.
		for range 100 {
			unix.Getppid()
			unix.Close(-1)
			unix.Openat(unix.AT_FDCWD, missingPath, unix.O_RDONLY, 0)
		}
		if err := exec.Command("/bin/true").Run(); err != nil {
			t.Fatal(err)
		}
		snap, err := tr.Snapshot()
		tr.Close()
		if err != nil {
			t.Fatalf("Snapshot: %v", err)
		}
		if !tc.want(snap.Dropped) {
			t.Errorf("%+v: Dropped = %+v", tc.opts, snap.Dropped)
		}
		var entries, errEntries, named int
		for _, p := range snap.Processes {
			if p.Comm != "" {
				named++
			}
			for _, s := range p.Syscalls {
				for _, n := range s.Buckets {
					if n != 0 {
						entries++
					}
				}
				if s.Count > s.Sampled {
					entries++ // the calls not timed
				}
				errEntries += len(s.Errors)
			}
		}
		o, _ := tc.opts.withDefaults()
		if entries > int(o.MaxEntries) || errEntries > int(o.MaxErrorEntries) || named > int(o.MaxProcesses) {
			t.Errorf("%+v: %d stats entries, %d error entries, %d processes with identity: more than the maps hold", tc.opts, entries, errEntries, named)
		}
	}
}

// Numbers outside the native table are not stored under a misleading
// number but counted as dropped.
func TestBadSyscallNumbers(t *testing.T) {
	testenv.Root(t)
	for _, opts := range []Options{{}, {NoLatency: true}} {
		tr, err := Load(opts)
		if err != nil {
			t.Fatalf("Load: %v", err)
		}
		const n = 100
		for range n {
			// 5000 is no syscall anywhere; the kernel says ENOSYS.
			if _, _, errno := unix.Syscall(5000, 0, 0, 0); errno != unix.ENOSYS {
				t.Fatalf("syscall 5000: %v, want ENOSYS", errno)
			}
		}
		snap, err := tr.Snapshot()
		tr.Close()
		if err != nil {
			t.Fatalf("Snapshot: %v", err)
		}
		if got := snap.Dropped.BadNumbers; got < n {
			t.Errorf("NoLatency=%v: BadNumbers = %d, want at least %d", opts.NoLatency, got, n)
		}
		if p := snap.Processes[uint32(os.Getpid())]; p != nil {
			for nr := range p.Syscalls {
				if nr >= 1024 {
					t.Errorf("NoLatency=%v: syscall %d stored", opts.NoLatency, nr)
				}
			}
		}
	}
}
