package plugin

import (
	"context"
	"fmt"
	"math"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/prometheus/common/model"
	"golang.org/x/sync/errgroup"

	"github.com/telltale-dev/telltale/pkg/schema"
)

// The service map is built from the exporter's edge metrics. An exporter
// sees the connections of its own host: when both ends are on it, it names
// both services; otherwise it names its own side and gives the other side's
// address. Those addresses are joined with the addresses each host reports
// (schema.HostAddressInfo) and the ports its services listen on
// (schema.ServicePortInfo) to name the remote service.

// externalPrefix starts the node id of an address no monitored host owns.
const externalPrefix = "ext:"

// graphInput is what the service map is built from: instant query answers
// over the range.
type graphInput struct {
	Services    model.Vector // instance, service, kind
	Addresses   model.Vector // instance, address
	Hostnames   model.Vector // instance, hostname
	Ports       model.Vector // instance, service, protocol, port
	Connections model.Vector // instance, client, client_address, server, server_address, port
	Sent        model.Vector // same labels, bytes/s client → server
	Received    model.Vector // same labels, bytes/s server → client
	RTT         model.Vector // same labels, seconds
	Retransmits model.Vector // same labels, per second
	CPU         model.Vector // instance, service; cores
	Memory      model.Vector // instance, service; bytes
	Scores      model.Vector // service; max anomaly score
}

// graphNode is a service (or an outside address) on the map.
type graphNode struct {
	ID    string
	Title string
	// Kind is the service's kind (systemd, docker, process, …) or
	// "external".
	Kind string
	// Hosts are the hostnames (or instances) the service runs on.
	Hosts  []string
	CPU    float64 // cores, NaN when unknown
	Memory float64 // bytes, NaN when unknown
	Score  float64 // anomaly score, NaN when unknown
}

// graphEdge is a client → server pair on one server port.
type graphEdge struct {
	ID, Source, Target, Port string
	Connections              float64
	Sent, Received           float64 // bytes per second
	RTT                      float64 // seconds, connection-weighted mean
	Retransmits              float64 // per second
}

// serviceGraph is the joined service map.
type serviceGraph struct {
	Nodes []*graphNode // sorted by ID
	Edges []*graphEdge // sorted by ID
}

// hostIndex answers which host owns an address and who listens where.
type hostIndex struct {
	byAddress map[string][]string // address → instances
	hostname  map[string]string   // instance → hostname
	listeners map[string][]string // instance + "|" + port → services
}

func newHostIndex(in graphInput) hostIndex {
	h := hostIndex{byAddress: map[string][]string{}, hostname: map[string]string{}, listeners: map[string][]string{}}
	for _, s := range in.Addresses {
		a := string(s.Metric["address"])
		h.byAddress[a] = appendUnique(h.byAddress[a], string(s.Metric["instance"]))
	}
	for _, s := range in.Hostnames {
		h.hostname[string(s.Metric["instance"])] = string(s.Metric["hostname"])
	}
	for _, s := range in.Ports {
		k := string(s.Metric["instance"]) + "|" + string(s.Metric["port"])
		h.listeners[k] = appendUnique(h.listeners[k], string(s.Metric["service"]))
	}
	for _, l := range [](map[string][]string){h.byAddress, h.listeners} {
		for k := range l {
			sort.Strings(l[k])
		}
	}
	return h
}

// owner returns the monitored instance that owns addr as seen from the
// instance from: from itself when it owns it (loopback, or an address every
// host has, such as a container bridge), else the only other owner.
func (h hostIndex) owner(from, addr string) (string, bool) {
	owners := h.byAddress[addr]
	if slices.Contains(owners, from) {
		return from, true
	}
	if len(owners) == 1 {
		return owners[0], true
	}
	return "", false
}

// host names an instance by its hostname when the exporter reports one.
func (h hostIndex) host(instance string) string {
	if n := h.hostname[instance]; n != "" {
		return n
	}
	return instance
}

// edgeKey identifies an edge report's labels.
func edgeKey(m model.Metric) string {
	return strings.Join([]string{
		string(m["instance"]), string(m["client"]), string(m["client_address"]),
		string(m["server"]), string(m["server_address"]), string(m["port"]),
	}, "|")
}

