//go:build mage

// Telltale's build, test, benchmark and demo targets: the table of
// contents. Each target is a few lines; the work is in ordinary packages
// (internal/gotest, internal/release, internal/bench, internal/chaos,
// demo/stack, demo/scenarios). Run them with `go tool mage <target>`;
// `go tool mage -l` lists them.
package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/build"
	"github.com/magefile/mage/mg"
	"github.com/magefile/mage/sh"

	"github.com/telltale-dev/telltale/demo/stack"
	"github.com/telltale-dev/telltale/internal/bench"
	"github.com/telltale-dev/telltale/internal/chaos"
	"github.com/telltale-dev/telltale/internal/cortex"
	"github.com/telltale-dev/telltale/internal/gotest"
	"github.com/telltale-dev/telltale/internal/release"
	"github.com/telltale-dev/telltale/pkg/nab"
)

// Default is what `go tool mage` alone runs.
var Default = Test

// binDir is where Build puts the commands.
const binDir = "bin"

// Test runs every test the project has: formatting, vet, the plugin build
// (backend and frontend, once), the Cortex build (once per machine: see
// CortexBuild), the Go tests (unit, golden, fuzz seeds, live,
// real-Prometheus and plugin-binary tests), then the demo's end-to-end test
// (E2E) beside the frontend's tests and, in CI, a few seconds of fuzzing of
// every fuzz target (BesideE2E). In CI a test whose dependency is missing
// fails. It ends with the list of the Go tests that skipped, each with its
// reason.
//
// The end-to-end test is mostly waiting for its incidents to happen and be
// seen, and it takes longest; what runs beside it runs in a process of its
// own at niceness besideE2E, so that the demo stack gets the CPU whenever
// it wants it and its timings are those it has alone. The Go tests run
// before it, not beside it: some of them time real processes too (a
// command that lives a millisecond must not become a service), and a
// niced test beside a busy stack waits for the CPU. The end-to-end test's
// lines come prefixed with "e2e │ ".
func Test() error {
	mg.SerialDeps(Fmt, Vet, Plugin, CortexBuild, GoTest)
	type result struct {
		rep gotest.Report
		err error
	}
	e2e := make(chan result, 1)
	go func() {
		w := gotest.NewLineWriter(os.Stdout, "e2e │ ")
		rep, err := runE2E(w)
		w.Close()
		e2e <- result{rep, err}
	}()
	err := runBesideE2E()
	fmt.Println("waiting for the end-to-end test")
	r := <-e2e
	goTests.Add(r.rep)
	fmt.Println("go tests:")
	goTests.WriteSkipped(os.Stdout)
	return errors.Join(err, r.err)
}

// besideE2E is the niceness of what Test runs beside the end-to-end test.
const besideE2E = 10

// runBesideE2E runs BesideE2E in this magefile's own binary, under
// nice(1).
func runBesideE2E() error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	cmd := exec.Command("nice", "-n", strconv.Itoa(besideE2E), self, "besideE2E")
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("beside the end-to-end test: %w", err)
	}
	return nil
}

// BesideE2E is what Test runs beside the end-to-end test: the frontend's
// tests and, in CI, Fuzz.
func BesideE2E() error {
	mg.SerialDeps(Frontend.Test)
	if os.Getenv("CI") != "" {
		mg.Deps(Fuzz)
	}
	return nil
}

// goTests gathers what GoTest and E2E ran, for Test's closing list.
var goTests gotest.Report

