package collector

import (
	"fmt"
	"log/slog"
	"runtime"
	"sort"
	"sync"
	"syscall"

	"github.com/alecthomas/kingpin/v2"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/telltale-dev/telltale/pkg/syscalls"

	"github.com/telltale-dev/telltale/pkg/schema"
)

func init() {
	register(registration{
		name:      "syscalls",
		help:      "Per service and syscall: counts, errors by errno and a latency histogram, from eBPF raw tracepoints (needs root or CAP_BPF+CAP_PERFMON)",
		byDefault: false,
		processes: true,
		factory:   newSyscallsCollector,
		flags: func(app *kingpin.Application, cfg *Config) {
			c := &syscallsConfig{}
			app.Flag("collector.syscalls.latency", "Time a sample of syscalls for the latency histogram (see latency-sample-every); without it, counts and errors only (about 45 ns per syscall).").Default("true").BoolVar(&c.latency)
			app.Flag("collector.syscalls.latency-sample-every", "Time the syscalls that start in one N-th of each second (62.5 ms by default); 1 times every call, about 130 ns per syscall instead of about 50.").Default("16").Uint32Var(&c.sampleEvery)
			app.Flag("collector.syscalls.max-per-service", "Most syscalls named per service; the rest are counted as syscall=\"other\".").Default("25").IntVar(&c.maxPerService)
			app.Flag("collector.syscalls.max-entries", "Most (process, syscall, latency bucket) entries kept in the kernel; what does not fit is counted in "+schema.SyscallsDropped.Name+".").Default("65536").Uint32Var(&c.maxEntries)
			cfg.extra["syscalls"] = c
		},
	})
}

type syscallsConfig struct {
	latency       bool
	sampleEvery   uint32
	maxPerService int
	maxEntries    uint32
}

// histogramBuckets are the latency bounds exposed, a subset of the tracer's
// powers of two (512 ns × 2^i) chosen to keep ten series per histogram:
// about 1 µs, 16 µs, 131 µs, 1 ms, 8.4 ms, 67 ms and 537 ms.
var histogramBuckets = []int{1, 5, 8, 11, 14, 17, 20}

type syscallsCollector struct {
	cfg    syscallsConfig
	tracer *syscalls.Tracer

	mu     sync.Mutex
	totals syscalls.ServiceTotals
	named  map[string]map[uint32]bool

	calls, errs, duration, dropped *prometheus.Desc
}

func newSyscallsCollector(cfg *Config, _ *slog.Logger) (Collector, error) {
	c := &syscallsCollector{named: map[string]map[uint32]bool{}}
	if sc, ok := cfg.extra["syscalls"].(*syscallsConfig); ok {
		c.cfg = *sc
	} else {
		c.cfg = syscallsConfig{latency: true, sampleEvery: syscalls.DefaultLatencySampleEvery, maxPerService: 25, maxEntries: syscalls.DefaultMaxEntries}
	}
	if c.cfg.maxPerService < 1 {
		return nil, fmt.Errorf("--collector.syscalls.max-per-service=%d: must be at least 1", c.cfg.maxPerService)
	}
	t, err := syscalls.Load(syscalls.Options{MaxEntries: c.cfg.maxEntries, NoLatency: !c.cfg.latency, LatencySampleEvery: c.cfg.sampleEvery})
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	c.tracer = t
	c.calls = schema.ServiceSyscalls.Desc()
	c.errs = schema.ServiceSyscallErrors.Desc()
	c.duration = schema.ServiceSyscallLatency.Desc()
	c.dropped = schema.SyscallsDropped.Desc()
	return c, nil
}

func (c *syscallsCollector) Close() error { return c.tracer.Close() }

func (c *syscallsCollector) Update(s *Scrape, ch chan<- prometheus.Metric) error {
	snap, err := c.tracer.Snapshot()
	if err != nil {
		return fmt.Errorf("read syscall counts: %w", err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	// A process that came and went between scrapes is not in the scan:
	// its calls go to its parent's service, as the process tree would.
	perService := c.totals.Update(snap, func(tgid uint32, p *syscalls.Process) string {
		if svc, ok := s.Services.ByPID[int(tgid)]; ok {
			return svc
		}
		return s.Services.ByPID[int(p.PPID)]
	})

	services := make([]string, 0, len(perService))
	for svc := range perService {
		services = append(services, svc)
	}
	sort.Strings(services)
	for _, svc := range services {
		for name, sc := range c.fold(svc, perService[svc]) {
			ch <- prometheus.MustNewConstMetric(c.calls, prometheus.CounterValue, float64(sc.Count), svc, name)
			for errno, n := range sc.Errors {
				en, _ := syscalls.ErrnoName(errno)
				ch <- prometheus.MustNewConstMetric(c.errs, prometheus.CounterValue, float64(n), svc, name, en)
			}
			if c.cfg.latency {
				ch <- prometheus.MustNewConstHistogram(c.duration, sc.Sampled, sc.Sum.Seconds(), buckets(sc), svc, name)
			}
		}
	}
	d := snap.Dropped
	for reason, v := range map[string]uint64{"syscalls": d.Syscalls, "errors": d.Errors, "processes": d.Processes, "bad_numbers": d.BadNumbers, "latency_windows": d.LatencyWindows} {
		ch <- prometheus.MustNewConstMetric(c.dropped, prometheus.CounterValue, float64(v), reason)
	}
	return nil
}

// fold names a service's syscalls: the first max-per-service seen keep their
// names for good, later ones are summed under "other". Names never move in
// or out of "other", so every series stays a monotonic counter.
func (c *syscallsCollector) fold(svc string, calls map[uint32]*syscalls.Syscall) map[string]*syscalls.Syscall {
	named := c.named[svc]
	if named == nil {
		named = map[uint32]bool{}
		c.named[svc] = named
	}
	nrs := make([]uint32, 0, len(calls))
	for nr := range calls {
		nrs = append(nrs, nr)
	}
	// Among new syscalls, the busiest get the free names.
	sort.Slice(nrs, func(i, j int) bool { return calls[nrs[i]].Count > calls[nrs[j]].Count })
	out := make(map[string]*syscalls.Syscall, len(calls))
	for _, nr := range nrs {
		if !named[nr] && len(named) < c.cfg.maxPerService {
			named[nr] = true
		}
		name := "other"
		if named[nr] {
			name, _ = syscalls.SyscallName(runtime.GOARCH, nr)
		}
		if out[name] == nil {
			out[name] = &syscalls.Syscall{Errors: map[syscall.Errno]uint64{}}
		}
		out[name].Add(calls[nr])
	}
	return out
}

// buckets keeps the histogramBuckets subset of a syscall's cumulative
// buckets.
func buckets(sc *syscalls.Syscall) map[float64]uint64 {
	all := sc.CumulativeBuckets()
	out := make(map[float64]uint64, len(histogramBuckets))
	for _, i := range histogramBuckets {
		ub := syscalls.BucketUpperBound(i).Seconds()
		out[ub] = all[ub]
	}
	return out
}
