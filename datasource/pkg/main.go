// Command gpx_telltale_insights is the backend of the Telltale Insights
// Grafana datasource. Grafana starts it and talks to it over go-plugin's
// gRPC protocol; it is not meant to be run by hand.
package main

import (
	"os"

	"github.com/grafana/grafana-plugin-sdk-go/backend/datasource"
	"github.com/grafana/grafana-plugin-sdk-go/backend/log"

	"github.com/telltale-dev/telltale/datasource/pkg/plugin"
)

func main() {
	if err := datasource.Manage(plugin.PluginID, plugin.NewDatasource, datasource.ManageOpts{}); err != nil {
		log.DefaultLogger.Error("Plugin stopped", "error", err.Error())
		os.Exit(1)
	}
}