// buildGraph joins the exporter's reports into one map. A connection seen
// from both of its hosts is counted once, from the client's side, which
// names the client's service; the server's side cannot (the client's port
// is ephemeral). When service is set, only edges touching a matching service
// are kept, with their other ends.
func buildGraph(in graphInput, service *regexp.Regexp) *serviceGraph {
	h := newHostIndex(in)
	nodes := map[string]*graphNode{}
	node := func(id, title, kind string) *graphNode {
		n, ok := nodes[id]
		if !ok {
			n = &graphNode{ID: id, Title: title, Kind: kind, CPU: math.NaN(), Memory: math.NaN(), Score: math.NaN()}
			nodes[id] = n
		}
		return n
	}
	for _, s := range in.Services {
		n := node(string(s.Metric["service"]), string(s.Metric["service"]), string(s.Metric["kind"]))
		n.Hosts = appendUnique(n.Hosts, h.host(string(s.Metric["instance"])))
	}

	type resolved struct {
		src, dst, port string
		m              model.Metric
	}
	var reports []resolved
	clientSide := map[string]bool{} // instance|dst|port of reports by a client's own host
	for _, s := range in.Connections {
		m := s.Metric
		inst, port := string(m["instance"]), string(m["port"])
		dst := string(m["server"])
		if dst == "" {
			addr := string(m["server_address"])
			dst = externalPrefix + addr
			if owner, ok := h.owner(inst, addr); ok {
				if ls := h.listeners[owner+"|"+port]; len(ls) > 0 {
					dst = ls[0]
				}
			}
		}
		src := string(m["client"])
		if src == "" {
			src = externalPrefix + string(m["client_address"])
		} else {
			clientSide[inst+"|"+dst+"|"+port] = true
		}
		reports = append(reports, resolved{src: src, dst: dst, port: port, m: m})
	}

	values := func(v model.Vector) map[string]float64 {
		out := make(map[string]float64, len(v))
		for _, s := range v {
			out[edgeKey(s.Metric)] = float64(s.Value)
		}
		return out
	}
	sent, recv, rtt, retr := values(in.Sent), values(in.Received), values(in.RTT), values(in.Retransmits)
	conns := values(in.Connections)

	edges := map[string]*graphEdge{}
	rttWeight := map[string]float64{}
	for _, r := range reports {
		k := edgeKey(r.m)
		// The exporter keeps the series of a closed connection (its
		// byte counters must not go backwards); one that carried
		// nothing in the range is not part of the map.
		if conns[k] == 0 && sent[k] == 0 && recv[k] == 0 {
			continue
		}
		if strings.HasPrefix(r.src, externalPrefix) {
			// A server-side report of a client on another monitored
			// host that reports the connection itself: skip the copy.
			owner, ok := h.owner(string(r.m["instance"]), string(r.m["client_address"]))
			if ok && owner != string(r.m["instance"]) && clientSide[owner+"|"+r.dst+"|"+r.port] {
				continue
			}
		}
		if service != nil && !service.MatchString(r.src) && !service.MatchString(r.dst) {
			continue
		}
		id := r.src + "->" + r.dst + ":" + r.port
		e, ok := edges[id]
		if !ok {
			e = &graphEdge{ID: id, Source: r.src, Target: r.dst, Port: r.port}
			edges[id] = e
		}
		c := conns[k]
		e.Connections += c
		e.Sent += sent[k]
		e.Received += recv[k]
		e.Retransmits += retr[k]
		if v, ok := rtt[k]; ok && !math.IsNaN(v) {
			w := max(c, 1e-9)
			e.RTT += v * w
			rttWeight[id] += w
		}
		for _, id := range []string{r.src, r.dst} {
			if strings.HasPrefix(id, externalPrefix) {
				node(id, strings.TrimPrefix(id, externalPrefix), "external")
			} else {
				node(id, id, "")
			}
		}
	}
	for id, e := range edges {
		if w := rttWeight[id]; w > 0 {
			e.RTT /= w
		} else {
			e.RTT = math.NaN()
		}
	}

	sumBy := func(v model.Vector, set func(*graphNode, float64)) {
		acc := map[string]float64{}
		for _, s := range v {
			acc[string(s.Metric["service"])] += float64(s.Value)
		}
		for svc, x := range acc {
			if n, ok := nodes[svc]; ok {
				set(n, x)
			}
		}
	}
	sumBy(in.CPU, func(n *graphNode, x float64) { n.CPU = x })
	sumBy(in.Memory, func(n *graphNode, x float64) { n.Memory = x })
	for _, s := range in.Scores {
		if n, ok := nodes[string(s.Metric["service"])]; ok {
			n.Score = math.Max(nanTo(n.Score, 0), float64(s.Value))
		}
	}

	g := &serviceGraph{}
	keep := map[string]bool{}
	for _, e := range edges {
		keep[e.Source], keep[e.Target] = true, true
		g.Edges = append(g.Edges, e)
	}
	for id, n := range nodes {
		if service != nil && !keep[id] && !service.MatchString(id) {
			continue
		}
		sort.Strings(n.Hosts)
		g.Nodes = append(g.Nodes, n)
	}
	sort.Slice(g.Nodes, func(i, j int) bool { return g.Nodes[i].ID < g.Nodes[j].ID })
	sort.Slice(g.Edges, func(i, j int) bool { return g.Edges[i].ID < g.Edges[j].ID })
	return g
}

// hops returns, for every node reachable from the given services by
// following calls (client → server), the number of calls in between: 0 for
// the services themselves, 1 for the services they call, and so on.
func (g *serviceGraph) hops(from []string) map[string]int {
	next := map[string][]string{}
	for _, e := range g.Edges {
		next[e.Source] = append(next[e.Source], e.Target)
	}
	dist := map[string]int{}
	queue := []string{}
	for _, s := range from {
		if _, ok := dist[s]; !ok {
			dist[s] = 0
			queue = append(queue, s)
		}
	}
	for len(queue) > 0 {
		cur := queue[0]
		queue = queue[1:]
		for _, n := range next[cur] {
			if _, ok := dist[n]; !ok {
				dist[n] = dist[cur] + 1
				queue = append(queue, n)
			}
		}
	}
	return dist
}

