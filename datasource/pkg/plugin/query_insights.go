package plugin

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"math"
	"net"
	"net/url"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/data"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"golang.org/x/sync/errgroup"

	"github.com/telltale-dev/telltale/pkg/schema"
)

// signalTraits say what a candidate signal measures, for the ranking
// rules (see rankCauses).
type signalTraits struct {
	// Internal is set for a state inside a service — how busy, how
	// large, how slow it is — as opposed to the work it passes on or
	// loses (requests, errors, restarts): what reaches a service from
	// its callers is the work they send, not their state.
	Internal bool
	// Cost is set for a measure of what a service's work costs others —
	// its latency, its waiting, its errors, its network's round trips
	// and retransmits — which explains a KPI going wrong only by
	// rising: one that fell got better.
	Cost bool
	// Event is set for a count of events (restarts) read as its level:
	// like a deploy, a step of it is a cause only when the KPI went
	// wrong with it (see deployTiming), not a change whose effect lasts.
	Event bool
	// Work is set for an edge signal the client sets — how many
	// connections it holds open to the server: the work it sends —
	// which counts for the client; other edge signals count for the
	// server.
	Work bool
	// Load is set for the rate of requests a service served (a
	// histogram's observations): the work that came in to it.
	Load bool
}

// candidateSignal is a family of series insights scores as possible causes.
type candidateSignal struct {
	Kind, Name, Unit string
	signalTraits
	// Expr groups by service (signals) or by client, server,
	// server_address and port (edges); or, for a service's own metrics
	// (see appSignals), gives the series of scrape targets, which Owners
	// maps to their services by instance.
	Expr   string
	Owners map[string]string
	// Counts names the cumulative samples of a service's own family (a
	// counter's, or a histogram's or summary's _count), by which
	// sharedSeries tells a series one service counts from one that several
	// read off a thing they share; Shared holds the latter.
	Counts []string
	Shared sharedSet
}

// edgeBy is the grouping of edge signals: an edge as its client's host
// reports it (the schema's edge labels but the client's address: the client
// is named).
var edgeBy = strings.Join(slices.DeleteFunc(slices.Clone(schema.EdgeLabels), func(l string) bool { return l == schema.LabelClientAddress }), ", ")

// Names of the signals the contention rule reads (see contention).
const (
	signalCPU      = "cpu"
	signalRunqueue = "run-queue wait"
)

