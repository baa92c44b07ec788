package collector

import (
	"log/slog"
	"path/filepath"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/telltale-dev/telltale/pkg/buildid"
)

func init() {
	register(registration{
		name:      "deploys",
		help:      "Each service's build identity (ELF build-id, Go build ID or build info, else a SHA-256 of the executable) and a count of its changes",
		byDefault: true,
		processes: true,
		factory:   newDeploysCollector,
	})
}

type deploysCollector struct {
	info, deploys *prometheus.Desc
}

func newDeploysCollector(*Config, *slog.Logger) (Collector, error) {
	return &deploysCollector{
		info: serviceDesc("build_info", "The build of the executable behind the service's oldest process: build_id and where it came from (source: gnu-build-id, go-build-id, go-build-info, sha256), with a version when the binary carries one.",
			"build_id", "source", "version"),
		deploys: serviceDesc("deploys_total", "Times the service's build identity changed while the exporter watched."),
	}, nil
}

func (deploysCollector) usesIdentity() {}

func (c *deploysCollector) Update(s *Scrape, ch chan<- prometheus.Metric) error {
	for _, svc := range s.Services.Services {
		if svc.Identity.ID != "" {
			ch <- prometheus.MustNewConstMetric(c.info, prometheus.GaugeValue, 1,
				svc.Name, svc.Identity.ID, string(svc.Identity.Source), svc.Identity.Version)
		}
		ch <- prometheus.MustNewConstMetric(c.deploys, prometheus.CounterValue, svc.Deploys, svc.Name)
	}
	return nil
}

// identifier reads build identities of processes' executables through
// /proc/<pid>/exe, which still opens the running file after it was replaced
// on disk: the old build stays visible until the process restarts.
type identifier struct {
	root  string
	cache buildid.Cache
}

func newIdentifier(root string) *identifier { return &identifier{root: root} }

func (i *identifier) identify(pid int) (buildid.Identity, error) {
	return i.cache.Read(filepath.Join(i.root, strconv.Itoa(pid), "exe"))
}
