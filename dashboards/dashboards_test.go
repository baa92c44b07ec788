// Package dashboards_test checks Telltale's Grafana dashboards without a
// Grafana (none can be installed here): that each is a dashboard Grafana
// loads (uid, title, current schemaVersion, a sane grid), that every panel
// reads from a provisioned datasource or a datasource variable, that every
// PromQL expression parses with Prometheus's own parser and reads only
// metrics Telltale exposes or its rules record, that every Telltale query is
// one the datasource backend accepts, and that links between dashboards
// lead somewhere. live_test.go (build tag e2e) runs every panel against the demo stack.
package dashboards_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/backend"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"
	"gopkg.in/yaml.v3"

	"github.com/telltale-dev/telltale/datasource/pkg/plugin"
	"github.com/telltale-dev/telltale/demo/stack"
	"github.com/telltale-dev/telltale/internal/contracttest"
	"github.com/telltale-dev/telltale/pkg/schema"
)

// schemaVersion is the dashboard schema version of current Grafana (12.x):
// 42, the last of the v1 dashboard JSON model.
const schemaVersion = 42

// Datasource types and the uids provisioning/datasources gives them.
const (
	promType     = "prometheus"
	telltaleType = plugin.PluginID
)

// dsRef is a datasource reference as dashboards store it.
type dsRef struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

// panel is the part of a panel the checks read. Targets stay maps: their
// fields depend on the datasource.
type panel struct {
	ID          int              `json:"id"`
	Type        string           `json:"type"`
	Title       string           `json:"title"`
	Description string           `json:"description"`
	Datasource  *dsRef           `json:"datasource"`
	Targets     []map[string]any `json:"targets"`
	GridPos     struct {
		X, Y, W, H int
	} `json:"gridPos"`
	Panels          []panel          `json:"panels"`
	Transformations []map[string]any `json:"transformations"`
}

// variable is a templating variable.
type variable struct {
	Name       string         `json:"name"`
	Type       string         `json:"type"`
	Query      any            `json:"query"`
	Definition string         `json:"definition"`
	Datasource *dsRef         `json:"datasource"`
	Current    map[string]any `json:"current"`
	Multi      bool           `json:"multi"`
	IncludeAll bool           `json:"includeAll"`
	AllValue   string         `json:"allValue"`
	Regex      string         `json:"regex"`
	Sort       int            `json:"sort"`
}

// annotation is an annotation query.
type annotation struct {
	Name       string         `json:"name"`
	BuiltIn    int            `json:"builtIn"`
	Datasource *dsRef         `json:"datasource"`
	Target     map[string]any `json:"target"`
}

// dashboard is the part of a dashboard the checks read.
type dashboard struct {
	UID           string   `json:"uid"`
	Title         string   `json:"title"`
	SchemaVersion int      `json:"schemaVersion"`
	Tags          []string `json:"tags"`
	Time          struct {
		From, To string
	} `json:"time"`
	Panels     []panel `json:"panels"`
	Templating struct {
		List []variable `json:"list"`
	} `json:"templating"`
	Annotations struct {
		List []annotation `json:"list"`
	} `json:"annotations"`

	file string
	raw  map[string]any
}

// loadDashboards reads every dashboard of this directory.
func loadDashboards(tb testing.TB) []*dashboard {
	tb.Helper()
	files, err := filepath.Glob("*.json")
	if err != nil {
		tb.Fatal(err)
	}
	if len(files) == 0 {
		tb.Fatal("no dashboards (*.json) in dashboards/")
	}
	var out []*dashboard
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			tb.Fatal(err)
		}
		d := &dashboard{file: f}
		if err := json.Unmarshal(b, d); err != nil {
			tb.Errorf("%s: not a dashboard: %v", f, err)
			continue
		}
		if err := json.Unmarshal(b, &d.raw); err != nil {
			tb.Fatal(err)
		}
		out = append(out, d)
	}
	return out
}

