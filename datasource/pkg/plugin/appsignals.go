package plugin

import (
	"cmp"
	"fmt"
	"math"
	"regexp"
	"slices"
	"strings"

	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"
)

// A service's own metrics as candidate signals, with no configuration: a
// Prometheus scrape target whose address is a port a service listens on
// (as the exporter reports it) belongs to that service, and so do the
// series it exposes. Which families there are, and their types, come from
// Prometheus's target metadata; the type alone says how a family is read:
//
//   - a counter as its per-second rate, one signal per label set (a new
//     status code is a new series: errors that start show as a series that
//     appears);
//   - a histogram as its appQuantile quantile and as its rate of
//     observations (requests per second);
//   - a summary as its mean (sum over count of the rates).
//
// Gauges are left out: their type does not say whether a level, a
// capacity or an info series is measured, and the levels that matter most
// (memory, threads, open files) the exporter measures for every service.
// So is a series that several services read off one thing they share (see
// sharedSeries). No metric name is written here.

// appQuantile is the quantile a histogram is read at: high enough to show
// a slow part of the requests, low enough not to be one request's noise.
const appQuantile = 0.9

// maxAppQueries bounds how many queries the application signals add to an
// insights query; families past it are left out: those of the services
// closest to the KPI's come first, then histograms, counters and
// summaries, each by name.
const maxAppQueries = 24

// appSignals returns the candidate signals of the scrape targets' own
// metric families: those of targets that belong to exactly one service
// dist knows (with its distance from the KPI's services), except the
// families skip names (the KPIs' own: an outcome does not explain
// itself). Each signal's Owners maps a target's instance to its service.
func appSignals(md []promv1.MetricMetadata, h hostIndex, dist func(service string) (int, bool), skip func(family string) bool) []candidateSignal {
	type family struct {
		name string
		typ  model.MetricType
	}
	owners := map[string]string{}
	instances := map[family][]string{}
	near := map[family]int{} // the distance of the closest service exposing it
	for _, m := range md {
		inst := m.Target["instance"]
		f := family{m.Metric, model.MetricType(m.Type)}
		if f.typ != model.MetricTypeCounter && f.typ != model.MetricTypeHistogram && f.typ != model.MetricTypeSummary {
			continue
		}
		if skip(f.name) {
			continue
		}
		svc, ok := owners[inst]
		if !ok {
			if ls := h.listenersAt(inst); len(ls) == 1 {
				if _, known := dist(ls[0]); known {
					svc = ls[0]
				}
			}
			owners[inst] = svc
		}
		if svc == "" {
			continue
		}
		if !slices.Contains(instances[f], inst) {
			instances[f] = append(instances[f], inst)
		}
		d, _ := dist(svc)
		if n, seen := near[f]; !seen || d < n {
			near[f] = d
		}
	}
	for inst, svc := range owners {
		if svc == "" {
			delete(owners, inst)
		}
	}
	fams := make([]family, 0, len(instances))
	for f := range instances {
		fams = append(fams, f)
	}
	order := map[model.MetricType]int{model.MetricTypeHistogram: 0, model.MetricTypeCounter: 1, model.MetricTypeSummary: 2}
	slices.SortFunc(fams, func(a, b family) int {
		return cmp.Or(cmp.Compare(near[a], near[b]), cmp.Compare(order[a.typ], order[b.typ]), cmp.Compare(a.name, b.name))
	})
	var out []candidateSignal
	for _, f := range fams {
		insts := instances[f]
		slices.Sort(insts)
		sel := func(names ...string) string { return targetSelector(names, insts) }
		rate := func(names ...string) string { return "rate(" + sel(names...) + "[$__rate_interval])" }
		// A quantile or a mean is read only where the rate window holds
		// the observations it needs: a p90 does not exist below 10, and
		// a mean of a handful (a few garbage collections) is noise.
		enough := func(fam string) string {
			return fmt.Sprintf("increase(%s[$__rate_interval]) >= %g", sel(fam+"_count"), math.Ceil(1/(1-appQuantile)))
		}
		var add []candidateSignal
		switch f.typ {
		case model.MetricTypeCounter:
			// OpenMetrics names the family without the _total its
			// samples carry; the text format names it with.
			names := []string{f.name}
			if !strings.HasSuffix(f.name, "_total") {
				names = append(names, f.name+"_total")
			}
			add = append(add, candidateSignal{Name: f.name, Unit: "/s", Expr: rate(names...), Counts: names})
		case model.MetricTypeHistogram:
			add = append(add,
				candidateSignal{Name: fmt.Sprintf("p%g %s", 100*appQuantile, f.name), Unit: unitOf(f.name), signalTraits: signalTraits{Internal: true, Cost: true},
					Expr: fmt.Sprintf("histogram_quantile(%g, %s) and %s", appQuantile, rate(f.name+"_bucket"), enough(f.name)), Counts: []string{f.name + "_count"}},
				candidateSignal{Name: f.name + "_count", Unit: "/s", signalTraits: signalTraits{Load: true}, Expr: rate(f.name + "_count"), Counts: []string{f.name + "_count"}})
		case model.MetricTypeSummary:
			add = append(add, candidateSignal{Name: "mean " + f.name, Unit: unitOf(f.name), signalTraits: signalTraits{Internal: true, Cost: true},
				Expr: "(" + rate(f.name+"_sum") + " / " + rate(f.name+"_count") + ") and " + enough(f.name), Counts: []string{f.name + "_count"}})
		}
		if len(out)+len(add) > maxAppQueries {
			break
		}
		for _, cs := range add {
			cs.Kind, cs.Owners = CauseSignal, owners
			out = append(out, cs)
		}
	}
	return out
}