// Fuzz runs every fuzz target beyond its seed corpus (which GoTest runs
// always) for TELLTALE_FUZZTIME each (a Go duration, default 3s); Test runs
// it in CI. An input that fails is written to the target's testdata/fuzz,
// to be committed as a seed once fixed.
func Fuzz() error {
	fuzztime := cmp.Or(os.Getenv("TELLTALE_FUZZTIME"), "3s")
	if _, err := time.ParseDuration(fuzztime); err != nil {
		return fmt.Errorf("TELLTALE_FUZZTIME=%q: want a Go duration such as 3s: %w", fuzztime, err)
	}
	// go test -list prints a package's targets, then "ok <package> <time>".
	out, err := sh.Output(mg.GoCmd(), "test", "-list", "^Fuzz", "./...")
	if err != nil {
		return err
	}
	var targets []string
	ran := 0
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) == 1 && strings.HasPrefix(f[0], "Fuzz"):
			targets = append(targets, f[0])
		case len(f) >= 2 && f[0] == "ok":
			for _, t := range targets {
				fmt.Printf("fuzz %s %s for %s\n", f[1], t, fuzztime)
				if err := gotest.Fuzz(mg.GoCmd(), f[1], t, fuzztime, os.Stdout); err != nil {
					return err
				}
				ran++
			}
			targets = nil
		}
	}
	if ran == 0 {
		return fmt.Errorf("no fuzz target found in:\n%s", out)
	}
	fmt.Printf("%d fuzz targets ran for %s each\n", ran, fuzztime)
	return nil
}

// Chaos runs the chaos probes (internal/chaos, build tag chaos) against
// the built exporter, detector and plugin, and prints one table: probe,
// held or failed, and what was measured; the last line is JSON. It takes
// about four minutes (TELLTALE_CHAOS_CHURN sets the churn's length,
// default 90s; TELLTALE_CHAOS_SEED the generated command lines') and
// needs root, Prometheus and promtool, python3, perl and node.
func Chaos() error {
	f, err := os.CreateTemp("", "telltale-chaos-*.jsonl")
	if err != nil {
		return err
	}
	path := f.Name()
	f.Close()
	defer os.Remove(path)
	fmt.Println("running the chaos probes (about four minutes)")
	testErr := sh.RunWithV(map[string]string{chaos.ReportEnv: path}, mg.GoCmd(), "test", "-tags=chaos", "-count=1", "-timeout=30m", "./internal/chaos/")
	rs, err := chaos.ReadReport(path)
	if err != nil {
		return err
	}
	if err := chaos.WriteTable(os.Stdout, rs); err != nil {
		return err
	}
	switch {
	case testErr != nil:
		return fmt.Errorf("chaos probes: %w", testErr)
	case len(rs) == 0:
		return fmt.Errorf("the chaos probes reported nothing")
	}
	return nil
}

// Plugin builds the Grafana plugin into datasource/dist/: the backend for
// linux/amd64 and arm64, then the frontend next to it.
func Plugin() error {
	mg.SerialDeps(DatasourceBackend, Frontend.Build)
	return nil
}

// Fmt fails when a Go file is not gofmt-formatted.
func Fmt() error {
	files, err := goFiles()
	if err != nil {
		return err
	}
	out, err := sh.Output("gofmt", append([]string{"-l"}, files...)...)
	if err != nil {
		return err
	}
	if strings.TrimSpace(out) != "" {
		return fmt.Errorf("gofmt: these files need formatting:\n%s", out)
	}
	return nil
}

// Vet runs go vet over every package, the magefiles included.
func Vet() error {
	if err := sh.RunV(mg.GoCmd(), "vet", "./..."); err != nil {
		return err
	}
	if err := sh.RunV(mg.GoCmd(), "vet", "-tags=chaos", "./internal/chaos/"); err != nil {
		return err
	}
	if err := sh.RunV(mg.GoCmd(), "vet", "-tags=e2e", "./demo/", "./dashboards/"); err != nil {
		return err
	}
	return sh.RunV(mg.GoCmd(), "vet", "-tags=mage", ".")
}

// GoTest runs the Go tests of every package once (no cached results),
// with a line per package as it finishes and the skipped tests with their
// reasons at the end (internal/gotest). The datasource's tests need the
// plugin built (go tool mage plugin).
func GoTest() error {
	rep, err := gotest.Run(gotest.Options{}, os.Stdout, "-count=1", "-timeout=30m", "./...")
	goTests.Add(rep)
	return err
}

// Build builds the exporter and detector into bin/, with the version,
// revision and branch from git in their build info.
func Build() error {
	ldflags := gitStamp().Ldflags()
	for _, c := range release.Commands {
		if err := sh.RunV(mg.GoCmd(), "build", "-ldflags", ldflags, "-o", filepath.Join(binDir, c.Name), c.Dir); err != nil {
			return err
		}
	}
	return nil
}

