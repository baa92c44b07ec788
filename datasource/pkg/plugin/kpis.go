package plugin

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/common/model"

	"github.com/telltale-dev/telltale/pkg/kpi"
	"github.com/telltale-dev/telltale/pkg/schema"
)

// Where a KPI comes from.
const (
	// SourceSettings is a KPI from the datasource settings.
	SourceSettings = "settings"
	// SourceDiscovered is a KPI an app declares with pkg/kpi, found through
	// its info series (kpi.InfoMetric).
	SourceDiscovered = "discovered"
)

// KPI is a business KPI: a PromQL expression with a unit, a direction and an
// optional objective.
type KPI struct {
	Name string `json:"name"`
	// Expr is the PromQL expression of the KPI's value; it may use the
	// backend's template variables ($__rate_interval, …).
	Expr string `json:"expr"`
	Unit string `json:"unit,omitempty"`
	// Objective is the value the KPI should stay above (direction higher)
	// or below (direction lower); nil when there is none.
	Objective *float64 `json:"objective,omitempty"`
	Direction string   `json:"direction"`
	Source    string   `json:"source"`
	// Metric and Type are the metric family that carries a discovered KPI
	// and its type (counter, gauge, histogram).
	Metric string `json:"metric,omitempty"`
	Type   string `json:"type,omitempty"`
}

// good reports whether v meets the KPI's objective; true when there is none.
func (k KPI) good(v float64) bool {
	if k.Objective == nil || math.IsNaN(v) {
		return true
	}
	if k.Direction == DirectionLower {
		return v <= *k.Objective
	}
	return v >= *k.Objective
}

// grafanaUnits maps the units apps declare to Grafana's unit ids.
var grafanaUnits = map[string]string{
	"seconds": "s", "second": "s", "milliseconds": "ms", "bytes": "bytes",
	"ratio": "percentunit", "percent": "percent", "%": "percent",
	"eur": "currencyEUR", "usd": "currencyUSD", "gbp": "currencyGBP",
}

// panelUnit is the unit a panel shows the KPI's value in. A discovered
// counter is shown as its rate, so its unit gains "/s"; Grafana shows a unit
// it does not know as a suffix.
// textUnit is the unit of the KPI's values as people read them in text: a
// counter's value is its rate, so "orders" become "orders/s".
func (k KPI) textUnit() string {
	if k.Source == SourceDiscovered && k.Type == string(schema.Counter) {
		return k.Unit + "/s"
	}
	return k.Unit
}

func (k KPI) panelUnit() string {
	if k.Source != SourceDiscovered {
		return k.Unit
	}
	lower := strings.ToLower(k.Unit)
	if k.Type == string(schema.Counter) {
		if lower == "bytes" {
			return "Bps"
		}
		if k.Unit == "" {
			return "/s"
		}
		return k.Unit + "/s"
	}
	if u, ok := grafanaUnits[lower]; ok {
		return u
	}
	return k.Unit
}

// kpiInfoExprs are the instant queries that find the KPIs apps declare and
// their objectives, over the lookback window before the evaluation time.
func kpiInfoExprs(lookback time.Duration) (info, objective string) {
	w := promDuration(max(lookback, 5*time.Minute))
	info = fmt.Sprintf("max by (%s) (last_over_time(%s[%s]))", strings.Join(schema.KPIInfo.Labels, ", "), kpi.InfoMetric, w)
	objective = fmt.Sprintf("max by (%s) (last_over_time(%s[%s]))", schema.LabelKPI, kpi.ObjectiveMetric, w)
	return info, objective
}

// discoveredKPIs turns the answers to kpiInfoExprs into KPIs, sorted by name.
// A KPI declared with two different metric families (two apps disagreeing)
// keeps the first in label order, so the answer is stable.
func discoveredKPIs(info, objectives model.Vector) []KPI {
	obj := map[string]float64{}
	for _, s := range objectives {
		obj[string(s.Metric[schema.LabelKPI])] = float64(s.Value)
	}
	byName := map[string]KPI{}
	for _, s := range info {
		dec, ok := kpi.Decode(func(l string) string { return string(s.Metric[model.LabelName(l)]) })
		if !ok {
			continue
		}
		name := dec.Name
		k := KPI{
			Name:      name,
			Expr:      dec.Expr("$__rate_interval"),
			Metric:    dec.Metric,
			Type:      string(dec.Type),
			Unit:      dec.Unit,
			Direction: string(dec.Direction),
			Source:    SourceDiscovered,
		}
		if o, ok := obj[name]; ok && !math.IsNaN(o) {
			k.Objective = &o
		}
		if prev, ok := byName[name]; ok && prev.Metric < k.Metric {
			continue
		}
		byName[name] = k
	}
	out := make([]KPI, 0, len(byName))
	for _, k := range byName {
		out = append(out, k)
	}
	slices.SortFunc(out, func(a, b KPI) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// mergeKPIs puts the settings' KPIs first, then the discovered ones whose
// names the settings do not already use: the settings win, so an operator
// can override what an app declares.
func mergeKPIs(settings, discovered []KPI) []KPI {
	out := slices.Clone(settings)
	taken := map[string]bool{}
	for _, k := range settings {
		taken[k.Name] = true
	}
	for _, k := range discovered {
		if !taken[k.Name] {
			out = append(out, k)
		}
	}
	return out
}

// kpis returns every KPI known at t: the settings' and those apps declared in
// the lookback window before t.
func (d *Datasource) kpis(ctx context.Context, t time.Time, lookback time.Duration) ([]KPI, error) {
	infoExpr, objExpr := kpiInfoExprs(lookback)
	info, err := d.prom.query(ctx, infoExpr, t)
	if err != nil {
		return nil, err
	}
	var obj model.Vector
	if len(info) > 0 {
		if obj, err = d.prom.query(ctx, objExpr, t); err != nil {
			return nil, err
		}
	}
	return mergeKPIs(d.settings.KPIs, discoveredKPIs(info, obj)), nil
}

// kpi returns the KPI called name, or a query error listing the known ones.
func (d *Datasource) kpi(ctx context.Context, name string, t time.Time, lookback time.Duration) (KPI, error) {
	all, err := d.kpis(ctx, t, lookback)
	if err != nil {
		return KPI{}, err
	}
	return findKPI(all, name)
}

// findKPI returns the KPI called name, or a query error listing the known
// ones.
func findKPI(all []KPI, name string) (KPI, error) {
	names := make([]string, 0, len(all))
	for _, k := range all {
		if k.Name == name {
			return k, nil
		}
		names = append(names, k.Name)
	}
	if len(names) == 0 {
		return KPI{}, badQuery("KPI %q is not known: no KPI is declared in the settings or by an app (%s) in this time range", name, kpi.InfoMetric)
	}
	return KPI{}, badQuery("KPI %q is not known: known KPIs are %s", name, strings.Join(names, ", "))
}
