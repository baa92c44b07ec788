// Package provisioning_test checks the example Prometheus configuration with
// real promtool and the Grafana provisioning files for what Grafana reads.
// The datasources' uids and settings are checked against the dashboards and
// the datasource backend in dashboards/dashboards_test.go.
package provisioning_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/telltale-dev/telltale/internal/promtest"
)

const prometheusConfig = "prometheus/prometheus.yml"

// TestPrometheusConfig runs promtool check config, which also checks every
// rule file the configuration loads.
func TestPrometheusConfig(t *testing.T) {
	cmd := exec.Command(promtest.Promtool(t), "check", "config", prometheusConfig)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("promtool check config %s: %v\n%s", prometheusConfig, err, out.String())
	}
	rules, err := filepath.Glob(filepath.Join("..", "rules", "*.yml"))
	if err != nil {
		t.Fatal(err)
	}
	if want := len(rules); !strings.Contains(out.String(), "SUCCESS: "+strconv.Itoa(want)+" rule files found") {
		t.Errorf("promtool does not report the %d rule files of rules/:\n%s", want, out.String())
	}
}

// TestPrometheusScrapes checks what the configuration scrapes: the exporter
// on :10171, the detector on :10172 with honor_labels (its scores carry the
// job and instance of the series they score), Prometheus itself.
func TestPrometheusScrapes(t *testing.T) {
	b, err := os.ReadFile(prometheusConfig)
	if err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		RuleFiles     []string `yaml:"rule_files"`
		ScrapeConfigs []struct {
			JobName       string `yaml:"job_name"`
			HonorLabels   bool   `yaml:"honor_labels"`
			StaticConfigs []struct {
				Targets []string `yaml:"targets"`
			} `yaml:"static_configs"`
		} `yaml:"scrape_configs"`
	}
	if err := yaml.Unmarshal(b, &cfg); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(cfg.RuleFiles, []string{"../../rules/*.yml"}) {
		t.Errorf("rule_files %v, want the repository's rules/*.yml", cfg.RuleFiles)
	}
	jobs := map[string]bool{}
	for _, sc := range cfg.ScrapeConfigs {
		var targets []string
		for _, s := range sc.StaticConfigs {
			targets = append(targets, s.Targets...)
		}
		jobs[sc.JobName] = true
		switch sc.JobName {
		case "telltale-exporter":
			if !slices.Contains(targets, "localhost:10171") || sc.HonorLabels {
				t.Errorf("job %s: targets %v, honor_labels %v; want localhost:10171 without honor_labels", sc.JobName, targets, sc.HonorLabels)
			}
		case "telltale-detector":
			if !slices.Contains(targets, "localhost:10172") || !sc.HonorLabels {
				t.Errorf("job %s: targets %v, honor_labels %v; want localhost:10172 with honor_labels", sc.JobName, targets, sc.HonorLabels)
			}
		}
	}
	for _, j := range []string{"telltale-exporter", "telltale-detector", "prometheus"} {
		if !jobs[j] {
			t.Errorf("no scrape job %s", j)
		}
	}
}

// TestDashboardProvider checks the dashboard provider: files from the
// dashboards directory named by the environment, into a Telltale folder.
func TestDashboardProvider(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("dashboards", "telltale.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		APIVersion int `yaml:"apiVersion"`
		Providers  []struct {
			Name    string `yaml:"name"`
			Type    string `yaml:"type"`
			Folder  string `yaml:"folder"`
			Options struct {
				Path string `yaml:"path"`
			} `yaml:"options"`
		} `yaml:"providers"`
	}
	if err := yaml.Unmarshal(b, &f); err != nil {
		t.Fatal(err)
	}
	if f.APIVersion != 1 || len(f.Providers) != 1 {
		t.Fatalf("apiVersion %d with %d providers, want 1 and 1", f.APIVersion, len(f.Providers))
	}
	p := f.Providers[0]
	if p.Type != "file" || p.Folder == "" || p.Options.Path != "${TELLTALE_DASHBOARDS_DIR}" {
		t.Errorf("provider %+v: want type file, a folder, path ${TELLTALE_DASHBOARDS_DIR}", p)
	}
}