// gitStamp is the version, revision and branch git gives the work tree.
func gitStamp() release.Stamp {
	rev, _ := sh.Output("git", "rev-parse", "--short", "HEAD")
	branch, _ := sh.Output("git", "rev-parse", "--abbrev-ref", "HEAD")
	version, err := sh.Output("git", "describe", "--tags", "--always", "--dirty")
	if err != nil {
		version = "dev"
	}
	return release.Stamp{Version: version, Revision: rev, Branch: branch}
}

// Release builds what a release ships into bin/release/ (internal/release):
// for linux/amd64 and linux/arm64, the exporter and detector as static
// binaries stamped with version, revision and branch, each in a tarball
// in the Prometheus layout (<name>-<version>.linux-<arch>.tar.gz: binary,
// LICENSE, README.md) and a .deb (systemd unit, defaults file, system
// user; packaging/); the Grafana plugin as the zip Grafana installs; and
// sha256sums.txt. The version is git's tag without its v (0.0.0~git<rev>
// before the first tag).
func Release() error {
	mg.SerialDeps(Plugin)
	stamp := gitStamp()
	version := release.VersionOf(stamp.Version)
	stamp.Version = version
	out := filepath.Join(binDir, "release")
	if err := os.RemoveAll(out); err != nil {
		return err
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	var files []string
	for _, arch := range release.Arches {
		for _, c := range release.Commands {
			bin := filepath.Join(out, "build", arch, c.Name)
			if err := release.Build(".", c, arch, stamp, bin); err != nil {
				return err
			}
			tgz, err := release.Tarball(out, c, version, arch, bin, "LICENSE", "README.md")
			if err != nil {
				return err
			}
			deb, err := release.Deb(out, "packaging", c, version, arch, bin, "LICENSE")
			if err != nil {
				return err
			}
			files = append(files, tgz, deb)
		}
	}
	if err := os.RemoveAll(filepath.Join(out, "build")); err != nil {
		return err
	}
	var plugin struct {
		ID   string `json:"id"`
		Info struct {
			Version string `json:"version"`
		} `json:"info"`
	}
	dist := filepath.Join("datasource", "dist")
	b, err := os.ReadFile(filepath.Join(dist, "plugin.json"))
	if err == nil {
		err = json.Unmarshal(b, &plugin)
	}
	if err != nil {
		return fmt.Errorf("the built plugin's plugin.json: %w", err)
	}
	zip, err := release.PluginZip(out, dist, plugin.ID, plugin.Info.Version)
	if err != nil {
		return err
	}
	files = append(files, zip)
	sums, err := release.Sums(out, files)
	if err != nil {
		return err
	}
	for _, f := range append(files, sums) {
		fmt.Println(f)
	}
	return nil
}

// goFiles lists the Go files tracked by git or new in the work tree.
func goFiles() ([]string, error) {
	out, err := exec.Command("git", "ls-files", "--cached", "--others", "--exclude-standard", "*.go").Output()
	if err != nil {
		return nil, fmt.Errorf("list go files: %w", err)
	}
	var files []string
	for _, f := range strings.Fields(string(out)) {
		if _, err := os.Stat(f); err == nil && !strings.Contains(f, "node_modules/") {
			files = append(files, f)
		}
	}
	return files, nil
}

// Demo builds the exporter, the detector and the demo shop, and starts them
// with a real Prometheus (the project's rules loaded, remote read on) and,
// when one is installed, Grafana with provisioning/. The shop runs under
// load. It prints the URLs, then every 10 seconds a summary from the
// datasource backend: services and edges, KPI status, the most anomalous
// services and the likely causes of KPI problems. Type "help" for the
// commands that inject faults and deploy a slow build. Ctrl-C stops
// everything it started. Set TELLTALE_DEMO_SCRAPE_INTERVAL (default 5s)
// for another scrape interval.
func Demo(ctx context.Context) error {
	iv := 5 * time.Second
	if v := os.Getenv("TELLTALE_DEMO_SCRAPE_INTERVAL"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			return err
		}
		iv = d
	}
	return stack.Demo(ctx, stack.Options{
		ScrapeInterval: iv,
		PortFallback:   true,
		Logger:         slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	}, os.Stdin, os.Stdout, 10*time.Second)
}