// targetSelector selects the series of the named metrics that the given
// targets expose.
func targetSelector(names, instances []string) string {
	q := func(vals []string) string {
		out := make([]string, len(vals))
		for i, v := range vals {
			out[i] = regexp.QuoteMeta(v)
		}
		return quote(strings.Join(out, "|"))
	}
	return "{__name__=~" + q(names) + ", instance=~" + q(instances) + "}"
}

// sharedSet holds the series of the services' own families that several
// services read off one thing they share (see sharedSeries), by family,
// labels and target.
type sharedSet map[string]bool

// sharedKey names a series of a family in a sharedSet: the family, the
// series' labels that are not the target's or a bucket's, and its target.
func sharedKey(family string, m model.Metric) string {
	ls := make(model.LabelSet, len(m))
	for k, v := range m {
		switch k {
		case model.MetricNameLabel, model.InstanceLabel, model.JobLabel, model.BucketLabel:
			continue
		}
		ls[k] = v
	}
	return family + "\xff" + ls.String() + "\xff" + string(m[model.InstanceLabel])
}

// has reports whether the series with labels m of a signal that counts
// family is one several services share.
func (s sharedSet) has(family string, m model.Metric) bool { return s[sharedKey(family, m)] }

// sharedSeries finds the series that several services read off one thing
// they share instead of counting it themselves: a network namespace's
// interfaces (a process reading its own network counters reads its
// namespace's, the same in every process in it), a host's, a common file's.
// Two reads of one counter differ only by what it counted between them,
// while two processes each count their own from their own start. So a
// cumulative sample that at two services is within the larger of their
// increases over the last rate interval of each other is one thing read
// twice: it moves in every service that reads it, at once, and cannot say
// which of them a change belongs to. now and before are the families'
// cumulative samples at the end of the range and a rate interval before
// it; owners maps a target to its service, and family a sample's name to
// its family. A counter that did not move is never called shared: two
// equal idle counts are no evidence of one thing.
func sharedSeries(now, before model.Vector, owners map[string]string, family map[string]string) sharedSet {
	type read struct {
		key, svc string
		v, inc   float64
	}
	prev := make(map[model.Fingerprint]float64, len(before))
	for _, s := range before {
		prev[s.Metric.Fingerprint()] = float64(s.Value)
	}
	groups := map[string][]read{}
	for _, s := range now {
		fam, ok := family[string(s.Metric[model.MetricNameLabel])]
		svc := owners[string(s.Metric[model.InstanceLabel])]
		if !ok || svc == "" {
			continue
		}
		key := sharedKey(fam, s.Metric)
		v := float64(s.Value)
		inc := 0.0
		if p, ok := prev[s.Metric.Fingerprint()]; ok && v >= p {
			inc = v - p
		}
		// The group is the key less its target.
		g := key[:strings.LastIndexByte(key, '\xff')]
		groups[g] = append(groups[g], read{key, svc, v, inc})
	}
	out := sharedSet{}
	for _, rs := range groups {
		for i, a := range rs {
			for _, b := range rs[i+1:] {
				if a.svc == b.svc {
					continue
				}
				if m := max(a.inc, b.inc); m > 0 && math.Abs(a.v-b.v) <= m {
					out[a.key], out[b.key] = true, true
				}
			}
		}
	}
	return out
}

// unitOf is the unit of a family by Prometheus's naming conventions (the
// base unit is the name's last word).
func unitOf(name string) string {
	switch {
	case strings.HasSuffix(name, "_seconds"):
		return "s"
	case strings.HasSuffix(name, "_bytes"):
		return "bytes"
	}
	return ""
}

// appSeriesName names one series of an application signal: the signal and
// the labels that tell it from the others of its family (not the target's).
func appSeriesName(signal string, m model.Metric) string {
	var parts []string
	for k, v := range m {
		if k == model.MetricNameLabel || k == model.InstanceLabel || k == model.JobLabel {
			continue
		}
		parts = append(parts, string(k)+"="+quote(string(v)))
	}
	if len(parts) == 0 {
		return signal
	}
	slices.Sort(parts)
	return signal + "{" + strings.Join(parts, ",") + "}"
}

// exprMetrics returns a skip function for appSignals: whether a family is
// one of those the expressions read (by the names their selectors give,
// with a histogram's or summary's series suffixes).
func exprMetrics(exprs ...string) func(family string) bool {
	names := map[string]bool{}
	for _, expr := range exprs {
		for _, vs := range vectorSelectors(expr) {
			for _, m := range vs.LabelMatchers {
				if m.Name == model.MetricNameLabel && m.Type == labels.MatchEqual {
					names[m.Value] = true
				}
			}
		}
	}
	return func(f string) bool {
		for _, suffix := range []string{"", "_total", "_bucket", "_count", "_sum"} {
			if names[f+suffix] {
				return true
			}
		}
		return false
	}
}

// vectorSelectors returns the series selectors of a PromQL expression; none
// when it does not parse (Prometheus accepted it, and a parser version
// difference is no reason to fail a query).
func vectorSelectors(expr string) []*parser.VectorSelector {
	e, err := parser.ParseExpr(expr)
	if err != nil {
		return nil
	}
	var out []*parser.VectorSelector
	parser.Inspect(e, func(n parser.Node, _ []parser.Node) error {
		if vs, ok := n.(*parser.VectorSelector); ok {
			out = append(out, vs)
		}
		return nil
	})
	return out
}
