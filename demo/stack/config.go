package stack

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/telltale-dev/telltale/demo/shop"
	"github.com/telltale-dev/telltale/internal/benchkit"
)

// build builds the shop's programs twice (the good build and the slow one,
// which differ in their link-time variables and so in their build IDs), the
// exporter and the detector.
func (s *Stack) build(ctx context.Context) error {
	var pkgs []string
	for _, r := range shop.Roles {
		pkgs = append(pkgs, "./demo/cmd/"+string(r))
	}
	builds := [][]string{
		append([]string{"-o", filepath.Join(s.builds, BuildGood) + "/", "-ldflags=-X main.build=" + BuildGood}, pkgs...),
		append([]string{"-o", filepath.Join(s.builds, BuildSlow) + "/", "-ldflags=-X main.build=" + BuildSlow + " -X main.slowdown=" + s.opts.SlowBy.String()}, pkgs...),
		{"-o", filepath.Join(s.builds, "telltale-exporter"), "./exporter"},
		{"-o", filepath.Join(s.builds, Neighbour), "./demo/cmd/" + Neighbour},
	}
	if !s.opts.NoDetector {
		builds = append(builds, []string{"-o", filepath.Join(s.builds, "telltale-detector"), "./detector"})
	}
	for _, args := range builds {
		start := time.Now()
		cmd := exec.CommandContext(ctx, "go", append([]string{"build"}, args...)...)
		cmd.Dir = s.opts.Root
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("go build %s: %w\n%s", strings.Join(args, " "), err, out)
		}
		s.log.Info("built", "what", args[len(args)-1], "into", args[1], "took", time.Since(start).Round(time.Millisecond))
	}
	return nil
}

// serviceRules is the exporter's rules file for the demo: the shop's
// programs under run keep their names; programs of the same names elsewhere
// on the machine (another demo, a test) are renamed, so they don't merge
// with this demo's services.
func serviceRules(run string) string {
	names := make([]string, 0, len(shop.Roles))
	for _, r := range shop.Roles {
		names = append(names, string(r))
	}
	alt := strings.Join(names, "|")
	return fmt.Sprintf(`services:
  - match: {service: %q, exe: %q}
    name: "$0"
  - match: {service: %q}
    name: "elsewhere-$0"
`, alt, regexp.QuoteMeta(run)+"/.*", alt)
}

// startPrometheus writes the configuration and starts Prometheus: it
// scrapes the exporter, the detector (honor_labels, so scores keep the
// labels of the series they score), the shop's programs and itself, and
// loads the project's rule files that promtool accepts.
func (s *Stack) startPrometheus(ctx context.Context, addr func(string) string, ports map[string]int) error {
	rules, err := s.ruleFiles(ctx)
	if err != nil {
		return err
	}
	var shopTargets []string
	for _, r := range shop.Roles {
		shopTargets = append(shopTargets, strconv.Quote(addr(string(r))))
	}
	iv := promDuration(s.opts.ScrapeInterval)
	var b strings.Builder
	fmt.Fprintf(&b, "global:\n  scrape_interval: %s\n  evaluation_interval: %s\n", iv, iv)
	if len(rules) > 0 {
		b.WriteString("rule_files:\n")
		for _, r := range rules {
			fmt.Fprintf(&b, "  - %q\n", r)
		}
	}
	b.WriteString("scrape_configs:\n")
	fmt.Fprintf(&b, "  - job_name: telltale\n    static_configs: [{targets: [%q]}]\n", addr("exporter"))
	if !s.opts.NoDetector {
		fmt.Fprintf(&b, "  - job_name: telltale-detector\n    honor_labels: true\n    static_configs: [{targets: [%q]}]\n", addr("detector"))
	}
	// The fault injector's own bookkeeping (which fault is on, how many
	// requests it hit) is no application signal: no real service says
	// what is wrong with it. It is not stored, so insights cannot read the
	// answer off it.
	fmt.Fprintf(&b, "  - job_name: shop\n    static_configs: [{targets: [%s]}]\n    metric_relabel_configs: [{source_labels: [__name__], regex: %q, action: drop}]\n",
		strings.Join(shopTargets, ", "), shop.FaultMetricsPrefix+".*")
	fmt.Fprintf(&b, "  - job_name: prometheus\n    static_configs: [{targets: [%q]}]\n", addr("prometheus"))

	cfg := filepath.Join(s.Dir, "prometheus.yml")
	if err := os.WriteFile(cfg, []byte(b.String()), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", cfg, err)
	}
	s.PrometheusURL = "http://" + addr("prometheus")
	return s.startProc(ctx, "prometheus", s.opts.Prometheus,
		benchkit.PrometheusFlags(cfg, filepath.Join(s.Dir, "prometheus-data"), addr("prometheus")),
		nil, benchkit.PrometheusReady(s.PrometheusURL), time.Minute)
}