// E2E runs the end-to-end test: the demo stack through latency in payments
// a minute after it starts and a slow deploy of the checkout, checked
// through the detector's scores and the datasource backend's answers, with
// every dashboard panel run during the slow deploy, then the fault
// scenarios' subset (demo/scenarios.Subset) on the same stack. It takes
// about nine minutes and needs prometheus (apt-get install prometheus);
// without it, it skips, or fails under CI=true.
func E2E() error {
	rep, err := runE2E(os.Stdout)
	goTests.Add(rep)
	return err
}

// runE2E is E2E with its output to w.
func runE2E(w io.Writer) (gotest.Report, error) {
	return gotest.Run(gotest.Options{Verbose: true}, w, "-tags=e2e", "-count=1", "-timeout=30m", "./demo/")
}

// CortexBuild builds the Cortex the detector's sharding test runs against
// (internal/cortex) into a cache directory keyed by its version, unless it
// is there: about eight minutes and 1.8 GB of module cache the first time.
func CortexBuild() error {
	_, err := cortex.Build(mg.GoCmd(), os.Stdout)
	return err
}

// Cortex runs the detector against a real Cortex (single process, local
// storage) that a real Prometheus remote-writes into: three replicas with
// --shard.count=3 read it with a tenant header; the test checks each
// series is scored by exactly one replica, that stopping one leaves the
// others' series alone and that it resumes from its checkpoint, and prints
// what each replica read against what it scored.
func Cortex() error {
	mg.Deps(CortexBuild)
	return sh.RunV(mg.GoCmd(), "test", "-count=1", "-timeout=15m", "-v", "-run", "^TestCortexShards$", "./detector")
}

// DashboardsLive starts the demo stack, deploys a slow build of the shop's
// checkout and runs every panel of every dashboard against it (Prometheus
// panels over Prometheus's HTTP API, Telltale panels through the built
// plugin binary), naming each panel that returns no data. The end-to-end
// test runs the same test on its own stack (build tag e2e keeps it out of
// go test ./...); this target runs it alone, verbosely.
func DashboardsLive() error {
	return sh.RunV(mg.GoCmd(), "test", "-tags=e2e", "-count=1", "-timeout=25m", "-v", "-run", "TestPanelsHaveDataLive", "./dashboards")
}

// Rules runs promtool's check and unit tests of rules/ and the checks of
// the example Prometheus configuration in provisioning/.
func Rules() error {
	return sh.RunV(mg.GoCmd(), "test", "-count=1", "-v", "./rules", "./provisioning")
}

// GenerateSyscalls rebuilds pkg/syscalls' generated files through its
// go:generate lines: the BPF objects and their Go wrappers (bpf2go; needs
// clang, llvm-strip and libbpf-dev), the checksums that tie them to their C
// sources, and the syscall name tables (from the golang.org/x/sys in
// go.mod). Commit the results: building and testing the package needs none
// of these tools.
func GenerateSyscalls() error {
	return sh.RunV(mg.GoCmd(), "generate", "./pkg/syscalls")
}

// The benchmarks (internal/bench) print figures side by side with their
// peer, alternating the sides in one run; they are programs, not tests.

// BenchExporter measures the exporter's CPU seconds per scrape and peak RSS
// with about 1000 extra processes on the host, side by side with Debian's
// prometheus-process-exporter grouping every process by name, and prints
// the ratio.
func BenchExporter() error {
	mg.Deps(Build)
	return bench.Exporter(binDir)
}

// BenchEdges measures the exporter's CPU seconds per scrape with 10,000
// established loopback connections between a few services, side by side
// with `ss -tinp` reading the same sockets, and prints the ratio.
func BenchEdges() error {
	mg.Deps(Build)
	return bench.Edges(binDir)
}

// BenchDetector measures the detector's backfill against a plain remote
// read of the same data from a real Prometheus (10,000 series × 6 h at
// 15 s), medians of alternating runs, and prints the ratios; see
// bench.Detector for its settings.
func BenchDetector() error { return bench.Detector() }

// BenchSyscalls measures what the eBPF syscall tracer costs a process that
// does nothing but syscalls, tracer off and on in each setting,
// alternating, and prints the ratios (about 100 s; root).
func BenchSyscalls() error { return bench.Syscalls() }

