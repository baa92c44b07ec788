package collector

import (
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/alecthomas/kingpin/v2"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/telltale-dev/telltale/pkg/netgraph"

	"github.com/telltale-dev/telltale/pkg/schema"
)

func init() {
	register(registration{
		name:        "edges",
		help:        "Service-to-service edges from established TCP connections: connection counts, bytes, round-trip time and retransmits (netlink sock_diag tcp_info)",
		byDefault:   true,
		processes:   true,
		connections: true,
		factory:     newEdgesCollector,
		flags: func(app *kingpin.Application, cfg *Config) {
			c := &edgesConfig{}
			app.Flag("collector.edges.max-peers", "Most remote addresses with a label of their own; connections to or from others are counted under the address \"other\" and in "+schema.EdgePeersDropped.Name+".").Default("200").IntVar(&c.maxPeers)
			cfg.extra["edges"] = c
		},
	})
}

type edgesConfig struct {
	maxPeers int
}

type edgesCollector struct {
	mu    sync.Mutex
	graph *netgraph.Graph

	dropped                                 prometheus.Counter
	conns, sent, received, rtt, retransmits *prometheus.Desc
}

func newEdgesCollector(cfg *Config, _ *slog.Logger) (Collector, error) {
	ec := edgesConfig{maxPeers: 200}
	if c, ok := cfg.extra["edges"].(*edgesConfig); ok {
		ec = *c
	}
	if ec.maxPeers < 0 {
		return nil, fmt.Errorf("--collector.edges.max-peers=%d: must be 0 (no limit) or more", ec.maxPeers)
	}
	return &edgesCollector{
		graph:       netgraph.NewGraph(netgraph.GraphConfig{MaxPeers: ec.maxPeers}),
		dropped:     prometheus.NewCounter(prometheus.CounterOpts(schema.EdgePeersDropped.Opts())),
		conns:       schema.EdgeConnections.Desc(),
		sent:        schema.EdgeSent.Desc(),
		received:    schema.EdgeReceived.Desc(),
		rtt:         schema.EdgeRTT.Desc(),
		retransmits: schema.EdgeRetransmits.Desc(),
	}, nil
}

func (c *edgesCollector) Update(s *Scrape, ch chan<- prometheus.Metric) error {
	n := s.network()
	c.mu.Lock()
	defer c.mu.Unlock()
	res := c.graph.Update(n.conns,
		func(inode uint64) (string, bool) { return n.service(s, inode) },
		func(ns uint64, port uint16) bool { return n.listening[nsPort{ns, port}] },
		time.Now())
	c.dropped.Add(float64(res.Folded))
	for _, e := range res.Edges {
		l := []string{e.Client, e.ClientAddress, e.Server, e.ServerAddress, strconv.Itoa(int(e.Port))}
		ch <- prometheus.MustNewConstMetric(c.conns, prometheus.GaugeValue, float64(e.Connections), l...)
		if !e.HasInfo {
			continue
		}
		ch <- prometheus.MustNewConstMetric(c.sent, prometheus.CounterValue, e.SentBytes, l...)
		ch <- prometheus.MustNewConstMetric(c.received, prometheus.CounterValue, e.ReceivedBytes, l...)
		ch <- prometheus.MustNewConstMetric(c.retransmits, prometheus.CounterValue, e.Retransmits, l...)
		if e.Connections > 0 {
			ch <- prometheus.MustNewConstMetric(c.rtt, prometheus.GaugeValue, e.RTTSeconds, l...)
		}
	}
	c.dropped.Collect(ch)
	return nil
}