// candidateSignals are the service and edge signals insights looks at. The
// syscall ones exist only where the exporter's eBPF collector runs; a query
// for a missing metric simply returns nothing.
var candidateSignals = []candidateSignal{
	{Kind: CauseSignal, signalTraits: signalTraits{Internal: true}, Name: signalCPU, Unit: "cores", Expr: "sum by (service) (rate(" + schema.ServiceCPU.Name + "[$__rate_interval]))"},
	{Kind: CauseSignal, signalTraits: signalTraits{Internal: true}, Name: "memory", Unit: "bytes", Expr: "sum by (service) (" + schema.ServiceMemory.Name + ")"},
	{Kind: CauseSignal, signalTraits: signalTraits{Internal: true}, Name: "threads", Unit: "", Expr: "sum by (service) (" + schema.ServiceThreads.Name + ")"},
	{Kind: CauseSignal, signalTraits: signalTraits{Internal: true}, Name: "open files", Unit: "", Expr: "sum by (service) (" + schema.ServiceFDs.Name + ")"},
	{Kind: CauseSignal, signalTraits: signalTraits{Event: true}, Name: "restarts", Unit: "", Expr: "sum by (service) (" + schema.ServiceRestarts.Name + ")"},
	{Kind: CauseSignal, signalTraits: signalTraits{Internal: true}, Name: "read syscalls", Unit: "/s", Expr: "sum by (service) (rate(" + schema.ServiceReadSyscalls.Name + "[$__rate_interval]))"},
	{Kind: CauseSignal, signalTraits: signalTraits{Internal: true}, Name: "write syscalls", Unit: "/s", Expr: "sum by (service) (rate(" + schema.ServiceWriteSyscalls.Name + "[$__rate_interval]))"},
	{Kind: CauseSignal, signalTraits: signalTraits{Internal: true}, Name: "context switches", Unit: "/s", Expr: "sum by (service) (rate(" + schema.ServiceSwitches.Name + "[$__rate_interval]))"},
	{Kind: CauseSignal, signalTraits: signalTraits{Internal: true, Cost: true}, Name: signalRunqueue, Unit: "s/s", Expr: "sum by (service) (rate(" + schema.ServiceRunqueueWait.Name + "[$__rate_interval]))"},
	{Kind: CauseSignal, signalTraits: signalTraits{Internal: true}, Name: "disk reads", Unit: "B/s", Expr: "sum by (service) (rate(" + schema.ServiceDiskRead.Name + "[$__rate_interval]))"},
	{Kind: CauseSignal, signalTraits: signalTraits{Internal: true}, Name: "disk writes", Unit: "B/s", Expr: "sum by (service) (rate(" + schema.ServiceDiskWritten.Name + "[$__rate_interval]))"},
	{Kind: CauseSignal, signalTraits: signalTraits{Cost: true}, Name: "syscall errors", Unit: "/s", Expr: "sum by (service) (rate(" + schema.ServiceSyscallErrors.Name + "[$__rate_interval]))"},
	{Kind: CauseSignal, signalTraits: signalTraits{Internal: true, Cost: true}, Name: "syscall latency", Unit: "s", Expr: "sum by (service) (rate(" + schema.ServiceSyscallLatency.Name + "_sum[$__rate_interval])) / sum by (service) (rate(" + schema.ServiceSyscallLatency.Name + "_count[$__rate_interval]))"},
	{Kind: CauseEdge, signalTraits: signalTraits{Cost: true}, Name: "round-trip time", Unit: "s", Expr: "max by (" + edgeBy + ") (" + schema.EdgeRTT.Name + ")"},
	{Kind: CauseEdge, signalTraits: signalTraits{Cost: true}, Name: "retransmits", Unit: "/s", Expr: "sum by (" + edgeBy + ") (rate(" + schema.EdgeRetransmits.Name + "[$__rate_interval]))"},
	{Kind: CauseEdge, signalTraits: signalTraits{Work: true}, Name: "connections", Unit: "", Expr: "sum by (" + edgeBy + ") (" + schema.EdgeConnections.Name + ")"},
}

