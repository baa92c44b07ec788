package plugin

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/data"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/prompb"
	"golang.org/x/sync/errgroup"

	"github.com/telltale-dev/telltale/pkg/remoteread"
	"github.com/telltale-dev/telltale/pkg/schema"
)

// Bounds of what one anomalies query reads and scores on demand; beyond
// them the detector is the tool.
const (
	maxOnDemandSeries  = 500
	maxOnDemandSamples = 50_000_000
	// MaxAnswerSeries and MaxAnswerPoints bound what one anomalies query
	// answers: as many series as are scored on demand, a thousand points
	// each (a panel asks for about as many points as it is pixels wide).
	// An answer costs the plugin about 250 bytes a point on its way out
	// (the scores, the frames, their Arrow encoding and the gRPC
	// message), so the largest one it accepts stays under 300 MB (go tool
	// mage chaos measures it).
	MaxAnswerSeries = maxOnDemandSeries
	MaxAnswerPoints = 500_000
)

// checkAnswerSize refuses an answer of n series over the range's grid g
// that is larger than an anomalies query answers, saying which limit was
// hit and how to narrow the query.
func checkAnswerSize(what string, n int, g grid) error {
	switch {
	case n > MaxAnswerSeries:
		return badQuery("%s has %d series; an anomalies query shows at most %d: narrow the selector with a label matcher", what, n, MaxAnswerSeries)
	case n*g.n > MaxAnswerPoints:
		return badQuery("%s has %d series of %d points, %d in all; an anomalies query answers at most %d: narrow the selector, shorten the range or widen the step (max data points)", what, n, g.n, n*g.n, MaxAnswerPoints)
	}
	return nil
}

// Where an anomalies query's scores come from, in the frames' custom meta.
const (
	ScoreSourceDetector = "detector"
	ScoreSourceOnDemand = "on-demand"
)

// anomalyResult is what an anomalies query found, before it becomes frames.
type anomalyResult struct {
	Series []*bandSeries
	// Name is the KPI's name or the selector, for display names.
	Name   string
	Source string
	// Exec says what was asked of Prometheus.
	Exec string
	// Samples is the number of raw samples read on demand.
	Samples int
	// Labels are added to every series' labels (a KPI's name).
	Labels data.Labels
}

// queryAnomalies answers an anomalies query. For a selector it uses the
// detector's series (schema.AnomalyFamilies) when they exist, so dashboards show
// what alert rules see; otherwise it reads the raw samples over remote read
// and scores them on demand. A KPI is an expression, which remote read cannot
// evaluate and the detector does not score as a whole, so a KPI is evaluated
// with a range query and scored on demand.
func (d *Datasource) queryAnomalies(ctx context.Context, q Query) (data.Frames, error) {
	var (
		res *anomalyResult
		err error
	)
	if q.KPI != "" {
		res, err = d.kpiAnomalies(ctx, q)
	} else {
		res, err = d.detectorAnomalies(ctx, q)
		if err == nil && res == nil {
			res, err = d.onDemandAnomalies(ctx, q)
		}
	}
	if err != nil {
		return nil, err
	}
	return anomalyFrames(res, q.FromAlert), nil
}

// kpiAnomalies scores a KPI's value on demand.
func (d *Datasource) kpiAnomalies(ctx context.Context, q Query) (*anomalyResult, error) {
	k, err := d.kpi(ctx, q.KPI, q.To, q.To.Sub(q.From))
	if err != nil {
		return nil, err
	}
	series, expr, err := d.scoreExpr(ctx, k.Expr, q)
	if err != nil {
		return nil, fmt.Errorf("KPI %q: %w", k.Name, err)
	}
	return &anomalyResult{Series: series, Name: k.Name, Source: ScoreSourceOnDemand, Exec: expr, Labels: data.Labels{"kpi": k.Name}}, nil
}

// scoreExpr evaluates a PromQL expression over the range and the warm-up
// before it, scores each series on demand and returns the range's part.
func (d *Datasource) scoreExpr(ctx context.Context, expr string, q Query) ([]*bandSeries, string, error) {
	scored, first, expr, err := d.scoreExprWarm(ctx, expr, q)
	if len(scored) > 0 {
		// The series share their grid's times; so do their slices.
		times := slices.Clone(scored[0].Times[min(first, len(scored[0].Times)):])
		for i, s := range scored {
			scored[i] = s.slice(first, times)
		}
	}
	return scored, expr, err
}

// scoreExprWarm is scoreExpr with the warm-up kept: the series start at
// q.warmStart(), and first is the index of q.From in them.
func (d *Datasource) scoreExprWarm(ctx context.Context, expr string, q Query) ([]*bandSeries, int, string, error) {
	return d.scoreExprPick(ctx, expr, q, nil)
}

