package plugin

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"flag"
	"fmt"
	"hash/fnv"
	"math"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/grafana/grafana-plugin-sdk-go/backend"
	"github.com/grafana/grafana-plugin-sdk-go/data"
	"github.com/grafana/grafana-plugin-sdk-go/experimental"
	"github.com/prometheus/common/model"

	"github.com/telltale-dev/telltale/pkg/schema"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/ with the current output")

// The shop scenario: four services on host shop-1 (storefront → checkout →
// payments, checkout → inventory → postgres on host db-1, payments → an
// outside address), a checkout latency KPI declared by the app and an orders
// KPI from the settings. From 11:28 payments burns CPU and the round-trip
// time to it grows; from 11:30 to 11:50 checkout latency breaches its
// objective. checkout was deployed at 11:10 and payments at 10:40.
var (
	shopFrom = time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC)
	shopTo   = time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	shopStep = time.Minute
)

const (
	shop1 = "10.0.0.1:10171"
	db1   = "10.0.0.2:10171"
)

// wave is deterministic noise in [-1, 1]: a hash of the time and a seed,
// so fixtures look like measurements (no two neighbours alike) and are the
// same on every run.
func wave(t time.Time, seed float64) float64 {
	h := fnv.New64a()
	var b [16]byte
	binary.LittleEndian.PutUint64(b[:8], uint64(t.Unix()))
	binary.LittleEndian.PutUint64(b[8:], math.Float64bits(seed))
	_, _ = h.Write(b[:])
	return float64(h.Sum64()%2000001)/1e6 - 1
}

func between(t time.Time, from, to string) bool {
	day := "2026-11-01T"
	a, _ := time.Parse(time.RFC3339, day+from+":00Z")
	b, _ := time.Parse(time.RFC3339, day+to+":00Z")
	return !t.Before(a) && t.Before(b)
}

func always(v func(t time.Time) float64) func(time.Time) (float64, bool) {
	return func(t time.Time) (float64, bool) { return v(t), true }
}

func constant(v float64) func(time.Time) (float64, bool) {
	return always(func(time.Time) float64 { return v })
}

func sample(m model.Metric, v float64) *model.Sample {
	return &model.Sample{Metric: m, Value: model.SampleValue(v), Timestamp: model.TimeFromUnixNano(shopTo.UnixNano())}
}

// kpiFixtures loads the shop scenario's KPIs into the fake.
func kpiFixtures(f *fakeProm) {
	info, obj := kpiInfoExprs(shopTo.Sub(shopFrom))
	f.instant[info] = model.Vector{sample(model.Metric{"kpi": "checkout_latency", "metric": "shop_checkout_duration_seconds", "unit": "s", "direction": "lower", "type": "histogram"}, 1)}
	f.instant[obj] = model.Vector{sample(model.Metric{"kpi": "checkout_latency"}, 0.5)}

	// The KPIs' values, under the expressions the backend sends after
	// replacing $__rate_interval (75s at a 1m step).
	f.ranged[`histogram_quantile(0.95, sum by (le) (rate(shop_checkout_duration_seconds_bucket[75s])))`] = []fakeSeries{{
		Metric: model.Metric{},
		F: always(func(t time.Time) float64 {
			if between(t, "11:30", "11:50") {
				return 0.9 + 0.05*wave(t, 1)
			}
			return 0.2 + 0.01*wave(t, 1)
		}),
	}}
	f.ranged[`sum(rate(shop_orders_total[75s]))`] = []fakeSeries{{
		Metric: model.Metric{},
		F:      always(func(t time.Time) float64 { return 5 + 0.2*wave(t, 2) }),
	}}

}

