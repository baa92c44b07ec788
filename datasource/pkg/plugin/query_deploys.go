package plugin

import (
	"context"
	"fmt"
	"net"
	"sort"
	"strings"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/data"
	"github.com/prometheus/common/model"

	"github.com/telltale-dev/telltale/pkg/schema"
)

// deployEvent is one deploy of a service on one host.
type deployEvent struct {
	Time     time.Time
	Service  string
	Instance string
	// Host names the host the service runs on: its hostname as the
	// exporter reports it, else the address of the exporter's target
	// (Instance without its port, which is the exporter's, not the
	// service's).
	Host string
	// OldBuild and NewBuild are build ids before and after, "" when not
	// known; Source says how the new one was computed.
	OldBuild, NewBuild, Source string
	// Count is how many deploys the step saw (more than one when a
	// service was redeployed quickly).
	Count int
}

// queryDeploys answers a deploys query: annotation events for the deploys in
// the range.
func (d *Datasource) queryDeploys(ctx context.Context, q Query) (data.Frames, error) {
	events, err := d.deployEvents(ctx, q.From, q.To, q.Step, q.Service)
	if err != nil {
		return nil, err
	}
	names, err := d.prom.query(ctx, hostnamesExpr(q.To.Sub(q.From)+q.Step), q.To)
	if err != nil {
		return nil, err
	}
	nameHosts(events, names)
	return deployFrames(events, q.FromAlert), nil
}

// hostnamesExpr is the query of each exporter's hostname over the window w.
func hostnamesExpr(w time.Duration) string {
	return fmt.Sprintf("max by (instance, hostname) (last_over_time(%s[%s]))", schema.HostInfo.Name, promDuration(max(w, time.Minute)))
}

// nameHosts sets each event's Host from the exporters' hostnames
// (instance, hostname), else from its instance's address.
func nameHosts(events []deployEvent, hostnames model.Vector) {
	byInstance := map[string]string{}
	for _, s := range hostnames {
		byInstance[string(s.Metric["instance"])] = string(s.Metric["hostname"])
	}
	for i := range events {
		e := &events[i]
		switch h, err := splitHost(e.Instance); {
		case byInstance[e.Instance] != "":
			e.Host = byInstance[e.Instance]
		case err == nil:
			e.Host = h
		default:
			e.Host = e.Instance
		}
	}
}

// splitHost is the host part of a host:port address.
func splitHost(addr string) (string, error) {
	h, _, err := net.SplitHostPort(addr)
	return h, err
}

// deployEvents finds the deploys in [from, to] at step resolution. A deploy
// is a step in which schema.ServiceDeploys went up; build ids come
// from schema.ServiceBuildInfo. A service whose counter is missing
// (an older exporter) still gets events from changes of its build id.
func (d *Datasource) deployEvents(ctx context.Context, from, to time.Time, step time.Duration, serviceRE string) ([]deployEvent, error) {
	sel := regexMatcher("service", serviceRE)
	// One step before the range, so a deploy in its first step is seen.
	start := from.Add(-step)
	counts, err := d.prom.queryRange(ctx, fmt.Sprintf("max by (instance, service) (%s{%s})", schema.ServiceDeploys.Name, sel), start, to, step)
	if err != nil {
		return nil, err
	}
	builds, err := d.prom.queryRange(ctx, fmt.Sprintf("max by (instance, service, build_id, source) (%s{%s})", schema.ServiceBuildInfo.Name, sel), start, to, step)
	if err != nil {
		return nil, err
	}
	return deployEventsFrom(counts, builds, from), nil
}