// queryInsights answers an insights query: the windows of the range where
// the KPI went wrong, and for each a ranked table of likely causes with their
// evidence.
func (d *Datasource) queryInsights(ctx context.Context, q Query) (data.Frames, error) {
	allKPIs, err := d.kpis(ctx, q.To, q.To.Sub(q.From))
	if err != nil {
		return nil, err
	}
	k, err := findKPI(allKPIs, q.KPI)
	if err != nil {
		return nil, err
	}
	kpiSeries, first, expr, err := d.scoreExprWarm(ctx, k.Expr, q)
	if err != nil {
		return nil, fmt.Errorf("KPI %q: %w", k.Name, err)
	}
	if len(kpiSeries) > 1 {
		return nil, badQuery("KPI %q: %s returns %d series; insights needs one (aggregate it, e.g. with sum)", k.Name, expr, len(kpiSeries))
	}
	var windows []insightWindow
	if len(kpiSeries) == 1 {
		// The warm-up before the range is the KPI's recent level.
		windows = findWindows(k, kpiSeries[0], first)
	}
	if len(windows) == 0 {
		return insightFrames(k, nil, nil, len(kpiSeries) == 0, q.FromAlert), nil
	}

	in := rankInput{KPI: k, Windows: windows, Step: q.Step, RateInterval: q.scope().rateInterval()}
	sq := signalQuery(q, windows)
	var (
		graph     *serviceGraph
		hostnames model.Vector
		appSigs   [][]signalSeries
		mdErr     error
		// The Prometheus these queries read watches everything; its load
		// and its scrapes move with the queries, not with the KPI. Its
		// series are not scored: each signal's waits until it is known.
		observer      []string
		observerKnown = make(chan struct{})
	)
	eg, gctx := errgroup.WithContext(ctx)
	watching := func(s signalSeries) bool {
		select {
		case <-observerKnown:
		case <-gctx.Done():
			return true
		}
		return slices.Contains(observer, s.Service) || (s.Kind == CauseEdge && slices.Contains(observer, string(s.Band.Labels["client"])))
	}
	// Prometheus runs 20 queries at once by default; leave room for others.
	eg.SetLimit(4)
	eg.Go(func() error {
		gi, err := d.fetchGraph(gctx, q.To, q.To.Sub(q.warmStart()), "")
		if err != nil {
			close(observerKnown)
			return err
		}
		graph, hostnames = buildGraph(gi, nil), gi.Hostnames
		observer = d.observer(newHostIndex(gi))
		close(observerKnown)
		paths := graph.without(observer)
		kpiSvcs, err := d.kpiServices(gctx, expr, q, gi)
		if err != nil {
			return err
		}
		if len(kpiSvcs) > 0 {
			// Its callees, and its callers (through which the work
			// comes in: failing there loses it before it arrives), each
			// by how many calls away.
			in.Hops, in.Upstream = paths.hops(kpiSvcs), map[string]bool{}
			for svc, h := range paths.upstream(kpiSvcs) {
				if _, ok := in.Hops[svc]; !ok {
					in.Hops[svc], in.Upstream[svc] = h, true
				}
			}
		}
		in.Callees = paths.callees()
		// The services' own metrics, queried beside the others: of the
		// services the KPI's service reaches on the map (all, when it
		// is not known). Without the targets' metadata (a store that
		// does not scrape, such as Thanos's query API) insights still
		// ranks the exporter's signals.
		md, err := d.prom.targetsMetadata(gctx)
		if err != nil {
			mdErr = err
			return nil
		}
		dist := func(svc string) (int, bool) {
			if in.Hops == nil {
				return 0, true
			}
			h, ok := in.Hops[svc]
			return h, ok
		}
		cands := appSignals(md, newHostIndex(gi), dist, kpiFamilies(allKPIs, q))
		if err := d.markShared(gctx, cands, q.To, in.RateInterval); err != nil {
			return err
		}
		appSigs = d.querySignals(gctx, eg, cands, sq, windows, watching)
		return nil
	})
	eg.Go(func() error {
		v, err := d.prom.query(gctx, hostCPUsExpr(q.To.Sub(q.warmStart())), q.To)
		for _, s := range v {
			in.HostCPUs += float64(s.Value)
		}
		return err
	})
	eg.Go(func() (err error) {
		deployFrom := windows[0].Start.Add(-max(10*q.Step, timingDecay))
		in.Deploys, err = d.deployEvents(gctx, deployFrom, q.To, q.Step, "")
		return err
	})
	signals := d.querySignals(gctx, eg, candidateSignals, sq, windows, watching)
	if err := eg.Wait(); err != nil {
		return nil, err
	}
	for _, s := range append(signals, appSigs...) {
		in.Signals = append(in.Signals, s...)
	}
	resolveEdgeServices(in.Signals, graph)
	nameHosts(in.Deploys, hostnames)
	frames := insightFrames(k, windows, rankCauses(in), false, q.FromAlert)
	if mdErr != nil && !q.FromAlert {
		frames[0].AppendNotices(data.Notice{Severity: data.NoticeSeverityWarning,
			Text: fmt.Sprintf("The services' own metrics are not among the causes: %v. Prometheus's /api/v1/targets/metadata tells which families its targets expose.", mdErr)})
	}
	return frames, nil
}

// signalQuery is the query of the candidate signals: they are read, and
// scored, only where the ranking looks at them — from twice the search span
// before the first window (the onset's search, and the level before it or
// rawOnset's reference level: see signalCause), whether or not that is
// within the range — after a warm-up of warmupSteps steps, which is what
// the ensemble needs to be warm, not the hour the range's own scores get:
// the scores matter only from the search span on, where the ensemble has
// seen that span too, and a change its scores do not show is judged from
// the values (see rawOnset). A range of hours with an incident at its end
// costs the reading and scoring of that stretch, not of the hours, and a
// range that starts a minute before an incident does not read an hour
// before it.
func signalQuery(q Query, windows []insightWindow) Query {
	earliest := windows[0].Start
	for _, w := range windows {
		if w.Start.Before(earliest) {
			earliest = w.Start
		}
	}
	sq := q
	sq.From = earliest.Add(-2 * searchSpan(q.Step))
	sq.warm = warmupSteps * q.Step
	return sq
}

