package plugin

import (
	"context"
	"fmt"
	"math"
	"regexp"
	"strings"

	"github.com/grafana/grafana-plugin-sdk-go/data"
	"github.com/prometheus/common/model"

	"github.com/telltale-dev/telltale/pkg/schema"
)

// queryServiceMap answers a servicemap query: the nodes and edges frames of
// Grafana's Node Graph panel. A node's health arcs come from the detector's
// scores for the service's series; without a detector, from the service's
// CPU and memory scored on demand.
func (d *Datasource) queryServiceMap(ctx context.Context, q Query) (data.Frames, error) {
	in, err := d.fetchGraph(ctx, q.To, q.To.Sub(q.From), q.Host)
	if err != nil {
		return nil, err
	}
	source := ScoreSourceDetector
	if len(in.Scores) == 0 {
		source = ScoreSourceOnDemand
		if in.Scores, err = d.onDemandServiceScores(ctx, q); err != nil {
			return nil, err
		}
	}
	var re *regexp.Regexp
	if q.Service != "" {
		re = regexp.MustCompile("^(?:" + q.Service + ")$") // checked by ParseQuery
	}
	return serviceMapFrames(buildGraph(in, re), source, q.FromAlert), nil
}

// serviceHealthExprs are the per-service signals scored on demand for the
// service map's health when the detector has no series.
var serviceHealthExprs = []string{
	"sum by (service) (rate(" + schema.ServiceCPU.Name + "%s[$__rate_interval]))",
	"sum by (service) (" + schema.ServiceMemory.Name + "%s)",
}

// onDemandServiceScores scores each service's health signals over the range
// and returns, per service, the highest score any of them reached.
func (d *Datasource) onDemandServiceScores(ctx context.Context, q Query) (model.Vector, error) {
	sel := ""
	if q.Host != "" {
		sel = "{" + regexMatcher("instance", q.Host) + "}"
	}
	best := map[model.LabelValue]float64{}
	for _, e := range serviceHealthExprs {
		series, _, err := d.scoreExpr(ctx, fmt.Sprintf(e, sel), q)
		if err != nil {
			return nil, err
		}
		for _, s := range series {
			svc := s.Labels["service"]
			for _, v := range s.Score {
				if !math.IsNaN(v) && v >= best[svc] {
					best[svc] = v
				}
			}
		}
	}
	out := make(model.Vector, 0, len(best))
	for svc, v := range best {
		out = append(out, &model.Sample{Metric: model.Metric{"service": svc}, Value: model.SampleValue(v)})
	}
	return out, nil
}

// Node Graph colours of the health arcs.
var (
	arcNormal    = map[string]any{"mode": "fixed", "fixedColor": "green"}
	arcAnomalous = map[string]any{"mode": "fixed", "fixedColor": "red"}
	arcUnknown   = map[string]any{"mode": "fixed", "fixedColor": "gray"}
)