// graphFixtures loads the shop scenario's service map, as seen over the
// window w, into the fake.
func graphFixtures(f *fakeProm, w time.Duration) {
	{
		e := graphExprs(w, "")
		svc := func(inst, name, kind string) *model.Sample {
			return sample(model.Metric{"instance": model.LabelValue(inst), "service": model.LabelValue(name), "kind": model.LabelValue(kind)}, 1)
		}
		f.instant[e["services"]] = model.Vector{
			svc(shop1, "storefront", "process"), svc(shop1, "checkout", "process"),
			svc(shop1, "payments", "process"), svc(shop1, "inventory", "process"),
			svc(db1, "postgres", "systemd"),
		}
		addr := func(inst, a string) *model.Sample {
			return sample(model.Metric{"instance": model.LabelValue(inst), "address": model.LabelValue(a)}, 1)
		}
		f.instant[e["addresses"]] = model.Vector{addr(shop1, "10.0.0.1"), addr(shop1, "127.0.0.1"), addr(db1, "10.0.0.2"), addr(db1, "127.0.0.1")}
		f.instant[e["hostnames"]] = model.Vector{
			sample(model.Metric{"instance": shop1, "hostname": "shop-1"}, 1),
			sample(model.Metric{"instance": db1, "hostname": "db-1"}, 1),
		}
		port := func(inst, name, p string) *model.Sample {
			return sample(model.Metric{"instance": model.LabelValue(inst), "service": model.LabelValue(name), "protocol": "tcp", "port": model.LabelValue(p)}, 1)
		}
		f.instant[e["ports"]] = model.Vector{
			port(shop1, "storefront", "10181"), port(shop1, "checkout", "10182"), port(shop1, "payments", "10183"),
			port(shop1, "inventory", "10184"), port(db1, "postgres", "5432"),
		}
		edge := func(inst, client, clientAddr, server, serverAddr, p string) model.Metric {
			return model.Metric{"instance": model.LabelValue(inst), "client": model.LabelValue(client), "client_address": model.LabelValue(clientAddr),
				"server": model.LabelValue(server), "server_address": model.LabelValue(serverAddr), "port": model.LabelValue(p)}
		}
		sfCo := edge(shop1, "storefront", "", "checkout", "", "10182")
		coPa := edge(shop1, "checkout", "", "payments", "", "10183")
		coIn := edge(shop1, "checkout", "", "inventory", "", "10184")
		inPg := edge(shop1, "inventory", "", "", "10.0.0.2", "5432")
		pgSide := edge(db1, "", "10.0.0.1", "postgres", "", "5432")
		paExt := edge(shop1, "payments", "", "", "203.0.113.7", "443")
		f.instant[e["connections"]] = model.Vector{sample(sfCo, 4), sample(coPa, 2), sample(coIn, 2), sample(inPg, 3), sample(pgSide, 3), sample(paExt, 1)}
		f.instant[e["sent"]] = model.Vector{sample(sfCo, 5120), sample(coPa, 2048), sample(coIn, 1024), sample(inPg, 4096), sample(pgSide, 4096), sample(paExt, 512)}
		f.instant[e["received"]] = model.Vector{sample(sfCo, 20480), sample(coPa, 1024), sample(coIn, 8192), sample(inPg, 65536), sample(pgSide, 65536), sample(paExt, 256)}
		f.instant[e["rtt"]] = model.Vector{sample(sfCo, 0.0001), sample(coPa, 0.0004), sample(coIn, 0.0001), sample(inPg, 0.0008), sample(pgSide, 0.0009), sample(paExt, 0.03)}
		f.instant[e["retransmits"]] = model.Vector{sample(inPg, 0.1), sample(pgSide, 0.1), sample(paExt, 0.05)}
		res := func(inst, name string) model.Metric {
			return model.Metric{"instance": model.LabelValue(inst), "service": model.LabelValue(name)}
		}
		f.instant[e["cpu"]] = model.Vector{sample(res(shop1, "storefront"), 0.2), sample(res(shop1, "checkout"), 0.3), sample(res(shop1, "payments"), 0.25), sample(res(shop1, "inventory"), 0.1), sample(res(db1, "postgres"), 0.6)}
		f.instant[e["memory"]] = model.Vector{sample(res(shop1, "storefront"), 50e6), sample(res(shop1, "checkout"), 80e6), sample(res(shop1, "payments"), 60e6), sample(res(shop1, "inventory"), 40e6), sample(res(db1, "postgres"), 900e6)}
	}
}

// signalFixtures loads the shop scenario's per-service signals into the
// fake.
func signalFixtures(f *fakeProm) {
	// Per-service signals, scored on demand (no detector in this scenario).
	cpu := func(name string, base float64, seed float64) fakeSeries {
		return fakeSeries{Metric: model.Metric{"service": model.LabelValue(name)}, F: always(func(t time.Time) float64 {
			if name == "payments" && !t.Before(time.Date(2026, 11, 1, 11, 28, 0, 0, time.UTC)) {
				return 0.6 + 0.01*wave(t, seed)
			}
			return base + 0.01*wave(t, seed)
		})}
	}
	f.ranged[`sum by (service) (rate(`+schema.ServiceCPU.Name+`[75s]))`] = []fakeSeries{
		cpu("checkout", 0.3, 3), cpu("inventory", 0.1, 4), cpu("payments", 0.1, 5), cpu("postgres", 0.6, 6), cpu("storefront", 0.2, 7),
	}
	mem := func(name string, base float64) fakeSeries {
		return fakeSeries{Metric: model.Metric{"service": model.LabelValue(name)}, F: always(func(t time.Time) float64 { return base * (1 + 0.001*wave(t, base)) })}
	}
	f.ranged[`sum by (service) (`+schema.ServiceMemory.Name+`)`] = []fakeSeries{
		mem("checkout", 80e6), mem("inventory", 40e6), mem("payments", 60e6), mem("postgres", 900e6), mem("storefront", 50e6),
	}
}

// shopRequest is a QueryDataRequest for the shop scenario's range.
func shopRequest(queries ...map[string]any) *backend.QueryDataRequest {
	req := &backend.QueryDataRequest{Headers: map[string]string{}}
	for i, q := range queries {
		raw, _ := json.Marshal(q)
		qt, _ := q["queryType"].(string)
		req.Queries = append(req.Queries, backend.DataQuery{
			RefID:         string(rune('A' + i)),
			QueryType:     qt,
			JSON:          raw,
			Interval:      shopStep,
			MaxDataPoints: 120,
			TimeRange:     backend.TimeRange{From: shopFrom, To: shopTo},
		})
	}
	return req
}

// newTestDatasource returns a datasource pointed at the fake, with the
// settings' orders KPI.
func newTestDatasource(tb testing.TB, f *fakeProm, extraJSON string) *Datasource {
	tb.Helper()
	jd := `{"timeout": 10, "kpis": [{"name": "orders", "expr": "sum(rate(shop_orders_total[$__rate_interval]))", "unit": "reqps", "objective": 1, "direction": "higher"}]` + extraJSON + `}`
	inst, err := NewDatasource(context.Background(), backend.DataSourceInstanceSettings{
		Type:                    PluginID,
		URL:                     f.srv.URL,
		JSONData:                []byte(jd),
		DecryptedSecureJSONData: map[string]string{"bearerToken": "s3cret"},
	})
	if err != nil {
		tb.Fatal(err)
	}
	d := inst.(*Datasource)
	if d.settingsErr != nil {
		tb.Fatalf("settings: %v", d.settingsErr)
	}
	return d
}