// hostCPUsExpr counts the CPUs of the hosts seen over the window w (see
// contention): one sample, absent when no exporter reports them.
func hostCPUsExpr(w time.Duration) string {
	return fmt.Sprintf("sum(max by (instance) (last_over_time(%s[%s])))", schema.HostCPUs.Name, promDuration(max(w, time.Minute)))
}

// observer returns the services listening where the Prometheus this
// datasource reads listens (on a monitored host): the monitoring itself.
// It scrapes every service, so on the service map it calls them all, and
// its own load follows the queries made to it; insights leaves it out.
func (d *Datasource) observer(h hostIndex) []string {
	u, err := url.Parse(d.prom.url)
	if err != nil || u.Hostname() == "" {
		return nil
	}
	port := u.Port()
	if port == "" {
		port = map[string]string{"http": "80", "https": "443"}[u.Scheme]
	}
	return h.listenersAt(net.JoinHostPort(u.Hostname(), port))
}

// kpiFamilies returns a skip function for appSignals: every KPI is an
// outcome, not a cause, so the families they read are no signals.
func kpiFamilies(kpis []KPI, q Query) func(string) bool {
	var exprs []string
	for _, k := range kpis {
		if e, err := interpolate(k.Expr, q.scope()); err == nil {
			exprs = append(exprs, e)
		}
	}
	return exprMetrics(exprs...)
}

// querySignals queries and scores the candidate signals in eg, each into
// its slot of the result, which is complete once eg is done; a series of no
// service, or one skip says, is not scored. It may be called from a
// goroutine of eg.
func (d *Datasource) querySignals(ctx context.Context, eg *errgroup.Group, cands []candidateSignal, q Query, windows []insightWindow, skip func(signalSeries) bool) [][]signalSeries {
	signals := make([][]signalSeries, len(cands))
	for i, cs := range cands {
		pick := func(g grid, s []*stepSeries) []int {
			// A series that is flat wherever a cause of the windows is
			// read cannot be one, nor can one that several services
			// share: neither is scored.
			return mostChanged(g, s, windows, maxCandidates, func(ss *stepSeries) bool {
				if named := toSignalSeries(cs, &bandSeries{Labels: ss.labels}); named.Service == "" || skip(named) {
					return false
				}
				return varies(g, ss, windows, q.Step) && (len(cs.Counts) == 0 || !cs.Shared.has(cs.Counts[0], ss.labels))
			})
		}
		eg.Go(func() error {
			// The warm-up stays: a change is judged against it when the
			// scores say nothing (see rawOnset).
			series, _, _, err := d.scoreExprPick(ctx, cs.Expr, q, pick)
			if err != nil {
				return fmt.Errorf("signal %s: %w", cs.Name, err)
			}
			for _, s := range series {
				signals[i] = append(signals[i], toSignalSeries(cs, s))
			}
			return nil
		})
	}
	return signals
}

// markShared marks, in the candidates of the services' own families, the
// series that several services share (see sharedSeries), from the
// families' cumulative samples at the end of the range and a rate
// interval before it.
func (d *Datasource) markShared(ctx context.Context, cands []candidateSignal, at time.Time, rateInterval time.Duration) error {
	family := map[string]string{}
	var owners map[string]string
	for _, cs := range cands {
		for _, n := range cs.Counts {
			family[n] = cs.Counts[0]
		}
		if cs.Owners != nil {
			owners = cs.Owners
		}
	}
	if len(family) == 0 || len(owners) == 0 {
		return nil
	}
	sel := targetSelector(slices.Sorted(maps.Keys(family)), slices.Sorted(maps.Keys(owners)))
	now, err := d.prom.query(ctx, sel, at)
	if err != nil {
		return err
	}
	before, err := d.prom.query(ctx, sel, at.Add(-rateInterval))
	if err != nil {
		return err
	}
	shared := sharedSeries(now, before, owners, family)
	for i := range cands {
		if len(cands[i].Counts) > 0 {
			cands[i].Shared = shared
		}
	}
	return nil
}