// serviceMapFrames builds the Node Graph frames. Each node's arcs split its
// circle into normal (1 − score) and anomalous (score) parts, or one unknown
// part when there is no score (outside addresses). For alerting, a
// service_health frame with one score per service instead.
func serviceMapFrames(g *serviceGraph, scoreSource string, fromAlert bool) data.Frames {
	if fromAlert {
		svc := data.NewField("service", nil, []string{})
		score := data.NewField("score", nil, []float64{})
		f := data.NewFrame("service_health", svc, score)
		for _, n := range g.Nodes {
			if !math.IsNaN(n.Score) {
				f.AppendRow(n.ID, n.Score)
			}
		}
		f.Meta = &data.FrameMeta{Type: data.FrameTypeNumericLong, Custom: map[string]any{"scoreSource": scoreSource}}
		return data.Frames{f}
	}

	nodes := data.NewFrame("nodes",
		data.NewField("id", nil, []string{}),
		data.NewField("title", nil, []string{}),
		data.NewField("subtitle", nil, []string{}),
		data.NewField("mainstat", nil, []*float64{}),
		data.NewField("secondarystat", nil, []*float64{}),
		data.NewField("arc__normal", nil, []float64{}),
		data.NewField("arc__anomalous", nil, []float64{}),
		data.NewField("arc__unknown", nil, []float64{}),
		data.NewField("detail__kind", nil, []string{}),
		data.NewField("detail__hosts", nil, []string{}),
		data.NewField("detail__anomaly_score", nil, []*float64{}),
	)
	nodes.Fields[3].Config = &data.FieldConfig{DisplayName: "CPU", Unit: "suffix: cores", Decimals: ptr(uint16(2))}
	nodes.Fields[4].Config = &data.FieldConfig{DisplayName: "Memory", Unit: "bytes"}
	nodes.Fields[5].Config = &data.FieldConfig{DisplayName: "Normal", Color: arcNormal}
	nodes.Fields[6].Config = &data.FieldConfig{DisplayName: "Anomalous", Color: arcAnomalous}
	nodes.Fields[7].Config = &data.FieldConfig{DisplayName: "No score", Color: arcUnknown}
	nodes.Fields[8].Config = &data.FieldConfig{DisplayName: "Kind"}
	nodes.Fields[9].Config = &data.FieldConfig{DisplayName: "Hosts"}
	nodes.Fields[10].Config = &data.FieldConfig{DisplayName: "Anomaly score", Decimals: ptr(uint16(2))}
	for _, n := range g.Nodes {
		normal, anomalous, unknown := 0.0, 0.0, 1.0
		if !math.IsNaN(n.Score) {
			anomalous = math.Min(math.Max(n.Score, 0), 1)
			normal, unknown = 1-anomalous, 0
		}
		subtitle := strings.Join(n.Hosts, ", ")
		if len(n.Hosts) > 3 {
			subtitle = fmt.Sprintf("%d hosts", len(n.Hosts))
		}
		if n.Kind == "external" {
			subtitle = "outside the monitored hosts"
		}
		nodes.AppendRow(n.ID, n.Title, subtitle, numOrNil(n.CPU), numOrNil(n.Memory),
			normal, anomalous, unknown, n.Kind, strings.Join(n.Hosts, ", "), numOrNil(n.Score))
	}
	nodes.Meta = &data.FrameMeta{PreferredVisualization: data.VisTypeNodeGraph, Custom: map[string]any{"scoreSource": scoreSource}}

	edges := data.NewFrame("edges",
		data.NewField("id", nil, []string{}),
		data.NewField("source", nil, []string{}),
		data.NewField("target", nil, []string{}),
		data.NewField("mainstat", nil, []float64{}),
		data.NewField("secondarystat", nil, []*float64{}),
		data.NewField("detail__port", nil, []string{}),
		data.NewField("detail__sent", nil, []float64{}),
		data.NewField("detail__received", nil, []float64{}),
		data.NewField("detail__retransmits", nil, []float64{}),
	)
	edges.Fields[3].Config = &data.FieldConfig{DisplayName: "Connections", Decimals: ptr(uint16(1))}
	edges.Fields[4].Config = &data.FieldConfig{DisplayName: "Round-trip time", Unit: "s"}
	edges.Fields[5].Config = &data.FieldConfig{DisplayName: "Server port"}
	edges.Fields[6].Config = &data.FieldConfig{DisplayName: "Sent (client → server)", Unit: "Bps"}
	edges.Fields[7].Config = &data.FieldConfig{DisplayName: "Received (server → client)", Unit: "Bps"}
	edges.Fields[8].Config = &data.FieldConfig{DisplayName: "Retransmits", Unit: "suffix:/s"}
	for _, e := range g.Edges {
		edges.AppendRow(e.ID, e.Source, e.Target, e.Connections, numOrNil(e.RTT), e.Port, e.Sent, e.Received, e.Retransmits)
	}
	edges.Meta = &data.FrameMeta{PreferredVisualization: data.VisTypeNodeGraph}
	if len(g.Edges) == 0 {
		edges.AppendNotices(data.Notice{Severity: data.NoticeSeverityInfo, Text: "No edges: the exporter reports none in this range (" + schema.EdgeConnections.Name + "), or the filters exclude them."})
	}
	return data.Frames{nodes, edges}
}

// numOrNil returns nil for NaN (unknown), else a pointer to v.
func numOrNil(v float64) *float64 {
	if math.IsNaN(v) {
		return nil
	}
	return &v
}
