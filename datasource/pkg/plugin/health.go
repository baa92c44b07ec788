package plugin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	neturl "net/url"
	"strings"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/backend"
	"github.com/prometheus/prometheus/prompb"

	"github.com/telltale-dev/telltale/pkg/remoteread"
	"github.com/telltale-dev/telltale/pkg/schema"
)

// healthCheck is one line of the health check's details.
type healthCheck struct {
	Name    string `json:"name"`
	OK      bool   `json:"ok"`
	Message string `json:"message"`
}

// CheckHealth answers Grafana's "Save & test": can Prometheus be reached and
// does it let us in, does it serve remote read, and are the exporter's and
// the detector's series there. Each problem comes with what to do about it.
func (d *Datasource) CheckHealth(ctx context.Context, _ *backend.CheckHealthRequest) (*backend.CheckHealthResult, error) {
	if d.settingsErr != nil {
		return &backend.CheckHealthResult{Status: backend.HealthStatusError, Message: "Settings: " + d.settingsErr.Error()}, nil
	}
	// Four requests, each bounded by the timeout on its own.
	ctx, cancel := context.WithTimeout(ctx, 4*d.settings.Timeout)
	defer cancel()
	checks := d.healthChecks(ctx, time.Now())
	return healthResult(redactURL(d.settings.URL), checks), nil
}

// Names of the health checks.
const (
	checkPrometheus = "prometheus"
	checkRemoteRead = "remote read"
	checkExporter   = "exporter"
	checkDetector   = "detector"
)

// healthChecks runs the checks in order; when Prometheus cannot be reached
// the others are not tried.
func (d *Datasource) healthChecks(ctx context.Context, now time.Time) []healthCheck {
	url := redactURL(d.settings.URL)
	bi, err := d.prom.buildInfo(ctx)
	if err != nil {
		return []healthCheck{{Name: checkPrometheus, Message: prometheusProblem(url, err)}}
	}
	checks := []healthCheck{{Name: checkPrometheus, OK: true, Message: fmt.Sprintf("Prometheus %s at %s", bi.Version, url)}}

	rq := remoteread.NewQuery(now.Add(-time.Minute), now, []*prompb.LabelMatcher{{Type: prompb.LabelMatcher_EQ, Name: "__name__", Value: "up"}})
	if _, err := d.prom.rr.Read(ctx, []*prompb.Query{rq}, func(*remoteread.Series) error { return nil }); err != nil {
		checks = append(checks, healthCheck{Name: checkRemoteRead, Message: remoteReadProblem(redactURL(d.prom.rr.URL()), err)})
	} else {
		checks = append(checks, healthCheck{Name: checkRemoteRead, OK: true, Message: "remote read works"})
	}

	services, err := d.prom.query(ctx, "count(count by (service) ("+schema.ServiceInfo.Name+"))", now)
	switch {
	case err != nil:
		checks = append(checks, healthCheck{Name: checkExporter, Message: "could not look for the exporter's series: " + err.Error()})
	case len(services) == 0:
		checks = append(checks, healthCheck{Name: checkExporter, Message: "no Telltale exporter series found (" + schema.ServiceInfo.Name + "): run the exporter on each host (it listens on :10171) and add it to Prometheus's scrape_configs; the service map, deploys and insights need it"})
	default:
		checks = append(checks, healthCheck{Name: checkExporter, OK: true, Message: fmt.Sprintf("exporter series for %d services", int(services[0].Value))})
	}

	scored, err := d.prom.query(ctx, "count("+schema.AnomalyScore.Name+")", now)
	switch {
	case err != nil:
		checks = append(checks, healthCheck{Name: checkDetector, Message: "could not look for the detector's series: " + err.Error()})
	case len(scored) == 0:
		checks = append(checks, healthCheck{Name: checkDetector, Message: "no detector series found (" + schema.AnomalyScore.Name + "): anomalies are computed on demand at query time; run the Telltale detector and scrape it with honor_labels: true for continuous scores that alert rules can use"})
	default:
		checks = append(checks, healthCheck{Name: checkDetector, OK: true, Message: fmt.Sprintf("detector scores %d series", int(scored[0].Value))})
	}
	return checks
}

// healthResult sums the checks up. Prometheus unreachable or refusing us,
// no exporter series, or neither remote read nor the detector (so no
// anomalies at all) is an error; a missing detector alone is not, since
// anomalies are then computed on demand.
// redactURL hides the password of a URL's user information ("xxxxx"), so
// that a password written into the Prometheus URL is never shown or logged.
func redactURL(raw string) string {
	u, err := neturl.Parse(raw)
	if err != nil {
		return "(an unparseable URL)"
	}
	return u.Redacted()
}

func healthResult(url string, checks []healthCheck) *backend.CheckHealthResult {
	ok := map[string]bool{}
	var problems, fine []string
	for _, c := range checks {
		ok[c.Name] = c.OK
		if c.OK {
			fine = append(fine, c.Message)
		} else {
			problems = append(problems, c.Message)
		}
	}
	details, _ := json.Marshal(map[string]any{"url": url, "checks": checks})
	status := backend.HealthStatusOk
	if !ok[checkPrometheus] || !ok[checkExporter] || (!ok[checkRemoteRead] && !ok[checkDetector]) {
		status = backend.HealthStatusError
	}
	msg := strings.Join(fine, "; ")
	if len(problems) > 0 {
		msg = strings.Join(problems, ". ")
		if status == backend.HealthStatusOk {
			msg = strings.Join(fine, "; ") + ". Note: " + msg
		}
	}
	return &backend.CheckHealthResult{Status: status, Message: msg, JSONDetails: details}
}

// prometheusProblem says what to do when Prometheus's API did not answer.
func prometheusProblem(url string, err error) string {
	switch classify(err) {
	case failAuth:
		return fmt.Sprintf("Prometheus at %s refused authentication: check the authentication settings (basic auth user and password, or bearer token) (%v)", url, err)
	case failUnreachable:
		return fmt.Sprintf("Prometheus at %s is unreachable: check the URL and that Prometheus runs and can be reached from the Grafana server (%v)", url, err)
	case failTimeout:
		return fmt.Sprintf("Prometheus at %s did not answer in time: check that it is not overloaded, or raise the timeout (%v)", url, err)
	}
	var se *HTTPStatusError
	if errors.As(err, &se) && se.StatusCode == http.StatusNotFound {
		return fmt.Sprintf("%s does not serve Prometheus's HTTP API (/api/v1/status/buildinfo answered 404): set the URL to Prometheus's base URL, e.g. http://prometheus:9090", url)
	}
	return fmt.Sprintf("Prometheus at %s answered with an error: %v", url, err)
}

// remoteReadProblem says what to do when remote read failed.
func remoteReadProblem(endpoint string, err error) string {
	var he *remoteread.HTTPError
	if errors.As(err, &he) {
		switch he.StatusCode {
		case http.StatusNotFound, http.StatusMethodNotAllowed, http.StatusNotImplemented:
			return fmt.Sprintf("remote read is disabled or not served at %s (HTTP %d): on-demand anomalies need a store that serves it (Prometheus, Mimir, Cortex; not Thanos or VictoriaMetrics) — or run the detector", endpoint, he.StatusCode)
		case http.StatusUnauthorized, http.StatusForbidden:
			return fmt.Sprintf("remote read at %s refused authentication (HTTP %d): allow remote read for these credentials", endpoint, he.StatusCode)
		}
	}
	return fmt.Sprintf("remote read at %s failed: %v", endpoint, err)
}