// runGolden runs one query and compares its response with the golden file.
func runGolden(t *testing.T, d *Datasource, name string, fromAlert bool, q map[string]any) backend.DataResponse {
	t.Helper()
	req := shopRequest(q)
	if fromAlert {
		req.Headers[fromAlertHeader] = "true"
	}
	resp, err := d.QueryData(context.Background(), req)
	if err != nil {
		t.Fatalf("QueryData: %v", err)
	}
	dr := resp.Responses["A"]
	if dr.Error != nil {
		t.Fatalf("query error: %v", dr.Error)
	}
	experimental.CheckGoldenJSONResponse(t, "testdata", name, &dr, *update)
	return dr
}

func TestGoldenKPI(t *testing.T) {
	f := newFakeProm(t)
	kpiFixtures(f)
	d := newTestDatasource(t, f, "")
	runGolden(t, d, "kpi", false, map[string]any{"queryType": "kpi"})
	runGolden(t, d, "kpi_alert", true, map[string]any{"queryType": "kpi", "kpi": "checkout_latency"})
	f.checkAllUsed()
}

func TestGoldenServiceMap(t *testing.T) {
	f := newFakeProm(t)
	graphFixtures(f, shopTo.Sub(shopFrom))
	signalFixtures(f)
	d := newTestDatasource(t, f, "")
	dr := runGolden(t, d, "servicemap", false, map[string]any{"queryType": "servicemap"})
	runGolden(t, d, "servicemap_alert", true, map[string]any{"queryType": "servicemap"})
	f.checkAllUsed()

	// The joins the golden file pins, spelled out: inventory's connection
	// to 10.0.0.2:5432 is postgres on db-1, counted once although both
	// hosts report it, and the outside address stays an outside node.
	edges := dr.Frames[1]
	got := map[string]float64{}
	for i := 0; i < edges.Rows(); i++ {
		got[edges.Fields[0].At(i).(string)] = edges.Fields[3].At(i).(float64)
	}
	want := map[string]float64{
		"storefront->checkout:10182":    4,
		"checkout->payments:10183":      2,
		"checkout->inventory:10184":     2,
		"inventory->postgres:5432":      3,
		"payments->ext:203.0.113.7:443": 1,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("edges (-want +got):\n%s", diff)
	}
}

// countNonNil counts the non-null values of a nullable field.
func countNonNil(f *data.Field) int {
	n := 0
	for i := 0; i < f.Len(); i++ {
		if v, ok := f.ConcreteAt(i); ok && v != nil {
			n++
		}
	}
	return n
}

// at returns the shop day's time hh:mm.
func at(hhmm string) time.Time {
	t, err := time.Parse(time.RFC3339, "2026-11-01T"+hhmm+":00Z")
	if err != nil {
		panic(err)
	}
	return t
}

// deployFixtures: checkout deployed at 11:10 (counter and build info),
// payments at 10:40 (build info only, as from an exporter without the
// counter).
func deployFixtures(f *fakeProm) {
	co := model.Metric{"instance": shop1, "service": "checkout"}
	f.ranged[`max by (instance, service) (`+schema.ServiceDeploys.Name+`{})`] = []fakeSeries{{
		Metric: co,
		F: always(func(t time.Time) float64 {
			if t.Before(at("11:10")) {
				return 3
			}
			return 4
		}),
	}}
	build := func(svc, id string, from, to time.Time) fakeSeries {
		return fakeSeries{
			Metric: model.Metric{"instance": shop1, "service": model.LabelValue(svc), "build_id": model.LabelValue(id), "source": "go-build-id"},
			F: func(t time.Time) (float64, bool) {
				return 1, !t.Before(from) && t.Before(to)
			},
		}
	}
	f.ranged[`max by (instance, service, build_id, source) (`+schema.ServiceBuildInfo.Name+`{})`] = []fakeSeries{
		build("checkout", "aaaa1111bbbb2222cccc", at("00:00"), at("11:10")),
		build("checkout", "dddd3333eeee4444ffff", at("11:10"), at("23:59")),
		build("payments", "1111", at("00:00"), at("10:40")),
		build("payments", "2222", at("10:40"), at("23:59")),
	}
}

func TestGoldenDeploys(t *testing.T) {
	f := newFakeProm(t)
	deployFixtures(f)
	// The host is named by the exporter's hostname, not by the exporter's
	// own address and port.
	f.instant[hostnamesExpr(shopTo.Sub(shopFrom)+shopStep)] = model.Vector{sample(model.Metric{"instance": shop1, "hostname": "shop-1"}, 1)}
	d := newTestDatasource(t, f, "")
	dr := runGolden(t, d, "deploys", false, map[string]any{"queryType": "deploys"})
	runGolden(t, d, "deploys_alert", true, map[string]any{"queryType": "deploys"})
	f.checkAllUsed()

	ev := dr.Frames[0]
	var got []string
	for i := 0; i < ev.Rows(); i++ {
		got = append(got, ev.Fields[0].At(i).(time.Time).Format("15:04")+" "+ev.Fields[2].At(i).(string))
	}
	want := []string{
		"10:40 payments on shop-1: 1111 → 2222 (go-build-id)",
		"11:10 checkout on shop-1: aaaa1111bbbb → dddd3333eeee (go-build-id)",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("deploy events (-want +got):\n%s", diff)
	}
}

// ordersFixtures: the storefront's raw order counter, 5 orders/s with a
// dip to 1/s from 11:30 to 11:45, served over remote read; no detector
// series for it.
func ordersFixtures(f *fakeProm) {
	f.metadata["shop_orders_total"] = "counter"
	f.raw = append(f.raw, fakeSeries{
		Metric: model.Metric{"__name__": "shop_orders_total", "job": "storefront", "instance": "10.0.0.1:10181"},
		F: always(func(t time.Time) float64 {
			s := t.Sub(at("00:00")).Seconds()
			dip := min(max(t.Sub(at("11:30")).Seconds(), 0), 15*60)
			return 5*s - 4*dip + 2*(wave(t, 9)+1)
		}),
	})
}

