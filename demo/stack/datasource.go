package stack

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/backend"
	"github.com/grafana/grafana-plugin-sdk-go/data"

	"github.com/telltale-dev/telltale/datasource/pkg/plugin"
)

// Datasource is Telltale's Grafana datasource backend, run in this process
// against the stack's Prometheus: the same code Grafana runs as a plugin,
// called without Grafana.
type Datasource struct {
	ds *plugin.Datasource

	// shown holds, per KPI window already printed by Summary (its KPI and
	// start), the top cause printed then: an incident's ranking is
	// printed once, and again only when its top cause changes.
	mu    sync.Mutex
	shown map[string]string
}

// Datasource returns the datasource backend configured for the stack's
// Prometheus, with the KPIs the shop declares found on their own.
func (s *Stack) Datasource(ctx context.Context) (*Datasource, error) {
	jd, err := json.Marshal(map[string]any{"timeout": 30})
	if err != nil {
		return nil, err
	}
	inst, err := plugin.NewDatasource(ctx, backend.DataSourceInstanceSettings{
		ID: 1, UID: "telltale-demo", Name: "Telltale", Type: plugin.PluginID,
		URL: s.PrometheusURL, JSONData: jd, Updated: time.Now(),
	})
	if err != nil {
		return nil, fmt.Errorf("datasource: %w", err)
	}
	ds, ok := inst.(*plugin.Datasource)
	if !ok {
		return nil, fmt.Errorf("datasource: NewDatasource returned a %T", inst)
	}
	return &Datasource{ds: ds}, nil
}

// Close frees the datasource's connections.
func (d *Datasource) Close() { d.ds.Dispose() }

// Query runs one query of the given type (plugin.QueryTypeKPI, …) with the
// given model fields over [from, to] at step, and returns its frames or its
// error.
func (d *Datasource) Query(ctx context.Context, queryType string, model map[string]any, from, to time.Time, step time.Duration) (data.Frames, error) {
	m := map[string]any{"queryType": queryType}
	for k, v := range model {
		m[k] = v
	}
	raw, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	resp, err := d.ds.QueryData(ctx, &backend.QueryDataRequest{
		Queries: []backend.DataQuery{{
			RefID: "A", QueryType: queryType, JSON: raw, Interval: step,
			MaxDataPoints: int64(to.Sub(from)/step) + 1, TimeRange: backend.TimeRange{From: from, To: to},
		}},
	})
	if err != nil {
		return nil, fmt.Errorf("%s query: %w", queryType, err)
	}
	dr := resp.Responses["A"]
	if dr.Error != nil {
		return nil, dr.Error
	}
	return dr.Frames, nil
}

// Frame returns the frame called name, or an error naming the frames there
// are.
func Frame(frames data.Frames, name string) (*data.Frame, error) {
	var names []string
	for _, f := range frames {
		if f.Name == name {
			return f, nil
		}
		names = append(names, f.Name)
	}
	return nil, fmt.Errorf("no frame %q among %v", name, names)
}

// Rows returns a frame's rows as maps from field name to value (nil for a
// null; pointers dereferenced), for reading answers without knowing their
// field types.
func Rows(f *data.Frame) []map[string]any {
	out := make([]map[string]any, f.Rows())
	for i := range out {
		row := map[string]any{}
		for _, fd := range f.Fields {
			v, ok := fd.ConcreteAt(i)
			if !ok {
				v = nil
			}
			row[fd.Name] = v
		}
		out[i] = row
	}
	return out
}

// Edge is an edge of the service map.
type Edge struct {
	Source, Target, Port string
	Connections          float64
}

// ServiceNode is a node of the service map with its anomaly score (NaN when
// it has none).
type ServiceNode struct {
	ID    string
	Score float64
}

// ServiceMap runs a servicemap query and returns its nodes and edges; service
// is the query's regex filter on services, empty for all.
func (d *Datasource) ServiceMap(ctx context.Context, service string, from, to time.Time, step time.Duration) ([]ServiceNode, []Edge, error) {
	frames, err := d.Query(ctx, plugin.QueryTypeServiceMap, map[string]any{"service": service}, from, to, step)
	if err != nil {
		return nil, nil, err
	}
	nf, err := Frame(frames, "nodes")
	if err != nil {
		return nil, nil, err
	}
	ef, err := Frame(frames, "edges")
	if err != nil {
		return nil, nil, err
	}
	var nodes []ServiceNode
	for _, r := range Rows(nf) {
		n := ServiceNode{ID: str(r["id"]), Score: math.NaN()}
		if v, ok := r["detail__anomaly_score"].(float64); ok {
			n.Score = v
		}
		nodes = append(nodes, n)
	}
	var edges []Edge
	for _, r := range Rows(ef) {
		e := Edge{Source: str(r["source"]), Target: str(r["target"]), Port: str(r["detail__port"])}
		e.Connections, _ = r["mainstat"].(float64)
		edges = append(edges, e)
	}
	return nodes, edges, nil
}

