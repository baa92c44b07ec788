package collector

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/telltale-dev/telltale/pkg/schema"
)

// ErrUnavailable is returned by a collector's factory when the host cannot
// support it (eBPF not permitted, kernel too old). The exporter logs it once
// and carries on with the other collectors.
var ErrUnavailable = errors.New("collector unavailable on this host")

var unavailableDesc = schema.ExporterUnavailable.Desc()

// unavailable stands in for a collector that could not start, so that its
// absence shows in the metrics and not only in the log.
type unavailable struct{ name string }

func (u unavailable) Update(_ *Scrape, ch chan<- prometheus.Metric) error {
	ch <- prometheus.MustNewConstMetric(unavailableDesc, prometheus.GaugeValue, 1, u.name)
	return nil
}
