//go:build mage

// Telltale's build, test, benchmark and demo targets. Run them with
// `go tool mage <target>`; `go tool mage -l` lists them.
package main

import (
	"cmp"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/magefile/mage/mg"
	"github.com/magefile/mage/sh"

	"github.com/telltale-dev/telltale/internal/chaos"
	"github.com/telltale-dev/telltale/internal/gotest"
	"github.com/telltale-dev/telltale/internal/release"
)

// Default is what `go tool mage` alone runs.
var Default = Test

// binDir is where Build puts the commands.
const binDir = "bin"

// Test runs every test the project has: formatting, vet, the plugin build
// (backend and frontend, once), the Go tests (unit, golden, fuzz seeds, live,
// real-Prometheus and plugin-binary tests), the demo's end-to-end test (on
// its own, after them: it times an incident) and the frontend's tests; in CI
// also a few seconds of fuzzing of every fuzz target (see Fuzz). In CI a
// test whose dependency is missing fails.
// It ends with the list of the Go tests that skipped, each with its reason.
func Test() error {
	mg.SerialDeps(Fmt, Vet, Plugin, GoTest, E2E, Frontend.Test)
	if os.Getenv("CI") != "" {
		mg.Deps(Fuzz)
	}
	fmt.Println("go tests:")
	goTests.WriteSkipped(os.Stdout)
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
				if err := sh.RunV(mg.GoCmd(), "test", "-run", "^$", "-fuzz", "^"+t+"$", "-fuzztime", fuzztime, f[1]); err != nil {
					return fmt.Errorf("%s in %s: %w", t, f[1], err)
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
