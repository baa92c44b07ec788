package syscalls

import "fmt"

// Default map sizes, chosen so that a busy host (a few thousand processes,
// each using a few dozen syscalls with latencies in a few buckets) fits.
const (
	DefaultMaxEntries      = 65536
	DefaultMaxErrorEntries = 16384
	DefaultMaxProcesses    = 16384
)

// Options bounds the kernel memory the tracer uses. What does not fit is
// counted in Snapshot.Dropped. Zero values take the defaults.
type Options struct {
	// MaxEntries bounds the (process, syscall, latency bucket) entries.
	// Each takes about 100 bytes plus 16 bytes per possible CPU.
	MaxEntries uint32
	// MaxErrorEntries bounds the (process, syscall, errno) entries.
	MaxErrorEntries uint32
	// MaxProcesses bounds the processes whose identity is kept.
	MaxProcesses uint32
	// NoLatency counts calls and errors without timing them: one hook on
	// syscall exit instead of two, no clock reads, about a third of the
	// cost per syscall. Syscall.Buckets and Syscall.Sum then stay zero.
	NoLatency bool
}

// maxMapEntries keeps a mistyped size from asking the kernel for gigabytes.
const maxMapEntries = 1 << 22

func (o Options) withDefaults() (Options, error) {
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
