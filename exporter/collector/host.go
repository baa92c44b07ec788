package collector

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/procfs"

	"github.com/telltale-dev/telltale/pkg/netgraph"

	"github.com/telltale-dev/telltale/pkg/schema"
)

func init() {
	register(registration{
		name:      "host",
		help:      "The host's name and its own addresses, to join an edge to a remote address with the service listening on that host",
		byDefault: true,
		factory:   newHostCollector,
	})
}

type hostCollector struct {
	root                string
	info, address, cpus *prometheus.Desc
}

func newHostCollector(cfg *Config, _ *slog.Logger) (Collector, error) {
	return &hostCollector{
		root:    cfg.ProcRoot,
		info:    schema.HostInfo.Desc(),
		address: schema.HostAddressInfo.Desc(),
		cpus:    schema.HostCPUs.Desc(),
	}, nil
}

func (c *hostCollector) Update(_ *Scrape, ch chan<- prometheus.Metric) error {
	name, err := os.ReadFile(filepath.Join(c.root, "sys", "kernel", "hostname"))
	if err != nil {
		return fmt.Errorf("read host name: %w", err)
	}
	ch <- prometheus.MustNewConstMetric(c.info, prometheus.GaugeValue, 1, strings.TrimSpace(string(name)))
	// PID 1's namespace is the host's, also when the exporter itself runs
	// in a container with the host's /proc mounted.
	addrs, err := netgraph.HostAddresses(filepath.Join(c.root, "1"))
	if len(addrs) == 0 {
		addrs, err = netgraph.HostAddresses(filepath.Join(c.root, "self"))
	}
	for _, a := range addrs {
		ch <- prometheus.MustNewConstMetric(c.address, prometheus.GaugeValue, 1, a.String())
	}
	if err != nil {
		err = fmt.Errorf("read host addresses: %w", err)
	}
	fs, ferr := procfs.NewFS(c.root)
	var st procfs.Stat
	if ferr == nil {
		st, ferr = fs.Stat()
	}
	if ferr == nil && len(st.CPU) == 0 {
		ferr = fmt.Errorf("%s lists no cpuN line: want one per CPU", filepath.Join(c.root, "stat"))
	}
	if ferr != nil {
		return errors.Join(err, fmt.Errorf("count the host's CPUs: %w", ferr))
	}
	ch <- prometheus.MustNewConstMetric(c.cpus, prometheus.GaugeValue, float64(len(st.CPU)))
	return err
}
