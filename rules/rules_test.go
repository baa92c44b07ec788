// Package rules_test checks Telltale's Prometheus rules: promtool's own check
// and unit tests (real promtool, the Debian 2.42 the project tests against),
// then what promtool does not check: that every alert has a test that shows
// it firing and one that shows it silent, carries the annotations and labels
// an on-call engineer needs with a runbook section that exists, that
// recording rules follow the level:metric:operations convention and are
// documented, and that expressions only use metrics Telltale exposes.
package rules_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"
	"gopkg.in/yaml.v3"

	"github.com/telltale-dev/telltale/internal/contracttest"
	"github.com/telltale-dev/telltale/internal/promtest"
	"github.com/telltale-dev/telltale/pkg/kpi"
	"github.com/telltale-dev/telltale/pkg/schema"
)

// runbookURL is where the alerts' runbook_url annotations point: a section
// of RUNBOOK.md in this directory.
const runbookURL = "https://github.com/telltale-dev/telltale/blob/main/rules/RUNBOOK.md#"

// contractMetrics are the metrics the rules may read: what the exporter,
// the detector and pkg/kpi expose (the project's metric contract,
// pkg/schema), and Prometheus's own up.
var contractMetrics = append(schema.SeriesNames(""), "up")

// ruleFiles returns the rule files of this directory.
func ruleFiles(tb testing.TB) []string {
	tb.Helper()
	files, err := filepath.Glob("*.yml")
	if err != nil {
		tb.Fatal(err)
	}
	if len(files) == 0 {
		tb.Fatal("no rule files (*.yml) in rules/")
	}
	return files
}

// testFiles returns the promtool unit test files.
func testFiles(tb testing.TB) []string {
	tb.Helper()
	files, err := filepath.Glob(filepath.Join("tests", "*.test.yml"))
	if err != nil {
		tb.Fatal(err)
	}
	if len(files) == 0 {
		tb.Fatal("no promtool tests (tests/*.test.yml)")
	}
	return files
}

// loadRules parses every rule file with Prometheus's own rule parser.
func loadRules(tb testing.TB) map[string][]rulefmt.Rule {
	tb.Helper()
	out := map[string][]rulefmt.Rule{}
	for _, f := range ruleFiles(tb) {
		groups, errs := rulefmt.ParseFile(f, false, model.LegacyValidation)
		for _, err := range errs {
			tb.Errorf("%s: %v", f, err)
		}
		if groups == nil {
			continue
		}
		for _, g := range groups.Groups {
			out[f] = append(out[f], g.Rules...)
		}
	}
	return out
}

// parsedRule is a rule with its expression parsed.
type parsedRule struct {
	file string
	rule rulefmt.Rule
	expr parser.Expr
}

// name is the rule's alert or record name.
func (r parsedRule) name() string { return r.rule.Alert + r.rule.Record }

// parsedRules returns every rule whose expression parses, with it parsed
// (TestExpressionsUseKnownMetrics reports the others).
func parsedRules(tb testing.TB) []parsedRule {
	tb.Helper()
	var out []parsedRule
	for f, rules := range loadRules(tb) {
		for _, r := range rules {
			if e, err := parser.ParseExpr(r.Expr); err == nil {
				out = append(out, parsedRule{f, r, e})
			}
		}
	}
	return out
}

// runPromtool runs promtool with args in this directory and fails the test,
// showing its output, when it does not succeed.
func runPromtool(t *testing.T, args ...string) string {
	t.Helper()
	cmd := exec.Command(promtest.Promtool(t), args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("promtool %s: %v\n%s", strings.Join(args, " "), err, out.String())
	}
	return out.String()
}

func TestPromtoolCheckRules(t *testing.T) {
	out := runPromtool(t, append([]string{"check", "rules", "--lint=all", "--lint-fatal"}, ruleFiles(t)...)...)
	if n := strings.Count(out, "SUCCESS"); n != len(ruleFiles(t)) {
		t.Errorf("promtool check rules: %d of %d files succeeded:\n%s", n, len(ruleFiles(t)), out)
	}
}

func TestPromtoolUnitTests(t *testing.T) {
	out := runPromtool(t, append([]string{"test", "rules"}, testFiles(t)...)...)
	t.Logf("promtool test rules:\n%s", out)
}

// unitTestFile is the part of a promtool unit test file these checks read.
type unitTestFile struct {
	RuleFiles      []string `yaml:"rule_files"`
	GroupEvalOrder []string `yaml:"group_eval_order"`
	Tests          []struct {
		Name       string `yaml:"name"`
		AlertTests []struct {
			Alertname string `yaml:"alertname"`
			ExpAlerts []any  `yaml:"exp_alerts"`
		} `yaml:"alert_rule_test"`
	} `yaml:"tests"`
}