// queueFixtures: a gauge the detector scores, with its band.
func queueFixtures(f *fakeProm) {
	f.metadata["shop_queue_depth"] = "gauge"
	lbls := model.Metric{"service": "checkout", "instance": "10.0.0.1:10182", "job": "checkout"}
	det := func(name string, v func(time.Time) float64) {
		m := lbls.Clone()
		m["__name__"] = model.LabelValue(name)
		m["metric"] = "shop_queue_depth"
		f.ranged[name+`{service="checkout", metric="shop_queue_depth"}`] = []fakeSeries{{Metric: m, F: always(v)}}
	}
	depth := func(t time.Time) float64 {
		if between(t, "11:30", "11:40") {
			return 40
		}
		return 10 + wave(t, 11)
	}
	det(schema.AnomalyScore.Name, func(t time.Time) float64 {
		if between(t, "11:30", "11:40") {
			return 0.99
		}
		return 0.1 + 0.05*wave(t, 12)
	})
	det(schema.AnomalyExpected.Name, func(time.Time) float64 { return 10 })
	det(schema.AnomalyLower.Name, func(time.Time) float64 { return 7 })
	det(schema.AnomalyUpper.Name, func(time.Time) float64 { return 13 })
	m := lbls.Clone()
	m["__name__"] = "shop_queue_depth"
	f.ranged[`shop_queue_depth{service="checkout"}`] = []fakeSeries{{Metric: m, F: always(depth)}}
}

// paymentsFixtures: a counter the detector scores; its band is in the
// rate's unit, so the value drawn is the rate, whose series has no name.
func paymentsFixtures(f *fakeProm) {
	f.metadata["shop_payments_total"] = "counter"
	lbls := model.Metric{"service": "payments", "instance": "10.0.0.1:10183", "job": "payments"}
	for name, v := range map[string]float64{schema.AnomalyScore.Name: 0.2, schema.AnomalyExpected.Name: 3, schema.AnomalyLower.Name: 2, schema.AnomalyUpper.Name: 4} {
		m := lbls.Clone()
		m["__name__"] = model.LabelValue(name)
		m["metric"] = "shop_payments_total"
		f.ranged[name+`{service="payments", metric="shop_payments_total"}`] = []fakeSeries{{Metric: m, F: constant(v)}}
	}
	f.ranged[`rate(shop_payments_total{service="payments"}[75s])`] = []fakeSeries{{Metric: lbls, F: always(func(t time.Time) float64 { return 3 + 0.3*wave(t, 31) })}}
}

func TestGoldenAnomalies(t *testing.T) {
	f := newFakeProm(t)
	kpiFixtures(f)
	ordersFixtures(f)
	queueFixtures(f)
	paymentsFixtures(f)
	d := newTestDatasource(t, f, "")

	onDemand := runGolden(t, d, "anomalies_ondemand", false, map[string]any{"queryType": "anomalies", "selector": `shop_orders_total{job="storefront"}`})
	runGolden(t, d, "anomalies_detector", false, map[string]any{"queryType": "anomalies", "selector": `shop_queue_depth{service="checkout"}`})
	counter := runGolden(t, d, "anomalies_detector_counter", false, map[string]any{"queryType": "anomalies", "selector": `shop_payments_total{service="payments"}`})
	if n := countNonNil(counter.Frames[0].Fields[1]); n != counter.Frames[0].Rows() {
		t.Errorf("detector counter: %d of %d rate values joined to the scores", n, counter.Frames[0].Rows())
	}
	runGolden(t, d, "anomalies_kpi", false, map[string]any{"queryType": "anomalies", "kpi": "checkout_latency"})
	runGolden(t, d, "anomalies_alert", true, map[string]any{"queryType": "anomalies", "selector": `shop_orders_total{job="storefront"}`})
	f.checkAllUsed(`sum(rate(shop_orders_total[75s]))`)

	// The dip in orders must stand out: the rate shown as about 1/s, not
	// the counter, and a score at the alerting threshold when the dip
	// starts (the ensemble alerts once per incident: the scores after the
	// first are damped, see package anomaly), and none in the hour before.
	fr := onDemand.Frames[0]
	val, score := fr.Fields[1], fr.Fields[5]
	var during, before float64
	for i := 0; i < fr.Rows(); i++ {
		tm := fr.Fields[0].At(i).(time.Time)
		v, s := val.At(i).(*float64), score.At(i).(*float64)
		if between(tm, "11:32", "11:33") && (v == nil || math.Abs(*v-1) > 0.2) {
			t.Errorf("%s: value %v, want the rate, about 1", tm.Format("15:04"), v)
		}
		if s == nil {
			continue
		}
		switch {
		case between(tm, "11:30", "11:33"):
			during = math.Max(during, *s)
		case between(tm, "10:30", "11:29"):
			before = math.Max(before, *s)
		}
	}
	if during < AlertThreshold {
		t.Errorf("highest score as the dip starts = %v, want >= %v", during, AlertThreshold)
	}
	if before >= AlertThreshold {
		t.Errorf("highest score in the hour before the dip = %v, want < %v", before, AlertThreshold)
	}
}

