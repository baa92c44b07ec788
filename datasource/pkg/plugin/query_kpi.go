package plugin

import (
	"context"
	"fmt"
	"math"

	"github.com/grafana/grafana-plugin-sdk-go/data"
	"github.com/prometheus/common/model"
	"golang.org/x/sync/errgroup"

	"github.com/telltale-dev/telltale/pkg/kpi"
)

// KPI statuses in the kpi query's status table.
const (
	StatusOK          = "ok"
	StatusBreached    = "breached"
	StatusNoData      = "no data"
	StatusNoObjective = "no objective"
)

// kpiResult is a KPI and the range query of its value.
type kpiResult struct {
	KPI    KPI
	Expr   string // with template variables replaced
	Series model.Matrix
}

// queryKPI answers a kpi query: every KPI (or the one named) with its value
// over the range, its objective and its status.
func (d *Datasource) queryKPI(ctx context.Context, q Query) (data.Frames, error) {
	var kpis []KPI
	if q.KPI != "" {
		k, err := d.kpi(ctx, q.KPI, q.To, q.To.Sub(q.From))
		if err != nil {
			return nil, err
		}
		kpis = []KPI{k}
	} else {
		var err error
		if kpis, err = d.kpis(ctx, q.To, q.To.Sub(q.From)); err != nil {
			return nil, err
		}
	}
	results, err := d.evalKPIs(ctx, kpis, q)
	if err != nil {
		return nil, err
	}
	return kpiFrames(results, q.FromAlert), nil
}

// evalKPIs runs the KPIs' range queries, a few at a time.
func (d *Datasource) evalKPIs(ctx context.Context, kpis []KPI, q Query) ([]kpiResult, error) {
	results := make([]kpiResult, len(kpis))
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(4)
	scope := q.scope()
	for i, k := range kpis {
		g.Go(func() error {
			expr, err := interpolate(k.Expr, scope)
			if err != nil {
				return badQuery("KPI %q: %v", k.Name, err)
			}
			m, err := d.prom.queryRange(ctx, expr, q.From, q.To, q.Step)
			if err != nil {
				return fmt.Errorf("KPI %q: %w", k.Name, err)
			}
			results[i] = kpiResult{KPI: k, Expr: expr, Series: m}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	return results, nil
}

// kpiFrames builds the kpi query's answer: one time-series frame per KPI
// series (value and, when set, the objective as a constant line), then a
// status table with a row per KPI series. For alerting only the value series
// are returned, labelled with the KPI's name, so a rule can put a threshold
// on them.
func kpiFrames(results []kpiResult, fromAlert bool) data.Frames {
	var frames data.Frames
	status := data.NewFrame("kpi_status",
		data.NewField("kpi", nil, []string{}),
		data.NewField("series", nil, []string{}),
		data.NewField("unit", nil, []string{}),
		data.NewField("direction", nil, []string{}),
		data.NewField("objective", nil, []*float64{}),
		data.NewField("current", nil, []*float64{}),
		data.NewField("status", nil, []string{}),
		data.NewField("compliance", nil, []*float64{}),
		data.NewField("source", nil, []string{}),
	)
	status.Fields[7].Config = &data.FieldConfig{Unit: "percentunit", DisplayName: "Time within objective"}
	status.Meta = &data.FrameMeta{Type: data.FrameTypeTable}
	for _, r := range results {
		k := r.KPI
		if len(r.Series) == 0 {
			status.AppendRow(k.Name, "", k.textUnit(), k.Direction, k.Objective, (*float64)(nil), StatusNoData, (*float64)(nil), k.Source)
			continue
		}
		for _, s := range r.Series {
			lbls := seriesLabels(s.Metric)
			lbls["kpi"] = k.Name
			name := k.Name
			if len(r.Series) > 1 {
				name = k.Name + " " + s.Metric.String()
			}
			times, vals := streamValues(s)
			value := data.NewField("value", lbls, vals)
			value.Config = &data.FieldConfig{DisplayNameFromDS: name, Unit: k.panelUnit()}
			f := data.NewFrame(k.Name, data.NewField("time", nil, times), value)
			f.Meta = &data.FrameMeta{Type: data.FrameTypeTimeSeriesMulti, ExecutedQueryString: r.Expr}
			if k.Objective != nil && !fromAlert {
				obj := make([]float64, len(times))
				for i := range obj {
					obj[i] = *k.Objective
				}
				of := data.NewField("objective", lbls, obj)
				of.Config = &data.FieldConfig{DisplayNameFromDS: name + " objective", Unit: k.panelUnit()}
				f.Fields = append(f.Fields, of)
			}
			frames = append(frames, f)

			cur, st, compliance := kpiStatus(k, vals)
			series := ""
			if len(r.Series) > 1 {
				series = s.Metric.String()
			}
			status.AppendRow(k.Name, series, k.textUnit(), k.Direction, k.Objective, cur, st, compliance, k.Source)
		}
	}
	if fromAlert {
		return frames
	}
	if len(results) == 0 {
		status.AppendNotices(data.Notice{Severity: data.NoticeSeverityInfo, Text: "No KPIs: declare them in the datasource settings, or in apps with pkg/kpi (" + kpi.InfoMetric + ")."})
	}
	return append(frames, status)
}

// kpiStatus says where a KPI stands at the end of the range (its last value
// against its objective) and for which fraction of the range's points it
// met the objective.
func kpiStatus(k KPI, vals []float64) (current *float64, status string, compliance *float64) {
	if len(vals) == 0 {
		return nil, StatusNoData, nil
	}
	last := vals[len(vals)-1]
	current = &last
	if k.Objective == nil {
		return current, StatusNoObjective, nil
	}
	n, good := 0, 0
	for _, v := range vals {
		if math.IsNaN(v) {
			continue
		}
		n++
		if k.good(v) {
			good++
		}
	}
	if n > 0 {
		c := float64(good) / float64(n)
		compliance = &c
	}
	if k.good(last) {
		return current, StatusOK, compliance
	}
	return current, StatusBreached, compliance
}
