// Package service finds the services running on a Linux host from /proc,
// without configuration, and keeps per-service resource counters that stay
// monotonic while member processes come and go.
//
// A service is a group of processes that belong together: the cgroup decides
// first (a systemd unit, a Docker, Podman or containerd container, a
// Kubernetes pod's container), then the process tree (a process running the
// same executable as its parent is its worker; the commands a shell script
// runs belong to the script), then the program name, with interpreters seen
// through (`python3 app.py` is app). Processes with the same name form one
// service; an optional Rules file renames or merges services.
package service

import (
	"debug/buildinfo"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/prometheus/procfs"
)

// pfKthread is the PF_KTHREAD bit of the per-process flags in
// /proc/<pid>/stat (include/linux/sched.h).
const pfKthread = 0x00200000

// userHZ is the clock tick of /proc's time fields. It is 100 on every Linux
// architecture Telltale builds for (USER_HZ is fixed by the ABI).
const userHZ = 100

// Counters are a process's or service's cumulative counts, kept in the
// kernel's own whole units (clock ticks, nanoseconds, bytes, calls) so that
// sums are exact: a service's total, folded together from processes that
// come and go in any order, can never step back by a rounding error, which
// Prometheus would read as a counter reset. The Seconds methods convert at
// exposition; a larger whole count never converts to a smaller float.
type Counters struct {
	UserTicks               uint64
	SystemTicks             uint64
	ReadBytes               uint64 // bytes read from storage (/proc/<pid>/io read_bytes)
	WriteBytes              uint64 // bytes written to storage (write_bytes)
	ReadSyscalls            uint64 // syscr
	WriteSyscalls           uint64 // syscw
	VoluntarySwitches       uint64
	InvoluntarySwitches     uint64
	RunqueueWaitNanoseconds uint64 // time spent runnable but waiting for a CPU
}

// UserSeconds is the CPU time spent in user mode.
func (c Counters) UserSeconds() float64 { return float64(c.UserTicks) / userHZ }

// SystemSeconds is the CPU time spent in the kernel.
func (c Counters) SystemSeconds() float64 { return float64(c.SystemTicks) / userHZ }

// RunqueueWaitSeconds is the time spent runnable but waiting for a CPU.
func (c Counters) RunqueueWaitSeconds() float64 { return float64(c.RunqueueWaitNanoseconds) / 1e9 }

// add adds o to c.
func (c *Counters) add(o Counters) {
	c.UserTicks += o.UserTicks
	c.SystemTicks += o.SystemTicks
	c.ReadBytes += o.ReadBytes
	c.WriteBytes += o.WriteBytes
	c.ReadSyscalls += o.ReadSyscalls
	c.WriteSyscalls += o.WriteSyscalls
	c.VoluntarySwitches += o.VoluntarySwitches
	c.InvoluntarySwitches += o.InvoluntarySwitches
	c.RunqueueWaitNanoseconds += o.RunqueueWaitNanoseconds
}

// addIncrease adds to c what grew from prev to cur, field by field, ignoring
// decreases (a thread that exited takes its context switches with it).
func (c *Counters) addIncrease(prev, cur Counters) {
	inc := func(dst *uint64, p, q uint64) {
		if q > p {
			*dst += q - p
		}
	}
	inc(&c.UserTicks, prev.UserTicks, cur.UserTicks)
	inc(&c.SystemTicks, prev.SystemTicks, cur.SystemTicks)
	inc(&c.ReadBytes, prev.ReadBytes, cur.ReadBytes)
	inc(&c.WriteBytes, prev.WriteBytes, cur.WriteBytes)
	inc(&c.ReadSyscalls, prev.ReadSyscalls, cur.ReadSyscalls)
	inc(&c.WriteSyscalls, prev.WriteSyscalls, cur.WriteSyscalls)
	inc(&c.VoluntarySwitches, prev.VoluntarySwitches, cur.VoluntarySwitches)
	inc(&c.InvoluntarySwitches, prev.InvoluntarySwitches, cur.InvoluntarySwitches)
	inc(&c.RunqueueWaitNanoseconds, prev.RunqueueWaitNanoseconds, cur.RunqueueWaitNanoseconds)
}