// incidentFixtures: the signals of the 11:30 incident besides payments'
// CPU — the round-trip time from checkout to payments grows from 11:29, and
// checkout's context switches jump at 11:30 (an effect: it waits on
// payments). The checkout KPI's series come from checkout's port.
func incidentFixtures(f *fakeProm) {
	f.instant[`group by (instance) (last_over_time({__name__="shop_checkout_duration_seconds_bucket"}[7200s]))`] = model.Vector{
		sample(model.Metric{"instance": "10.0.0.1:10182"}, 1),
	}
	edge := func(client, server, addr, port string) model.Metric {
		return model.Metric{"client": model.LabelValue(client), "server": model.LabelValue(server), "server_address": model.LabelValue(addr), "port": model.LabelValue(port)}
	}
	f.ranged[`max by (client, server, server_address, port) (`+schema.EdgeRTT.Name+`)`] = []fakeSeries{
		{Metric: edge("checkout", "payments", "", "10183"), F: always(func(t time.Time) float64 {
			if !t.Before(at("11:29")) {
				return 0.004 + 0.0001*wave(t, 21)
			}
			return 0.0004 + 0.0001*wave(t, 21)
		})},
		{Metric: edge("inventory", "", "10.0.0.2", "5432"), F: always(func(t time.Time) float64 { return 0.0008 + 0.0001*wave(t, 22) })},
	}
	f.ranged[`sum by (service) (rate(`+schema.ServiceSwitches.Name+`[75s]))`] = []fakeSeries{
		{Metric: model.Metric{"service": "checkout"}, F: always(func(t time.Time) float64 {
			if !t.Before(at("11:30")) {
				return 900 + 20*wave(t, 23)
			}
			return 300 + 20*wave(t, 23)
		})},
		{Metric: model.Metric{"service": "payments"}, F: always(func(t time.Time) float64 { return 200 + 20*wave(t, 24) })},
	}
}

// insightsFixtures are what an insights query over the shop day reads: the
// KPIs, the map over the range and its warm-up, the signals and the 11:30
// incident.
func insightsFixtures(f *fakeProm) {
	kpiFixtures(f)
	q := Query{From: shopFrom, To: shopTo, Step: shopStep}
	graphFixtures(f, shopTo.Sub(q.warmStart()))
	f.instant[hostCPUsExpr(shopTo.Sub(q.warmStart()))] = model.Vector{sample(model.Metric{}, 4)}
	signalFixtures(f)
	incidentFixtures(f)
}

