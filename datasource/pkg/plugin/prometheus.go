package plugin

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/backend"
	jsoniter "github.com/json-iterator/go"
	"github.com/prometheus/client_golang/api"
	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"

	"github.com/telltale-dev/telltale/pkg/remoteread"
	"gopkg.in/yaml.v3"
)

// prometheus talks to the Prometheus server behind the datasource: its HTTP
// API for PromQL and metadata, and remote read for raw samples. Every error
// it returns is marked as a downstream error.
type prometheus struct {
	url    string
	client api.Client // what api sends through
	api    promv1.API
	rr     *remoteread.Client
	// plain is set for a server at a loopback address, whose range
	// answers are asked for uncompressed (see queryRange).
	plain bool
}

// newPrometheus returns a client for the server at base, sending every
// request through hc (the SDK's HTTP client, which carries authentication
// and the timeout).
func newPrometheus(base string, hc *http.Client, timeout time.Duration) (*prometheus, error) {
	c, err := api.NewClient(api.Config{Address: base, Client: hc})
	if err != nil {
		return nil, fmt.Errorf("prometheus client for %s: %w", base, err)
	}
	rr, err := remoteread.NewClient(remoteread.Options{URL: base + "/api/v1/read", HTTPClient: hc, Timeout: timeout})
	if err != nil {
		return nil, fmt.Errorf("remote read client for %s: %w", base, err)
	}
	sc := statusClient{c}
	return &prometheus{url: base, client: sc, api: promv1.NewAPI(sc), rr: rr, plain: loopback(base)}, nil
}

// loopback reports whether the URL's host is a loopback address or
// localhost (a name is not resolved).
func loopback(base string) bool {
	u, err := url.Parse(base)
	if err != nil {
		return false
	}
	h := u.Hostname()
	if ip := net.ParseIP(h); ip != nil {
		return ip.IsLoopback()
	}
	return strings.EqualFold(h, "localhost")
}

// HTTPStatusError is an answer from the server (or a proxy in front of it)
// that is not Prometheus's API speaking: refused authentication, a wrong
// path.
type HTTPStatusError struct {
	URL        string
	StatusCode int
	Body       string
}

// Error says what answered what, and what to check.
func (e *HTTPStatusError) Error() string {
	hint := ""
	switch e.StatusCode {
	case http.StatusUnauthorized, http.StatusForbidden:
		hint = ": authentication was refused; check the datasource's authentication settings (basic user and password, or bearer token)"
	case http.StatusNotFound:
		hint = ": is the URL Prometheus's base URL (without /api/v1)?"
	}
	body := ""
	if e.Body != "" {
		body = " (" + e.Body + ")"
	}
	return fmt.Sprintf("%s answered %d %s%s%s", e.URL, e.StatusCode, http.StatusText(e.StatusCode), body, hint)
}

// statusClient turns the answers of a server that is not Prometheus's API
// into an *HTTPStatusError, which client_golang would report only as
// "client error: 401".
type statusClient struct{ api.Client }

// Do sends the request and turns non-API answers into *HTTPStatusError.
func (c statusClient) Do(ctx context.Context, req *http.Request) (*http.Response, []byte, error) {
	resp, body, err := c.Client.Do(ctx, req)
	if err != nil || resp == nil {
		return resp, body, err
	}
	switch resp.StatusCode {
	case http.StatusUnauthorized, http.StatusForbidden, http.StatusNotFound, http.StatusProxyAuthRequired:
		short := strings.TrimSpace(string(body))
		if len(short) > 200 {
			short = short[:200] + "…"
		}
		return resp, body, &HTTPStatusError{URL: req.URL.Redacted(), StatusCode: resp.StatusCode, Body: short}
	}
	return resp, body, err
}

// downstream wraps an error from the server with what was asked and marks
// it as the server's.
func (p *prometheus) downstream(op string, err error) error {
	return backend.DownstreamError(fmt.Errorf("prometheus %s: %w", op, err))
}