// Process is one process as read in one scan.
type Process struct {
	PID  int
	PPID int
	// Start is the start time in clock ticks after boot; with PID it
	// identifies a process across scans.
	Start uint64
	Comm  string
	// Exe is the executable's path, empty when it cannot be read.
	Exe string
	// Name is the program name derived from the executable and, for
	// interpreters, the script (never any other argument).
	Name string
	// NetNS is the inode of the process's network namespace, 0 if unknown.
	NetNS uint64

	Threads  int
	RSSBytes float64
	FDs      int
	Counters Counters
	// StartTime is the start time in seconds since the Unix epoch.
	StartTime float64
	// Serves is set, by the caller before Tracker.Update, for a process
	// that holds a listening socket: a server is a service as soon as it
	// is seen, never counted for its parent's (see Tracker.group).
	Serves bool

	prog       program
	group      *cgroupGroup
	cgroupPath string
}

func (p *Process) key() procKey { return procKey{p.PID, p.Start} }

type procKey struct {
	pid   int
	start uint64
}

// ReadError names a kind of /proc read failure, for counting.
type ReadError struct {
	// File is the /proc file: stat, status, io, schedstat, cgroup, cmdline,
	// exe, fd, ns, net/tcp, ...
	File string
	// Reason is permission, missing (of a process that is still there),
	// malformed or read.
	Reason string
}

// ScanResult is what one scan found.
type ScanResult struct {
	Processes []Process
	// Errors counts the read failures of this scan. Processes that vanish
	// mid-scan are normal and not counted.
	Errors map[ReadError]int
	// First is, for each kind of failure, the PID of the first process
	// it happened to, to name in a log line.
	First map[ReadError]int
}

func (r *ScanResult) fail(pid int, file string, err error) {
	if r.Errors == nil {
		r.Errors, r.First = map[ReadError]int{}, map[ReadError]int{}
	}
	k := ReadError{File: file, Reason: reason(err)}
	if r.Errors[k] == 0 {
		r.First[k] = pid
	}
	r.Errors[k]++
}

// vanished reports whether err means the process exited while being read.
func vanished(err error) bool {
	return errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ESRCH)
}

func reason(err error) string {
	var pe *fs.PathError
	switch {
	case errors.Is(err, fs.ErrPermission):
		return "permission"
	case vanished(err):
		return "missing"
	case errors.Is(err, procfs.ErrFileParse):
		return "malformed"
	case errors.As(err, &pe):
		return "read"
	default:
		return "malformed"
	}
}

// entry is what the Scanner remembers of a process between scans.
type entry struct {
	key procKey
	// What a process keeps for its life, read once.
	comm       string
	exe        string
	prog       program
	group      *cgroupGroup
	cgroupPath string
	netns      uint64
	noIO       bool // io is not readable (EPERM): don't retry every scan
	noFD       bool
	noStatus   bool // status is missing though the process is there
	// sched is the main thread's schedstat at the last full read; while it
	// stays the same, the process has not run and nothing else moved.
	sched    procfs.ProcSchedstat
	hasSched bool
	// last is the process as of the last full read.
	last Process
	seen uint64
}

// refreshEvery makes every process read in full at least once in this many
// scans, whether it ran or not: resident memory can shrink while a process
// sleeps (reclaim), and a multi-threaded process's idleness is judged from
// tick-grained CPU time.
const refreshEvery = 10

// Scanner reads processes from a procfs mount. It remembers what does not
// change during a process's life, and skips the files of a process that has
// not run since the last scan, so that a scan of a host of mostly idle
// processes costs one small read per process. A Scanner is not safe for
// concurrent use.
type Scanner struct {
	fs       procfs.FS
	root     string
	bootTime float64
	cache    map[int]*entry
	scans    uint64
	sockets  socketCache
	buf      []byte
	path     []byte
}

// NewScanner returns a Scanner over the procfs mounted at root.
func NewScanner(root string) (*Scanner, error) {
	pfs, err := procfs.NewFS(root)
	if err != nil {
		return nil, fmt.Errorf("open procfs %s: %w", root, err)
	}
	st, err := pfs.Stat()
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", filepath.Join(root, "stat"), err)
	}
	return &Scanner{
		fs:       pfs,
		root:     root,
		bootTime: float64(st.BootTime),
		cache:    map[int]*entry{},
	}, nil
}

// Root is the procfs mount point the Scanner reads.
func (s *Scanner) Root() string { return s.root }

