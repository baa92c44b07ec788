package schema_test

import (
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"

	"github.com/telltale-dev/telltale/pkg/schema"
)

// TestFamilies checks every family of the contract: a valid, unique name
// that says what it is (a counter's ends in _total, nothing else's does,
// and a histogram's is not one of its own series' names), help, a known
// part, and valid, distinct labels.
func TestFamilies(t *testing.T) {
	seen := map[string]bool{}
	for _, m := range schema.All {
		if !model.IsValidLegacyMetricName(m.Name) || !strings.HasPrefix(m.Name, "telltale_") {
			t.Errorf("%q: not a telltale_ metric name", m.Name)
		}
		for _, n := range m.SeriesNames() {
			if seen[n] {
				t.Errorf("%s: series name %s is taken twice", m.Name, n)
			}
			seen[n] = true
		}
		if total := strings.HasSuffix(m.Name, "_total"); total != (m.Type == schema.Counter) {
			t.Errorf("%s: a %s whose name ends in _total: %v", m.Name, m.Type, total)
		}
		if got := schema.IsCounter(m.Name); got != (m.Type == schema.Counter) {
			t.Errorf("IsCounter(%s) = %v for a %s", m.Name, got, m.Type)
		}
		if m.Type == schema.Histogram {
			for _, n := range m.SeriesNames() {
				if n != m.Name+"_bucket" && n != m.Name+"_sum" && n != m.Name+"_count" {
					t.Errorf("%s: histogram series %s", m.Name, n)
				}
				if !schema.IsCounter(n) {
					t.Errorf("IsCounter(%s) = false for a histogram's cumulative series", n)
				}
			}
		}
		if m.Help == "" && !strings.HasSuffix(m.Name, "_build_info") {
			t.Errorf("%s: no help", m.Name)
		}
		if !slices.Contains([]schema.Part{schema.Exporter, schema.Detector, schema.App}, m.Part) {
			t.Errorf("%s: part %q", m.Name, m.Part)
		}
		for i, l := range m.Labels {
			if !model.LabelName(l).IsValidLegacy() || strings.HasPrefix(l, "__") || slices.Contains(m.Labels[:i], l) {
				t.Errorf("%s: label %q invalid or repeated", m.Name, l)
			}
		}
		if got, ok := schema.Lookup(m.Name); !ok || got.Name != m.Name {
			t.Errorf("Lookup(%s) = %v, %v", m.Name, got.Name, ok)
		}
	}
	if _, ok := schema.Lookup("telltale_nothing"); ok {
		t.Error("Lookup found a family that is not in the contract")
	}
	for _, n := range []string{"up", "http_requests", "go_goroutines", "a_total_x"} {
		if schema.IsCounter(n) {
			t.Errorf("IsCounter(%s) = true", n)
		}
	}
}

// TestDefaultSelector checks the detector's default selector against the
// families: it picks exactly the per-service series that are not facts
// (_info), the start time or histogram buckets.
func TestDefaultSelector(t *testing.T) {
	ms, err := parser.ParseMetricSelector(schema.DefaultSelector())
	if err != nil {
		t.Fatalf("DefaultSelector %s: %v", schema.DefaultSelector(), err)
	}
	picks := func(name string) bool {
		for _, m := range ms {
			if m.Name == labels.MetricName && !m.Matches(name) {
				return false
			}
		}
		return true
	}
	scored := 0
	for _, m := range schema.All {
		for _, n := range m.SeriesNames() {
			want := m.Part == schema.Exporter && slices.Contains(m.Labels, schema.LabelService) &&
				!strings.HasSuffix(n, "_info") && !strings.HasSuffix(n, "_bucket") && m.Name != schema.ServiceStartTime.Name
			if picks(n) != want {
				t.Errorf("DefaultSelector picks %s: %v, want %v", n, picks(n), want)
			}
			if want {
				scored++
			}
		}
	}
	if scored < 10 {
		t.Errorf("DefaultSelector picks %d series names; the exporter's per-service resources are more", scored)
	}
}

// TestEdgeBy checks the grouping list is the edge labels in order.
func TestEdgeBy(t *testing.T) {
	if got := strings.Split(schema.EdgeBy(), ", "); !slices.Equal(got, schema.EdgeLabels) {
		t.Errorf("EdgeBy() = %q, want %q joined", schema.EdgeBy(), schema.EdgeLabels)
	}
	for _, m := range schema.All {
		if strings.HasPrefix(m.Name, "telltale_edge_") && len(m.Labels) > 0 && !slices.Equal(m.Labels, schema.EdgeLabels) {
			t.Errorf("%s: labels %q, want the edge labels %q", m.Name, m.Labels, schema.EdgeLabels)
		}
	}
}

// TestFamiliesDocumented: every family of the contract is in its part's
// README (the exporter's and pkg/kpi's in README.md, the detector's in
// detector/README.md), by its name or, in a row that lists several of one
// prefix, as `…_<rest of the name>`.
func TestFamiliesDocumented(t *testing.T) {
	docs := map[schema.Part]string{}
	for part, path := range map[schema.Part]string{schema.Exporter: "../../README.md", schema.App: "../../README.md", schema.Detector: "../../detector/README.md"} {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		docs[part] = string(b)
	}
	for _, m := range schema.All {
		doc := docs[m.Part]
		if strings.Contains(doc, m.Name) {
			continue
		}
		// "telltale_service_disk_read_bytes_total, …_disk_written_bytes_total"
		found := false
		for i := range len(m.Name) {
			if m.Name[i] == '_' && i > len("telltale") && strings.Contains(doc, "…"+m.Name[i:]) && strings.Contains(doc, m.Name[:i]+"_") {
				found = true
				break
			}
		}
		if !found {
			t.Errorf("%s (%s) is not documented in its README", m.Name, m.Part)
		}
	}
}
