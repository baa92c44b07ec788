package collector

import (
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/telltale-dev/telltale/pkg/schema"
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

func newServicesCollector(*Config, *slog.Logger) (Collector, error) {
	return &servicesCollector{
		info:        schema.ServiceInfo.Desc(),
		processes:   schema.ServiceProcesses.Desc(),
		cpu:         schema.ServiceCPU.Desc(),
		rss:         schema.ServiceMemory.Desc(),
		threads:     schema.ServiceThreads.Desc(),
		fds:         schema.ServiceFDs.Desc(),
		diskRead:    schema.ServiceDiskRead.Desc(),
		diskWritten: schema.ServiceDiskWritten.Desc(),
		readCalls:   schema.ServiceReadSyscalls.Desc(),
		writeCalls:  schema.ServiceWriteSyscalls.Desc(),
		switches:    schema.ServiceSwitches.Desc(),
		runqueue:    schema.ServiceRunqueueWait.Desc(),
		restarts:    schema.ServiceRestarts.Desc(),
		startTime:   schema.ServiceStartTime.Desc(),
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
