package syscalls

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"
)

// kernelBTF is where the kernel publishes its own type information, which
// tp_btf programs and CO-RE relocations need.
const kernelBTF = "/sys/kernel/btf/vmlinux"

// batchSize is how many map entries one batch lookup returns. Hash-map
// batches must hold a whole hash bucket, which a few hundred always do.
const batchSize = 512

// Indexes of the kernel side's dropped array (enum drop_reason).
const (
	dropStatsFull = iota
	dropErrorsFull
	dropProcsFull
	dropBadNr
	numDropReasons
)

// untimed is the latency bucket of calls that were counted but not timed
// (UNTIMED in tracer.bpf.c).
const untimed = 255

// Tracer is the loaded and attached eBPF program. It counts every syscall
// of every process on the host until Close. Its methods may be called from
// several goroutines.
type Tracer struct {
	mu     sync.Mutex // serialises Snapshot, which deletes what it reported as exited
	objs   tracerObjects
	links  []link.Link
	ncpu   int
	closed bool

	// While latency is sampled, a goroutine attaches sys_enter for a
	// window in every period; stop ends it and done says it has ended.
	stop, done    chan struct{}
	missedWindows atomic.Uint64
}

// Load loads the tracer into the kernel and attaches it to the sys_exit,
// sched_process_exec and sched_process_exit tracepoints (BTF-enabled raw
// tracepoints), and, for timing syscalls, to sys_enter: all the time with
// Options.LatencySampleEvery 1, otherwise in sampling windows from a
// goroutine that Close stops. Counting starts at once; syscalls already in
// progress are counted when they end, but not timed. When eBPF is not
// permitted or the kernel lacks support, the error matches ErrUnavailable
// and says which.
//
// It needs CAP_BPF and CAP_PERFMON (or CAP_SYS_ADMIN), a kernel with BTF
// (/sys/kernel/btf/vmlinux) and BPF task storage (Linux 5.11 or later).
func Load(opts Options) (*Tracer, error) {
	return load(opts, kernelBTF)
}

// load is Load with the place of the kernel's BTF as a parameter, so that a
// test can show what happens on a kernel without it.
func load(opts Options, btfPath string) (*Tracer, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(btfPath); err != nil {
		return nil, &unavailableError{
			reason: "the kernel publishes no BTF type information (needs CONFIG_DEBUG_INFO_BTF=y)",
			detail: err.Error(),
			err:    err,
		}
	}
	ncpu, err := ebpf.PossibleCPU()
	if err != nil {
		return nil, fmt.Errorf("count possible CPUs: %w", err)
	}
	spec, err := loadTracer()
	if err != nil {
		return nil, err
	}
	spec.Maps[tracerMapStats].MaxEntries = opts.MaxEntries
	spec.Maps[tracerMapErrors].MaxEntries = opts.MaxErrorEntries
	spec.Maps[tracerMapProcs].MaxEntries = opts.MaxProcesses

	t := &Tracer{ncpu: ncpu}
	if err := spec.LoadAndAssign(&t.objs, nil); err != nil {
		return nil, classify("load eBPF programs and maps", false, err)
	}
	type hook struct {
		name string
		prog *ebpf.Program
	}
	// The process hooks go first, so that no process the syscall hooks
	// record can exit unnoticed; sys_exit goes before sys_enter, so that
	// every entry time stored is taken by the call's exit.
	hooks := []hook{
		{"sched_process_exit", t.objs.SchedProcessExit},
		{"sched_process_exec", t.objs.SchedProcessExec},
	}
	switch {
	case opts.NoLatency:
		hooks = append(hooks, hook{"sys_exit", t.objs.SysExitCount})
	case opts.LatencySampleEvery == 1:
		hooks = append(hooks, hook{"sys_exit", t.objs.SysExit}, hook{"sys_enter", t.objs.SysEnter})
	default:
		hooks = append(hooks, hook{"sys_exit", t.objs.SysExit})
	}
	for _, p := range hooks {
		l, err := attachRawTP(p.prog)
		if err != nil {
			t.Close()
			return nil, classify("attach to tracepoint "+p.name, true, err)
		}
		t.links = append(t.links, l)
	}
	if !opts.NoLatency && opts.LatencySampleEvery > 1 {
		// The first window shows at once that sys_enter can be attached;
		// later ones follow on their own.
		l, err := attachRawTP(t.objs.SysEnter)
		if err != nil {
			t.Close()
			return nil, classify("attach to tracepoint sys_enter", true, err)
		}
		t.stop, t.done = make(chan struct{}), make(chan struct{})
		go t.sampleLatency(l, LatencySamplePeriod, LatencySamplePeriod/time.Duration(opts.LatencySampleEvery))
	}
	return t, nil
}

func attachRawTP(prog *ebpf.Program) (link.Link, error) {
	return link.AttachTracing(link.TracingOptions{Program: prog, AttachType: ebpf.AttachTraceRawTp})
}

