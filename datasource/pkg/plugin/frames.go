package plugin

import (
	"math"
	"sort"
	"strings"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/data"
	"github.com/prometheus/common/model"
)

// seriesLabels returns a series' labels as frame labels, without the metric
// name (which goes into the display name).
func seriesLabels(m model.Metric) data.Labels {
	out := make(data.Labels, len(m))
	for k, v := range m {
		if k == model.MetricNameLabel {
			continue
		}
		out[string(k)] = string(v)
	}
	return out
}

// displayName names a series the way Prometheus prints it, or fallback when
// it has no labels at all (an aggregated KPI).
func displayName(m model.Metric, fallback string) string {
	if len(m) == 0 {
		return fallback
	}
	name := string(m[model.MetricNameLabel])
	var parts []string
	for k, v := range m {
		if k == model.MetricNameLabel {
			continue
		}
		parts = append(parts, string(k)+"="+quote(string(v)))
	}
	if len(parts) == 0 {
		if name == "" {
			return fallback
		}
		return name
	}
	sort.Strings(parts)
	return name + "{" + strings.Join(parts, ", ") + "}"
}

// streamValues returns a range query series' times and values.
func streamValues(s *model.SampleStream) ([]time.Time, []float64) {
	times := make([]time.Time, len(s.Values))
	vals := make([]float64, len(s.Values))
	for i, p := range s.Values {
		times[i] = p.Timestamp.Time().UTC()
		vals[i] = float64(p.Value)
	}
	return times, vals
}

// nullable turns NaN (no value) into nil, which Grafana draws as a gap.
func nullable(v []float64) []*float64 {
	out := make([]*float64, len(v))
	for i := range v {
		if !math.IsNaN(v[i]) {
			out[i] = &v[i]
		}
	}
	return out
}

func ptr[T any](v T) *T { return &v }