// TestEveryAlertFiresAndStaysSilent checks that each alert has at least one
// promtool case expecting it to fire and one expecting it not to, and that
// the tests name no alert that does not exist.
func TestEveryAlertFiresAndStaysSilent(t *testing.T) {
	alerts := map[string]bool{}
	for _, rules := range loadRules(t) {
		for _, r := range rules {
			if r.Alert != "" {
				alerts[r.Alert] = true
			}
		}
	}
	firing, silent := map[string]int{}, map[string]int{}
	for _, f := range testFiles(t) {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var tf unitTestFile
		if err := yaml.Unmarshal(b, &tf); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		for _, tc := range tf.Tests {
			for _, at := range tc.AlertTests {
				if !alerts[at.Alertname] {
					t.Errorf("%s (%s): tests alert %q, which no rule file defines", f, tc.Name, at.Alertname)
				}
				if len(at.ExpAlerts) > 0 {
					firing[at.Alertname]++
				} else {
					silent[at.Alertname]++
				}
			}
		}
	}
	names := make([]string, 0, len(alerts))
	for a := range alerts {
		names = append(names, a)
	}
	sort.Strings(names)
	for _, a := range names {
		if firing[a] == 0 {
			t.Errorf("alert %s has no promtool case in which it fires", a)
		}
		if silent[a] == 0 {
			t.Errorf("alert %s has no promtool case in which it stays silent", a)
		}
		t.Logf("%-36s firing cases %d, silent cases %d", a, firing[a], silent[a])
	}
}

// TestAlertAnnotations checks that every alert says what happened, why it
// matters and where the runbook is, with a severity the routing knows.
func TestAlertAnnotations(t *testing.T) {
	runbook, err := os.ReadFile("RUNBOOK.md")
	if err != nil {
		t.Fatal(err)
	}
	anchors := markdownAnchors(string(runbook))
	for f, rules := range loadRules(t) {
		for _, r := range rules {
			if r.Alert == "" {
				continue
			}
			for _, a := range []string{"summary", "description", "runbook_url"} {
				if strings.TrimSpace(r.Annotations[a]) == "" {
					t.Errorf("%s: alert %s has no %s annotation", f, r.Alert, a)
				}
			}
			if s := r.Labels["severity"]; s != "critical" && s != "warning" {
				t.Errorf("%s: alert %s has severity %q, want critical or warning", f, r.Alert, s)
			}
			u := r.Annotations["runbook_url"]
			anchor, ok := strings.CutPrefix(u, runbookURL)
			switch {
			case !ok:
				t.Errorf("%s: alert %s: runbook_url %q does not point into %s", f, r.Alert, u, runbookURL)
			case !anchors[anchor]:
				t.Errorf("%s: alert %s: runbook_url anchor #%s is not a heading of RUNBOOK.md", f, r.Alert, anchor)
			case anchor != strings.ToLower(r.Alert):
				t.Errorf("%s: alert %s: runbook_url points at #%s, not at its own section", f, r.Alert, anchor)
			}
		}
	}
}

// markdownAnchors returns the anchors GitHub gives the headings of a
// Markdown document: lower case, punctuation dropped, spaces as hyphens.
func markdownAnchors(doc string) map[string]bool {
	drop := regexp.MustCompile(`[^\p{L}\p{N} _-]`)
	out := map[string]bool{}
	for line := range strings.SplitSeq(doc, "\n") {
		if !strings.HasPrefix(line, "#") {
			continue
		}
		h := strings.TrimSpace(strings.TrimLeft(line, "#"))
		a := strings.ReplaceAll(drop.ReplaceAllString(strings.ToLower(h), ""), " ", "-")
		out[a] = true
	}
	return out
}

func TestMarkdownAnchors(t *testing.T) {
	got := markdownAnchors("# Title\n## TelltaleServiceGone\n## KPI objectives and error budgets\ntext # not a heading\n")
	for _, want := range []string{"title", "telltaleservicegone", "kpi-objectives-and-error-budgets"} {
		if !got[want] {
			t.Errorf("anchor %q missing from %v", want, got)
		}
	}
	if len(got) != 3 {
		t.Errorf("got %d anchors %v, want 3", len(got), got)
	}
}

// recordName is Prometheus's level:metric:operations naming convention.
var recordName = regexp.MustCompile(`^[a-z][a-z0-9_]*:[a-z][a-z0-9_]*:[a-z0-9_]+$`)