// scoreExprPick is scoreExprWarm for an expression that may return more
// series than are scored on demand: pick, when not nil, chooses at most
// maxOnDemandSeries of them (by index) from their values on the grid;
// without it, too many series are an error.
func (d *Datasource) scoreExprPick(ctx context.Context, expr string, q Query, pick func(g grid, s []*stepSeries) []int) ([]*bandSeries, int, string, error) {
	start := q.warmStart()
	expr, err := interpolate(expr, q.scope())
	if err != nil {
		return nil, 0, expr, badQuery("%v", err)
	}
	m, err := d.prom.queryRange(ctx, expr, start, q.To, q.Step)
	if err != nil {
		return nil, 0, expr, err
	}
	if len(m) > maxOnDemandSeries && pick == nil {
		return nil, 0, expr, badQuery("%s returns %d series; at most %d are scored on demand: aggregate it", expr, len(m), maxOnDemandSeries)
	}
	g := newGrid(start, q.To, q.Step)
	steps := matrixSteps(g, m)
	if pick != nil && len(steps) > 0 {
		chosen := pick(g, steps)
		if len(chosen) > maxOnDemandSeries {
			chosen = chosen[:maxOnDemandSeries]
		}
		kept := make([]*stepSeries, len(chosen))
		for i, j := range chosen {
			kept[i] = steps[j]
		}
		steps = kept
	}
	scored, err := scoreAll(ctx, g, steps, func(model.Metric) bool { return false }, 0)
	if err != nil {
		return nil, 0, expr, err
	}
	return scored, g.bucket(q.From.UnixMilli()), expr, nil
}

// detectorSelector turns a series selector's matchers into the matchers of
// the detector's series for it: the metric name moves to the metric label.
func detectorSelector(ms []*labels.Matcher) string {
	parts := make([]string, 0, len(ms))
	for _, m := range ms {
		name := m.Name
		if name == labels.MetricName {
			name = schema.LabelMetric
		}
		parts = append(parts, name+m.Type.String()+quote(m.Value))
	}
	return strings.Join(parts, ", ")
}

// detectorAnomalies reads the detector's score, expected value and band for
// the selector's series, and the series' own values. It returns nil when the
// detector has no series for the selector.
func (d *Datasource) detectorAnomalies(ctx context.Context, q Query) (*anomalyResult, error) {
	sel := detectorSelector(q.Matchers)
	score, err := d.prom.queryRange(ctx, schema.AnomalyScore.Name+"{"+sel+"}", q.From, q.To, q.Step)
	if err != nil || len(score) == 0 {
		return nil, err
	}
	if err := checkAnswerSize(schema.AnomalyScore.Name+"{"+sel+"}", len(score), newGrid(q.From, q.To, q.Step)); err != nil {
		return nil, err
	}
	counter, err := d.counterFunc(ctx, q.Matchers)
	if err != nil {
		return nil, err
	}
	// The detector scores a counter's rate, so its band is in the rate's
	// unit; the value drawn with it must be the rate too. rate() drops the
	// metric name, so series are then matched without it — which only
	// works when the selector fixes one name; otherwise the raw values are
	// drawn.
	valueExpr := q.Selector
	name := metricName(q.Matchers)
	if name != "" && counter(model.Metric{model.MetricNameLabel: model.LabelValue(name)}) {
		valueExpr = fmt.Sprintf("rate(%s[%s])", q.Selector, promDuration(q.scope().rateInterval()))
	}
	exprs := []string{
		schema.AnomalyExpected.Name + "{" + sel + "}",
		schema.AnomalyLower.Name + "{" + sel + "}",
		schema.AnomalyUpper.Name + "{" + sel + "}",
		valueExpr,
	}
	answers := make([]model.Matrix, len(exprs))
	eg, ctx := errgroup.WithContext(ctx)
	for i, e := range exprs {
		eg.Go(func() (err error) {
			answers[i], err = d.prom.queryRange(ctx, e, q.From, q.To, q.Step)
			return err
		})
	}
	if err := eg.Wait(); err != nil {
		return nil, err
	}
	g := newGrid(q.From, q.To, q.Step)
	series := joinDetectorSeries(g, name != "", score, answers[0], answers[1], answers[2], answers[3])
	return &anomalyResult{
		Series: series, Name: q.Selector, Source: ScoreSourceDetector,
		Exec: detectorFamiliesSelector(sel) + " and " + valueExpr,
	}, nil
}

