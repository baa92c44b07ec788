// Package plugin is the backend of the telltale-insights-datasource Grafana
// plugin: business KPIs, anomaly scores and bands, the service map, ranked
// likely causes of a KPI's problems, and deploy annotations, all read from
// the Prometheus server that scrapes Telltale's exporter and detector.
//
// Each query type has its own handler file (query_<type>.go), dispatched by
// the SDK's QueryTypeMux; each handler fetches what it needs from Prometheus
// and builds its frames with pure functions, which the golden tests pin.
package plugin

import (
	"context"
	"fmt"
	"net/http"
	"runtime/debug"
	"sync"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/backend"
	"github.com/grafana/grafana-plugin-sdk-go/backend/datasource"
	"github.com/grafana/grafana-plugin-sdk-go/backend/httpclient"
	"github.com/grafana/grafana-plugin-sdk-go/backend/instancemgmt"
	"github.com/grafana/grafana-plugin-sdk-go/backend/log"
	"github.com/grafana/grafana-plugin-sdk-go/backend/resource/httpadapter"
	"github.com/grafana/grafana-plugin-sdk-go/data"
)

// PluginID is the plugin's id in plugin.json.
const PluginID = "telltale-insights-datasource"

// Datasource is one configured instance of the datasource.
type Datasource struct {
	settings Settings
	// settingsErr is why the settings are unusable, reported by every
	// query and the health check instead of failing the instance.
	settingsErr error
	prom        *prometheus
	hc          *http.Client
	mux         *datasource.QueryTypeMux
	resources   backend.CallResourceHandler
	logger      log.Logger

	// onDemand admits one on-demand scoring of an anomalies query at a
	// time: each holds its series' samples and scores until it answers
	// (tens of MB at the limits), and scoring is CPU-bound, so queries
	// that wait lose little time while memory stays that of one.
	onDemand chan struct{}

	// scrape caches Prometheus's scrape interval (see scrapeInterval).
	scrape struct {
		sync.Mutex
		v  time.Duration
		at time.Time
	}
}

// scrapeRefresh is how long a scrape interval read from Prometheus is
// trusted: a reloaded configuration shows within it.
const scrapeRefresh = 5 * time.Minute

// scrapeInterval returns Prometheus's global scrape interval, read from
// its configuration (/api/v1/status/config) at most every scrapeRefresh;
// 0 when it cannot be read (a store that does not scrape, such as Thanos
// or Cortex): then $__rate_interval assumes Grafana's default.
func (d *Datasource) scrapeInterval(ctx context.Context) time.Duration {
	d.scrape.Lock()
	defer d.scrape.Unlock()
	if !d.scrape.at.IsZero() && time.Since(d.scrape.at) < scrapeRefresh {
		return d.scrape.v
	}
	v, err := d.prom.scrapeInterval(ctx)
	if err != nil {
		d.logger.Debug("Scrape interval unknown; $__rate_interval assumes the default", "default", assumedScrapeInterval, "error", err)
	}
	d.scrape.v, d.scrape.at = v, time.Now()
	return v
}

var (
	_ backend.QueryDataHandler      = (*Datasource)(nil)
	_ backend.CheckHealthHandler    = (*Datasource)(nil)
	_ backend.CallResourceHandler   = (*Datasource)(nil)
	_ instancemgmt.InstanceDisposer = (*Datasource)(nil)
)

