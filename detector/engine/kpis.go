package engine

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/prompb"

	"github.com/telltale-dev/telltale/pkg/kpi"
	"github.com/telltale-dev/telltale/pkg/remoteread"
	"github.com/telltale-dev/telltale/pkg/schema"
)

// kpiLookback is how far back a KPI declaration counts as current.
const kpiLookback = 10 * time.Minute

// discoverKPIs reads the KPI info series (kpi.InfoMetric) and returns matchers for the metric
// families it names, remembering which sample names are counters.
func (e *Engine) discoverKPIs(ctx context.Context, end int64) ([][]*prompb.LabelMatcher, error) {
	q := &prompb.Query{
		StartTimestampMs: end - kpiLookback.Milliseconds(),
		EndTimestampMs:   end,
		Matchers:         []*prompb.LabelMatcher{{Type: prompb.LabelMatcher_EQ, Name: labels.MetricName, Value: kpi.InfoMetric}},
	}
	// One family declared by many targets (or as many KPIs) is read once.
	decls := map[string]kpi.Declaration{}
	if _, err := e.cfg.Client.Read(ctx, []*prompb.Query{q}, func(s *remoteread.Series) error {
		if d, ok := kpi.Decode(s.Labels.Get); ok && len(s.Floats) > 0 {
			decls[d.Metric] = d
		}
		return nil
	}); err != nil {
		return nil, fmt.Errorf("discover KPIs: %w", err)
	}
	types := map[string]bool{}
	var out [][]*prompb.LabelMatcher
	for _, d := range decls {
		names := d.SampleNames()
		for _, n := range names {
			types[n] = d.Counts()
		}
		out = append(out, []*prompb.LabelMatcher{{Type: prompb.LabelMatcher_RE, Name: labels.MetricName, Value: regexAlternatives(names)}})
	}
	e.kpiMu.Lock()
	e.kpiCounts = types
	e.kpiMu.Unlock()
	return out, nil
}

func regexAlternatives(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = regexpQuote(n)
	}
	return strings.Join(q, "|")
}

// regexpQuote escapes metric-name characters that are special in RE2
// (metric names allow only [a-zA-Z0-9_:], but a KPI declaration is outside
// input).
func regexpQuote(s string) string {
	var b strings.Builder
	for _, r := range s {
		if strings.ContainsRune(`\.+*?()|[]{}^$`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// isCounter decides whether a series is a counter: what its KPI declaration
// says, else the OpenMetrics naming conventions.
func (e *Engine) isCounter(name string) bool {
	e.kpiMu.Lock()
	counts, ok := e.kpiCounts[name]
	e.kpiMu.Unlock()
	if ok {
		return counts
	}
	return schema.IsCounter(name)
}