// varies reports whether a series has two different values (or a value
// and a missing sample) anywhere in a window or in the stretch before it
// that rankCauses reads (twice the search span: the onset's search and
// the level before it).
func varies(g grid, s *stepSeries, windows []insightWindow, step time.Duration) bool {
	for _, w := range windows {
		a := max(g.bucket(w.Start.Add(-2*searchSpan(step)).UnixMilli()), 0)
		b := min(g.bucket(w.End.UnixMilli()), len(s.v)-1)
		for i := a + 1; i <= b; i++ {
			has, had := s.t[i] != 0, s.t[i-1] != 0
			if has != had || (has && s.v[i] != s.v[i-1] && !(math.IsNaN(s.v[i]) && math.IsNaN(s.v[i-1]))) {
				return true
			}
		}
	}
	return false
}

// maxCandidates is how many series of one signal family insights scores:
// on a host with thousands of services, those that changed most around
// the windows (see mostChanged).
const maxCandidates = 100

// mostChanged returns the indices of at most n of the series that keep
// accepts, those whose values changed most around the windows, most changed
// first: for each window, the median of the values in it against the
// median of as long before it, relative to the latter (a rise from 0 counts
// as the largest change). Only when more than n are kept is anything left
// out; a series that did not move around a window cannot explain it.
func mostChanged(g grid, s []*stepSeries, windows []insightWindow, n int, keep func(*stepSeries) bool) []int {
	var idx []int
	for i, ss := range s {
		if keep(ss) {
			idx = append(idx, i)
		}
	}
	if len(idx) <= n {
		return idx
	}
	change := make([]float64, len(s))
	for _, w := range windows {
		a, b := g.bucket(w.Start.UnixMilli()), g.bucket(w.End.UnixMilli())
		span := max(b-a+1, 10)
		from := max(a-span, 0)
		for _, i := range idx {
			ss := s[i]
			before := ss.values(from, a)
			after := ss.values(a, b+1)
			if len(before) == 0 || len(after) == 0 {
				continue
			}
			mb, ma := median(before), median(after)
			c := math.Abs(ma-mb) / math.Abs(mb)
			if mb == 0 {
				c = 0
				if ma != 0 {
					c = math.Inf(1)
				}
			}
			change[i] = max(change[i], c)
		}
	}
	slices.SortStableFunc(idx, func(i, j int) int { return cmp.Compare(change[j], change[i]) })
	return idx[:n]
}

// toSignalSeries names a scored candidate series.
func toSignalSeries(cs candidateSignal, b *bandSeries) signalSeries {
	s := signalSeries{Kind: cs.Kind, Signal: cs.Name, Unit: cs.Unit, signalTraits: cs.signalTraits, Band: b}
	m := b.Labels
	if cs.Owners != nil {
		s.Service = cs.Owners[string(m[model.InstanceLabel])]
		s.Signal = appSeriesName(cs.Name, m)
		return s
	}
	if cs.Kind == CauseSignal {
		s.Service = string(m["service"])
		return s
	}
	server := string(m["server"])
	if server == "" {
		server = externalPrefix + string(m["server_address"])
	}
	s.Service = server
	if cs.Work {
		s.Peer = server
		s.Service = string(m["client"])
		if s.Service == "" {
			s.Service = externalPrefix + string(m["client_address"])
		}
	}
	s.Edge = fmt.Sprintf("%s → %s:%s", orAddress(string(m["client"]), string(m["client_address"])), orAddress(string(m["server"]), string(m["server_address"])), m["port"])
	return s
}

func orAddress(vals ...string) string {
	for _, v := range vals {
		if v != "" {
			return v
		}
	}
	return "?"
}

// resolveEdgeServices names the server service of edges whose server is on
// another host, using the joined service map: the service an edge's
// change counts for, or the peer its connections are opened to.
func resolveEdgeServices(sigs []signalSeries, g *serviceGraph) {
	if g == nil {
		return
	}
	for i := range sigs {
		s := &sigs[i]
		server := &s.Service
		if s.Work {
			server = &s.Peer
		}
		if s.Kind != CauseEdge || !strings.HasPrefix(*server, externalPrefix) {
			continue
		}
		client := string(s.Band.Labels["client"])
		port := string(s.Band.Labels["port"])
		for _, e := range g.Edges {
			if e.Source == client && e.Port == port && !strings.HasPrefix(e.Target, externalPrefix) {
				*server = e.Target
				break
			}
		}
	}
}

