//go:build mage

package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/build"
	"github.com/magefile/mage/mg"
	"github.com/magefile/mage/sh"
)

// The datasource plugin lives under datasource/, not at the repository root
// where the SDK's build package looks by default.
const (
	datasourceDir     = "datasource"
	datasourceRootPkg = "./datasource/pkg"
	datasourcePlugin  = "datasource/src"
	datasourceDist    = "datasource/dist"
)

// DatasourceBackend builds the datasource's backend with the SDK's build
// package into datasource/dist/: gpx_telltale_insights_linux_amd64 and
// gpx_telltale_insights_linux_arm64, statically linked, plus the SDK's
// go_plugin_build_manifest. The frontend build (npm run build in
// datasource/) puts plugin.json, module.js and the rest next to them.
func DatasourceBackend() error {
	version, err := datasourceVersion()
	if err != nil {
		return err
	}
	if err := build.SetBeforeBuildCallback(func(cfg build.Config) (build.Config, error) {
		cfg.RootPackagePath = datasourceRootPkg
		cfg.PluginJSONPath = datasourcePlugin
		cfg.OutputBinaryPath = datasourceDist
		// The SDK reads the version from ./package.json; ours is
		// datasource/package.json.
		info, err := json.Marshal(map[string]any{
			"time":     time.Now().UnixMilli(),
			"pluginID": "telltale-insights-datasource",
			"version":  version,
		})
		if err != nil {
			return cfg, err
		}
		if cfg.CustomVars == nil {
			cfg.CustomVars = map[string]string{}
		}
		cfg.CustomVars["github.com/grafana/grafana-plugin-sdk-go/build/buildinfo.buildInfoJSON"] = string(info)
		cfg.CustomVars["main.version"] = version
		return cfg, nil
	}); err != nil {
		return err
	}
	b := build.Build{}
	for _, target := range []func() error{b.Linux, b.LinuxARM64} {
		if err := target(); err != nil {
			return fmt.Errorf("build the datasource backend: %w", err)
		}
	}
	return nil
}

// datasourceVersion reads the plugin's version from datasource/package.json.
func datasourceVersion() (string, error) {
	raw, err := os.ReadFile(filepath.Join(datasourceDir, "package.json"))
	if err != nil {
		return "", fmt.Errorf("read the datasource's version: %w", err)
	}
	var pkg struct {
		Version string `json:"version"`
	}
	if err := json.Unmarshal(raw, &pkg); err != nil {
		return "", fmt.Errorf("read the datasource's version from datasource/package.json: %w", err)
	}
	return pkg.Version, nil
}

// BenchDatasource runs the datasource's benchmark: an anomalies query over 7
// days of 15 s data for 50 series, next to a plain Prometheus query_range for
// the same series, against a real Prometheus loaded with promtool; it prints
// both times and their ratio (goal: at most 1.5).
func BenchDatasource() error {
	mg.Deps()
	return sh.RunV(mg.GoCmd(), "test", "-run", "^$", "-bench", "^BenchmarkAnomaliesVsQueryRange$", "-benchtime", "1x", "-count", "1", "-timeout", "30m", "./datasource/pkg/plugin")
}