// allPanels returns a dashboard's panels, those inside collapsed rows
// included, without the rows themselves.
func (d *dashboard) allPanels() []panel {
	var out []panel
	var walk func([]panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			if p.Type == "row" {
				walk(p.Panels)
				continue
			}
			out = append(out, p)
		}
	}
	walk(d.Panels)
	return out
}

// variable returns the dashboard's variable called name.
func (d *dashboard) variable(name string) *variable {
	for i := range d.Templating.List {
		if d.Templating.List[i].Name == name {
			return &d.Templating.List[i]
		}
	}
	return nil
}

// queryString returns a query variable's query: Grafana stores it as a
// string or, for Prometheus, as an object with a query field.
func (v variable) queryString() string {
	switch q := v.Query.(type) {
	case string:
		return q
	case map[string]any:
		s, _ := q["query"].(string)
		return s
	}
	return v.Definition
}

// provisioned reads provisioning/datasources and returns each datasource's
// type by uid, with its settings.
func provisioned(tb testing.TB) map[string]provisionedDS {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join("..", "provisioning", "datasources", "telltale.yml"))
	if err != nil {
		tb.Fatal(err)
	}
	var f struct {
		APIVersion  int             `yaml:"apiVersion"`
		Datasources []provisionedDS `yaml:"datasources"`
	}
	if err := yaml.Unmarshal(b, &f); err != nil {
		tb.Fatalf("provisioning/datasources/telltale.yml: %v", err)
	}
	out := map[string]provisionedDS{}
	for _, ds := range f.Datasources {
		out[ds.UID] = ds
	}
	return out
}

// provisionedDS is a datasource of Grafana's provisioning file.
type provisionedDS struct {
	Name     string         `yaml:"name"`
	UID      string         `yaml:"uid"`
	Type     string         `yaml:"type"`
	Access   string         `yaml:"access"`
	URL      string         `yaml:"url"`
	JSONData map[string]any `yaml:"jsonData"`
}

// sampleValues are the values variables take when expressions are parsed:
// what a user could pick, and what Grafana gives its own variables for an
// hour's range on a wide panel.
var sampleValues = map[string]string{
	"datasource": "prometheus", "telltale": "telltale",
	"host": "127.0.0.1:10171", "service": "checkout", "kpi": "checkout_latency",
	"metric":          schema.ServiceCPU.Name,
	"__rate_interval": "1m", "__interval": "15s", "__interval_ms": "15000",
	"__range": "1h", "__range_s": "3600", "__range_ms": "3600000",
}

// builtinVariables are Grafana's own variables, which dashboards use without
// defining them.
var builtinVariables = []string{
	"__interval", "__interval_ms", "__rate_interval", "__range", "__range_s", "__range_ms",
	"__from", "__to", "__data", "__value", "__url_time_range", "__all", "__dashboard",
	"__org", "__user", "__field", "__series", "__name", "timeFilter",
}

// variableRE matches $name, ${name}, ${name:format} and ${name.path} (data
// links), and [[name]]. A $ before a digit is PromQL's label_replace
// reference, not a variable.
var variableRE = regexp.MustCompile(`\$([A-Za-z_]\w*)|\$\{([A-Za-z_]\w*)[^}]*\}|\[\[([A-Za-z_]\w*)(?::[^\]]*)?\]\]`)

// interpolate replaces variables with values[name], as Grafana would
// before sending a query; a variable without a value is an error.
func interpolate(s string, values map[string]string) (string, error) {
	var missing []string
	out := variableRE.ReplaceAllStringFunc(s, func(m string) string {
		sub := variableRE.FindStringSubmatch(m)
		name := sub[1] + sub[2] + sub[3]
		v, ok := values[name]
		if !ok {
			missing = append(missing, m)
			return m
		}
		return v
	})
	if len(missing) > 0 {
		return "", fmt.Errorf("no value for %s", strings.Join(missing, ", "))
	}
	return out, nil
}