// kpiServices finds the services that expose the KPI's metrics: the
// instance labels of its series are host:port addresses, and the exporter
// says which service listens on that port of that host.
func (d *Datasource) kpiServices(ctx context.Context, expr string, q Query, gi graphInput) ([]string, error) {
	var sels []string
	for _, vs := range vectorSelectors(expr) {
		sels = append(sels, matchersString(vs.LabelMatchers))
	}
	instances := map[string]bool{}
	w := promDuration(max(q.To.Sub(q.From), time.Minute))
	for _, sel := range sels {
		v, err := d.prom.query(ctx, fmt.Sprintf("group by (instance) (last_over_time({%s}[%s]))", sel, w), q.To)
		if err != nil {
			return nil, err
		}
		for _, s := range v {
			instances[string(s.Metric["instance"])] = true
		}
	}
	return servicesAt(instances, gi), nil
}

// matchersString prints label matchers for use inside braces.
func matchersString(ms []*labels.Matcher) string {
	parts := make([]string, 0, len(ms))
	for _, m := range ms {
		parts = append(parts, m.Name+m.Type.String()+quote(m.Value))
	}
	return strings.Join(parts, ", ")
}

// servicesAt maps scrape targets (host:port) to the services listening
// there (see listenersAt).
func servicesAt(instances map[string]bool, gi graphInput) []string {
	h := newHostIndex(gi)
	found := map[string]bool{}
	for inst := range instances {
		for _, s := range h.listenersAt(inst) {
			found[s] = true
		}
	}
	out := make([]string, 0, len(found))
	for s := range found {
		out = append(out, s)
	}
	sort.Strings(out)
	return out
}

// listenersAt returns the services listening at a scrape target's address
// (host:port): on the monitored host that owns the address (or whose
// hostname it is), or, when no host owns it, any service anywhere on that
// port.
func (h hostIndex) listenersAt(inst string) []string {
	host, port, err := net.SplitHostPort(inst)
	if err != nil {
		return nil
	}
	if host == "localhost" {
		host = "127.0.0.1"
	}
	var owners []string
	for _, o := range h.byAddress[host] {
		owners = appendUnique(owners, o)
	}
	for o, name := range h.hostname {
		if name == host {
			owners = appendUnique(owners, o)
		}
	}
	var svcs []string
	for _, o := range owners {
		for _, s := range h.listeners[o+"|"+port] {
			svcs = appendUnique(svcs, s)
		}
	}
	if len(owners) == 0 {
		for k, ls := range h.listeners {
			if strings.HasSuffix(k, "|"+port) {
				for _, s := range ls {
					svcs = appendUnique(svcs, s)
				}
			}
		}
	}
	sort.Strings(svcs)
	return svcs
}