// deployEventsFrom finds deploy events at or after from in the counter and
// build-info series, sorted by time then service.
func deployEventsFrom(counts, builds model.Matrix, from time.Time) []deployEvent {
	type key struct{ instance, service string }
	keyOf := func(m model.Metric) key { return key{string(m["instance"]), string(m["service"])} }
	// buildAt[k][t] is the build id (and its source) a service had at t.
	type build struct{ id, source string }
	buildAt := map[key]map[model.Time]build{}
	for _, s := range builds {
		k := keyOf(s.Metric)
		if buildAt[k] == nil {
			buildAt[k] = map[model.Time]build{}
		}
		for _, p := range s.Values {
			buildAt[k][p.Timestamp] = build{string(s.Metric["build_id"]), string(s.Metric["source"])}
		}
	}
	var events []deployEvent
	counted := map[key]bool{}
	for _, s := range counts {
		k := keyOf(s.Metric)
		counted[k] = true
		for i := 1; i < len(s.Values); i++ {
			prev, cur := s.Values[i-1], s.Values[i]
			// A decrease is the exporter restarting, not a deploy.
			if cur.Value <= prev.Value || cur.Timestamp.Time().Before(from) {
				continue
			}
			old, nw := buildAt[k][prev.Timestamp], buildAt[k][cur.Timestamp]
			if old.id == nw.id {
				old = build{}
			}
			events = append(events, deployEvent{
				Time: cur.Timestamp.Time().UTC(), Service: k.service, Instance: k.instance,
				OldBuild: old.id, NewBuild: nw.id, Source: nw.source, Count: int(cur.Value - prev.Value),
			})
		}
	}
	for k, at := range buildAt {
		if counted[k] {
			continue
		}
		times := make([]model.Time, 0, len(at))
		for t := range at {
			times = append(times, t)
		}
		sort.Slice(times, func(i, j int) bool { return times[i] < times[j] })
		for i := 1; i < len(times); i++ {
			old, nw := at[times[i-1]], at[times[i]]
			if old.id == nw.id || times[i].Time().Before(from) {
				continue
			}
			events = append(events, deployEvent{
				Time: times[i].Time().UTC(), Service: k.service, Instance: k.instance,
				OldBuild: old.id, NewBuild: nw.id, Source: nw.source, Count: 1,
			})
		}
	}
	sort.Slice(events, func(i, j int) bool {
		if !events[i].Time.Equal(events[j].Time) {
			return events[i].Time.Before(events[j].Time)
		}
		if events[i].Service != events[j].Service {
			return events[i].Service < events[j].Service
		}
		return events[i].Instance < events[j].Instance
	})
	return events
}

// shortBuild shortens a build id for display.
func shortBuild(id string) string {
	if id == "" {
		return "unknown build"
	}
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

// host is the event's Host, else its Instance.
func (e deployEvent) host() string {
	if e.Host != "" {
		return e.Host
	}
	return e.Instance
}

// text describes a deploy for people.
func (e deployEvent) text() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s on %s: %s → %s", e.Service, e.host(), shortBuild(e.OldBuild), shortBuild(e.NewBuild))
	if e.Source != "" {
		fmt.Fprintf(&b, " (%s)", e.Source)
	}
	if e.Count > 1 {
		fmt.Fprintf(&b, ", %d deploys in this step", e.Count)
	}
	return b.String()
}

// deployFrames builds the deploys query's answer: an annotation frame with
// the fields Grafana maps to annotations (time, title, text, tags as a
// comma-separated list). For alerting, a frame with the number of deploys
// per service in the range.
func deployFrames(events []deployEvent, fromAlert bool) data.Frames {
	if fromAlert {
		count := map[string]float64{}
		for _, e := range events {
			count[e.Service] += float64(e.Count)
		}
		names := make([]string, 0, len(count))
		for s := range count {
			names = append(names, s)
		}
		sort.Strings(names)
		f := data.NewFrame("deploy_count", data.NewField("service", nil, []string{}), data.NewField("deploys", nil, []float64{}))
		for _, s := range names {
			f.AppendRow(s, count[s])
		}
		f.Meta = &data.FrameMeta{Type: data.FrameTypeNumericLong}
		return data.Frames{f}
	}
	f := data.NewFrame("deploys",
		data.NewField("time", nil, []time.Time{}),
		data.NewField("title", nil, []string{}),
		data.NewField("text", nil, []string{}),
		data.NewField("tags", nil, []string{}),
		data.NewField("service", nil, []string{}),
		data.NewField("instance", nil, []string{}),
		data.NewField("build_id", nil, []string{}),
		data.NewField("previous_build_id", nil, []string{}),
	)
	for _, e := range events {
		f.AppendRow(e.Time, "Deploy of "+e.Service, e.text(), "deploy,"+e.Service, e.Service, e.Instance, e.NewBuild, e.OldBuild)
	}
	f.Meta = &data.FrameMeta{Type: data.FrameTypeTable}
	return data.Frames{f}
}