// NewDatasource is the SDK's instance factory: it reads the settings and
// builds the HTTP client with the SDK's httpclient. Bad settings do not fail
// the instance; they are reported by the health check and every query, so
// the user sees what to fix.
func NewDatasource(ctx context.Context, is backend.DataSourceInstanceSettings) (instancemgmt.Instance, error) {
	d := &Datasource{logger: backend.Logger.FromContext(ctx), onDemand: make(chan struct{}, 1)}
	d.mux = datasource.NewQueryTypeMux()
	d.mux.HandleFunc(QueryTypeKPI, d.handler(d.queryKPI))
	d.mux.HandleFunc(QueryTypeAnomalies, d.handler(d.queryAnomalies))
	d.mux.HandleFunc(QueryTypeServiceMap, d.handler(d.queryServiceMap))
	d.mux.HandleFunc(QueryTypeInsights, d.handler(d.queryInsights))
	d.mux.HandleFunc(QueryTypeDeploys, d.handler(d.queryDeploys))
	// A query without a known type still gets an answer naming the types.
	d.mux.HandleFunc("", d.handler(nil))
	d.resources = httpadapter.New(d.resourceMux())

	d.settings, d.settingsErr = ParseSettings(is)
	if d.settingsErr != nil {
		return d, nil
	}
	opts, err := d.settings.HTTPClientOptions(ctx, is)
	if err != nil {
		d.settingsErr = err
		return d, nil
	}
	hc, err := httpclient.New(opts)
	if err != nil {
		d.settingsErr = fmt.Errorf("http client: %w", err)
		return d, nil
	}
	d.hc = hc
	d.prom, err = newPrometheus(d.settings.URL, hc, d.settings.Timeout)
	if err != nil {
		d.settingsErr = err
	}
	return d, nil
}

// Dispose frees the instance's idle connections when Grafana replaces it
// after a settings change.
func (d *Datasource) Dispose() {
	if d.hc != nil {
		d.hc.CloseIdleConnections()
	}
}

// QueryData answers a request's queries, each through its type's handler.
func (d *Datasource) QueryData(ctx context.Context, req *backend.QueryDataRequest) (*backend.QueryDataResponse, error) {
	return d.mux.QueryData(ctx, req)
}

// CallResource serves the editors' resources (kpis, services, metrics).
func (d *Datasource) CallResource(ctx context.Context, req *backend.CallResourceRequest, sender backend.CallResourceResponseSender) error {
	return d.resources.CallResource(ctx, req, sender)
}

// runFunc runs one checked query and returns its frames.
type runFunc func(ctx context.Context, q Query) (data.Frames, error)

// fromAlertHeader is the header Grafana's alerting sets on the queries it
// evaluates.
const fromAlertHeader = "FromAlert"

// handler turns a runFunc into a QueryData handler that answers every query
// of the request on its own: one query's error or panic does not affect the
// others.
func (d *Datasource) handler(run runFunc) func(ctx context.Context, req *backend.QueryDataRequest) (*backend.QueryDataResponse, error) {
	return func(ctx context.Context, req *backend.QueryDataRequest) (*backend.QueryDataResponse, error) {
		resp := backend.NewQueryDataResponse()
		fromAlert := req.Headers[fromAlertHeader] == "true"
		for _, dq := range req.Queries {
			resp.Responses[dq.RefID] = d.runOne(ctx, dq, fromAlert, run)
		}
		return resp, nil
	}
}

// runOne answers one query, turning errors and panics into its response.
func (d *Datasource) runOne(ctx context.Context, dq backend.DataQuery, fromAlert bool, run runFunc) (dr backend.DataResponse) {
	defer func() {
		if r := recover(); r != nil {
			d.logger.Error("Query panicked", "refId", dq.RefID, "queryType", dq.QueryType, "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
			dr = backend.ErrDataResponse(backend.StatusInternal, fmt.Sprintf("%s query: internal error: %v", dq.QueryType, r))
		}
	}()
	if d.settingsErr != nil {
		return backend.ErrDataResponse(backend.StatusBadRequest, "datasource settings: "+d.settingsErr.Error())
	}
	q, err := ParseQuery(dq, fromAlert)
	if err != nil {
		return backend.ErrDataResponse(backend.StatusBadRequest, fmt.Sprintf("invalid %s query: %v", orUnknown(dq.QueryType), err))
	}
	if run == nil {
		// ParseQuery rejects unknown types; this is the registered
		// fallback for a type that has no handler.
		return backend.ErrDataResponse(backend.StatusBadRequest, fmt.Sprintf("queryType %q has no handler", dq.QueryType))
	}
	q.Scrape = d.scrapeInterval(ctx)
	frames, err := run(ctx, q)
	if err != nil {
		dr = backend.ErrorResponseWithErrorSource(fmt.Errorf("%s query: %w", q.QueryType, err))
		dr.Status = statusOf(err)
		return dr
	}
	for _, f := range frames {
		f.RefID = dq.RefID
	}
	return backend.DataResponse{Frames: frames}
}

func orUnknown(s string) string {
	if s == "" {
		return "(no queryType)"
	}
	return s
}
