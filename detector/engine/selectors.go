package engine

import (
	"github.com/prometheus/prometheus/prompb"

	"github.com/telltale-dev/telltale/pkg/remoteread"
	"github.com/telltale-dev/telltale/pkg/schema"
)

// Selector is one configured series selector, kept in both forms.
type Selector struct {
	text     string
	matchers []*prompb.LabelMatcher
}

// String is the selector as it was written.
func (s Selector) String() string { return s.text }

// DefaultSelectors are Telltale's own per-service metrics (see
// schema.DefaultSelector).
var DefaultSelectors = []string{schema.DefaultSelector()}

// ParseSelectors turns selector strings into matchers.
func ParseSelectors(texts []string) ([]Selector, error) {
	var out []Selector
	for _, t := range texts {
		ms, err := remoteread.ParseSelector(t)
		if err != nil {
			return nil, err
		}
		out = append(out, Selector{text: t, matchers: ms})
	}
	return out, nil
}
