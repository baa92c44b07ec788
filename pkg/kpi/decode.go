package kpi

import (
	"fmt"
	"strings"

	"github.com/prometheus/common/model"

	"github.com/telltale-dev/telltale/pkg/schema"
)

// Declaration is a KPI as its info series (InfoMetric) declares it: what
// the detector, the datasource and the recording rules read back.
type Declaration struct {
	Name      string
	Metric    string // the metric family that carries the KPI
	Unit      string
	Direction Direction
	Type      schema.Type
}

// Decode reads a declaration from the labels of an info series; get
// returns a label's value ("" when missing). It is false when the series
// names no KPI or no valid metric family. A direction other than Lower is
// Higher, and a type other than counter or histogram is a gauge, the way
// the series is read when its declaration is damaged.
func Decode(get func(label string) string) (Declaration, bool) {
	d := Declaration{
		Name:      get(schema.LabelKPI),
		Metric:    get(schema.LabelMetric),
		Unit:      get(schema.LabelUnit),
		Direction: Higher,
		Type:      schema.Gauge,
	}
	if d.Name == "" || d.Metric == "" || !model.IsValidLegacyMetricName(d.Metric) {
		return Declaration{}, false
	}
	if Direction(get(schema.LabelDirection)) == Lower {
		d.Direction = Lower
	}
	switch t := schema.Type(get(schema.LabelType)); t {
	case schema.Counter, schema.Histogram:
		d.Type = t
	}
	return d, true
}

// SampleNames are the names the KPI's samples are stored under and that
// the detector scores. A counter family may be declared with or without its
// _total suffix; a histogram is scored through its _sum and _count (the
// rate of observations and of their total): its buckets would add much
// cardinality for little.
func (d Declaration) SampleNames() []string {
	switch d.Type {
	case schema.Counter:
		base := strings.TrimSuffix(d.Metric, "_total")
		return []string{base, base + "_total"}
	case schema.Histogram:
		return []string{d.Metric + "_sum", d.Metric + "_count"}
	}
	return []string{d.Metric}
}

// Counts reports whether the KPI's samples are read as rates: a counter's,
// and a histogram's _sum and _count.
func (d Declaration) Counts() bool { return d.Type != schema.Gauge }

// HistogramQuantile is the quantile of a histogram KPI's observations that
// is its value.
const HistogramQuantile = 0.95

// Aggregation is how the KPI's series, from every target that declares it,
// combine into its value: "sum" of a counter's rates and of a gauge, "avg"
// of a share (a gauge in one of the RatioUnits: two replicas' success
// ratios do not add up), and "histogram_quantile" of a histogram's summed
// bucket rates.
func (d Declaration) Aggregation() string {
	switch {
	case d.Type == schema.Histogram:
		return "histogram_quantile"
	case d.Type == schema.Gauge && IsRatioUnit(d.Unit):
		return "avg"
	}
	return "sum"
}

// Expr is the PromQL expression of the KPI's value, one series, with
// counters' rates over rateWindow (a duration or a template variable such
// as $__rate_interval).
func (d Declaration) Expr(rateWindow string) string {
	switch d.Type {
	case schema.Counter:
		return fmt.Sprintf("%s(rate(%s[%s]))", d.Aggregation(), d.Metric, rateWindow)
	case schema.Histogram:
		return fmt.Sprintf("histogram_quantile(%v, sum by (le) (rate(%s_bucket[%s])))", HistogramQuantile, d.Metric, rateWindow)
	}
	return fmt.Sprintf("%s(%s)", d.Aggregation(), d.Metric)
}
