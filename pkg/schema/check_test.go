package schema_test

import (
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"

	"github.com/telltale-dev/telltale/pkg/schema"
)

// family builds a parsed family of one series with the given labels.
func family(name string, typ dto.MetricType, help string, labels ...string) *dto.MetricFamily {
	m := &dto.Metric{}
	for _, l := range labels {
		m.Label = append(m.Label, &dto.LabelPair{Name: new(l), Value: new("x")})
	}
	return &dto.MetricFamily{Name: new(name), Type: typ.Enum(), Help: new(help), Metric: []*dto.Metric{m}}
}

// TestCheck: what follows the contract passes, and each kind of drift is
// reported, naming the family and what the contract says.
func TestCheck(t *testing.T) {
	cpu := schema.ServiceCPU
	score := schema.AnomalyScore
	ok := map[string]*dto.MetricFamily{
		cpu.Name:        family(cpu.Name, dto.MetricType_COUNTER, cpu.Help, cpu.Labels...),
		"go_goroutines": family("go_goroutines", dto.MetricType_GAUGE, "not ours"),
	}
	if errs := schema.Check(ok, schema.Exporter); len(errs) != 0 {
		t.Errorf("a conforming exposition: %v", errs)
	}
	// An open family may carry the scored series' labels too.
	open := map[string]*dto.MetricFamily{score.Name: family(score.Name, dto.MetricType_GAUGE, score.Help, append([]string{"job", "instance"}, score.Labels...)...)}
	if errs := schema.Check(open, schema.Detector); len(errs) != 0 {
		t.Errorf("an open family with more labels: %v", errs)
	}
	for _, tc := range []struct {
		name string
		fam  *dto.MetricFamily
		part schema.Part
		want string
	}{
		{"unknown", family("telltale_service_nonsense", dto.MetricType_GAUGE, "h", "service"), schema.Exporter, "not in the contract"},
		{"wrong part", family(score.Name, dto.MetricType_GAUGE, score.Help, score.Labels...), schema.Exporter, "belongs to the detector"},
		{"wrong type", family(cpu.Name, dto.MetricType_GAUGE, cpu.Help, cpu.Labels...), schema.Exporter, "exposed as a gauge, the contract says counter"},
		{"wrong help", family(cpu.Name, dto.MetricType_COUNTER, "CPU.", cpu.Labels...), schema.Exporter, "has help"},
		{"missing label", family(cpu.Name, dto.MetricType_COUNTER, cpu.Help, "service"), schema.Exporter, `missing ["mode"]`},
		{"extra label", family(cpu.Name, dto.MetricType_COUNTER, cpu.Help, "service", "mode", "pid"), schema.Exporter, `not in the contract ["pid"]`},
	} {
		errs := schema.Check(map[string]*dto.MetricFamily{tc.fam.GetName(): tc.fam}, tc.part)
		if len(errs) != 1 || !strings.Contains(errs[0].Error(), tc.want) || !strings.Contains(errs[0].Error(), tc.fam.GetName()) {
			t.Errorf("%s: %v, want one error naming %s and saying %q", tc.name, errs, tc.fam.GetName(), tc.want)
		}
	}
}