// without returns the graph without the edges the services leave out
// start from.
func (g *serviceGraph) without(leave []string) *serviceGraph {
	out := &serviceGraph{Nodes: g.Nodes}
	for _, e := range g.Edges {
		if !slices.Contains(leave, e.Source) {
			out.Edges = append(out.Edges, e)
		}
	}
	return out
}

// upstream returns, for each service that calls one of from (directly or
// through others), how many calls separate it from them.
func (g *serviceGraph) upstream(from []string) map[string]int {
	rev := &serviceGraph{}
	for _, e := range g.Edges {
		rev.Edges = append(rev.Edges, &graphEdge{Source: e.Target, Target: e.Source})
	}
	return rev.hops(from)
}

// callees returns the services each service calls.
func (g *serviceGraph) callees() map[string][]string {
	out := map[string][]string{}
	for _, e := range g.Edges {
		if !slices.Contains(out[e.Source], e.Target) {
			out[e.Source] = append(out[e.Source], e.Target)
		}
	}
	return out
}

// graphExprs are the instant queries behind the service map, over the
// window w before the evaluation time. host restricts the exporters whose
// own reports are used; addresses and ports come from every host, so that
// edges to unfiltered hosts are still named.
func graphExprs(w time.Duration, host string) map[string]string {
	r := promDuration(max(w, time.Minute))
	sel := ""
	if host != "" {
		sel = regexMatcher("instance", host)
	}
	edgeBy := "instance, " + schema.EdgeBy()
	return map[string]string{
		"services":    fmt.Sprintf("max by (instance, service, kind) (last_over_time(%s{%s}[%s]))", schema.ServiceInfo.Name, sel, r),
		"addresses":   fmt.Sprintf("max by (instance, address) (last_over_time(%s[%s]))", schema.HostAddressInfo.Name, r),
		"hostnames":   hostnamesExpr(w),
		"ports":       fmt.Sprintf("max by (instance, service, protocol, port) (last_over_time(%s[%s]))", schema.ServicePortInfo.Name, r),
		"connections": fmt.Sprintf("max by (%s) (avg_over_time(%s{%s}[%s]))", edgeBy, schema.EdgeConnections.Name, sel, r),
		"sent":        fmt.Sprintf("sum by (%s) (rate(%s{%s}[%s]))", edgeBy, schema.EdgeSent.Name, sel, r),
		"received":    fmt.Sprintf("sum by (%s) (rate(%s{%s}[%s]))", edgeBy, schema.EdgeReceived.Name, sel, r),
		"rtt":         fmt.Sprintf("max by (%s) (avg_over_time(%s{%s}[%s]))", edgeBy, schema.EdgeRTT.Name, sel, r),
		"retransmits": fmt.Sprintf("sum by (%s) (rate(%s{%s}[%s]))", edgeBy, schema.EdgeRetransmits.Name, sel, r),
		"cpu":         fmt.Sprintf("sum by (instance, service) (rate(%s{%s}[%s]))", schema.ServiceCPU.Name, sel, r),
		"memory":      fmt.Sprintf("max by (instance, service) (avg_over_time(%s{%s}[%s]))", schema.ServiceMemory.Name, sel, r),
		"scores":      fmt.Sprintf(`max by (service) (max_over_time(%s{service!=""}[%s]))`, schema.AnomalyScore.Name, r),
	}
}

// fetchGraph runs the service map's queries at t over the window w.
func (d *Datasource) fetchGraph(ctx context.Context, t time.Time, w time.Duration, host string) (graphInput, error) {
	exprs := graphExprs(w, host)
	names := make([]string, 0, len(exprs))
	for n := range exprs {
		names = append(names, n)
	}
	sort.Strings(names)
	answers := make([]model.Vector, len(names))
	eg, ctx := errgroup.WithContext(ctx)
	eg.SetLimit(6)
	for i, n := range names {
		eg.Go(func() (err error) {
			answers[i], err = d.prom.query(ctx, exprs[n], t)
			return err
		})
	}
	if err := eg.Wait(); err != nil {
		return graphInput{}, err
	}
	got := map[string]model.Vector{}
	for i, n := range names {
		got[n] = answers[i]
	}
	return graphInput{
		Services: got["services"], Addresses: got["addresses"], Hostnames: got["hostnames"], Ports: got["ports"],
		Connections: got["connections"], Sent: got["sent"], Received: got["received"], RTT: got["rtt"],
		Retransmits: got["retransmits"], CPU: got["cpu"], Memory: got["memory"], Scores: got["scores"],
	}, nil
}

func appendUnique(s []string, v string) []string {
	if slices.Contains(s, v) {
		return s
	}
	return append(s, v)
}

func nanTo(v, def float64) float64 {
	if math.IsNaN(v) {
		return def
	}
	return v
}