// TestRecordingRules checks the names of recording rules and that RUNBOOK.md
// documents each one.
func TestRecordingRules(t *testing.T) {
	runbook, err := os.ReadFile("RUNBOOK.md")
	if err != nil {
		t.Fatal(err)
	}
	for f, rules := range loadRules(t) {
		for _, r := range rules {
			if r.Record == "" {
				continue
			}
			if !recordName.MatchString(r.Record) {
				t.Errorf("%s: recording rule %q is not named level:metric:operations", f, r.Record)
			}
			if !bytes.Contains(runbook, []byte("`"+r.Record+"`")) {
				t.Errorf("%s: recording rule %s is not documented in RUNBOOK.md", f, r.Record)
			}
		}
	}
}

// TestExpressionsUseKnownMetrics parses every expression with Prometheus's
// parser and checks each selector's metric name against the contract and the
// recorded names, so that a typo cannot make a rule silently empty.
func TestExpressionsUseKnownMetrics(t *testing.T) {
	all := loadRules(t)
	known := map[string]bool{}
	for _, m := range contractMetrics {
		known[m] = true
	}
	for _, rules := range all {
		for _, r := range rules {
			if r.Record != "" {
				known[r.Record] = true
			}
		}
	}
	for f, rules := range all {
		for _, r := range rules {
			name := r.Alert + r.Record
			expr, err := parser.ParseExpr(r.Expr)
			if err != nil {
				t.Errorf("%s: %s: %v", f, name, err)
				continue
			}
			for _, m := range selectorNames(expr) {
				if !known[m] {
					t.Errorf("%s: %s reads %s, which neither Telltale exposes nor a rule records", f, name, m)
				}
			}
		}
	}
}

// selectorNames returns the metric names an expression selects by equality.
func selectorNames(expr parser.Expr) []string {
	var out []string
	parser.Inspect(expr, func(n parser.Node, _ []parser.Node) error {
		vs, ok := n.(*parser.VectorSelector)
		if !ok {
			return nil
		}
		for _, m := range vs.LabelMatchers {
			if m.Name == labels.MetricName && m.Type == labels.MatchEqual && !slices.Contains(out, m.Value) {
				out = append(out, m.Value)
			}
		}
		return nil
	})
	return out
}

// TestUnitTestFiles checks that every promtool test file loads rules from
// this directory and orders recording groups before alerting ones where it
// loads both (promtool otherwise evaluates groups in random order, and an
// alert could see the previous evaluation's recorded values).
func TestUnitTestFiles(t *testing.T) {
	for _, f := range testFiles(t) {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var tf unitTestFile
		if err := yaml.Unmarshal(b, &tf); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if len(tf.RuleFiles) == 0 {
			t.Errorf("%s: loads no rule files", f)
		}
		for _, rf := range tf.RuleFiles {
			groups, errs := rulefmt.ParseFile(filepath.Join("tests", rf), false, model.LegacyValidation)
			if len(errs) > 0 {
				t.Errorf("%s: rule file %s: %v", f, rf, errs)
				continue
			}
			recording := false
			for _, g := range groups.Groups {
				for _, r := range g.Rules {
					recording = recording || r.Record != ""
				}
			}
			if recording && len(groups.Groups) > 1 && len(tf.GroupEvalOrder) == 0 {
				t.Errorf("%s: %s has recording rules but the test sets no group_eval_order", f, rf)
			}
		}
	}
}

// TestRatioUnitsFromTheContract: every selector of the rules that picks
// KPIs by unit picks exactly pkg/kpi's RatioUnits, the units the datasource
// averages too (a share from two replicas is their mean, not their sum),
// and the KPI value rule has one.
func TestRatioUnitsFromTheContract(t *testing.T) {
	found := 0
	for _, r := range parsedRules(t) {
		parser.Inspect(r.expr, func(n parser.Node, _ []parser.Node) error {
			vs, ok := n.(*parser.VectorSelector)
			if !ok {
				return nil
			}
			for _, m := range vs.LabelMatchers {
				if m.Name != "unit" {
					continue
				}
				if m.Type != labels.MatchRegexp || m.Value != kpi.RatioUnitRegexp {
					t.Errorf("%s: %s selects unit %s%q, want =~%q (pkg/kpi.RatioUnits)", r.file, r.name(), m.Type, m.Value, kpi.RatioUnitRegexp)
				}
				if r.rule.Record == "kpi:telltale_kpi_value:current" {
					found++
				}
			}
			return nil
		})
	}
	if found == 0 {
		t.Error("kpi:telltale_kpi_value:current does not pick ratio KPIs by unit")
	}
}

