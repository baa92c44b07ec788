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
	for range childSleeps {
		// Not nanosleep: the Go runtime uses that itself.
		ts := unix.NsecToTimespec(childSleep.Nanoseconds())
		if err := unix.ClockNanosleep(unix.CLOCK_MONOTONIC, 0, &ts, nil); err != nil {
			fmt.Fprintln(os.Stderr, "clock_nanosleep:", err)
			return 4
		}
	}
	fmt.Println("step 1 done")
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

// step tells the child to do its next step and waits until it has.
func (c *child) step(tb testing.TB, want string) {
	tb.Helper()
	if _, err := io.WriteString(c.stdin, "go\n"); err != nil {
		tb.Fatalf("tell child: %v", err)
	}
	if !c.out.Scan() {
		tb.Fatalf("child ended before %q: %v", want, c.out.Err())
	}
	if got := c.out.Text(); got != want {
		tb.Fatalf("child said %q, want %q", got, want)
	}
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
	t.Run("latency", func(t *testing.T) { testCountsChildProcess(t, Options{}) })
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
	c.step(t, "step 1 done")
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
	checkSleeps(t, opts, p.Syscalls[sleep])

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
// double-counted), with one latency observation per call unless
// opts.NoLatency.
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
	if opts.NoLatency {
		if observed != 0 || s.Sum != 0 {
			tb.Errorf("%s: %d latency observations, sum %v, want none without latency", name, observed, s.Sum)
		}
		return
	}
	if observed != s.Count {
		tb.Errorf("%s: %d latency observations, want one per call (%d)", name, observed, s.Count)
	}
	if s.Sum <= 0 {
		tb.Errorf("%s: Sum = %v, want > 0", name, s.Sum)
	}
	cum := s.CumulativeBuckets()
	if got := cum[BucketUpperBound(NumBuckets-2).Seconds()]; got > s.Count {
		tb.Errorf("%s: cumulative count %d exceeds Count %d", name, got, s.Count)
	}
}

// checkSleeps checks the latency against real time: every sleep of 2ms
// must land in a bucket whose upper bound is above 2ms.
func checkSleeps(tb testing.TB, opts Options, s *Syscall) {
	tb.Helper()
	checkCount(tb, opts, "clock_nanosleep", s, childSleeps)
	if s == nil || opts.NoLatency {
		return
	}
	for i, n := range s.Buckets {
		if BucketUpperBound(i) <= childSleep && n != 0 {
			tb.Errorf("clock_nanosleep: %d calls of %v in bucket %d (< %v)", n, childSleep, i, BucketUpperBound(i))
		}
	}
	if min := time.Duration(s.Count) * childSleep; s.Sum < min {
		tb.Errorf("clock_nanosleep: Sum = %v, want at least %v", s.Sum, min)
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
			exited[pid] = true
		}
		for pid := range exited {
			if p := snap.Processes[pid]; p != nil && !slices.Contains(pids, pid) {
				t.Errorf("round %d: process %d reported again after its exit", round, pid)
			}
		}
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