// sampleLatency keeps sys_enter attached for one window in every period,
// starting with l, attached already, as the first window. A window starts
// at a random moment of its period. Attaching and detaching cost a few
// hundred microseconds of CPU; a program attached to sys_enter costs every
// syscall on the host about 20 ns even when it does nothing, which is why
// it is detached between windows rather than told to do nothing.
func (t *Tracer) sampleLatency(l link.Link, period, window time.Duration) {
	defer close(t.done)
	timer := time.NewTimer(window)
	defer timer.Stop()
	wait := func(d time.Duration) bool {
		timer.Reset(d)
		select {
		case <-timer.C:
			return true
		case <-t.stop:
			return false
		}
	}
	periodStart := time.Now()
	for {
		if l != nil {
			ok := wait(window)
			// Closing the link's descriptor detaches it; there is
			// no failure to act on.
			_ = l.Close()
			if !ok {
				return
			}
		}
		periodStart = periodStart.Add(period)
		if now := time.Now(); periodStart.Before(now.Add(-period)) {
			// Fell behind (a suspended machine): start afresh.
			periodStart = now
		}
		start := periodStart.Add(rand.N(period - window))
		if !wait(time.Until(start)) {
			return
		}
		var err error
		if l, err = attachRawTP(t.objs.SysEnter); err != nil {
			l = nil
			t.missedWindows.Add(1)
		}
	}
}

// classify turns a load or attach failure caused by the host into an error
// matching ErrUnavailable with a reason an operator can act on.
func classify(op string, attach bool, err error) error {
	var ve *ebpf.VerifierError
	switch {
	case errors.Is(err, unix.EPERM):
		// cilium/ebpf suggests raising RLIMIT_MEMLOCK on EPERM; on kernels
		// with task storage memory is charged to the cgroup instead, so the
		// hint misleads and is left out.
		return &unavailableError{
			reason: "eBPF is not permitted: the process needs CAP_BPF and CAP_PERFMON (or CAP_SYS_ADMIN), and kernel lockdown must allow tracing",
			detail: op + ": " + unix.EPERM.Error(),
			err:    err,
		}
	case errors.Is(err, unix.ENOSYS):
		return &unavailableError{reason: "the kernel is built without eBPF (CONFIG_BPF_SYSCALL)", detail: op + ": " + err.Error(), err: err}
	case errors.Is(err, ebpf.ErrNotSupported):
		return &unavailableError{reason: "the kernel lacks a feature the tracer needs (BTF tracepoints and task storage need Linux 5.11 or later)", detail: op + ": " + err.Error(), err: err}
	case errors.As(err, &ve):
		return &unavailableError{reason: "the kernel's verifier rejected the program (the kernel is probably older than Linux 5.11)", detail: op + ": " + err.Error(), err: err}
	case attach && errors.Is(err, unix.ENOENT):
		return &unavailableError{reason: "the kernel cannot attach to the syscall tracepoints (needs CONFIG_FTRACE_SYSCALLS)", detail: op + ": " + err.Error(), err: err}
	}
	return fmt.Errorf("%s: %w", op, err)
}

// Close detaches the tracer and frees its kernel memory. Closing twice does
// nothing.
func (t *Tracer) Close() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return nil
	}
	t.closed = true
	if t.stop != nil {
		close(t.stop)
		<-t.done
	}
	var errs []error
	// In reverse, so that sys_enter goes before sys_exit.
	slices.Reverse(t.links)
	for _, l := range t.links {
		if err := l.Close(); err != nil {
			errs = append(errs, fmt.Errorf("detach: %w", err))
		}
	}
	t.links = nil
	if err := t.objs.Close(); err != nil {
		errs = append(errs, fmt.Errorf("close eBPF objects: %w", err))
	}
	return errors.Join(errs...)
}