// Scan reads every user-space process. Kernel threads and zombies are left
// out; a process that vanishes mid-read is skipped.
func (s *Scanner) Scan() (ScanResult, error) {
	var res ScanResult
	d, err := os.Open(s.root)
	if err != nil {
		return res, fmt.Errorf("open %s: %w", s.root, err)
	}
	names, err := d.Readdirnames(-1)
	d.Close()
	if err != nil {
		return res, fmt.Errorf("list %s: %w", s.root, err)
	}
	s.scans++
	res.Processes = make([]Process, 0, len(names))
	for _, n := range names {
		pid, err := strconv.Atoi(n)
		if err != nil || pid <= 0 {
			continue
		}
		if p, ok := s.readProcess(pid, &res); ok {
			res.Processes = append(res.Processes, p)
		}
	}
	// Forget processes that are gone.
	for pid, e := range s.cache {
		if e.seen != s.scans {
			delete(s.cache, pid)
		}
	}
	return res, nil
}

func (s *Scanner) readProcess(pid int, res *ScanResult) (Process, bool) {
	due := (uint64(pid)+s.scans)%refreshEvery == 0
	e := s.cache[pid]
	if e != nil && e.hasSched && e.last.Threads == 1 && !due {
		// A single-threaded process whose schedstat did not move has not
		// run: its counters, threads and fds are as they were. This is
		// the hot path of a scan, so it reads the file with one buffer
		// and no allocation.
		ss, err := s.readSchedstat(pid)
		switch {
		case err == nil && ss == e.sched:
			e.seen = s.scans
			return e.last, true
		case err != nil && vanished(err):
			return Process{}, false
		}
	}
	proc, err := s.fs.Proc(pid)
	if err != nil {
		if !vanished(err) {
			res.fail(pid, "stat", err)
		}
		return Process{}, false
	}

	stat, err := proc.Stat()
	if err != nil {
		if !vanished(err) {
			res.fail(pid, "stat", err)
		}
		return Process{}, false
	}
	if stat.Flags&pfKthread != 0 || stat.PPID == 2 || pid == 2 || stat.State == "Z" || stat.State == "X" {
		return Process{}, false
	}
	p := Process{
		PID:       pid,
		PPID:      stat.PPID,
		Start:     stat.Starttime,
		Comm:      stat.Comm,
		Threads:   stat.NumThreads,
		RSSBytes:  float64(stat.ResidentMemory()),
		StartTime: s.bootTime + float64(stat.Starttime)/userHZ,
	}
	p.Counters.UserTicks = uint64(stat.UTime)
	p.Counters.SystemTicks = uint64(stat.STime)

	if e == nil || e.key != p.key() || e.comm != p.Comm {
		// New, or it called exec since: read what identifies it.
		e = s.readStatic(proc, p.key(), p.Comm, res)
		s.cache[pid] = e
	}
	e.seen = s.scans
	p.Exe, p.Name, p.prog = e.exe, e.prog.name, e.prog
	p.group, p.cgroupPath, p.NetNS = e.group, e.cgroupPath, e.netns

	idle := e.last.PID == pid && !due && p.Threads > 1 && p.Threads == e.last.Threads &&
		p.Counters.UserTicks == e.last.Counters.UserTicks && p.Counters.SystemTicks == e.last.Counters.SystemTicks
	if idle {
		// A multi-threaded process whose CPU ticks did not move: keep the
		// per-thread sums rather than read every thread's files.
		p.Counters.VoluntarySwitches = e.last.Counters.VoluntarySwitches
		p.Counters.InvoluntarySwitches = e.last.Counters.InvoluntarySwitches
		p.Counters.RunqueueWaitNanoseconds = e.last.Counters.RunqueueWaitNanoseconds
	} else if !s.readSched(proc, &p, e, res) {
		return Process{}, false
	}
	if !e.noIO {
		io, err := proc.IO()
		switch {
		case err == nil:
			p.Counters.ReadBytes = io.ReadBytes
			p.Counters.WriteBytes = io.WriteBytes
			p.Counters.ReadSyscalls = io.SyscR
			p.Counters.WriteSyscalls = io.SyscW
		case vanished(err) && !s.alive(pid):
			return Process{}, false
		default:
			// A kernel without per-task I/O accounting has no io file
			// for any process: the process is counted without it.
			e.noIO = errors.Is(err, fs.ErrPermission) || vanished(err)
			res.fail(pid, "io", err)
		}
	}
	if !e.noFD {
		n, err := proc.FileDescriptorsLen()
		switch {
		case err == nil:
			p.FDs = n
		case vanished(err) && !s.alive(pid):
			return Process{}, false
		default:
			e.noFD = errors.Is(err, fs.ErrPermission) || vanished(err)
			res.fail(pid, "fd", err)
		}
	}
	e.last = p
	return p, true
}

