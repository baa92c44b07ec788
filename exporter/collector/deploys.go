package collector

import (
	"log/slog"
	"path/filepath"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/telltale-dev/telltale/pkg/buildid"

	"github.com/telltale-dev/telltale/pkg/schema"
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
		info:    schema.ServiceBuildInfo.Desc(),
		deploys: schema.ServiceDeploys.Desc(),
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
