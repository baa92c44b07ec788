package plugin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/backend"
	"github.com/grafana/grafana-plugin-sdk-go/backend/httpclient"
	"github.com/prometheus/prometheus/promql/parser"

	"github.com/telltale-dev/telltale/pkg/kpi"
)

// Auth types accepted in jsonData.authType.
const (
	AuthNone   = "none"
	AuthBasic  = "basic"
	AuthBearer = "bearer"
)

// Directions of a KPI: which way is better.
const (
	DirectionHigher = string(kpi.Higher)
	DirectionLower  = string(kpi.Lower)
)

// defaultTimeout bounds one request to Prometheus when the settings name no
// timeout; Grafana's own data proxy uses the same default.
const defaultTimeout = 30 * time.Second

// Settings are a datasource instance's settings, checked.
type Settings struct {
	// URL is Prometheus's base URL, without a trailing slash.
	URL string
	// Timeout bounds each request to Prometheus.
	Timeout time.Duration
	// AuthType is AuthNone, AuthBasic or AuthBearer.
	AuthType string
	// BasicAuthUser and BasicAuthPassword are used with AuthBasic.
	BasicAuthUser, BasicAuthPassword string
	// BearerToken is used with AuthBearer.
	BearerToken string
	// KPIs are the KPIs declared in the settings, next to the discovered ones.
	KPIs []KPI
}

// jsonData is the settings' jsonData as the config editor writes it.
type jsonData struct {
	Timeout       json.RawMessage `json:"timeout"`
	AuthType      string          `json:"authType"`
	BasicAuthUser string          `json:"basicAuthUser"`
	KPIs          []settingsKPI   `json:"kpis"`
}

// settingsKPI is one entry of jsonData.kpis.
type settingsKPI struct {
	Name      string          `json:"name"`
	Expr      string          `json:"expr"`
	Unit      string          `json:"unit"`
	Objective json.RawMessage `json:"objective"`
	Direction string          `json:"direction"`
}

// ParseSettings checks a datasource instance's settings and says what is wrong
// in terms of the config editor's fields.
func ParseSettings(s backend.DataSourceInstanceSettings) (Settings, error) {
	var out Settings
	raw := strings.TrimRight(strings.TrimSpace(s.URL), "/")
	if raw == "" {
		return out, errors.New("the Prometheus URL is empty: set it to Prometheus's base URL, e.g. http://prometheus:9090")
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return out, fmt.Errorf("the Prometheus URL %q is not an http:// or https:// URL with a host, e.g. http://prometheus:9090", s.URL)
	}
	out.URL = raw

	var jd jsonData
	if len(bytes.TrimSpace(s.JSONData)) > 0 {
		if err := json.Unmarshal(s.JSONData, &jd); err != nil {
			return out, fmt.Errorf("read jsonData: %w", err)
		}
	}
	out.Timeout, err = parseTimeout(jd.Timeout)
	if err != nil {
		return out, err
	}

	out.AuthType = jd.AuthType
	if out.AuthType == "" {
		out.AuthType = AuthNone
	}
	switch out.AuthType {
	case AuthNone:
	case AuthBasic:
		out.BasicAuthUser = jd.BasicAuthUser
		out.BasicAuthPassword = s.DecryptedSecureJSONData["basicAuthPassword"]
		if out.BasicAuthUser == "" {
			return out, errors.New("basic authentication is selected but the user is empty")
		}
	case AuthBearer:
		out.BearerToken = s.DecryptedSecureJSONData["bearerToken"]
		if out.BearerToken == "" {
			return out, errors.New("bearer authentication is selected but no token is saved")
		}
	default:
		return out, fmt.Errorf("authType %q is not known: want %q, %q or %q", jd.AuthType, AuthNone, AuthBasic, AuthBearer)
	}

	seen := map[string]bool{}
	for i, k := range jd.KPIs {
		kpi, err := k.check()
		if err != nil {
			return out, fmt.Errorf("KPI %d (%q): %w", i+1, k.Name, err)
		}
		if seen[kpi.Name] {
			return out, fmt.Errorf("KPI %d: the name %q is used twice", i+1, kpi.Name)
		}
		seen[kpi.Name] = true
		out.KPIs = append(out.KPIs, kpi)
	}
	return out, nil
}

// parseTimeout reads jsonData.timeout, seconds as a number or a numeric string.
func parseTimeout(raw json.RawMessage) (time.Duration, error) {
	s := strings.Trim(strings.TrimSpace(string(raw)), `"`)
	if s == "" || s == "null" {
		return defaultTimeout, nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || !(f > 0) || f > 3600 || math.IsInf(f, 0) {
		return 0, fmt.Errorf("timeout %s is not a number of seconds between 0 and 3600", raw)
	}
	return time.Duration(f * float64(time.Second)), nil
}

// check validates one settings KPI and returns it as a KPI.
func (k settingsKPI) check() (KPI, error) {
	kpi := KPI{
		Name:      strings.TrimSpace(k.Name),
		Expr:      strings.TrimSpace(k.Expr),
		Unit:      k.Unit,
		Direction: k.Direction,
		Source:    SourceSettings,
	}
	if kpi.Name == "" {
		return kpi, errors.New("the name is empty")
	}
	if kpi.Expr == "" {
		return kpi, errors.New("the PromQL expression is empty")
	}
	if _, err := parser.ParseExpr(withoutTemplateVariables(kpi.Expr)); err != nil {
		return kpi, fmt.Errorf("the PromQL expression does not parse: %w", err)
	}
	switch kpi.Direction {
	case "":
		kpi.Direction = DirectionHigher
	case DirectionHigher, DirectionLower:
	default:
		return kpi, fmt.Errorf("direction %q: want %q or %q", k.Direction, DirectionHigher, DirectionLower)
	}
	obj := strings.Trim(strings.TrimSpace(string(k.Objective)), `"`)
	if obj != "" && obj != "null" {
		f, err := strconv.ParseFloat(obj, 64)
		if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
			return kpi, fmt.Errorf("objective %s is not a number", k.Objective)
		}
		kpi.Objective = &f
	}
	return kpi, nil
}

// HTTPClientOptions returns the SDK's HTTP client options for these settings:
// Grafana's own options (TLS, proxy, forwarded headers) plus our timeout and
// authentication, which live under our own jsonData keys.
func (s Settings) HTTPClientOptions(ctx context.Context, is backend.DataSourceInstanceSettings) (httpclient.Options, error) {
	opts, err := is.HTTPClientOptions(ctx)
	if err != nil {
		return opts, fmt.Errorf("http client options: %w", err)
	}
	if opts.Timeouts == nil {
		t := httpclient.DefaultTimeoutOptions
		opts.Timeouts = &t
	}
	opts.Timeouts.Timeout = s.Timeout
	// With authType none, Grafana's own basic auth settings (as a
	// provisioning file may set them) still apply.
	switch s.AuthType {
	case AuthBasic:
		opts.BasicAuth = &httpclient.BasicAuthOptions{User: s.BasicAuthUser, Password: s.BasicAuthPassword}
	case AuthBearer:
		opts.BasicAuth = nil
		if opts.Header == nil {
			opts.Header = http.Header{}
		}
		opts.Header.Set("Authorization", "Bearer "+s.BearerToken)
	}
	return opts, nil
}
