package remoteread

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/prometheus/prompb"

	"github.com/telltale-dev/telltale/pkg/schema"
)

func TestParseSelector(t *testing.T) {
	tests := []struct {
		selector string
		want     []*prompb.LabelMatcher
		wantErr  bool
	}{
		{selector: `up`, want: []*prompb.LabelMatcher{{Type: prompb.LabelMatcher_EQ, Name: "__name__", Value: "up"}}},
		{
			selector: `{__name__=~"` + schema.ServicePrefix + `.*",__name__!~".*_info",service!=""}`,
			want: []*prompb.LabelMatcher{
				{Type: prompb.LabelMatcher_RE, Name: "__name__", Value: schema.ServicePrefix + ".*"},
				{Type: prompb.LabelMatcher_NRE, Name: "__name__", Value: ".*_info"},
				{Type: prompb.LabelMatcher_NEQ, Name: "service", Value: ""},
			},
		},
		{selector: ``, wantErr: true},
		{selector: `{job=~"a"`, wantErr: true},
		{selector: `rate(up[5m])`, wantErr: true},
		{selector: `{}`, wantErr: true},
		{selector: `{job=~".*"}`, wantErr: true},
	}
	for _, tt := range tests {
		got, err := ParseSelector(tt.selector)
		if (err != nil) != tt.wantErr {
			t.Errorf("ParseSelector(%q) error = %v, want error %v", tt.selector, err, tt.wantErr)
			continue
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("ParseSelector(%q) (-want +got):\n%s", tt.selector, diff)
		}
	}
}

func TestNewQuery(t *testing.T) {
	start := time.UnixMilli(1_700_000_000_123)
	q := NewQuery(start, start.Add(time.Hour), nil)
	if q.StartTimestampMs != 1_700_000_000_123 || q.EndTimestampMs != 1_700_003_600_123 {
		t.Errorf("query range %d..%d", q.StartTimestampMs, q.EndTimestampMs)
	}
}