// queryRange evaluates expr over [start, end] at step.
//
// A successful answer is decoded in one pass (jsoniter, with the decoders
// client_golang registers for samples): client_golang's own QueryRange
// reads the body four times over with encoding/json before decoding the
// samples, which made decoding a quarter of an insights query's CPU time.
// Any other answer — an error, a retry as GET, something unexpected — is
// read by client_golang, from the same answer, without sending again.
//
// From a Prometheus on the same host the answer is asked for uncompressed:
// gzip was about a third of the CPU time Prometheus spent on an insights
// query's range answers (megabytes of JSON), and on loopback it saves no
// time at all. Over a network the answer stays compressed.
func (p *prometheus) queryRange(ctx context.Context, expr string, start, end time.Time, step time.Duration) (model.Matrix, error) {
	u := p.client.URL("/api/v1/query_range", nil)
	form := url.Values{
		"query": {expr},
		"start": {apiTime(start)},
		"end":   {apiTime(end)},
		"step":  {strconv.FormatFloat(step.Seconds(), 'f', -1, 64)},
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), strings.NewReader(form.Encode()))
	if err != nil {
		return nil, p.downstream(fmt.Sprintf("query_range %s", expr), err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if p.plain {
		// Set by hand, the header also turns off Go's transparent
		// decompression, which a plain answer does not need.
		req.Header.Set("Accept-Encoding", "identity")
	}
	resp, body, err := p.client.Do(ctx, req)
	if err == nil && resp.StatusCode/100 == 2 {
		if m, ok := decodeMatrix(body); ok {
			return m, nil
		}
	}
	r := promv1.Range{Start: start, End: end, Step: step}
	v, _, _, err := promv1.NewAPI(&answered{Client: p.client, resp: resp, body: body, err: err}).QueryRange(ctx, expr, r)
	if err != nil {
		return nil, p.downstream(fmt.Sprintf("query_range %s", expr), err)
	}
	m, ok := v.(model.Matrix)
	if !ok {
		return nil, p.downstream(fmt.Sprintf("query_range %s", expr), fmt.Errorf("answer is a %s, want a matrix", v.Type()))
	}
	return m, nil
}

// apiTime formats t as Prometheus's API takes it: Unix seconds.
func apiTime(t time.Time) string {
	return strconv.FormatFloat(float64(t.Unix())+float64(t.Nanosecond())/1e9, 'f', -1, 64)
}

// decodeMatrix decodes a successful range query's answer, false for
// anything else.
func decodeMatrix(body []byte) (model.Matrix, bool) {
	var ans struct {
		Status string `json:"status"`
		Data   struct {
			ResultType string       `json:"resultType"`
			Result     model.Matrix `json:"result"`
		} `json:"data"`
	}
	if err := jsoniter.Unmarshal(body, &ans); err != nil || ans.Status != "success" || ans.Data.ResultType != model.ValMatrix.String() {
		return nil, false
	}
	return ans.Data.Result, true
}

// answered is an api.Client whose first request has been answered
// already: it returns that answer, and sends any later request.
type answered struct {
	api.Client
	resp *http.Response
	body []byte
	err  error
	used bool
}

// Do returns the answer given, the first time.
func (a *answered) Do(ctx context.Context, req *http.Request) (*http.Response, []byte, error) {
	if !a.used {
		a.used = true
		return a.resp, a.body, a.err
	}
	return a.Client.Do(ctx, req)
}

// query evaluates expr at t.
func (p *prometheus) query(ctx context.Context, expr string, t time.Time) (model.Vector, error) {
	v, _, _, err := p.api.Query(ctx, expr, t)
	if err != nil {
		return nil, p.downstream(fmt.Sprintf("query %s", expr), err)
	}
	vec, ok := v.(model.Vector)
	if !ok {
		return nil, p.downstream(fmt.Sprintf("query %s", expr), fmt.Errorf("answer is a %s, want a vector", v.Type()))
	}
	return vec, nil
}

// labelValues lists the values of a label over [start, end], of the series
// the matchers select (all series when there are none).
func (p *prometheus) labelValues(ctx context.Context, label string, matchers []string, start, end time.Time) ([]string, error) {
	vals, _, _, err := p.api.LabelValues(ctx, label, matchers, start, end)
	if err != nil {
		return nil, p.downstream(fmt.Sprintf("label values of %s", label), err)
	}
	out := make([]string, len(vals))
	for i, v := range vals {
		out[i] = string(v)
	}
	return out, nil
}

// metricType returns the type Prometheus's metadata gives a metric family
// ("counter", "gauge", …), or "" when it has none.
func (p *prometheus) metricType(ctx context.Context, name string) (string, error) {
	md, err := p.api.Metadata(ctx, name, "1")
	if err != nil {
		return "", p.downstream(fmt.Sprintf("metadata of %s", name), err)
	}
	for _, m := range md[name] {
		return string(m.Type), nil
	}
	return "", nil
}

// buildInfo asks the server who it is; the health check's first probe.
func (p *prometheus) buildInfo(ctx context.Context) (promv1.BuildinfoResult, error) {
	bi, err := p.api.Buildinfo(ctx)
	if err != nil {
		return bi, p.downstream("build info", err)
	}
	return bi, nil
}

// Kinds of failure the health check and the query errors tell apart.
const (
	failUnreachable = "unreachable"
	failAuth        = "auth"
	failTimeout     = "timeout"
	failBadQuery    = "bad query"
	failOther       = "other"
)

// classify says what kind of failure err is.
func classify(err error) string {
	var se *HTTPStatusError
	if errors.As(err, &se) {
		switch se.StatusCode {
		case http.StatusUnauthorized, http.StatusForbidden, http.StatusProxyAuthRequired:
			return failAuth
		}
		return failOther
	}
	var rre *remoteread.HTTPError
	if errors.As(err, &rre) {
		switch rre.StatusCode {
		case http.StatusUnauthorized, http.StatusForbidden, http.StatusProxyAuthRequired:
			return failAuth
		}
		return failOther
	}
	var ae *promv1.Error
	if errors.As(err, &ae) {
		switch ae.Type {
		case promv1.ErrBadData:
			return failBadQuery
		case promv1.ErrTimeout, promv1.ErrCanceled:
			return failTimeout
		}
		return failOther
	}
	var ne net.Error
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, remoteread.ErrTimeout) || (errors.As(err, &ne) && ne.Timeout()) {
		return failTimeout
	}
	var ue *url.Error
	var oe *net.OpError
	if errors.As(err, &oe) || errors.As(err, &ue) || errors.Is(err, io.ErrUnexpectedEOF) {
		return failUnreachable
	}
	return failOther
}

