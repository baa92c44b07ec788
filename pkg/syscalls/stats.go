package syscalls

import (
	"math"
	"syscall"
	"time"
)

// NumBuckets is the number of latency buckets the kernel side keeps per
// process and syscall. Bucket i < NumBuckets-1 counts syscalls that took
// less than BucketUpperBound(i) (and at least the previous bucket's bound);
// the last bucket counts everything longer.
const NumBuckets = 24

// bucketShift makes bucket 0 end at 2^9 ns = 512 ns, below which the cost of
// measuring is a large part of what is measured. It must match BUCKET_SHIFT
// in tracer.bpf.c.
const bucketShift = 9

// BucketUpperBound returns the exclusive upper bound of latency bucket i,
// 2^(i+9) ns: 512ns, 1.024µs, … 2.1s; the last bucket and any i out of range
// have no bound and return math.MaxInt64.
func BucketUpperBound(i int) time.Duration {
	if i < 0 || i >= NumBuckets-1 {
		return math.MaxInt64
	}
	return time.Duration(1) << (i + bucketShift)
}

// Snapshot is what the kernel has counted since the Tracer was loaded:
// cumulative totals per process.
type Snapshot struct {
	// Processes maps a thread group ID (the PID as user space knows it,
	// in the initial PID namespace) to that process's totals.
	Processes map[uint32]*Process
	// Dropped counts what did not fit, since the Tracer was loaded.
	Dropped Dropped
}

// Process holds one process's cumulative syscall totals and what the kernel
// knew about the process when it first saw it.
type Process struct {
	// Comm is the command name of the process's main thread (at most 15
	// bytes), as it was at the process's first traced syscall or, if it
	// has exec'd since, at its last exec.
	Comm string
	// PPID is the parent's PID at that time.
	PPID uint32
	// CgroupID is the ID of the process's cgroup v2 (the inode number of the
	// cgroup's directory) at that time.
	CgroupID uint64
	// Exited is set when every thread of the process has exited. This
	// Snapshot is the last to contain the process: the Tracer forgets it
	// afterwards, so the caller must fold these totals into whatever it
	// keeps per service. A later process that reuses the PID starts again
	// from zero.
	Exited bool
	// Syscalls maps the syscall number (see SyscallName) to its totals.
	Syscalls map[uint32]*Syscall
}

// Syscall holds the cumulative totals of one syscall.
//
// Count and Errors count every call. The latency histogram (Sampled,
// Buckets, Sum) is of a sample of the calls, those that started in a
// sampling window (Options.LatencySampleEvery): its count is Sampled, not
// Count. The sample's mean, Sum/Sampled, and its quantiles estimate those of
// all calls; Sum·Count/Sampled estimates the total time spent in them.
type Syscall struct {
	// Count is the number of completed calls.
	Count uint64
	// Errors counts the calls that returned an error, by errno.
	Errors map[syscall.Errno]uint64
	// Sampled is the number of calls that were timed, at most Count; it
	// equals the sum of Buckets.
	Sampled uint64
	// Buckets counts the timed calls by latency (time from entry to exit);
	// see BucketUpperBound. The counts are per bucket, not cumulative.
	Buckets [NumBuckets]uint64
	// Sum is the total time spent in the timed calls.
	Sum time.Duration
}

// Add adds o's totals to s, for summing processes into a service.
func (s *Syscall) Add(o *Syscall) {
	s.Count += o.Count
	s.Sampled += o.Sampled
	s.Sum += o.Sum
	for i, n := range o.Buckets {
		s.Buckets[i] += n
	}
	for errno, n := range o.Errors {
		if s.Errors == nil {
			s.Errors = make(map[syscall.Errno]uint64, len(o.Errors))
		}
		s.Errors[errno] += n
	}
}

// Since returns what s counted after base, an earlier total of the same
// calls (all of s when base is nil); each count is at least 0.
func (s *Syscall) Since(base *Syscall) *Syscall {
	d := *s
	d.Errors = nil
	if base != nil {
		d.Count -= min(base.Count, d.Count)
		d.Sampled -= min(base.Sampled, d.Sampled)
		d.Sum -= min(base.Sum, d.Sum)
		for i := range d.Buckets {
			d.Buckets[i] -= min(base.Buckets[i], d.Buckets[i])
		}
	}
	for errno, n := range s.Errors {
		if base != nil {
			n -= min(base.Errors[errno], n)
		}
		if n > 0 {
			if d.Errors == nil {
				d.Errors = make(map[syscall.Errno]uint64, len(s.Errors))
			}
			d.Errors[errno] = n
		}
	}
	return &d
}

// CumulativeBuckets returns the latency histogram in the form
// prometheus.NewConstHistogram takes: upper bound in seconds → number of
// timed calls at or below it, for every bucket but the last (whose bound is
// +Inf and whose cumulative count is Sampled, the histogram's count; its sum
// is Sum). Dropping entries from the result still leaves a valid histogram
// with fewer buckets.
func (s *Syscall) CumulativeBuckets() map[float64]uint64 {
	m := make(map[float64]uint64, NumBuckets-1)
	var sum uint64
	for i := range NumBuckets - 1 {
		sum += s.Buckets[i]
		m[BucketUpperBound(i).Seconds()] = sum
	}
	return m
}

// Dropped counts, since the Tracer was loaded, what the kernel side could
// not record because a map was full or the input made no sense.
type Dropped struct {
	// Syscalls were not counted at all: the per-(process, syscall, bucket)
	// map was full (Options.MaxEntries).
	Syscalls uint64
	// Errors were counted as calls but not by errno: the error map was
	// full (Options.MaxErrorEntries).
	Errors uint64
	// Processes were counted but their identity (Comm, PPID, CgroupID) was
	// not kept: the process map was full (Options.MaxProcesses).
	Processes uint64
	// BadNumbers are syscalls whose number is outside the native table:
	// x32 calls, or -1 set by seccomp or ptrace.
	BadNumbers uint64
	// LatencyWindows are latency sampling windows that did not open
	// because the entry hook could not be attached: their calls were
	// counted but not timed.
	LatencyWindows uint64
}