// readSched reads context switches (status) and run-queue wait (schedstat).
// Both are per thread in the kernel, so a multi-threaded process is summed
// over /proc/<pid>/task/*. It returns false if the process vanished.
func (s *Scanner) readSched(proc procfs.Proc, p *Process, e *entry, res *ScanResult) bool {
	if p.Threads <= 1 {
		ok, ss, hasSched := s.addThreadSched(proc, p, res, e)
		e.sched, e.hasSched = ss, hasSched
		return ok
	}
	e.hasSched = false
	tasks, err := s.fs.AllThreads(p.PID)
	if err != nil {
		if vanished(err) {
			return false
		}
		res.fail(p.PID, "task", err)
		return true
	}
	for _, t := range tasks {
		// A thread that exits mid-scan takes its counts with it; the
		// process itself is still here.
		s.addThreadSched(t, p, res, nil)
	}
	return true
}

// addThreadSched adds a thread's counts to p; e is the process's entry when
// the thread is the process itself (single-threaded), nil otherwise.
func (s *Scanner) addThreadSched(t procfs.Proc, p *Process, res *ScanResult, e *entry) (ok bool, ss procfs.ProcSchedstat, hasSched bool) {
	// schedstat first: if the thread runs between the two reads, the
	// status counts are newer than the schedstat remembered, and the next
	// scan reads the process again.
	ss, err := t.Schedstat()
	switch {
	case err == nil:
		p.Counters.RunqueueWaitNanoseconds += ss.WaitingNanoseconds
		hasSched = true
	case vanished(err):
		// schedstat is absent on kernels without CONFIG_SCHED_INFO; the
		// process itself is checked through status.
	default:
		res.fail(p.PID, "schedstat", err)
	}
	status, err := t.NewStatus()
	switch {
	case err == nil:
		p.Counters.VoluntarySwitches += status.VoluntaryCtxtSwitches
		p.Counters.InvoluntarySwitches += status.NonVoluntaryCtxtSwitches
	case vanished(err) && (e == nil || !s.alive(p.PID)):
		return e == nil, ss, false
	case vanished(err):
		// Counted once per process, as an io file missing is.
		if !e.noStatus {
			res.fail(p.PID, "status", err)
		}
		e.noStatus = true
	default:
		res.fail(p.PID, "status", err)
	}
	return true, ss, hasSched
}

// alive reports whether process pid is still there (its stat file can be
// read): a file missing for a living process is one this kernel or procfs
// does not have, counted as an error of reason "missing", and the process
// is kept; one missing because the process exited is no error.
func (s *Scanner) alive(pid int) bool {
	_, err := os.Stat(filepath.Join(s.root, strconv.Itoa(pid), "stat"))
	return err == nil
}

// isFileOf returns whether a path names a regular file as process pid sees
// it: an absolute one under its root, a relative one under its working
// directory (both as /proc shows them, across mount namespaces). What
// cannot be checked (no permission) is no file.
func (s *Scanner) isFileOf(pid int) func(string) bool {
	return func(p string) bool {
		dir := "cwd"
		if path.IsAbs(p) {
			dir = "root"
		}
		fi, err := os.Stat(filepath.Join(s.root, strconv.Itoa(pid), dir, p))
		return err == nil && fi.Mode().IsRegular()
	}
}

// ownNameOf is the name process pid's program gives itself (see ownName):
// its executable's Go build information is read only from a regular file
// (never a FIFO or a device, which could stall a scan).
func (s *Scanner) ownNameOf(pid int, args []string) string {
	exe := filepath.Join(s.root, strconv.Itoa(pid), "exe")
	var goPath, goModule string
	if fi, err := os.Stat(exe); err == nil && fi.Mode().IsRegular() {
		if bi, err := buildinfo.ReadFile(exe); err == nil {
			goPath, goModule = bi.Path, bi.Main.Path
		}
	}
	return ownName(goPath, goModule, args)
}