// BenchDatasource runs the datasource's benchmark: an anomalies query over 7
// days of 15 s data for 50 series, next to a plain Prometheus query_range for
// the same series, against a real Prometheus loaded with promtool; it prints
// both times and their ratio (goal: at most 1.5).
func BenchDatasource() error {
	return sh.RunV(mg.GoCmd(), "test", "-run", "^$", "-bench", "^BenchmarkAnomaliesVsQueryRange$", "-benchtime", "1x", "-count", "1", "-timeout", "30m", "./datasource/pkg/plugin")
}

// Nab runs every Telltale detector over the NAB kit at $TELLTALE_NAB_DIR
// (default ../shared/nab), scores it next to the published detectors with
// Telltale's NAB scorer, and cross-validates the ensemble by category; see
// bench.Nab. The last line is JSON.
func Nab() error {
	return bench.Nab(cmp.Or(os.Getenv(nab.KitEnv), bench.NabDefaultDir))
}

// NabDir is Nab on the NAB-layout corpus at dir.
func NabDir(dir string) error { return bench.Nab(dir) }

// Anomalybench scores the ensemble on the project's generated
// Prometheus-shaped anomaly benchmark (internal/anomalybench): recall,
// detection delay and precision per anomaly kind, false alarms per 10,000
// healthy samples, an ideal detector's recall; the last line is JSON.
func Anomalybench() error { return bench.Anomalybench() }

// Scenarios runs the fault scenarios (demo/scenarios) against one demo
// stack at a one-second scrape and prints per scenario whether a KPI got a
// window, how soon, the top 3 causes and the culprit's rank, then top-1 and
// top-3 accuracy, false windows in a quiet period and the median detection
// delay; the last line is JSON. About an hour; TELLTALE_SCENARIOS (a
// regex) picks scenarios, TELLTALE_SCENARIOS_QUIET (default 10m) sets the
// quiet period.
func Scenarios(ctx context.Context) error { return bench.Scenarios(ctx) }

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

// Frontend builds and tests the datasource's TypeScript frontend in datasource/
// (plugin.json, module.js and the editors); the npm scripts in
// datasource/package.json do the work.
type Frontend mg.Namespace

// frontendDir is where the frontend's package.json lives.
const frontendDir = "datasource"

// Install runs `npm ci` in datasource/ when node_modules is missing or older
// than package-lock.json.
func (Frontend) Install() error {
	lock, err := os.Stat(filepath.Join(frontendDir, "package-lock.json"))
	if err != nil {
		return fmt.Errorf("frontend: %w", err)
	}
	// npm writes node_modules/.package-lock.json at the end of every install.
	installed, err := os.Stat(filepath.Join(frontendDir, "node_modules", ".package-lock.json"))
	if err == nil && !installed.ModTime().Before(lock.ModTime()) {
		return nil
	}
	return npm("ci", "--no-audit", "--no-fund")
}

// Build runs the production webpack build: module.js, plugin.json, img/,
// README.md, CHANGELOG.md and LICENSE into datasource/dist/, next to the
// backend executables, which it leaves in place.
func (Frontend) Build() error {
	mg.Deps(Frontend.Install)
	return npm("run", "build")
}

// Test type-checks and lints the frontend, runs its jest tests, and runs the
// headless Chromium harness against the built module.js (a screenshot goes to
// datasource/test-results/harness.png). Without Chromium the harness is
// skipped, except under CI, where it fails.
func (Frontend) Test() error {
	mg.SerialDeps(Frontend.Build)
	for _, script := range []string{"typecheck", "lint", "test:ci", "harness"} {
		if err := npm("run", script); err != nil {
			return err
		}
	}
	return nil
}

// npm runs npm in datasource/ with its output on ours.
func npm(args ...string) error {
	cmd := exec.Command("npm", args...)
	cmd.Dir = frontendDir
	cmd.Stdout = os.Stdout
	cmd.Stderr = os.Stderr
	if mg.Verbose() {
		fmt.Println("exec: npm", strings.Join(args, " "))
	}
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("npm %s in %s: %w", strings.Join(args, " "), frontendDir, err)
	}
	return nil
}
