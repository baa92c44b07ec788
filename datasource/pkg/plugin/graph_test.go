package plugin

import (
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// shopGraphInput is the shop scenario's service map input.
func shopGraphInput(t *testing.T) graphInput {
	t.Helper()
	f := newFakeProm(t)
	w := time.Hour
	graphFixtures(f, w)
	e := graphExprs(w, "")
	return graphInput{
		Services: f.instant[e["services"]], Addresses: f.instant[e["addresses"]], Hostnames: f.instant[e["hostnames"]],
		Ports: f.instant[e["ports"]], Connections: f.instant[e["connections"]], Sent: f.instant[e["sent"]],
		Received: f.instant[e["received"]], RTT: f.instant[e["rtt"]], Retransmits: f.instant[e["retransmits"]],
		CPU: f.instant[e["cpu"]], Memory: f.instant[e["memory"]],
	}
}

func TestBuildGraphServiceFilter(t *testing.T) {
	g := buildGraph(shopGraphInput(t), regexp.MustCompile("^(?:postgres)$"))
	var nodes, edges []string
	for _, n := range g.Nodes {
		nodes = append(nodes, n.ID)
	}
	for _, e := range g.Edges {
		edges = append(edges, e.ID)
	}
	if diff := cmp.Diff([]string{"inventory", "postgres"}, nodes); diff != "" {
		t.Errorf("nodes (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"inventory->postgres:5432"}, edges); diff != "" {
		t.Errorf("edges (-want +got):\n%s", diff)
	}
}

func TestHops(t *testing.T) {
	g := buildGraph(shopGraphInput(t), nil)
	want := map[string]int{"checkout": 0, "payments": 1, "inventory": 1, "postgres": 2, "ext:203.0.113.7": 2}
	if diff := cmp.Diff(want, g.hops([]string{"checkout"})); diff != "" {
		t.Errorf("hops from checkout (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(map[string]int{"checkout": 0, "storefront": 1}, g.upstream([]string{"checkout"})); diff != "" {
		t.Errorf("callers of checkout (-want +got):\n%s", diff)
	}
}

func TestGraphExprsHostFilter(t *testing.T) {
	e := graphExprs(time.Hour, "shop-.*")
	for name, expr := range e {
		filtered := strings.Contains(expr, `instance=~"shop-.*"`)
		// Addresses, hostnames and ports come from every host, so that
		// an edge leaving the filtered hosts is still named.
		want := name != "addresses" && name != "hostnames" && name != "ports" && name != "scores"
		if filtered != want {
			t.Errorf("%s: filtered %v, want %v: %s", name, filtered, want, expr)
		}
	}
}

func TestServicesAt(t *testing.T) {
	in := shopGraphInput(t)
	for _, tc := range []struct {
		instance string
		want     []string
	}{
		{"10.0.0.1:10182", []string{"checkout"}},
		{"shop-1:10183", []string{"payments"}},
		{"10.0.0.2:5432", []string{"postgres"}},
		{"192.0.2.1:10184", []string{"inventory"}}, // no host owns it: the only listener on the port
		{"10.0.0.1:9999", []string{}},
		{"no-port", []string{}},
	} {
		got := servicesAt(map[string]bool{tc.instance: true}, in)
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tc.instance, diff)
		}
	}
}
