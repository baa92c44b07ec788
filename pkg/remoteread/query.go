package remoteread

import (
	"fmt"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/prompb"
	"github.com/prometheus/prometheus/promql/parser"
)

// ParseSelector parses a PromQL series selector such as
// `http_requests_total{job="api"}` or `{__name__=~"node_.*"}`
// into remote-read matchers. As in PromQL, at least one matcher must not
// match the empty string, so a selector cannot ask for every series.
func ParseSelector(selector string) ([]*prompb.LabelMatcher, error) {
	ms, err := parser.ParseMetricSelector(selector)
	if err != nil {
		return nil, fmt.Errorf("parse selector %q: %w", selector, err)
	}
	for _, m := range ms {
		if !m.Matches("") {
			return Matchers(ms), nil
		}
	}
	return nil, fmt.Errorf("selector %q would select every series: give at least one matcher that does not match the empty string, e.g. a metric name", selector)
}

// Matchers converts Prometheus label matchers to their protobuf form.
func Matchers(ms []*labels.Matcher) []*prompb.LabelMatcher {
	out := make([]*prompb.LabelMatcher, 0, len(ms))
	for _, m := range ms {
		var t prompb.LabelMatcher_Type
		switch m.Type {
		case labels.MatchEqual:
			t = prompb.LabelMatcher_EQ
		case labels.MatchNotEqual:
			t = prompb.LabelMatcher_NEQ
		case labels.MatchRegexp:
			t = prompb.LabelMatcher_RE
		case labels.MatchNotRegexp:
			t = prompb.LabelMatcher_NRE
		}
		out = append(out, &prompb.LabelMatcher{Type: t, Name: m.Name, Value: m.Value})
	}
	return out
}

// NewQuery returns a query for the series the matchers select between start
// and end, both inclusive, at millisecond precision.
func NewQuery(start, end time.Time, matchers []*prompb.LabelMatcher) *prompb.Query {
	return &prompb.Query{
		StartTimestampMs: start.UnixMilli(),
		EndTimestampMs:   end.UnixMilli(),
		Matchers:         matchers,
	}
}