// detectorFamiliesSelector selects the detector's four families of the
// series sel picks (sel: matchers of those families, possibly none).
func detectorFamiliesSelector(sel string) string {
	names := make([]string, len(schema.AnomalyFamilies))
	for i, m := range schema.AnomalyFamilies {
		names[i] = m.Name
	}
	ms := labels.MetricName + "=~" + quote(strings.Join(names, "|"))
	if sel != "" {
		ms += ", " + sel
	}
	return "{" + ms + "}"
}

// seriesKey identifies a series across the detector's metrics and its own:
// its labels with the detector's metric label taken back as the metric
// name, or with no name at all when the selector fixes the one name.
func seriesKey(m model.Metric, oneName bool) string {
	c := m.Clone()
	if n, ok := c["metric"]; ok {
		c[model.MetricNameLabel] = n
		delete(c, "metric")
	}
	if oneName {
		delete(c, model.MetricNameLabel)
	}
	return c.String()
}

// joinDetectorSeries puts the detector's series and the value series
// together by series, on the grid. The labels shown are the original
// series' (metric name included).
func joinDetectorSeries(g grid, oneName bool, score, expected, lower, upper, value model.Matrix) []*bandSeries {
	byKey := map[string]*bandSeries{}
	var keys []string
	times := g.times()
	for _, s := range score {
		lbls := s.Metric.Clone()
		delete(lbls, model.MetricNameLabel)
		if n, ok := lbls["metric"]; ok {
			lbls[model.MetricNameLabel] = n
			delete(lbls, "metric")
		}
		k := seriesKey(s.Metric, oneName)
		b := bandSeriesAt(lbls, times)
		fill(g, b.Score, s.Values)
		byKey[k] = b
		keys = append(keys, k)
	}
	for _, part := range []struct {
		m   model.Matrix
		dst func(*bandSeries) []float64
	}{
		{expected, func(b *bandSeries) []float64 { return b.Expected }},
		{lower, func(b *bandSeries) []float64 { return b.Lower }},
		{upper, func(b *bandSeries) []float64 { return b.Upper }},
		{value, func(b *bandSeries) []float64 { return b.Value }},
	} {
		for _, s := range part.m {
			if b, ok := byKey[seriesKey(s.Metric, oneName)]; ok {
				fill(g, part.dst(b), s.Values)
			}
		}
	}
	sort.Strings(keys)
	out := make([]*bandSeries, len(keys))
	for i, k := range keys {
		out[i] = byKey[k]
	}
	return out
}

// fill writes a range query's points into dst at their grid positions.
func fill(g grid, dst []float64, pts []model.SamplePair) {
	for _, p := range pts {
		if i := g.bucket(int64(p.Timestamp)); i >= 0 && i < len(dst) {
			dst[i] = float64(p.Value)
		}
	}
}

// metricName returns the metric name a selector's matchers fix, or "".
func metricName(ms []*labels.Matcher) string {
	for _, m := range ms {
		if m.Name == labels.MetricName && m.Type == labels.MatchEqual {
			return m.Value
		}
	}
	return ""
}

// counterFunc returns a function telling counters from other series by
// their metric name: Prometheus's metadata when it knows the family, else
// the suffixes the detector treats as counters (_total, and a histogram's
// or summary's _count, _sum and _bucket).
func (d *Datasource) counterFunc(ctx context.Context, ms []*labels.Matcher) (func(model.Metric) bool, error) {
	known := map[string]bool{}
	if name := metricName(ms); name != "" {
		typ, err := d.prom.metricType(ctx, name)
		if err != nil {
			return nil, err
		}
		if typ != "" {
			known[name] = typ == string(model.MetricTypeCounter)
		}
	}
	return func(m model.Metric) bool {
		name := string(m[model.MetricNameLabel])
		if c, ok := known[name]; ok {
			return c
		}
		return schema.IsCounter(name)
	}, nil
}

// errTooManySeries and errTooManySamples stop a remote read that returns
// more than on-demand scoring takes.
var (
	errTooManySeries  = errors.New("too many series")
	errTooManySamples = errors.New("too many samples")
)