// insightFrames builds the insights answer: a windows table and a causes
// table (joined on the window column). For alerting, one number per KPI —
// how many windows the range has — labelled with the top cause of the last
// window, so a notification can say where to look.
func insightFrames(k KPI, windows []insightWindow, causes []cause, noData, fromAlert bool) data.Frames {
	if fromAlert {
		lbls := data.Labels{"kpi": k.Name}
		if len(windows) > 0 {
			last := windows[len(windows)-1].ID
			for _, c := range causes {
				if c.Window == last && c.Rank == 1 {
					lbls["cause_service"], lbls["cause_kind"], lbls["cause_signal"] = c.Service, c.Kind, c.Signal
				}
			}
		}
		f := data.NewFrame("insights", data.NewField("windows", lbls, []float64{float64(len(windows))}))
		f.Meta = &data.FrameMeta{Type: data.FrameTypeNumericMulti}
		return data.Frames{f}
	}
	wf := data.NewFrame("windows",
		data.NewField("window", nil, []int64{}),
		data.NewField("start", nil, []time.Time{}),
		data.NewField("end", nil, []time.Time{}),
		data.NewField("reason", nil, []string{}),
		data.NewField("worst", nil, []float64{}),
		data.NewField("expected", nil, []*float64{}),
		data.NewField("objective", nil, []*float64{}),
		data.NewField("max_score", nil, []float64{}),
		data.NewField("top_cause", nil, []string{}),
	)
	wf.Fields[4].Config = &data.FieldConfig{DisplayName: "Worst " + k.Name, Unit: k.panelUnit()}
	wf.Fields[5].Config = &data.FieldConfig{DisplayName: "Expected", Unit: k.panelUnit()}
	wf.Fields[6].Config = &data.FieldConfig{DisplayName: "Objective", Unit: k.panelUnit()}
	wf.Fields[7].Config = &data.FieldConfig{DisplayName: "Max anomaly score", Decimals: ptr(uint16(2))}
	for _, w := range windows {
		top := ""
		for _, c := range causes {
			if c.Window == w.ID && c.Rank == 1 {
				top = c.Evidence
			}
		}
		wf.AppendRow(int64(w.ID), w.Start, w.End, w.Reason, w.Worst, numOrNil(w.Expected), k.Objective, w.MaxScore, top)
	}
	wf.Meta = &data.FrameMeta{Type: data.FrameTypeTable, Custom: map[string]any{"kpi": k.Name}}
	switch {
	case noData:
		wf.AppendNotices(data.Notice{Severity: data.NoticeSeverityWarning, Text: fmt.Sprintf("KPI %q has no data in this range.", k.Name)})
	case len(windows) == 0:
		wf.AppendNotices(data.Notice{Severity: data.NoticeSeverityInfo, Text: fmt.Sprintf("KPI %q did not go wrong in this range: it met its objective and was never anomalous in its bad direction.", k.Name)})
	}

	cf := data.NewFrame("causes",
		data.NewField("window", nil, []int64{}),
		data.NewField("rank", nil, []int64{}),
		data.NewField("score", nil, []float64{}),
		data.NewField("kind", nil, []string{}),
		data.NewField("service", nil, []string{}),
		data.NewField("signal", nil, []string{}),
		data.NewField("evidence", nil, []string{}),
		data.NewField("onset", nil, []time.Time{}),
		data.NewField("lead_seconds", nil, []float64{}),
		data.NewField("before", nil, []*float64{}),
		data.NewField("after", nil, []*float64{}),
		data.NewField("change", nil, []*float64{}),
		data.NewField("hops", nil, []*int64{}),
		data.NewField("anomaly", nil, []float64{}),
		data.NewField("size", nil, []float64{}),
		data.NewField("timing", nil, []float64{}),
		data.NewField("proximity", nil, []float64{}),
		data.NewField("unexplained", nil, []float64{}),
		data.NewField("explained_by", nil, []string{}),
	)
	cf.Fields[2].Config = &data.FieldConfig{DisplayName: "Score", Decimals: ptr(uint16(2)), Min: ptr(data.ConfFloat64(0)), Max: ptr(data.ConfFloat64(1))}
	cf.Fields[8].Config = &data.FieldConfig{DisplayName: "Lead", Unit: "s"}
	cf.Fields[11].Config = &data.FieldConfig{DisplayName: "Change", Unit: "percentunit"}
	for _, c := range causes {
		var hops *int64
		if c.Hops >= 0 {
			hops = ptr(int64(c.Hops))
		}
		cf.AppendRow(int64(c.Window), int64(c.Rank), round3(c.Score), c.Kind, c.Service, c.Signal, c.Evidence,
			c.Onset, c.Lead.Seconds(), numOrNil(c.Before), numOrNil(c.After), numOrNil(c.Change), hops,
			round3(c.Anomaly), round3(c.Size), round3(c.Timing), round3(c.Proximity), round3(c.Unexplained), c.ExplainedBy)
	}
	cf.Meta = &data.FrameMeta{Type: data.FrameTypeTable}
	return data.Frames{wf, cf}
}

// round3 keeps three decimals, as shown in the evidence text, so the
// factors in the table multiply to the score people read.
func round3(v float64) float64 { return math.Round(v*1000) / 1000 }