// statusOf maps an error to the status of a query's response.
func statusOf(err error) backend.Status {
	var qe *queryError
	if errors.As(err, &qe) {
		return backend.StatusBadRequest
	}
	switch classify(err) {
	case failAuth:
		return backend.StatusUnauthorized
	case failTimeout:
		return backend.StatusTimeout
	case failBadQuery:
		return backend.StatusBadRequest
	}
	if backend.IsDownstreamError(err) {
		return backend.StatusBadGateway
	}
	return backend.StatusInternal
}

// queryError is a problem with what a query asks for that only shows once
// it runs (a KPI that does not exist, too many series): the user's to fix.
type queryError struct{ msg string }

func (e *queryError) Error() string { return e.msg }

// badQuery returns a queryError.
func badQuery(format string, args ...any) error {
	return &queryError{msg: fmt.Sprintf(format, args...)}
}

// quote returns s as a PromQL string literal (PromQL uses Go's escapes).
func quote(s string) string { return strconv.Quote(s) }

// targetsMetadata returns the metric families every scrape target exposes,
// with their types, as Prometheus last scraped them.
func (p *prometheus) targetsMetadata(ctx context.Context) ([]promv1.MetricMetadata, error) {
	md, err := p.api.TargetsMetadata(ctx, "", "", "")
	if err != nil {
		return nil, p.downstream("targets metadata", err)
	}
	return md, nil
}

// scrapeInterval returns the global scrape interval of Prometheus's
// configuration (its default, 1m, when the configuration names none).
func (p *prometheus) scrapeInterval(ctx context.Context) (time.Duration, error) {
	cfg, err := p.api.Config(ctx)
	if err != nil {
		return 0, p.downstream("configuration", err)
	}
	var c struct {
		Global struct {
			ScrapeInterval model.Duration `yaml:"scrape_interval"`
		} `yaml:"global"`
	}
	if err := yaml.Unmarshal([]byte(cfg.YAML), &c); err != nil {
		return 0, fmt.Errorf("prometheus configuration: %w", err)
	}
	if c.Global.ScrapeInterval <= 0 {
		return time.Minute, nil
	}
	return time.Duration(c.Global.ScrapeInterval), nil
}
