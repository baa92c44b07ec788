// Package plugintest launches a built backend plugin binary the way Grafana
// does — hashicorp/go-plugin over gRPC with Grafana's handshake (protocol
// version 2, the grafana_plugin_type magic cookie) — and hands the test the
// plugin's Data, Diagnostics and Resource services.
package plugintest

import (
	"os"
	"os/exec"
	"testing"

	"github.com/grafana/grafana-plugin-sdk-go/backend/grpcplugin"
	"github.com/hashicorp/go-hclog"
	goplugin "github.com/hashicorp/go-plugin"

	"github.com/telltale-dev/telltale/internal/testenv"
)

// Plugin is a running plugin process, as Grafana holds it.
type Plugin struct {
	Data        grpcplugin.DataClient
	Diagnostics grpcplugin.DiagnosticsClient
	Resource    grpcplugin.ResourceClient
	// Pid is the plugin process's.
	Pid int
}

// Launch starts the plugin executable bin and connects to it; the process
// is killed when the test ends.
func Launch(tb testing.TB, bin string) *Plugin {
	tb.Helper()
	testenv.Live(tb)
	client := goplugin.NewClient(&goplugin.ClientConfig{
		HandshakeConfig: goplugin.HandshakeConfig{
			ProtocolVersion:  grpcplugin.ProtocolVersion,
			MagicCookieKey:   grpcplugin.MagicCookieKey,
			MagicCookieValue: grpcplugin.MagicCookieValue,
		},
		VersionedPlugins: map[int]goplugin.PluginSet{
			grpcplugin.ProtocolVersion: {
				"data":        &grpcplugin.DataGRPCPlugin{},
				"diagnostics": &grpcplugin.DiagnosticsGRPCPlugin{},
				"resource":    &grpcplugin.ResourceGRPCPlugin{},
			},
		},
		Cmd:              exec.Command(bin),
		AllowedProtocols: []goplugin.Protocol{goplugin.ProtocolGRPC},
		Logger:           hclog.New(&hclog.LoggerOptions{Name: "plugin", Level: hclog.Warn, Output: os.Stderr}),
	})
	tb.Cleanup(client.Kill)
	rpc, err := client.Client()
	if err != nil {
		tb.Fatalf("launch the plugin %s: %v", bin, err)
	}
	dispense := func(name string) any {
		raw, err := rpc.Dispense(name)
		if err != nil {
			tb.Fatalf("dispense %s: %v", name, err)
		}
		return raw
	}
	return &Plugin{
		Data:        dispense("data").(grpcplugin.DataClient),
		Diagnostics: dispense("diagnostics").(grpcplugin.DiagnosticsClient),
		Resource:    dispense("resource").(grpcplugin.ResourceClient),
		Pid:         client.ReattachConfig().Pid,
	}
}