func TestInterpolate(t *testing.T) {
	for _, tc := range []struct{ in, want, err string }{
		{in: `rate(x{service="$service"}[$__rate_interval])`, want: `rate(x{service="checkout"}[1m])`},
		{in: `x{instance=~"${host:regex}"}`, want: `x{instance=~"127.0.0.1:10171"}`},
		{in: `[[service]] and label_replace(x, "a", "$1", "b", "(.*)")`, want: `checkout and label_replace(x, "a", "$1", "b", "(.*)")`},
		{in: `x{a="$nope"}`, err: "no value for $nope"},
	} {
		got, err := interpolate(tc.in, sampleValues)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("interpolate(%q): error %v, want %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("interpolate(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

// recordedAndKnownMetrics returns the metric names dashboards may read:
// those the rules record, Telltale's own (the contract, pkg/schema), and the
// Prometheus and process metrics the self-monitoring dashboard reads.
func recordedAndKnownMetrics(tb testing.TB) map[string]bool {
	tb.Helper()
	known := map[string]bool{}
	for _, m := range append(schema.SeriesNames(""),
		"up", "ALERTS", "process_cpu_seconds_total", "process_resident_memory_bytes",
		"prometheus_rule_evaluation_failures_total") {
		known[m] = true
	}
	files, err := filepath.Glob(filepath.Join("..", "rules", "*.yml"))
	if err != nil {
		tb.Fatal(err)
	}
	for _, f := range files {
		groups, errs := rulefmt.ParseFile(f, false, model.LegacyValidation)
		if len(errs) > 0 {
			tb.Fatalf("%s: %v", f, errs)
		}
		for _, g := range groups.Groups {
			for _, r := range g.Rules {
				if r.Record != "" {
					known[r.Record] = true
				}
			}
		}
	}
	return known
}

// metricNames returns the metric names an expression selects by equality.
func metricNames(expr parser.Expr) []string {
	var out []string
	parser.Inspect(expr, func(n parser.Node, _ []parser.Node) error {
		if vs, ok := n.(*parser.VectorSelector); ok {
			for _, m := range vs.LabelMatchers {
				if m.Name == labels.MetricName && m.Type == labels.MatchEqual && !slices.Contains(out, m.Value) {
					out = append(out, m.Value)
				}
			}
		}
		return nil
	})
	return out
}

// variableQueryExpr returns the PromQL inside a Prometheus variable query:
// label_values(selector, label), label_values(label), query_result(expr),
// metrics(regex) (none).
func variableQueryExpr(q string) (string, error) {
	q = strings.TrimSpace(q)
	switch {
	case strings.HasPrefix(q, "query_result(") && strings.HasSuffix(q, ")"):
		return q[len("query_result(") : len(q)-1], nil
	case strings.HasPrefix(q, "label_values(") && strings.HasSuffix(q, ")"):
		args := q[len("label_values(") : len(q)-1]
		i := strings.LastIndexByte(args, ',')
		if i < 0 {
			return "", nil
		}
		if l := strings.TrimSpace(args[i+1:]); !model.LabelName(l).IsValidLegacy() {
			return "", fmt.Errorf("label_values: %q is not a label name", l)
		}
		return args[:i], nil
	}
	return "", fmt.Errorf("%q is not a Prometheus variable query Telltale's dashboards use (label_values, query_result)", q)
}

// telltaleQuery checks a Telltale target the way the backend does, after
// the frontend has replaced the dashboard's variables.
func telltaleQuery(target map[string]any, values map[string]string) error {
	m := map[string]any{}
	for k, v := range target {
		if s, ok := v.(string); ok && k != "refId" {
			s, err := interpolate(s, values)
			if err != nil {
				return err
			}
			v = s
		}
		m[k] = v
	}
	qt, _ := m["queryType"].(string)
	if !slices.Contains(plugin.QueryTypes, qt) {
		return fmt.Errorf("queryType %q: want one of %v", qt, plugin.QueryTypes)
	}
	for k := range m {
		if !slices.Contains([]string{"refId", "datasource", "queryType", "kpi", "selector", "service", "host", "hide"}, k) {
			return fmt.Errorf("field %q is not part of the Telltale query model", k)
		}
	}
	raw, err := json.Marshal(m)
	if err != nil {
		return err
	}
	now := time.Now()
	_, err = plugin.ParseQuery(backend.DataQuery{
		RefID: "A", QueryType: qt, JSON: raw, Interval: 15 * time.Second, MaxDataPoints: 1000,
		TimeRange: backend.TimeRange{From: now.Add(-time.Hour), To: now},
	}, false)
	return err
}

func TestDashboardModel(t *testing.T) {
	uids, titles := map[string]string{}, map[string]string{}
	uidRE := regexp.MustCompile(`^[A-Za-z0-9_-]{1,40}$`)
	for _, d := range loadDashboards(t) {
		if !uidRE.MatchString(d.UID) {
			t.Errorf("%s: uid %q: want 1 to 40 letters, digits, - or _", d.file, d.UID)
		}
		if prev, ok := uids[d.UID]; ok {
			t.Errorf("%s: uid %q already used by %s", d.file, d.UID, prev)
		}
		uids[d.UID] = d.file
		if strings.TrimSpace(d.Title) == "" {
			t.Errorf("%s: no title", d.file)
		}
		if prev, ok := titles[d.Title]; ok {
			t.Errorf("%s: title %q already used by %s", d.file, d.Title, prev)
		}
		titles[d.Title] = d.file
		if d.SchemaVersion != schemaVersion {
			t.Errorf("%s: schemaVersion %d, want %d", d.file, d.SchemaVersion, schemaVersion)
		}
		if !slices.Contains(d.Tags, "telltale") {
			t.Errorf("%s: tags %v lack telltale (the dashboards' links list dashboards by that tag)", d.file, d.Tags)
		}
		if d.Time.From == "" || d.Time.To == "" {
			t.Errorf("%s: no default time range", d.file)
		}
		if id, ok := d.raw["id"]; ok && id != nil {
			t.Errorf("%s: id %v: provisioned and imported dashboards must have a null id", d.file, id)
		}
		checkGrid(t, d)
	}
}

// checkGrid checks panel ids, titles, types and positions.
func checkGrid(t *testing.T, d *dashboard) {
	t.Helper()
	known := []string{"timeseries", "table", "stat", "bargauge", "gauge", "nodeGraph", "state-timeline", "text", "row"}
	ids := map[int]bool{}
	type rect struct {
		x, y, w, h int
		title      string
	}
	var rects []rect
	var walk func([]panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			if ids[p.ID] || p.ID <= 0 {
				t.Errorf("%s: panel %q: id %d is not a unique positive number", d.file, p.Title, p.ID)
			}
			ids[p.ID] = true
			if !slices.Contains(known, p.Type) {
				t.Errorf("%s: panel %q: type %q is not a core Grafana panel", d.file, p.Title, p.Type)
			}
			if strings.TrimSpace(p.Title) == "" {
				t.Errorf("%s: panel %d has no title", d.file, p.ID)
			}
			if p.Type != "row" && strings.TrimSpace(p.Description) == "" {
				t.Errorf("%s: panel %q has no description", d.file, p.Title)
			}
			g := p.GridPos
			if g.W < 1 || g.H < 1 || g.X < 0 || g.Y < 0 || g.X+g.W > 24 {
				t.Errorf("%s: panel %q: gridPos %+v is outside the 24-column grid", d.file, p.Title, g)
			}
			r := rect{g.X, g.Y, g.W, g.H, p.Title}
			for _, o := range rects {
				if r.x < o.x+o.w && o.x < r.x+r.w && r.y < o.y+o.h && o.y < r.y+r.h {
					t.Errorf("%s: panels %q and %q overlap", d.file, o.title, r.title)
				}
			}
			rects = append(rects, r)
			walk(p.Panels)
		}
	}
	walk(d.Panels)
}

// TestDatasources checks that every panel, target, variable and annotation
// reads from a datasource variable or a provisioned uid of the right type,
// and that the datasource variables default to the provisioned uids.
func TestDatasources(t *testing.T) {
	prov := provisioned(t)
	for uid, want := range map[string]string{"prometheus": promType, "telltale": telltaleType} {
		if prov[uid].Type != want {
			t.Errorf("provisioning: datasource uid %q has type %q, want %q", uid, prov[uid].Type, want)
		}
	}
	for _, d := range loadDashboards(t) {
		dsVars := map[string]string{} // variable name -> datasource type
		for _, v := range d.Templating.List {
			if v.Type != "datasource" {
				continue
			}
			q, _ := v.Query.(string)
			dsVars[v.Name] = q
			cur, _ := v.Current["value"].(string)
			if p, ok := prov[cur]; !ok || p.Type != q {
				t.Errorf("%s: datasource variable %s (type %s) defaults to %q, not a provisioned %s datasource", d.file, v.Name, q, cur, q)
			}
		}
		if dsVars["datasource"] != promType || dsVars["telltale"] != telltaleType {
			t.Errorf("%s: datasource variables %v, want datasource (prometheus) and telltale (%s)", d.file, dsVars, telltaleType)
		}
		check := func(where string, ref *dsRef) {
			if ref == nil {
				t.Errorf("%s: %s has no datasource", d.file, where)
				return
			}
			if name, ok := strings.CutPrefix(ref.UID, "${"); ok {
				name = strings.TrimSuffix(name, "}")
				if typ, ok := dsVars[name]; !ok || typ != ref.Type {
					t.Errorf("%s: %s: datasource %s of type %s is not a datasource variable of that type", d.file, where, ref.UID, ref.Type)
				}
				return
			}
			if p, ok := prov[ref.UID]; !ok || p.Type != ref.Type {
				t.Errorf("%s: %s: datasource uid %q (type %s) is neither a variable nor a provisioned datasource of that type", d.file, where, ref.UID, ref.Type)
			}
		}
		for _, p := range d.allPanels() {
			if p.Type == "text" {
				continue
			}
			check(fmt.Sprintf("panel %q", p.Title), p.Datasource)
			if len(p.Targets) == 0 {
				t.Errorf("%s: panel %q has no queries", d.file, p.Title)
			}
			for _, tg := range p.Targets {
				ref := targetDatasource(tg)
				check(fmt.Sprintf("panel %q query %v", p.Title, tg["refId"]), ref)
				if ref != nil && p.Datasource != nil && *ref != *p.Datasource {
					t.Errorf("%s: panel %q: query %v reads %v, the panel %v (mixed panels are not used)", d.file, p.Title, tg["refId"], *ref, *p.Datasource)
				}
			}
		}
		for _, v := range d.Templating.List {
			if v.Type == "query" {
				check("variable "+v.Name, v.Datasource)
			}
		}
		for _, a := range d.Annotations.List {
			if a.BuiltIn == 1 {
				continue
			}
			check("annotation "+a.Name, a.Datasource)
		}
	}
}

// targetDatasource returns a target's datasource reference.
func targetDatasource(tg map[string]any) *dsRef {
	m, ok := tg["datasource"].(map[string]any)
	if !ok {
		return nil
	}
	typ, _ := m["type"].(string)
	uid, _ := m["uid"].(string)
	return &dsRef{Type: typ, UID: uid}
}

// TestQueries parses every PromQL expression (targets and variable queries)
// with Prometheus's parser after replacing the variables, checks the metric
// names it reads, and checks every Telltale query with the datasource
// backend's own parser.
func TestQueries(t *testing.T) {
	known := recordedAndKnownMetrics(t)
	n := map[string]int{}
	checkExpr := func(d *dashboard, where, expr string) {
		t.Helper()
		s, err := interpolate(expr, sampleValues)
		if err != nil {
			t.Errorf("%s: %s: %v", d.file, where, err)
			return
		}
		e, err := parser.ParseExpr(s)
		if err != nil {
			t.Errorf("%s: %s: %q does not parse: %v", d.file, where, s, err)
			return
		}
		n["promql"]++
		for _, m := range metricNames(e) {
			if !known[m] {
				t.Errorf("%s: %s reads %s, which neither Telltale exposes nor its rules record", d.file, where, m)
			}
		}
	}
	for _, d := range loadDashboards(t) {
		for _, p := range d.allPanels() {
			for _, tg := range p.Targets {
				where := fmt.Sprintf("panel %q query %v", p.Title, tg["refId"])
				ref := targetDatasource(tg)
				if ref == nil {
					continue // TestDatasources reports it
				}
				switch ref.Type {
				case promType:
					expr, _ := tg["expr"].(string)
					if strings.TrimSpace(expr) == "" {
						t.Errorf("%s: %s has no expression", d.file, where)
						continue
					}
					checkExpr(d, where, expr)
				case telltaleType:
					if err := telltaleQuery(tg, sampleValues); err != nil {
						t.Errorf("%s: %s: the Telltale backend refuses it: %v", d.file, where, err)
					}
					n["telltale"]++
				}
			}
		}
		for _, v := range d.Templating.List {
			if v.Type != "query" {
				continue
			}
			expr, err := variableQueryExpr(v.queryString())
			if err != nil {
				t.Errorf("%s: variable %s: %v", d.file, v.Name, err)
				continue
			}
			if expr != "" {
				checkExpr(d, "variable "+v.Name, expr)
			}
			if v.Regex != "" {
				if _, err := regexp.Compile(strings.Trim(v.Regex, "/")); err != nil {
					t.Errorf("%s: variable %s: regex %q: %v", d.file, v.Name, v.Regex, err)
				}
			}
		}
		for _, a := range d.Annotations.List {
			if a.BuiltIn == 1 || a.Datasource == nil {
				continue
			}
			if a.Datasource.Type != telltaleType {
				t.Errorf("%s: annotation %s reads %s: annotations come from the Telltale datasource's deploys", d.file, a.Name, a.Datasource.Type)
				continue
			}
			if err := telltaleQuery(a.Target, sampleValues); err != nil {
				t.Errorf("%s: annotation %s: the Telltale backend refuses it: %v", d.file, a.Name, err)
			}
			n["telltale"]++
		}
	}
	t.Logf("%d PromQL expressions parsed, %d Telltale queries accepted", n["promql"], n["telltale"])
	if n["promql"] == 0 || n["telltale"] == 0 {
		t.Errorf("checked %v: want PromQL and Telltale queries", n)
	}
}

// TestVariablesDefined checks that every variable a dashboard refers to
// anywhere (queries, titles, links) is one of its own or Grafana's.
func TestVariablesDefined(t *testing.T) {
	for _, d := range loadDashboards(t) {
		defined := map[string]bool{}
		for _, v := range d.Templating.List {
			defined[v.Name] = true
		}
		seen := map[string]bool{}
		walkStrings(d.raw, func(s string) {
			for _, m := range variableRE.FindAllStringSubmatch(s, -1) {
				name := m[1] + m[2] + m[3]
				if !defined[name] && !slices.Contains(builtinVariables, name) && !seen[name] {
					seen[name] = true
					t.Errorf("%s: refers to variable $%s, which it does not define", d.file, name)
				}
			}
		})
	}
}

// walkStrings calls f with every string in a JSON value.
func walkStrings(v any, f func(string)) {
	switch x := v.(type) {
	case string:
		f(x)
	case []any:
		for _, e := range x {
			walkStrings(e, f)
		}
	case map[string]any:
		for _, e := range x {
			walkStrings(e, f)
		}
	}
}

// dashboardLinkRE matches a link to a dashboard by uid.
var dashboardLinkRE = regexp.MustCompile(`^/d/([A-Za-z0-9_-]+)(/[a-z0-9-]*)?(\?|$)`)

// TestLinks checks that links to dashboards name dashboards that exist, and
// that the service map leads to the service detail from its nodes.
func TestLinks(t *testing.T) {
	dashboards := loadDashboards(t)
	uids := map[string]bool{}
	for _, d := range dashboards {
		uids[d.UID] = true
	}
	links := 0
	for _, d := range dashboards {
		walkURLs(d.raw, func(u string) {
			m := dashboardLinkRE.FindStringSubmatch(u)
			if m == nil {
				if strings.HasPrefix(u, "/") {
					t.Errorf("%s: link %q is not a /d/<uid> dashboard link", d.file, u)
				}
				return
			}
			links++
			if !uids[m[1]] {
				t.Errorf("%s: link %q leads to dashboard %q, which does not exist", d.file, u, m[1])
			}
		})
	}
	if links == 0 {
		t.Error("no links between dashboards")
	}
	var mapLink bool
	for _, d := range dashboards {
		if d.UID != "telltale-service-map" {
			continue
		}
		for _, p := range d.allPanels() {
			if p.Type != "nodeGraph" {
				continue
			}
			walkURLs(panelRaw(d, p.ID), func(u string) {
				if strings.HasPrefix(u, "/d/telltale-service/") && strings.Contains(u, "var-service=${__data.fields.id}") {
					mapLink = true
				}
			})
		}
	}
	if !mapLink {
		t.Error("the service map's Node Graph has no data link to the service detail with var-service=${__data.fields.id}")
	}
}

// panelRaw returns the raw JSON of the panel with the given id.
func panelRaw(d *dashboard, id int) any {
	var found any
	var walk func(v any)
	walk = func(v any) {
		switch x := v.(type) {
		case []any:
			for _, e := range x {
				walk(e)
			}
		case map[string]any:
			if n, ok := x["id"].(float64); ok && int(n) == id && x["type"] != nil {
				found = x
				return
			}
			if ps, ok := x["panels"]; ok {
				walk(ps)
			}
		}
	}
	walk(d.raw["panels"])
	return found
}

// walkURLs calls f with every "url" string in a JSON value.
func walkURLs(v any, f func(string)) {
	switch x := v.(type) {
	case []any:
		for _, e := range x {
			walkURLs(e, f)
		}
	case map[string]any:
		for k, e := range x {
			if s, ok := e.(string); ok && k == "url" {
				f(s)
				continue
			}
			walkURLs(e, f)
		}
	}
}

// TestProvisionedTelltaleSettings checks the Telltale datasource's
// provisioned jsonData with the backend's own settings parser, the way
// Grafana hands it over.
func TestProvisionedTelltaleSettings(t *testing.T) {
	prov := provisioned(t)
	var names []string
	for uid, ds := range prov {
		names = append(names, uid)
		if ds.Access != "proxy" {
			t.Errorf("datasource %s: access %q, want proxy (the backend plugin and Grafana's proxy talk to Prometheus)", uid, ds.Access)
		}
		if want := "${" + stack.PrometheusURLEnv + "}"; ds.URL != want {
			t.Errorf("datasource %s: url %q, want %s", uid, ds.URL, want)
		}
	}
	sort.Strings(names)
	if !slices.Equal(names, []string{"prometheus", "telltale"}) {
		t.Errorf("provisioned datasources %v, want prometheus and telltale", names)
	}
	tt := prov["telltale"]
	jd, err := json.Marshal(tt.JSONData)
	if err != nil {
		t.Fatal(err)
	}
	s, err := plugin.ParseSettings(backend.DataSourceInstanceSettings{
		UID: tt.UID, Name: tt.Name, Type: tt.Type, URL: "http://prometheus:9090", JSONData: jd,
	})
	if err != nil {
		t.Fatalf("the Telltale backend refuses the provisioned settings: %v", err)
	}
	if s.Timeout != 30*time.Second || s.AuthType != plugin.AuthNone {
		t.Errorf("settings %+v: want a 30s timeout and no auth", s)
	}
}

// promExprs returns the parsed expressions of a panel's Prometheus
// queries, interpolated with sampleValues (TestQueries reports those that
// do not parse), and whether every query of the panel is one of them.
func promExprs(p panel) (exprs []parser.Expr, all bool) {
	all = true
	for _, tg := range p.Targets {
		expr, _ := tg["expr"].(string)
		ref := targetDatasource(tg)
		if ref == nil || ref.Type != promType || expr == "" {
			all = false
			continue
		}
		s, err := interpolate(expr, sampleValues)
		if err != nil {
			continue
		}
		if e, err := parser.ParseExpr(s); err == nil {
			exprs = append(exprs, e)
		}
	}
	return exprs, all
}

// TestAlertScoreFromTheContract: the dashboards restate the alerting score
// in two places, and both must be pkg/schema.AlertScore: every PromQL
// comparison of the detector's score with a number, and the red threshold
// of every panel whose queries all return scores.
func TestAlertScoreFromTheContract(t *testing.T) {
	compared, colored := 0, 0
	for _, d := range loadDashboards(t) {
		for _, p := range d.allPanels() {
			exprs, scores := promExprs(p)
			for _, e := range exprs {
				scores = scores && contracttest.ValuesAreScores(e)
				for _, v := range contracttest.ScoreThresholds(e) {
					compared++
					if v != schema.AlertScore {
						t.Errorf("%s: panel %q compares %s with %v; the alerting score is %v (pkg/schema.AlertScore)", d.file, p.Title, schema.AnomalyScore.Name, v, schema.AlertScore)
					}
				}
			}
			if !scores || len(exprs) == 0 {
				continue
			}
			var fc struct {
				FieldConfig struct {
					Defaults struct {
						Thresholds struct {
							Steps []struct {
								Color string   `json:"color"`
								Value *float64 `json:"value"`
							} `json:"steps"`
						} `json:"thresholds"`
					} `json:"defaults"`
				} `json:"fieldConfig"`
			}
			b, err := json.Marshal(panelRaw(d, p.ID))
			if err == nil {
				err = json.Unmarshal(b, &fc)
			}
			if err != nil {
				t.Fatalf("%s: panel %q: %v", d.file, p.Title, err)
			}
			for _, st := range fc.FieldConfig.Defaults.Thresholds.Steps {
				if st.Color != "red" || st.Value == nil {
					continue
				}
				colored++
				if *st.Value != schema.AlertScore {
					t.Errorf("%s: panel %q shows scores red from %v; the alerting score is %v (pkg/schema.AlertScore)", d.file, p.Title, *st.Value, schema.AlertScore)
				}
			}
		}
	}
	if compared == 0 || colored == 0 {
		t.Errorf("found %d comparisons with the score and %d red score thresholds; the dashboards have both", compared, colored)
	}
}

// TestCountersFromTheContract: the dashboards' rate, irate, increase and
// resets read only the contract's counters (pkg/schema), never a gauge.
func TestCountersFromTheContract(t *testing.T) {
	rated := 0
	for _, d := range loadDashboards(t) {
		for _, p := range d.allPanels() {
			exprs, _ := promExprs(p)
			for _, e := range exprs {
				names := contracttest.RatedNames(e)
				rated += len(names)
				for _, msg := range contracttest.ContractCounterErrors(names) {
					t.Errorf("%s: panel %q: %s", d.file, p.Title, msg)
				}
			}
		}
	}
	if rated == 0 {
		t.Error("no panel takes a rate: the check proves nothing")
	}
}
