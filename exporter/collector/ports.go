package collector

import (
	"log/slog"
	"sort"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/telltale-dev/telltale/pkg/schema"
)

func init() {
	register(registration{
		name:      "ports",
		help:      "Which service listens on which TCP port or bound UDP port, in every network namespace the exporter can read",
		byDefault: true,
		processes: true,
		factory:   newPortsCollector,
	})
}

type portsCollector struct {
	info *prometheus.Desc
}

func newPortsCollector(*Config, *slog.Logger) (Collector, error) {
	return &portsCollector{
		info: schema.ServicePortInfo.Desc(),
	}, nil
}

type portKey struct {
	service, protocol string
	port              uint16
}

func (c *portsCollector) Update(s *Scrape, ch chan<- prometheus.Metric) error {
	n := s.network()
	seen := map[portKey]bool{}
	var keys []portKey
	for _, l := range n.listeners {
		svc, ok := n.service(s, l.Inode)
		if !ok {
			continue
		}
		k := portKey{svc, l.Protocol, l.Port}
		if !seen[k] {
			seen[k] = true
			keys = append(keys, k)
		}
	}
	sort.Slice(keys, func(i, j int) bool {
		a, b := keys[i], keys[j]
		if a.service != b.service {
			return a.service < b.service
		}
		if a.protocol != b.protocol {
			return a.protocol < b.protocol
		}
		return a.port < b.port
	})
	for _, k := range keys {
		ch <- prometheus.MustNewConstMetric(c.info, prometheus.GaugeValue, 1, k.service, k.protocol, strconv.Itoa(int(k.port)))
	}
	return nil
}
