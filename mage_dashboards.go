//go:build mage

package main

import (
	"github.com/magefile/mage/mg"
	"github.com/magefile/mage/sh"
)

// DashboardsLive starts the demo stack, deploys a slow build of the shop's
// checkout and runs every panel of every dashboard against it (Prometheus
// panels over Prometheus's HTTP API, Telltale panels through the built
// plugin binary), naming each panel that returns no data. It is part of
// `go test ./...` too; this target runs it alone, verbosely.
func DashboardsLive() error {
	return sh.RunV(mg.GoCmd(), "test", "-count=1", "-timeout=25m", "-v", "-run", "TestPanelsHaveDataLive", "./dashboards")
}

// Rules runs promtool's check and unit tests of rules/ and the checks of
// the example Prometheus configuration in provisioning/.
func Rules() error {
	return sh.RunV(mg.GoCmd(), "test", "-count=1", "-v", "./rules", "./provisioning")
}