// readStatic reads what identifies a process: executable, command line (only
// to name it), cgroup and network namespace.
func (s *Scanner) readStatic(proc procfs.Proc, key procKey, comm string, res *ScanResult) *entry {
	st := &entry{key: key, comm: comm}
	exe, err := proc.Executable()
	if err != nil && !vanished(err) {
		res.fail(proc.PID, "exe", err)
	}
	st.exe = exe
	args, err := proc.CmdLine()
	if err != nil && !vanished(err) {
		res.fail(proc.PID, "cmdline", err)
	}
	st.prog = programName(exe, comm, args, s.isFileOf(proc.PID), func() string { return s.ownNameOf(proc.PID, args) })

	cgs, err := proc.Cgroups()
	switch {
	case err == nil:
		paths := make([]string, 0, len(cgs))
		for _, c := range cgs {
			paths = append(paths, c.Path)
			if st.cgroupPath == "" || c.HierarchyID == 0 && c.Path != "/" {
				st.cgroupPath = c.Path
			}
		}
		if g, ok := classifyCgroup(paths); ok {
			st.group = &g
		}
	case !vanished(err):
		res.fail(proc.PID, "cgroup", err)
	}

	link, err := os.Readlink(filepath.Join(s.root, strconv.Itoa(proc.PID), "ns", "net"))
	switch {
	case err == nil:
		st.netns = parseNSLink(link)
	case !vanished(err):
		res.fail(proc.PID, "ns", err)
	}
	return st
}

// parseNSLink reads the inode from a namespace link such as "net:[4026531840]".
func parseNSLink(link string) uint64 {
	_, rest, ok := strings.Cut(link, ":[")
	if !ok {
		return 0
	}
	n, err := strconv.ParseUint(strings.TrimSuffix(rest, "]"), 10, 64)
	if err != nil {
		return 0
	}
	return n
}

// readSchedstat reads /proc/<pid>/schedstat into the Scanner's buffer.
func (s *Scanner) readSchedstat(pid int) (procfs.ProcSchedstat, error) {
	s.path = append(s.path[:0], s.root...)
	s.path = append(s.path, '/')
	s.path = strconv.AppendInt(s.path, int64(pid), 10)
	s.path = append(s.path, "/schedstat\x00"...)
	if s.buf == nil {
		s.buf = make([]byte, 256)
	}
	n, err := readSmall(s.path, s.buf)
	if err != nil {
		return procfs.ProcSchedstat{}, err
	}
	return parseSchedstat(s.buf[:n])
}

// readSmall reads a small file whose NUL-terminated path is in path, into
// buf, with three system calls and no allocation.
func readSmall(path, buf []byte) (int, error) {
	fd, err := openat(path)
	if err != nil {
		return 0, &fs.PathError{Op: "open", Path: string(path[:len(path)-1]), Err: err}
	}
	n, err := syscall.Read(fd, buf)
	syscall.Close(fd)
	if err != nil {
		return 0, &fs.PathError{Op: "read", Path: string(path[:len(path)-1]), Err: err}
	}
	return n, nil
}

// parseSchedstat parses /proc/<pid>/schedstat: time on the CPU (ns), time
// waiting on a run queue (ns), and timeslices run, separated by spaces.
func parseSchedstat(b []byte) (procfs.ProcSchedstat, error) {
	var v [3]uint64
	i := 0
	for f := 0; f < 3; f++ {
		for i < len(b) && b[i] == ' ' {
			i++
		}
		start := i
		var n uint64
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			d := uint64(b[i] - '0')
			if n > (math.MaxUint64-d)/10 {
				return procfs.ProcSchedstat{}, fmt.Errorf("%w: schedstat field %d overflows", procfs.ErrFileParse, f+1)
			}
			n = n*10 + d
			i++
		}
		if i == start {
			return procfs.ProcSchedstat{}, fmt.Errorf("%w: schedstat %q: want three numbers", procfs.ErrFileParse, b)
		}
		v[f] = n
	}
	for ; i < len(b); i++ {
		if b[i] != '\n' && b[i] != ' ' {
			return procfs.ProcSchedstat{}, fmt.Errorf("%w: schedstat %q: want three numbers", procfs.ErrFileParse, b)
		}
	}
	return procfs.ProcSchedstat{RunningNanoseconds: v[0], WaitingNanoseconds: v[1], RunTimeslices: v[2]}, nil
}
