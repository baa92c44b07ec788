//go:build mage

// Telltale's build, test, benchmark and demo targets. Run them with
// `go tool mage <target>`; `go tool mage -l` lists them.
package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/magefile/mage/mg"
	"github.com/magefile/mage/sh"
)

// Default is what `go tool mage` alone runs.
var Default = Test

// binDir is where Build puts the commands.
const binDir = "bin"

// Test runs every test the project has: formatting, vet, the plugin build
// (backend and frontend, once), the Go tests (unit, golden, fuzz seeds, live,
// real-Prometheus and plugin-binary tests), the demo's end-to-end test (on
// its own, after them: it times an incident) and the frontend's tests. In
// CI a test whose dependency is missing fails.
func Test() error {
	mg.SerialDeps(Fmt, Vet, Plugin, GoTest, E2E, Frontend.Test)
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
	return sh.RunV(mg.GoCmd(), "vet", "-tags=mage", ".")
}

// GoTest runs the Go tests of every package once (no cached results). The
// datasource's tests need the plugin built (go tool mage plugin).
func GoTest() error {
	return sh.RunV(mg.GoCmd(), "test", "-count=1", "-timeout=30m", "./...")
}

// Build builds the exporter and detector into bin/, with the version,
// revision and branch from git in their build info.
func Build() error {
	const v = "github.com/prometheus/common/version"
	rev, _ := sh.Output("git", "rev-parse", "--short", "HEAD")
	branch, _ := sh.Output("git", "rev-parse", "--abbrev-ref", "HEAD")
	version, err := sh.Output("git", "describe", "--tags", "--always", "--dirty")
	if err != nil {
		version = "dev"
	}
	ldflags := fmt.Sprintf("-X %s.Version=%s -X %s.Revision=%s -X %s.Branch=%s", v, version, v, rev, v, branch)
	for _, cmd := range []string{"exporter", "detector"} {
		if _, err := os.Stat(filepath.Join(cmd, "main.go")); err != nil {
			continue
		}
		if err := sh.RunV(mg.GoCmd(), "build", "-ldflags", ldflags, "-o", filepath.Join(binDir, "telltale-"+cmd), "./"+cmd); err != nil {
			return err
		}
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
