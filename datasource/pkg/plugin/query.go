package plugin

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/grafana/grafana-plugin-sdk-go/backend"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"
)

// Query types, the values of a query's queryType.
const (
	QueryTypeKPI        = "kpi"
	QueryTypeAnomalies  = "anomalies"
	QueryTypeServiceMap = "servicemap"
	QueryTypeInsights   = "insights"
	QueryTypeDeploys    = "deploys"
)

// QueryTypes lists every query type, in the order the editor offers them.
var QueryTypes = []string{QueryTypeKPI, QueryTypeAnomalies, QueryTypeServiceMap, QueryTypeInsights, QueryTypeDeploys}

// Limits on a query's step, so that a range query stays within what
// Prometheus answers (11,000 points per series) and a step is never below a
// second.
const (
	maxPointsPerSeries   = 11000
	defaultMaxDataPoints = 1000
	minStep              = time.Second
)

// QueryModel is a query's JSON as the query editor saves it (besides refId,
// datasource and Grafana's own fields). See the "Datasource query model" in
// the project's contract.
type QueryModel struct {
	QueryType string `json:"queryType"`
	// KPI names a KPI (kpi, anomalies, insights); empty for kpi means all.
	KPI string `json:"kpi,omitempty"`
	// Selector is a PromQL series selector (anomalies, when KPI is empty).
	Selector string `json:"selector,omitempty"`
	// Service is a regex on the service label (servicemap, deploys).
	Service string `json:"service,omitempty"`
	// Host is a regex on the exporter's instance label (servicemap).
	Host string `json:"host,omitempty"`
}

// Query is one query ready to run: its model with template variables
// replaced and every field checked, its time range and step.
type Query struct {
	RefID string
	QueryModel
	From, To time.Time
	// Step is the resolution of range queries and of on-demand scoring.
	Step time.Duration
	// FromAlert is true when Grafana's alerting evaluates the query: the
	// answer is then shaped for server-side expressions (numbers and time
	// series with labels only).
	FromAlert bool
	// Matchers are the parsed Selector.
	Matchers []*labels.Matcher
	// Scrape is Prometheus's scrape interval, when known.
	Scrape time.Duration
	// warm, when set, is the warm-up of on-demand scoring in place of
	// warmup(Step): the insights query's signals (see queryInsights).
	warm time.Duration
}

// scope is what template variables in the query's expressions stand for.
func (q Query) scope() templateScope {
	return templateScope{From: q.From, To: q.To, Interval: q.Step, Scrape: q.Scrape}
}

// ParseQuery reads and checks one query. Its error says what is wrong in
// terms of the editor's fields.
func ParseQuery(dq backend.DataQuery, fromAlert bool) (Query, error) {
	q := Query{RefID: dq.RefID, FromAlert: fromAlert}
	if len(bytes.TrimSpace(dq.JSON)) > 0 {
		if err := json.Unmarshal(dq.JSON, &q.QueryModel); err != nil {
			var te *json.UnmarshalTypeError
			if errors.As(err, &te) {
				return q, fmt.Errorf("field %q must be a %s, not a JSON %s", te.Field, te.Type, te.Value)
			}
			return q, fmt.Errorf("the query is not valid JSON: %w", err)
		}
	}
	// Grafana dispatches on the DataQuery's own queryType; the copy in
	// the JSON only matters when the former is missing.
	if dq.QueryType != "" {
		q.QueryType = dq.QueryType
	}
	if dq.MaxDataPoints < 0 {
		return q, fmt.Errorf("maxDataPoints is %d: want a positive number of points, or 0 for the default (%d)", dq.MaxDataPoints, defaultMaxDataPoints)
	}
	q.From, q.To = dq.TimeRange.From, dq.TimeRange.To
	if !q.From.Before(q.To) {
		return q, fmt.Errorf("the time range is empty: from %s is not before to %s", q.From.UTC().Format(time.RFC3339), q.To.UTC().Format(time.RFC3339))
	}
	q.Step = queryStep(dq)

	scope := templateScope{From: q.From, To: q.To, Interval: q.Step}
	for _, f := range []struct {
		name string
		v    *string
	}{{"kpi", &q.KPI}, {"selector", &q.Selector}, {"service", &q.Service}, {"host", &q.Host}} {
		s, err := interpolate(strings.TrimSpace(*f.v), scope)
		if err != nil {
			return q, fmt.Errorf("%s: %w", f.name, err)
		}
		*f.v = s
	}

	switch q.QueryType {
	case QueryTypeKPI, QueryTypeServiceMap, QueryTypeDeploys:
	case QueryTypeAnomalies:
		if q.KPI == "" && q.Selector == "" {
			return q, errors.New("an anomalies query needs a KPI or a series selector such as http_requests_total{job=\"api\"}")
		}
		if q.KPI == "" {
			ms, err := parser.ParseMetricSelector(q.Selector)
			if err != nil {
				return q, fmt.Errorf("selector %s is not a PromQL series selector such as up{job=\"api\"}: %w", shorten(q.Selector), err)
			}
			// As in Prometheus, a selector must narrow the series down:
			// one matcher at least that the empty string does not match.
			if !slices.ContainsFunc(ms, func(m *labels.Matcher) bool { return !m.Matches("") }) {
				return q, fmt.Errorf("selector %s matches every series: name a metric or a label value, such as up{job=\"api\"}", shorten(q.Selector))
			}
			q.Matchers = ms
		}
	case QueryTypeInsights:
		if q.KPI == "" {
			return q, errors.New("an insights query needs a KPI: pick the KPI whose problems to explain")
		}
	case "":
		return q, fmt.Errorf("queryType is missing: want one of %s", strings.Join(QueryTypes, ", "))
	default:
		return q, fmt.Errorf("queryType %q is not known: want one of %s", q.QueryType, strings.Join(QueryTypes, ", "))
	}
	for _, f := range []struct{ name, re string }{{"service", q.Service}, {"host", q.Host}} {
		if _, err := regexp.Compile("^(?:" + f.re + ")$"); err != nil {
			return q, fmt.Errorf("%s filter %q is not a valid regular expression: %w", f.name, f.re, err)
		}
	}
	return q, nil
}

// maxEcho is how much of a user's input an error message repeats.
const maxEcho = 200

// shorten quotes s for an error message, cut to maxEcho bytes: a 1 MB
// selector must not come back as a 1 MB error.
func shorten(s string) string {
	if len(s) <= maxEcho {
		return strconv.Quote(s)
	}
	cut := maxEcho
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return fmt.Sprintf("%q… (%d bytes)", s[:cut], len(s))
}

// queryStep is the step of a query's range queries: Grafana's interval for
// the panel, widened when Prometheus would refuse that many points.
func queryStep(dq backend.DataQuery) time.Duration {
	rng := dq.TimeRange.Duration()
	step := dq.Interval
	if step <= 0 {
		mdp := dq.MaxDataPoints
		if mdp <= 0 {
			mdp = defaultMaxDataPoints
		}
		step = rng / time.Duration(mdp)
	}
	step = max(step, rng/maxPointsPerSeries, minStep)
	// Whole seconds keep steps aligned with scrapes and readable in PromQL.
	return (step + time.Second - 1).Truncate(time.Second)
}

// serviceMatcher returns a PromQL label matcher for the service filter, or
// "" when there is none.
func (q Query) serviceMatcher(label string) string {
	return regexMatcher(label, q.Service)
}

// regexMatcher returns `label=~"re"`, or "" when re is empty.
func regexMatcher(label, re string) string {
	if re == "" {
		return ""
	}
	return label + "=~" + quote(re)
}