// TestKPIValueFromTheContract derives what the KPI value rule must compute
// from pkg/kpi: each branch of kpi:telltale_kpi_value:current picks the
// KPI series of one type (and, for gauges, shares or not), and combines
// them with the aggregation kpi.Declaration.Aggregation gives for that type
// and unit — the same the datasource uses — reading counters and
// histograms as rates. Every type and unit kind has exactly one branch.
func TestKPIValueFromTheContract(t *testing.T) {
	const record = "kpi:telltale_kpi_value:current"
	var expr string
	for _, rules := range loadRules(t) {
		for _, r := range rules {
			if r.Record == record {
				expr = r.Expr
			}
		}
	}
	if expr == "" {
		t.Fatalf("no rule records %s", record)
	}
	e, err := parser.ParseExpr(expr)
	if err != nil {
		t.Fatal(err)
	}
	var branches []parser.Expr
	var split func(parser.Expr)
	split = func(e parser.Expr) {
		e = contracttest.Unparen(e)
		if b, ok := e.(*parser.BinaryExpr); ok && b.Op == parser.LOR {
			split(b.LHS)
			split(b.RHS)
			return
		}
		branches = append(branches, e)
	}
	split(e)
	covered := map[string]int{}
	for _, b := range branches {
		// The type the branch selects, whether it keeps only shares (and)
		// or drops them (unless), whether it takes a rate, and its
		// aggregation.
		var typ schema.Type
		share, rated := "", false
		parser.Inspect(b, func(n parser.Node, _ []parser.Node) error {
			switch n := n.(type) {
			case *parser.VectorSelector:
				for _, m := range n.LabelMatchers {
					if m.Name == schema.LabelType && m.Type == labels.MatchEqual && n.Name == "kpi:telltale_kpi_series:select" {
						typ = schema.Type(m.Value)
					}
				}
			case *parser.BinaryExpr:
				if strings.Contains(n.RHS.String(), schema.LabelUnit+"=~") {
					share = n.Op.String()
				}
			case *parser.Call:
				rated = rated || n.Func.Name == "rate"
			}
			return nil
		})
		agg := ""
		switch top := contracttest.Unparen(b).(type) {
		case *parser.AggregateExpr:
			agg = top.Op.String()
		case *parser.Call:
			agg = top.Func.Name
		}
		unit := "items"
		if share == "and" {
			unit = kpi.RatioUnits[0]
		}
		d := kpi.Declaration{Type: typ, Unit: unit}
		kind := string(typ) + " " + unit
		covered[kind]++
		if agg != d.Aggregation() {
			t.Errorf("%s: the %s branch aggregates with %s; pkg/kpi says %s (%s)", record, kind, agg, d.Aggregation(), b)
		}
		if rated != d.Counts() {
			t.Errorf("%s: the %s branch takes a rate: %v; pkg/kpi says %v", record, kind, rated, d.Counts())
		}
		if typ == schema.Gauge && share == "" {
			t.Errorf("%s: the gauge branch %s does not tell shares from other gauges", record, b)
		}
	}
	for _, kind := range []string{"counter items", "gauge items", "gauge " + kpi.RatioUnits[0], "histogram items"} {
		if covered[kind] != 1 {
			t.Errorf("%s: %d branches for %s KPIs, want 1", record, covered[kind], kind)
		}
	}
}

// TestAlertScoreFromTheContract: every comparison of the detector's score
// with a number in the rules is with schema.AlertScore, the threshold the
// datasource and pkg/anomaly use, and there is one.
func TestAlertScoreFromTheContract(t *testing.T) {
	found := 0
	for _, r := range parsedRules(t) {
		for _, v := range contracttest.ScoreThresholds(r.expr) {
			found++
			if v != schema.AlertScore {
				t.Errorf("%s: %s compares %s with %v; the alerting score is %v (pkg/schema.AlertScore)", r.file, r.name(), schema.AnomalyScore.Name, v, schema.AlertScore)
			}
		}
	}
	if found == 0 {
		t.Errorf("no rule compares %s with a threshold", schema.AnomalyScore.Name)
	}
}

// TestCountersFromTheContract: rate, irate, increase and resets read only
// the contract's counters (pkg/schema's counter rule), never a gauge.
func TestCountersFromTheContract(t *testing.T) {
	rated := 0
	for _, r := range parsedRules(t) {
		names := contracttest.RatedNames(r.expr)
		rated += len(names)
		for _, msg := range contracttest.ContractCounterErrors(names) {
			t.Errorf("%s: %s: %s", r.file, r.name(), msg)
		}
	}
	if rated == 0 {
		t.Error("no rule takes a rate: the check proves nothing")
	}
}