// ruleFiles returns the rule files under rules/ (not their tests) that
// promtool accepts. One that it refuses is left out with a warning rather
// than keeping Prometheus from starting: the rules are another
// engineer's work in progress, the demo should still run.
func (s *Stack) ruleFiles(ctx context.Context) ([]string, error) {
	var files []string
	for _, pat := range []string{"*.yml", "*.yaml"} {
		m, err := filepath.Glob(filepath.Join(s.opts.Root, "rules", pat))
		if err != nil {
			return nil, err
		}
		files = append(files, m...)
	}
	promtool := filepath.Join(filepath.Dir(s.opts.Prometheus), "promtool")
	if _, err := os.Stat(promtool); err != nil {
		if promtool, err = exec.LookPath("promtool"); err != nil {
			s.log.Warn("promtool not found: rule files not checked, none loaded", "files", len(files))
			return nil, nil
		}
	}
	var ok []string
	for _, f := range files {
		if strings.Contains(filepath.Base(f), ".test.") || strings.HasSuffix(strings.TrimSuffix(filepath.Base(f), filepath.Ext(f)), "_test") {
			continue
		}
		out, err := exec.CommandContext(ctx, promtool, "check", "rules", f).CombinedOutput()
		if err != nil {
			s.log.Warn("rule file left out: promtool refuses it", "file", f, "output", strings.TrimSpace(string(out)))
			continue
		}
		ok = append(ok, f)
	}
	return ok, nil
}

// PrometheusURLEnv is the environment variable that holds the URL of the
// demo's Prometheus: the provisioned datasources read it
// (provisioning/datasources), and so does the dashboards' live test.
const PrometheusURLEnv = "TELLTALE_PROMETHEUS_URL"

// startGrafana starts Grafana when a grafana-server or grafana binary is on
// PATH, with the project's provisioning and the plugin from
// datasource/dist. The provisioning files can refer to the demo's
// Prometheus as $TELLTALE_PROMETHEUS_URL (PrometheusURLEnv).
func (s *Stack) startGrafana(ctx context.Context, port int) error {
	bin, args := "", []string(nil)
	if p, err := exec.LookPath("grafana"); err == nil {
		bin, args = p, []string{"server"}
	} else if p, err := exec.LookPath("grafana-server"); err == nil {
		bin = p
	} else {
		s.log.Info("no grafana or grafana-server on PATH: Grafana not started")
		return nil
	}
	home := ""
	for _, h := range []string{"/usr/share/grafana", "/usr/local/share/grafana"} {
		if _, err := os.Stat(h); err == nil {
			home = h
		}
	}
	if home != "" {
		args = append(args, "--homepath="+home)
	}
	data := filepath.Join(s.Dir, "grafana")
	s.GrafanaURL = "http://127.0.0.1:" + strconv.Itoa(port)
	env := []string{
		"GF_SERVER_HTTP_ADDR=127.0.0.1",
		"GF_SERVER_HTTP_PORT=" + strconv.Itoa(port),
		"GF_PATHS_DATA=" + data,
		"GF_PATHS_LOGS=" + filepath.Join(data, "logs"),
		"GF_PATHS_PLUGINS=" + filepath.Join(data, "plugins"),
		"GF_PATHS_PROVISIONING=" + filepath.Join(s.opts.Root, "provisioning"),
		"GF_PLUGINS_ALLOW_LOADING_UNSIGNED_PLUGINS=telltale-insights-datasource",
		"GF_AUTH_ANONYMOUS_ENABLED=true",
		"GF_AUTH_ANONYMOUS_ORG_ROLE=Admin",
		PrometheusURLEnv + "=" + s.PrometheusURL,
	}
	// The plugin as the build made it (go tool mage plugin).
	if dist := filepath.Join(s.opts.Root, "datasource", "dist"); exists(filepath.Join(dist, "plugin.json")) {
		if err := os.MkdirAll(filepath.Join(data, "plugins"), 0o755); err != nil {
			return err
		}
		if err := os.Symlink(dist, filepath.Join(data, "plugins", "telltale-insights-datasource")); err != nil && !os.IsExist(err) {
			return fmt.Errorf("install the plugin for Grafana: %w", err)
		}
	} else {
		s.log.Warn("datasource/dist has no plugin.json: run go tool mage plugin for Grafana to load the datasource")
	}
	return s.startProc(ctx, "grafana", bin, args, env, s.GrafanaURL+"/api/health", 2*time.Minute)
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
