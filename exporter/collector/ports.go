package collector

import (
	"errors"
	"log/slog"
	"path/filepath"
	"sort"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/telltale-dev/telltale/pkg/netgraph"
	"github.com/telltale-dev/telltale/pkg/service"
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
	info      *prometheus.Desc
	ephemeral netgraph.PortRange
}

func newPortsCollector(cfg *Config, logger *slog.Logger) (Collector, error) {
	eph, err := netgraph.EphemeralRange(cfg.ProcRoot)
	if err != nil {
		logger.Warn("using the default ephemeral port range", "err", err)
	}
	return &portsCollector{
		info: serviceDesc("port_info", "A port the service listens on (protocol: tcp, tcp6, udp, udp6). UDP ports in the ephemeral range are clients, not listed.",
			"protocol", "port"),
		ephemeral: eph,
	}, nil
}

type portKey struct {
	service, protocol string
	port              uint16
}

func (c *portsCollector) Update(s *Scrape, ch chan<- prometheus.Metric) error {
	root := s.Scanner().Root()
	// One read per network namespace, through any of its processes.
	// Processes whose namespace could not be read are left to the others:
	// a socket they hold in a namespace that is read is still found.
	namespaces := map[uint64]int{}
	for _, p := range s.Processes {
		if _, ok := namespaces[p.NetNS]; !ok && p.NetNS != 0 {
			namespaces[p.NetNS] = p.PID
		}
	}
	var listeners []netgraph.Listener
	for _, pid := range namespaces {
		ls, errs := netgraph.ListenersOf(filepath.Join(root, strconv.Itoa(pid)), c.ephemeral)
		for _, err := range errs {
			var fe *netgraph.FileError
			if errors.As(err, &fe) {
				s.countError(service.ReadError{File: fe.File, Reason: "malformed"}, 1)
			}
		}
		listeners = append(listeners, ls...)
	}
	inodes := make([]uint64, len(listeners))
	for i, l := range listeners {
		inodes[i] = l.Inode
	}
	owners := s.Scanner().SocketOwners(s.Processes, inodes, nil)

	seen := map[portKey]bool{}
	var keys []portKey
	for _, l := range listeners {
		pid, ok := owners[l.Inode]
		if !ok {
			continue
		}
		svc, ok := s.Services.ByPID[pid]
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