// Snapshot returns the cumulative totals of every process the tracer has
// seen. A process that has exited is in exactly one Snapshot, marked
// Exited, and then forgotten; see Process.Exited. Snapshots are serialised.
func (t *Tracer) Snapshot() (*Snapshot, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return nil, errors.New("syscall tracer snapshot: tracer is closed")
	}

	snap := &Snapshot{Processes: map[uint32]*Process{}}
	proc := func(tgid uint32) *Process {
		p := snap.Processes[tgid]
		if p == nil {
			p = &Process{Syscalls: map[uint32]*Syscall{}}
			snap.Processes[tgid] = p
		}
		return p
	}
	known := map[uint32]bool{}
	err := batchRead(t.objs.Procs, 1, func(tgid *uint32, v []tracerProc) {
		p := proc(*tgid)
		p.Comm = commString(v[0].Comm)
		p.PPID = v[0].Ppid
		p.CgroupID = v[0].CgroupId
		p.Exited = v[0].Exited != 0
		known[*tgid] = true
	})
	if err != nil {
		return nil, err
	}
	var statKeys []tracerStatKey
	err = batchRead(t.objs.Stats, t.ncpu, func(k *tracerStatKey, perCPU []tracerStatVal) {
		s := syscallOf(proc(k.Tgid), uint32(k.Nr))
		for _, v := range perCPU {
			s.Count += v.Count
			if k.Bucket != untimed {
				s.Sampled += v.Count
				s.Buckets[min(int(k.Bucket), NumBuckets-1)] += v.Count
				s.Sum += time.Duration(v.Ns)
			}
		}
		statKeys = append(statKeys, *k)
	})
	if err != nil {
		return nil, err
	}
	var errKeys []tracerErrKey
	err = batchRead(t.objs.Errors, t.ncpu, func(k *tracerErrKey, perCPU []uint64) {
		s := syscallOf(proc(k.Tgid), uint32(k.Nr))
		if s.Errors == nil {
			s.Errors = map[syscall.Errno]uint64{}
		}
		for _, n := range perCPU {
			s.Errors[syscall.Errno(k.Errno)] += n
		}
		errKeys = append(errKeys, *k)
	})
	if err != nil {
		return nil, err
	}
	if snap.Dropped, err = t.dropped(); err != nil {
		return nil, err
	}

	// The exit hook marks the processes it knows; one whose identity did
	// not fit in the process map is checked with kill(pid, 0).
	for tgid, p := range snap.Processes {
		if !p.Exited && !known[tgid] {
			p.Exited = errors.Is(unix.Kill(int(tgid), 0), unix.ESRCH)
		}
	}
	if err := t.forgetExited(snap, statKeys, errKeys); err != nil {
		return nil, err
	}
	return snap, nil
}

func syscallOf(p *Process, nr uint32) *Syscall {
	s := p.Syscalls[nr]
	if s == nil {
		s = &Syscall{}
		p.Syscalls[nr] = s
	}
	return s
}

// forgetExited deletes the entries of the processes snap reports as exited,
// so that the kernel maps hold only live processes.
func (t *Tracer) forgetExited(snap *Snapshot, statKeys []tracerStatKey, errKeys []tracerErrKey) error {
	exited := func(tgid uint32) bool { return snap.Processes[tgid].Exited }
	statKeys = slices.DeleteFunc(statKeys, func(k tracerStatKey) bool { return !exited(k.Tgid) })
	errKeys = slices.DeleteFunc(errKeys, func(k tracerErrKey) bool { return !exited(k.Tgid) })
	var tgids []uint32
	for tgid, p := range snap.Processes {
		if p.Exited {
			tgids = append(tgids, tgid)
		}
	}
	if err := deleteKeys(t.objs.Stats, statKeys); err != nil {
		return err
	}
	if err := deleteKeys(t.objs.Errors, errKeys); err != nil {
		return err
	}
	return deleteKeys(t.objs.Procs, tgids)
}

// deleteKeys deletes keys from m in one batch; when the batch stops at a
// key that is already gone, it deletes the rest one by one.
func deleteKeys[K any](m *ebpf.Map, keys []K) error {
	if len(keys) == 0 {
		return nil
	}
	if _, err := m.BatchDelete(keys, nil); err == nil {
		return nil
	}
	for i := range keys {
		if err := m.Delete(&keys[i]); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
			return fmt.Errorf("forget exited process in map %s: %w", mapName(m), err)
		}
	}
	return nil
}

func (t *Tracer) dropped() (Dropped, error) {
	var n [numDropReasons]uint64
	perCPU := make([]uint64, t.ncpu)
	for i := range n {
		if err := t.objs.Dropped.Lookup(uint32(i), &perCPU); err != nil {
			return Dropped{}, fmt.Errorf("read map dropped: %w", err)
		}
		for _, v := range perCPU {
			n[i] += v
		}
	}
	return Dropped{
		Syscalls:       n[dropStatsFull],
		Errors:         n[dropErrorsFull],
		Processes:      n[dropProcsFull],
		BadNumbers:     n[dropBadNr],
		LatencyWindows: t.missedWindows.Load(),
	}, nil
}

// batchRead calls fn for every entry of m, reading a batch of entries per
// system call. ncpu is the number of values per entry: 1 for an ordinary
// map, the number of possible CPUs for a per-CPU map.
func batchRead[K, V any](m *ebpf.Map, ncpu int, fn func(*K, []V)) error {
	keys := make([]K, batchSize)
	vals := make([]V, batchSize*ncpu)
	var cursor ebpf.MapBatchCursor
	for {
		n, err := m.BatchLookup(&cursor, keys, vals, nil)
		for i := range n {
			fn(&keys[i], vals[i*ncpu:(i+1)*ncpu])
		}
		if errors.Is(err, ebpf.ErrKeyNotExist) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read map %s: %w", mapName(m), err)
		}
	}
}

func mapName(m *ebpf.Map) string {
	if info, err := m.Info(); err == nil {
		return info.Name
	}
	return m.String()
}

func commString(c [16]int8) string {
	b := make([]byte, 0, len(c))
	for _, ch := range c {
		if ch == 0 {
			break
		}
		b = append(b, byte(ch))
	}
	return string(b)
}
