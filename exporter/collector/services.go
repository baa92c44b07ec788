package collector

import (
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"
)

func init() {
	register(registration{
		name:      "services",
		help:      "Per-service resources from /proc: processes, CPU, memory, threads, fds, disk and syscall I/O, context switches, run-queue wait, restarts",
		byDefault: true,
		processes: true,
		factory:   newServicesCollector,
	})
}

type servicesCollector struct {
	info, processes, cpu, rss, threads, fds      *prometheus.Desc
	diskRead, diskWritten, readCalls, writeCalls *prometheus.Desc
	switches, runqueue, restarts, startTime      *prometheus.Desc
}

func serviceDesc(name, help string, extra ...string) *prometheus.Desc {
	return prometheus.NewDesc(namespace+"_service_"+name, help, append([]string{"service"}, extra...), nil)
}

func newServicesCollector(*Config, *slog.Logger) (Collector, error) {
	return &servicesCollector{
		info:        serviceDesc("info", "A service found on this host, and how it was found (kind: systemd, docker, podman, containerd, kubernetes or process).", "kind"),
		processes:   serviceDesc("processes", "Processes in the service."),
		cpu:         serviceDesc("cpu_seconds_total", "CPU time used by the service's processes, including ones that have exited.", "mode"),
		rss:         serviceDesc("resident_memory_bytes", "Resident memory of the service's processes."),
		threads:     serviceDesc("threads", "Threads in the service's processes."),
		fds:         serviceDesc("open_fds", "Open file descriptors of the service's processes."),
		diskRead:    serviceDesc("disk_read_bytes_total", "Bytes the service read from storage (/proc/<pid>/io read_bytes)."),
		diskWritten: serviceDesc("disk_written_bytes_total", "Bytes the service caused to be written to storage (/proc/<pid>/io write_bytes)."),
		readCalls:   serviceDesc("read_syscalls_total", "Read-type system calls made by the service (/proc/<pid>/io syscr)."),
		writeCalls:  serviceDesc("write_syscalls_total", "Write-type system calls made by the service (/proc/<pid>/io syscw)."),
		switches:    serviceDesc("context_switches_total", "Context switches of the service's threads, by type (voluntary, involuntary).", "type"),
		runqueue:    serviceDesc("runqueue_wait_seconds_total", "Time the service's threads were runnable but waited for a CPU (/proc/<pid>/schedstat)."),
		restarts:    serviceDesc("restarts_total", "Times the service's oldest process was replaced by a new one, or the service came back after it was gone."),
		startTime:   serviceDesc("start_time_seconds", "Start time of the service's oldest process, in seconds since the Unix epoch."),
	}, nil
}

func (c *servicesCollector) Update(s *Scrape, ch chan<- prometheus.Metric) error {
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, labels...)
	}
	for _, svc := range s.Services.Services {
		n := svc.Name
		k := svc.Counters
		gauge(c.info, 1, n, string(svc.Kind))
		gauge(c.processes, float64(svc.Processes), n)
		counter(c.cpu, k.UserSeconds(), n, "user")
		counter(c.cpu, k.SystemSeconds(), n, "system")
		gauge(c.rss, svc.RSSBytes, n)
		gauge(c.threads, float64(svc.Threads), n)
		gauge(c.fds, float64(svc.FDs), n)
		counter(c.diskRead, float64(k.ReadBytes), n)
		counter(c.diskWritten, float64(k.WriteBytes), n)
		counter(c.readCalls, float64(k.ReadSyscalls), n)
		counter(c.writeCalls, float64(k.WriteSyscalls), n)
		counter(c.switches, float64(k.VoluntarySwitches), n, "voluntary")
		counter(c.switches, float64(k.InvoluntarySwitches), n, "involuntary")
		counter(c.runqueue, k.RunqueueWaitSeconds(), n)
		counter(c.restarts, svc.Restarts, n)
		gauge(c.startTime, svc.StartTime, n)
	}
	return nil
}
