//go:build mage

package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/magefile/mage/mg"
)

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