// Cause is a likely cause of a KPI's problem, as the insights query ranks
// them.
type Cause struct {
	Window   int64
	Rank     int64
	Score    float64
	Kind     string
	Service  string
	Signal   string
	Evidence string
}

// InsightWindow is a stretch of time where a KPI went wrong.
type InsightWindow struct {
	ID         int64
	Start, End time.Time
	Reason     string
	TopCause   string
}

// Insights runs an insights query for a KPI.
func (d *Datasource) Insights(ctx context.Context, kpi string, from, to time.Time, step time.Duration) ([]InsightWindow, []Cause, error) {
	frames, err := d.Query(ctx, plugin.QueryTypeInsights, map[string]any{"kpi": kpi}, from, to, step)
	if err != nil {
		return nil, nil, err
	}
	wf, err := Frame(frames, "windows")
	if err != nil {
		return nil, nil, err
	}
	cf, err := Frame(frames, "causes")
	if err != nil {
		return nil, nil, err
	}
	var wins []InsightWindow
	for _, r := range Rows(wf) {
		w := InsightWindow{Reason: str(r["reason"]), TopCause: str(r["top_cause"])}
		w.ID, _ = r["window"].(int64)
		w.Start, _ = r["start"].(time.Time)
		w.End, _ = r["end"].(time.Time)
		wins = append(wins, w)
	}
	var causes []Cause
	for _, r := range Rows(cf) {
		c := Cause{Kind: str(r["kind"]), Service: str(r["service"]), Signal: str(r["signal"]), Evidence: str(r["evidence"])}
		c.Window, _ = r["window"].(int64)
		c.Rank, _ = r["rank"].(int64)
		c.Score, _ = r["score"].(float64)
		causes = append(causes, c)
	}
	return wins, causes, nil
}

// KPIStatus is a KPI's row of the kpi query's status table.
type KPIStatus struct {
	KPI, Unit, Direction, Status string
	Objective, Current           *float64
}

// KPIs runs a kpi query for every KPI and returns their status.
func (d *Datasource) KPIs(ctx context.Context, from, to time.Time, step time.Duration) ([]KPIStatus, error) {
	frames, err := d.Query(ctx, plugin.QueryTypeKPI, nil, from, to, step)
	if err != nil {
		return nil, err
	}
	st, err := Frame(frames, "kpi_status")
	if err != nil {
		return nil, err
	}
	var out []KPIStatus
	for _, r := range Rows(st) {
		k := KPIStatus{KPI: str(r["kpi"]), Unit: str(r["unit"]), Direction: str(r["direction"]), Status: str(r["status"])}
		if v, ok := r["objective"].(float64); ok {
			k.Objective = &v
		}
		if v, ok := r["current"].(float64); ok {
			k.Current = &v
		}
		out = append(out, k)
	}
	return out, nil
}

// Deploy is a deploy event as the deploys query reports it.
type Deploy struct {
	Time                     time.Time
	Service, Text            string
	BuildID, PreviousBuildID string
}

// Deploys runs a deploys query, for services matching the regex service
// (all when empty).
func (d *Datasource) Deploys(ctx context.Context, service string, from, to time.Time, step time.Duration) ([]Deploy, error) {
	frames, err := d.Query(ctx, plugin.QueryTypeDeploys, map[string]any{"service": service}, from, to, step)
	if err != nil {
		return nil, err
	}
	f, err := Frame(frames, "deploys")
	if err != nil {
		return nil, err
	}
	var out []Deploy
	for _, r := range Rows(f) {
		e := Deploy{Service: str(r["service"]), Text: str(r["text"]), BuildID: str(r["build_id"]), PreviousBuildID: str(r["previous_build_id"])}
		e.Time, _ = r["time"].(time.Time)
		out = append(out, e)
	}
	return out, nil
}

// Summary is a short text of what the datasource sees over the window
// before now: services and edges (of the services matching the regex
// service, all when empty), the most anomalous of them, KPI status, and for
// each KPI that went wrong its likely causes.
func (d *Datasource) Summary(ctx context.Context, service string, window, step time.Duration) string {
	start := time.Now()
	text := d.summary(ctx, service, window, step)
	return text + fmt.Sprintf("(answered in %s)\n", time.Since(start).Round(time.Millisecond))
}

