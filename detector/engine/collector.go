package engine

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/telltale-dev/telltale/pkg/schema"
)

// anomalyCollector exposes the per-series gauges. It is an unchecked
// collector (Describe sends nothing) because every series brings its own
// label names.
type anomalyCollector struct{ e *Engine }

// Describe sends nothing: see anomalyCollector.
func (anomalyCollector) Describe(chan<- *prometheus.Desc) {}

// Collect sends score, expected value and band of every tracked series.
// Series not yet scored are left out rather than shown as 0.
func (c anomalyCollector) Collect(ch chan<- prometheus.Metric) {
	for _, sh := range c.e.shards {
		sh.mu.Lock()
		for _, st := range sh.series {
			if st.lastT == minTime {
				continue
			}
			r := st.result
			for i, v := range [4]float64{st.score, r.Expected, r.Lower, r.Upper} {
				ch <- prometheus.MustNewConstMetric(st.descs[i], prometheus.GaugeValue, v, st.values...)
			}
		}
		sh.mu.Unlock()
	}
}

// register adds the engine's own metrics and the per-series collector.
func (e *Engine) Register(reg prometheus.Registerer) {
	reg.MustRegister(
		e.samplesScored, e.seriesDropped, e.readDuration, e.readErrors,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts(schema.DetectorSeries.Opts()), func() float64 { return float64(e.tracked.Load()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts(schema.DetectorLag.Opts()), func() float64 {
			since := e.started
			if wm := e.watermark.Load(); wm > 0 {
				since = time.UnixMilli(wm)
			}
			return e.cfg.Now().Sub(since).Seconds()
		}),
		anomalyCollector{e},
	)
}
