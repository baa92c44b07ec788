package main

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// gauges are the four metrics exposed per scored series, in the order of
// seriesState.descs.
var gauges = [4]struct{ name, help string }{
	{"telltale_anomaly_score", "Anomaly score in [0,1] of the series named by the metric label and the other labels: the highest score among the samples scored in the detector's last round that had new samples of it. 0.9 is the default alerting threshold."},
	{"telltale_anomaly_expected", "Value the detector expected for the series at its last sample; for a counter, the expected per-second rate."},
	{"telltale_anomaly_lower", "Lower bound of the values the detector considers normal for the series at its last sample (per-second rate for a counter)."},
	{"telltale_anomaly_upper", "Upper bound of the values the detector considers normal for the series at its last sample (per-second rate for a counter)."},
}

// anomalyCollector exposes the per-series gauges. It is an unchecked
// collector (Describe sends nothing) because every series brings its own
// label names.
type anomalyCollector struct{ e *engine }

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
func (e *engine) register(reg prometheus.Registerer) {
	reg.MustRegister(
		e.samplesScored, e.seriesDropped, e.readDuration, e.readErrors,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "telltale_detector_series",
			Help: "Series being scored by this replica.",
		}, func() float64 { return float64(e.tracked.Load()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "telltale_detector_lag_seconds",
			Help: "Time since the end of the last successful read: how far behind the scores are. It grows while the remote-read endpoint is down.",
		}, func() float64 {
			since := e.started
			if wm := e.watermark.Load(); wm > 0 {
				since = time.UnixMilli(wm)
			}
			return e.cfg.Now().Sub(since).Seconds()
		}),
		anomalyCollector{e},
	)
}