func TestGoldenInsights(t *testing.T) {
	f := newFakeProm(t)
	insightsFixtures(f)
	deployFixtures(f)
	d := newTestDatasource(t, f, "")

	dr := runGolden(t, d, "insights", false, map[string]any{"queryType": "insights", "kpi": "checkout_latency"})
	runGolden(t, d, "insights_alert", true, map[string]any{"queryType": "insights", "kpi": "checkout_latency"})
	f.checkAllUsed(`sum(rate(shop_orders_total[75s]))`)

	// One window, 11:30 to 11:49, and payments ranked first: the
	// round-trip time to it and its CPU changed just before the KPI went
	// wrong (the same score; the round-trip time by more of its spreads),
	// one call away; checkout's own change is explained by it, and
	// checkout's deploy was 20 minutes earlier, with the KPI healthy
	// since: no cause.
	wins, causes := dr.Frames[0], dr.Frames[1]
	if wins.Rows() != 1 {
		t.Fatalf("windows: got %d, want 1", wins.Rows())
	}
	if s, e := wins.Fields[1].At(0).(time.Time), wins.Fields[2].At(0).(time.Time); !s.Equal(at("11:30")) || !e.Equal(at("11:49")) {
		t.Errorf("window %s–%s, want 11:30–11:49", s.Format("15:04"), e.Format("15:04"))
	}
	type row struct {
		Kind, Service, Signal string
	}
	var got []row
	for i := 0; i < causes.Rows() && i < 3; i++ {
		got = append(got, row{causes.Fields[3].At(i).(string), causes.Fields[4].At(i).(string), causes.Fields[5].At(i).(string)})
	}
	want := []row{
		{CauseEdge, "payments", "round-trip time"},
		{CauseSignal, "payments", "cpu"},
		{CauseSignal, "checkout", "context switches"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("top causes (-want +got):\n%s", diff)
	}
	// The score is the product of the factors shown next to it.
	for i := 0; i < causes.Rows(); i++ {
		prod := 1.0
		for _, c := range []int{13, 14, 15, 16, 17} {
			prod *= causes.Fields[c].At(i).(float64)
		}
		if s := causes.Fields[2].At(i).(float64); math.Abs(s-prod) > 0.005 {
			t.Errorf("cause %d: score %.3f, but its factors multiply to %.3f", i+1, s, prod)
		}
	}
}

// TestInsightsManyServices: on a host with 2,000 services, insights still
// answers, scoring the services whose signals changed around the window;
// a service whose memory jumped as the KPI went wrong is among the causes.
func TestInsightsManyServices(t *testing.T) {
	f := newFakeProm(t)
	insightsFixtures(f)
	var many []fakeSeries
	for i := range 2000 {
		name := fmt.Sprintf("svc-%04d", i)
		base := float64(10+i%50) * 1e6
		many = append(many, fakeSeries{Metric: model.Metric{"service": model.LabelValue(name)}, F: always(func(tm time.Time) float64 {
			if name == "svc-1234" && !tm.Before(at("11:29")) {
				return 4 * base
			}
			return base * (1 + 0.001*wave(tm, float64(i%17)))
		})})
	}
	f.ranged[`sum by (service) (`+schema.ServiceMemory.Name+`)`] = many
	d := newTestDatasource(t, f, "")
	dr := query(t, d, map[string]any{"queryType": "insights", "kpi": "checkout_latency"})
	if dr.Error != nil {
		t.Fatalf("insights with 2,000 services: %v", dr.Error)
	}
	causes := dr.Frames[1]
	found := false
	for i := 0; i < causes.Rows(); i++ {
		if causes.Fields[4].At(i).(string) == "svc-1234" && causes.Fields[5].At(i).(string) == "memory" {
			found = true
		}
	}
	if !found {
		t.Errorf("svc-1234's memory jump is not among the causes")
	}
}

// appFixtures: the 11:30 incident as only the services' own metrics show
// it. Payments answers 500s from 11:29 (a series that appears), checkout
// 502s from 11:30; nothing the exporter measures points at payments. The
// targets' metadata lists, besides those, the KPIs' own families, a
// gauge and a target no service listens at: none of them is a signal.
// Storefront, which calls checkout, exposes the same counter: its series
// are read with the others.
func appFixtures(f *fakeProm) {
	flat := func(m model.Metric, v float64, seed float64) fakeSeries {
		return fakeSeries{Metric: m, F: always(func(t time.Time) float64 { return v * (1 + 0.02*wave(t, seed)) })}
	}
	f.ranged[`sum by (service) (rate(`+schema.ServiceCPU.Name+`[75s]))`] = []fakeSeries{
		flat(model.Metric{"service": "checkout"}, 0.3, 3), flat(model.Metric{"service": "payments"}, 0.1, 5),
	}
	f.ranged[`max by (client, server, server_address, port) (`+schema.EdgeRTT.Name+`)`] = []fakeSeries{
		flat(model.Metric{"client": "checkout", "server": "payments", "port": "10183"}, 0.0004, 21),
	}
	const (
		storefront = "10.0.0.1:10181"
		checkout   = "10.0.0.1:10182"
		payments   = "10.0.0.1:10183"
	)
	f.targets = []targetFamily{
		{payments, "shop", "shop_http_requests_total", "counter"},
		{payments, "shop", "shop_http_request_duration_seconds", "histogram"},
		{payments, "shop", "go_goroutines", "gauge"},
		{checkout, "shop", "shop_http_requests_total", "counter"},
		{checkout, "shop", "shop_checkout_duration_seconds", "histogram"},
		{checkout, "shop", "shop_orders_total", "counter"},
		{storefront, "shop", "shop_http_requests_total", "counter"},
		{"10.0.0.1:9999", "other", "other_requests_total", "counter"},
	}
	req := func(inst, handler, code string) model.Metric {
		return model.Metric{"instance": model.LabelValue(inst), "job": "shop", "handler": model.LabelValue(handler), "code": model.LabelValue(code)}
	}
	from := func(hhmm string, v, seed float64) func(time.Time) (float64, bool) {
		return func(t time.Time) (float64, bool) { return v * (1 + 0.05*wave(t, seed)), !t.Before(at(hhmm)) }
	}
	f.ranged[`rate({__name__=~"shop_http_requests_total", instance=~"10\\.0\\.0\\.1:10181|10\\.0\\.0\\.1:10182|10\\.0\\.0\\.1:10183"}[75s])`] = []fakeSeries{
		flat(req(storefront, "buy", "200"), 5, 30),
		flat(req(payments, "charge", "200"), 5, 31),
		{Metric: req(payments, "charge", "500"), F: from("11:29", 1.5, 32)},
		flat(req(checkout, "checkout", "200"), 5, 33),
		{Metric: req(checkout, "checkout", "502"), F: from("11:30", 1.5, 34)},
	}
	dur := model.Metric{"instance": payments, "job": "shop", "handler": "charge"}
	f.ranged[`histogram_quantile(0.9, rate({__name__=~"shop_http_request_duration_seconds_bucket", instance=~"10\\.0\\.0\\.1:10183"}[75s])) and increase({__name__=~"shop_http_request_duration_seconds_count", instance=~"10\\.0\\.0\\.1:10183"}[75s]) >= 10`] = []fakeSeries{flat(dur, 0.01, 35)}
	f.ranged[`rate({__name__=~"shop_http_request_duration_seconds_count", instance=~"10\\.0\\.0\\.1:10183"}[75s])`] = []fakeSeries{flat(dur, 5, 36)}
}

// TestGoldenInsightsAppSignals: the services' own metrics are candidate
// signals of the services whose ports their targets are, found by type
// with no configuration; payments' errors rank first, checkout's are
// explained by them.
func TestGoldenInsightsAppSignals(t *testing.T) {
	f := newFakeProm(t)
	insightsFixtures(f)
	appFixtures(f)
	d := newTestDatasource(t, f, "")
	dr := runGolden(t, d, "insights_app", false, map[string]any{"queryType": "insights", "kpi": "checkout_latency"})
	f.checkAllUsed(`sum(rate(shop_orders_total[75s]))`)
	for _, e := range f.unknown {
		if strings.Contains(e, "shop_orders_total") || strings.Contains(e, "shop_checkout_duration_seconds") {
			t.Errorf("a KPI's family was queried as a signal: %s", e)
		}
	}
	causes := dr.Frames[1]
	if causes.Rows() < 2 {
		t.Fatalf("%d causes, want at least 2", causes.Rows())
	}
	top := fmt.Sprint(causes.Fields[4].At(0), " ", causes.Fields[5].At(0))
	if want := `payments shop_http_requests_total{code="500",handler="charge"}`; top != want {
		t.Errorf("top cause %q, want %q", top, want)
	}
	for i := 0; i < causes.Rows(); i++ {
		svc, sig, by := causes.Fields[4].At(i).(string), causes.Fields[5].At(i).(string), causes.Fields[18].At(i).(string)
		if svc == "" {
			t.Errorf("cause %d (%s) is of no service", i+1, sig)
		}
		if svc == "checkout" && by != "anomaly in payments, which checkout calls" {
			t.Errorf("checkout's %s: explained by %q, want payments", sig, by)
		}
	}
}

// TestInsightsSharedCounters: the three shop services each expose the
// network counters of the one network namespace they run in, which every
// process there reads alike, and its traffic quadruples as the KPI goes
// wrong (the monitoring's own queries, say). Read at checkout, the KPI's
// own service, it would rank first. One counter read at three services is
// no one service's, so it is no cause, and payments' errors stay first.
func TestInsightsSharedCounters(t *testing.T) {
	f := newFakeProm(t)
	insightsFixtures(f)
	appFixtures(f)
	const fam = "process_network_receive_bytes_total"
	insts := []string{"10.0.0.1:10181", "10.0.0.1:10182", "10.0.0.1:10183"}
	for _, inst := range insts {
		f.targets = append(f.targets, targetFamily{inst, "shop", fam, "counter"})
	}
	rise := at("11:30")
	// bytes is the namespace's count at t: 150 kB/s, then 600 kB/s.
	bytes := func(t time.Time) float64 {
		since, after := t.Sub(shopFrom.Add(-24*time.Hour)).Seconds(), t.Sub(rise).Seconds()
		return 1e9 + 1.5e5*since + 4.5e5*max(after, 0)
	}
	var rates, counts []fakeSeries
	for i, inst := range insts {
		m := model.Metric{"instance": model.LabelValue(inst), "job": "shop"}
		rates = append(rates, fakeSeries{Metric: m, F: always(func(t time.Time) float64 {
			r := 1.5e5
			if !t.Before(rise) {
				r = 6e5
			}
			return r * (1 + 0.02*wave(t, float64(50+i)))
		})})
		raw := model.Metric{"__name__": fam, "instance": model.LabelValue(inst), "job": "shop"}
		counts = append(counts, fakeSeries{Metric: raw, F: always(bytes)})
	}
	f.ranged[`rate({__name__=~"`+fam+`", instance=~"10\\.0\\.0\\.1:10181|10\\.0\\.0\\.1:10182|10\\.0\\.0\\.1:10183"}[75s])`] = rates
	// The families' cumulative samples, as markShared reads them.
	f.ranged[targetSelector([]string{fam, "shop_http_request_duration_seconds_count", "shop_http_requests_total"}, insts)] = counts
	d := newTestDatasource(t, f, "")
	dr := query(t, d, map[string]any{"queryType": "insights", "kpi": "checkout_latency"})
	if dr.Error != nil {
		t.Fatal(dr.Error)
	}
	f.checkAllUsed(`sum(rate(shop_orders_total[75s]))`)
	causes := dr.Frames[1]
	if causes.Rows() == 0 {
		t.Fatal("no causes")
	}
	for i := 0; i < causes.Rows(); i++ {
		if sig := causes.Fields[5].At(i).(string); strings.Contains(sig, fam) {
			t.Errorf("cause %d is the shared counter: %s of %s", i+1, sig, causes.Fields[4].At(i))
		}
	}
	top := fmt.Sprint(causes.Fields[4].At(0), " ", causes.Fields[5].At(0))
	if want := `payments shop_http_requests_total{code="500",handler="charge"}`; top != want {
		t.Errorf("top cause %q, want %q", top, want)
	}
}

// TestSharedSeries: which cumulative samples sharedSeries calls one thing
// read at several services.
func TestSharedSeries(t *testing.T) {
	owners := map[string]string{"a:1": "storefront", "a:2": "checkout", "a:3": "payments", "a:4": "checkout"}
	family := map[string]string{"net_total": "net_total", "req_total": "req_total", "req": "req_total"}
	s := func(name, inst string, v float64, ls ...string) *model.Sample {
		m := model.Metric{"__name__": model.LabelValue(name), "instance": model.LabelValue(inst), "job": "j"}
		for i := 0; i+1 < len(ls); i += 2 {
			m[model.LabelName(ls[i])] = model.LabelValue(ls[i+1])
		}
		return &model.Sample{Metric: m, Value: model.SampleValue(v)}
	}
	now := model.Vector{
		// One namespace's bytes, read a second apart at three services
		// (75 kB/s, a 75 s rate interval).
		s("net_total", "a:1", 1e9, "device", "lo"), s("net_total", "a:2", 1e9+75e3, "device", "lo"), s("net_total", "a:3", 1e9+150e3, "device", "lo"),
		// Requests each service counts itself, at rates alike.
		s("req_total", "a:1", 52000, "code", "200"), s("req_total", "a:2", 51000, "code", "200"),
		// Idle counts, equal: no evidence of one thing.
		s("req_total", "a:1", 0, "code", "500"), s("req_total", "a:2", 0, "code", "500"),
		// Two targets of one service.
		s("req", "a:2", 7000, "code", "404"), s("req", "a:4", 7000, "code", "404"),
		// A family no signal reads, and a target of no service.
		s("other_total", "a:1", 5, "device", "lo"), s("other_total", "a:2", 5, "device", "lo"),
		s("net_total", "b:9", 1e9, "device", "lo"),
	}
	before := model.Vector{
		s("net_total", "a:1", 1e9-5.625e6, "device", "lo"), s("net_total", "a:2", 1e9+75e3-5.625e6, "device", "lo"), s("net_total", "a:3", 1e9+150e3-5.625e6, "device", "lo"),
		s("req_total", "a:1", 51250, "code", "200"), s("req_total", "a:2", 50250, "code", "200"),
		s("req_total", "a:1", 0, "code", "500"), s("req_total", "a:2", 0, "code", "500"),
		s("req", "a:2", 6000, "code", "404"), s("req", "a:4", 6000, "code", "404"),
	}
	got := sharedSeries(now, before, owners, family)
	for _, smp := range now {
		name := string(smp.Metric["__name__"])
		want := name == "net_total" && owners[string(smp.Metric["instance"])] != ""
		fam, ok := family[name]
		if !ok {
			fam = name
		}
		if has := got.has(fam, smp.Metric); has != want {
			t.Errorf("%s: shared %v, want %v", smp.Metric, has, want)
		}
	}
	if len(got) != 3 {
		t.Errorf("%d series shared, want the namespace's 3", len(got))
	}
	// A counter that restarted between the reads has no known increase.
	reset := model.Vector{s("net_total", "a:1", 10, "device", "lo"), s("net_total", "a:2", 10, "device", "lo")}
	if got := sharedSeries(reset, before, owners, family); len(got) != 0 {
		t.Errorf("restarted counters called shared: %v", got)
	}
}

// TestScrapeIntervalFromPrometheus: $__rate_interval follows the scrape
// interval Prometheus's configuration gives (four scrapes, or the step
// plus one), not Grafana's assumed 15 s: at a 1 s scrape and a 1 m step,
// 61 s.
func TestScrapeIntervalFromPrometheus(t *testing.T) {
	f := newFakeProm(t)
	kpiFixtures(f)
	delete(f.ranged, `sum(rate(shop_orders_total[75s]))`)
	f.ranged[`sum(rate(shop_orders_total[61s]))`] = []fakeSeries{{Metric: model.Metric{}, F: constant(5)}}
	f.config = "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs: []\n"
	d := newTestDatasource(t, f, "")
	if dr := query(t, d, map[string]any{"queryType": "kpi", "kpi": "orders"}); dr.Error != nil {
		t.Fatalf("kpi query: %v", dr.Error)
	}
	f.checkAllUsed(`histogram_quantile(0.95, sum by (le) (rate(shop_checkout_duration_seconds_bucket[75s])))`)
}

// TestInsightsLeaveOutObserver: the Prometheus the datasource reads runs
// on a monitored host, scrapes checkout and its CPU jumps as the KPI goes
// wrong (it answers the queries): neither it nor its scrape edge is a
// cause.
func TestInsightsLeaveOutObserver(t *testing.T) {
	f := newFakeProm(t)
	insightsFixtures(f)
	u, err := url.Parse(f.srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	e := graphExprs(shopTo.Sub(Query{From: shopFrom, To: shopTo, Step: shopStep}.warmStart()), "")
	f.instant[e["ports"]] = append(f.instant[e["ports"]], sample(model.Metric{"instance": shop1, "service": "prometheus", "protocol": "tcp", "port": model.LabelValue(u.Port())}, 1))
	f.instant[e["connections"]] = append(f.instant[e["connections"]], sample(model.Metric{"instance": shop1, "client": "prometheus", "server": "checkout", "port": "10182"}, 1))
	cpu := `sum by (service) (rate(` + schema.ServiceCPU.Name + `[75s]))`
	f.ranged[cpu] = append(f.ranged[cpu], fakeSeries{Metric: model.Metric{"service": "prometheus"}, F: always(func(t time.Time) float64 {
		if !t.Before(at("11:30")) {
			return 1.5 + 0.01*wave(t, 40)
		}
		return 0.1 + 0.01*wave(t, 40)
	})})
	rtt := `max by (client, server, server_address, port) (` + schema.EdgeRTT.Name + `)`
	f.ranged[rtt] = append(f.ranged[rtt], fakeSeries{Metric: model.Metric{"client": "prometheus", "server": "checkout", "port": "10182"}, F: always(func(t time.Time) float64 {
		if !t.Before(at("11:30")) {
			return 0.01 + 0.0001*wave(t, 41)
		}
		return 0.001 + 0.0001*wave(t, 41)
	})})
	d := newTestDatasource(t, f, "")
	dr := query(t, d, map[string]any{"queryType": "insights", "kpi": "checkout_latency"})
	if dr.Error != nil {
		t.Fatal(dr.Error)
	}
	causes := dr.Frames[1]
	if causes.Rows() == 0 {
		t.Fatal("no causes")
	}
	for i := 0; i < causes.Rows(); i++ {
		if ev := causes.Fields[6].At(i).(string); strings.Contains(ev, "prometheus") {
			t.Errorf("cause %d is the observer's: %s", i+1, ev)
		}
	}
	if s := causes.Fields[4].At(0).(string); s != "payments" {
		t.Errorf("first cause is of %s, want payments", s)
	}
}

// TestInsightsReadSignalsWhereRanked: over the shop day (10:00–12:00) with
// one window at 11:30, the KPI is read from its warm-up before the range,
// the signals only from their warm-up before the stretch the ranking looks
// at: twice the search span before the window.
func TestInsightsReadSignalsWhereRanked(t *testing.T) {
	f := newFakeProm(t)
	insightsFixtures(f)
	d := newTestDatasource(t, f, "")
	if dr := query(t, d, map[string]any{"queryType": "insights", "kpi": "checkout_latency"}); dr.Error != nil {
		t.Fatal(dr.Error)
	}
	kpiStart := Query{From: shopFrom, To: shopTo, Step: shopStep}.warmStart()
	sigStart := Query{From: at("11:30").Add(-2 * searchSpan(shopStep)), To: shopTo, Step: shopStep}.warmStart()
	if !sigStart.After(kpiStart) {
		t.Fatalf("signals' start %s is not after the KPI's %s: the test would prove nothing", sigStart, kpiStart)
	}
	scope := Query{From: shopFrom, To: shopTo, Step: shopStep}.scope()
	read := 0
	for _, cs := range candidateSignals {
		expr, err := interpolate(cs.Expr, scope)
		if err != nil {
			t.Fatal(err)
		}
		if s, ok := f.starts[expr]; ok {
			read++
			if !s.Equal(sigStart) {
				t.Errorf("%s read from %s, want %s", cs.Name, s.Format("15:04"), sigStart.Format("15:04"))
			}
		}
	}
	if read < len(candidateSignals)/2 {
		t.Errorf("%d of %d signals read", read, len(candidateSignals))
	}
	kpis := 0
	for _, s := range f.starts {
		if s.Equal(kpiStart) {
			kpis++
		}
	}
	if kpis == 0 {
		t.Errorf("nothing read from the KPI's warm-up start %s", kpiStart.Format("15:04"))
	}
}