func (d *Datasource) summary(ctx context.Context, service string, window, step time.Duration) string {
	to := time.Now()
	from := to.Add(-window)
	var b strings.Builder
	fmt.Fprintf(&b, "── %s, last %s ──\n", to.Format("15:04:05"), window)

	nodes, edges, err := d.ServiceMap(ctx, service, from, to, step)
	if err != nil {
		fmt.Fprintf(&b, "service map: %v\n", err)
	} else {
		var es []string
		for _, e := range edges {
			es = append(es, fmt.Sprintf("%s→%s (%.0f)", e.Source, e.Target, e.Connections))
		}
		sort.Strings(es)
		fmt.Fprintf(&b, "services %d, edges %d: %s\n", len(nodes), len(edges), strings.Join(es, ", "))
		sort.SliceStable(nodes, func(i, j int) bool { return score(nodes[i].Score) > score(nodes[j].Score) })
		var top []string
		for _, n := range nodes {
			if len(top) == 4 || math.IsNaN(n.Score) || n.Score < 0.5 {
				break
			}
			top = append(top, fmt.Sprintf("%s %.2f", n.ID, n.Score))
		}
		if len(top) == 0 {
			top = []string{"none above 0.5"}
		}
		fmt.Fprintf(&b, "most anomalous: %s\n", strings.Join(top, ", "))
	}

	kpis, err := d.KPIs(ctx, from, to, step)
	if err != nil {
		fmt.Fprintf(&b, "KPIs: %v\n", err)
		return b.String()
	}
	for _, k := range kpis {
		cur, obj := "-", ""
		if k.Current != nil {
			cur = formatNum(*k.Current)
		}
		if k.Objective != nil {
			op := "≥"
			if k.Direction == "lower" {
				op = "≤"
			}
			obj = fmt.Sprintf(" (objective %s %s)", op, formatNum(*k.Objective))
		}
		fmt.Fprintf(&b, "KPI %-24s %10s %-8s%s: %s\n", k.KPI, cur, k.Unit, obj, k.Status)
		wins, causes, err := d.Insights(ctx, k.KPI, from, to, step)
		if err != nil {
			fmt.Fprintf(&b, "    insights: %v\n", err)
			continue
		}
		if len(wins) == 0 {
			continue
		}
		last := wins[len(wins)-1]
		var top []Cause
		for _, c := range causes {
			if c.Window == last.ID && len(top) < 3 {
				top = append(top, c)
			}
		}
		b.WriteString(d.incident(k.KPI, last, top))
	}
	return b.String()
}

// incident is the summary's text of a KPI's latest window with its top
// causes: the ranking the first time the window is seen, or when its top
// cause changed since; otherwise one line.
func (d *Datasource) incident(kpi string, w InsightWindow, top []Cause) string {
	key := kpi + " " + w.Start.UTC().Format(time.RFC3339)
	first := ""
	if len(top) > 0 {
		first = top[0].Service + "/" + top[0].Signal
	}
	d.mu.Lock()
	prev, seen := d.shown[key]
	if d.shown == nil {
		d.shown = map[string]string{}
	}
	d.shown[key] = first
	d.mu.Unlock()
	if seen && prev == first {
		return fmt.Sprintf("    still wrong since %s (%s); top cause unchanged: %s\n", w.Start.Local().Format("15:04:05"), w.Reason, orNone(first))
	}
	var b strings.Builder
	fmt.Fprintf(&b, "    went wrong %s–%s (%s); likely causes:\n", w.Start.Local().Format("15:04:05"), w.End.Local().Format("15:04:05"), w.Reason)
	for _, c := range top {
		fmt.Fprintf(&b, "      %d. %.2f %s\n", c.Rank, c.Score, c.Evidence)
	}
	if len(top) == 0 {
		b.WriteString("      none found yet\n")
	}
	return b.String()
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

func score(v float64) float64 {
	if math.IsNaN(v) {
		return -1
	}
	return v
}

func formatNum(v float64) string {
	switch a := math.Abs(v); {
	case a == 0:
		return "0"
	case a >= 1000:
		return fmt.Sprintf("%.0f", v)
	case a >= 1:
		return fmt.Sprintf("%.2f", v)
	}
	return fmt.Sprintf("%.3g", v)
}

func str(v any) string {
	s, _ := v.(string)
	return s
}
