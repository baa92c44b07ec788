package syscalls

import (
	"fmt"
	"time"
)

// Default map sizes, chosen so that a busy host (a few thousand processes,
// each using a few dozen syscalls with latencies in a few buckets) fits.
const (
	DefaultMaxEntries      = 65536
	DefaultMaxErrorEntries = 16384
	DefaultMaxProcesses    = 16384
)

// DefaultLatencySampleEvery is the share of time during which syscalls are
// timed, one sixteenth: 62.5 ms in every second. Timing costs a second hook
// on syscall entry and two clock reads; a sixteenth of that adds a few
// nanoseconds to the hook on exit, which every call runs
// (go tool mage benchSyscalls measures both).
const DefaultLatencySampleEvery = 16

// LatencySamplePeriod is how often a latency sampling window opens: once
// per period, at a random moment within it, so that a workload that runs
// at a fixed rhythm is not always caught in the same phase.
const LatencySamplePeriod = time.Second

// Options bounds the kernel memory the tracer uses, and says whether and how
// it samples latency. What does not fit is counted in Snapshot.Dropped.
// Zero values take the defaults.
type Options struct {
	// MaxEntries bounds the (process, syscall, latency bucket) entries; the
	// calls of a (process, syscall) that were not timed take one more.
	// Each takes about 100 bytes plus 16 bytes per possible CPU.
	MaxEntries uint32
	// MaxErrorEntries bounds the (process, syscall, errno) entries.
	MaxErrorEntries uint32
	// MaxProcesses bounds the processes whose identity is kept.
	MaxProcesses uint32
	// NoLatency counts calls and errors without timing them.
	// Syscall.Sampled, Buckets and Sum then stay zero.
	NoLatency bool
	// LatencySampleEvery makes the tracer time the syscalls that start in
	// one N-th of the time: once per LatencySamplePeriod it attaches the
	// entry hook for LatencySamplePeriod/N, and the calls that start in
	// that window are timed (whenever they end). The latency histogram is
	// then a sample of about one call in N, Syscall.Sampled says of how
	// many; Count and Errors count every call whatever N is. 1 times every
	// call, with the entry hook attached all the time; 0 takes
	// DefaultLatencySampleEvery.
	LatencySampleEvery uint32
}

// maxMapEntries keeps a mistyped size from asking the kernel for gigabytes.
const maxMapEntries = 1 << 22

// maxLatencySampleEvery keeps sampling windows at 10 ms or longer.
const maxLatencySampleEvery = 100

func (o Options) withDefaults() (Options, error) {
	if o.LatencySampleEvery == 0 {
		o.LatencySampleEvery = DefaultLatencySampleEvery
	}
	// A window shorter than this would be mostly the time the kernel takes
	// to attach the hook.
	if o.LatencySampleEvery > maxLatencySampleEvery {
		return o, fmt.Errorf("syscalls options: LatencySampleEvery is %d, want at most %d (a window of %v)",
			o.LatencySampleEvery, maxLatencySampleEvery, LatencySamplePeriod/maxLatencySampleEvery)
	}
	for _, f := range []struct {
		name string
		v    *uint32
		def  uint32
	}{
		{"MaxEntries", &o.MaxEntries, DefaultMaxEntries},
		{"MaxErrorEntries", &o.MaxErrorEntries, DefaultMaxErrorEntries},
		{"MaxProcesses", &o.MaxProcesses, DefaultMaxProcesses},
	} {
		if *f.v == 0 {
			*f.v = f.def
		}
		if *f.v > maxMapEntries {
			return o, fmt.Errorf("syscalls options: %s is %d, want at most %d", f.name, *f.v, maxMapEntries)
		}
	}
	return o, nil
}