// onDemandAnomalies reads the selector's raw samples over remote read, from
// the warm-up before the range to its end, puts them on the step grid and
// scores every series with its own ensemble.
func (d *Datasource) onDemandAnomalies(ctx context.Context, q Query) (*anomalyResult, error) {
	counter, err := d.counterFunc(ctx, q.Matchers)
	if err != nil {
		return nil, err
	}
	start := q.warmStart()
	g := newGrid(start, q.To, q.Step)
	rq := remoteread.NewQuery(start, q.To, remoteread.Matchers(q.Matchers))
	select {
	case d.onDemand <- struct{}{}:
		defer func() { <-d.onDemand }()
	case <-ctx.Done():
		return nil, ctx.Err()
	}

	var (
		steps   []*stepSeries
		cur     *stepSeries
		curLbls labels.Labels
		samples int
	)
	stats, err := d.prom.rr.Read(ctx, []*prompb.Query{rq}, func(s *remoteread.Series) error {
		// The parts of a streamed series come one after the other.
		if cur == nil || !labels.Equal(s.Labels, curLbls) {
			if len(steps) == maxOnDemandSeries {
				return errTooManySeries
			}
			curLbls = s.Labels.Copy()
			m := make(model.Metric, curLbls.Len())
			curLbls.Range(func(l labels.Label) { m[model.LabelName(l.Name)] = model.LabelValue(l.Value) })
			cur = newStepSeries(m, g.n)
			steps = append(steps, cur)
		}
		if samples += len(s.Floats); samples > maxOnDemandSamples {
			return errTooManySamples
		}
		for _, p := range s.Floats {
			cur.add(g, p.T, p.V)
		}
		return nil
	})
	if errors.Is(err, errTooManySeries) {
		return nil, badQuery("selector %s matches more than %d series; narrow it, or run the detector to score them continuously", q.Selector, maxOnDemandSeries)
	}
	if errors.Is(err, errTooManySamples) {
		return nil, badQuery("selector %s has more than %d samples from %s on; shorten the range or narrow the selector, or run the detector to score them continuously", q.Selector, maxOnDemandSamples, start.UTC().Format(time.RFC3339))
	}
	if err != nil {
		return nil, d.prom.downstream("remote read "+q.Selector, err)
	}
	if err := checkAnswerSize("selector "+q.Selector, len(steps), newGrid(q.From, q.To, q.Step)); err != nil {
		return nil, err
	}
	scored, err := scoreAll(ctx, g, steps, counter, max(g.bucket(q.From.UnixMilli()), 0))
	if err != nil {
		return nil, err
	}
	sort.Slice(scored, func(i, j int) bool { return scored[i].Labels.String() < scored[j].Labels.String() })
	return &anomalyResult{
		Series: scored, Name: q.Selector, Source: ScoreSourceOnDemand,
		Exec: fmt.Sprintf("remote read %s from %s", q.Selector, start.UTC().Format(time.RFC3339)), Samples: stats.Samples,
	}, nil
}

// anomalyFrames builds the anomalies query's answer: a frame per series with
// its value, expected value, band and score, labelled with the series'
// labels. For alerting only the scores are returned, so a threshold (0.9 is
// the documented default) applies to scores alone.
func anomalyFrames(res *anomalyResult, fromAlert bool) data.Frames {
	frames := make(data.Frames, 0, len(res.Series))
	for _, s := range res.Series {
		lbls := seriesLabels(s.Labels)
		for k, v := range res.Labels {
			lbls[k] = v
		}
		name := displayName(s.Labels, res.Name)
		score := data.NewField("score", lbls, nullable(s.Score))
		score.Config = &data.FieldConfig{DisplayNameFromDS: name + " score", Min: ptr(data.ConfFloat64(0)), Max: ptr(data.ConfFloat64(1))}
		f := data.NewFrame(name, data.NewField("time", nil, s.Times))
		if fromAlert {
			f.Fields = append(f.Fields, score)
		} else {
			for _, c := range []struct {
				field, suffix string
				v             []float64
			}{
				{"value", "", s.Value}, {"expected", " expected", s.Expected},
				{"lower", " lower", s.Lower}, {"upper", " upper", s.Upper},
			} {
				fl := data.NewField(c.field, lbls, nullable(c.v))
				fl.Config = &data.FieldConfig{DisplayNameFromDS: name + c.suffix}
				f.Fields = append(f.Fields, fl)
			}
			f.Fields = append(f.Fields, score)
		}
		f.Meta = &data.FrameMeta{
			Type:                data.FrameTypeTimeSeriesMulti,
			ExecutedQueryString: res.Exec,
			Custom:              map[string]any{"source": res.Source},
		}
		frames = append(frames, f)
	}
	if len(frames) > 0 && res.Source == ScoreSourceOnDemand && !fromAlert {
		frames[0].AppendNotices(data.Notice{
			Severity: data.NoticeSeverityInfo,
			Text:     fmt.Sprintf("Scores computed on demand at the panel's step (%d series). Run the Telltale detector for continuous scores that alert rules can use.", len(res.Series)),
		})
	}
	if len(frames) == 0 && !fromAlert {
		f := data.NewFrame(res.Name)
		f.AppendNotices(data.Notice{Severity: data.NoticeSeverityInfo, Text: "No series matched " + res.Name + " in this time range."})
		frames = append(frames, f)
	}
	return frames
}
