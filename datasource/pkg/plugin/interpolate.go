package plugin

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// assumedScrapeInterval is the scrape interval $__rate_interval assumes
// when Prometheus does not say its own (see Datasource.scrapeInterval):
// Grafana's default for a Prometheus datasource.
const assumedScrapeInterval = 15 * time.Second

// templateVarRE matches the three spellings Grafana uses for a template
// variable: $name, ${name} or ${name:format}, and [[name]]. A "$" not followed
// by a letter or underscore (the end anchor of a regex) is left alone.
var templateVarRE = regexp.MustCompile(`\$([A-Za-z_]\w*)|\$\{([A-Za-z_]\w*)(?::[^}]*)?\}|\[\[([A-Za-z_]\w*)(?::[^\]]*)?\]\]`)

// BackendVariables lists the template variables the backend replaces. The
// frontend replaces dashboard variables before a query reaches the backend
// and passes these through, because only the backend knows their values for
// every request — including Grafana-managed alert rules, which run without
// the frontend and without a dashboard.
var BackendVariables = []string{
	"__interval", "__interval_ms", "__rate_interval",
	"__range", "__range_s", "__range_ms",
	"__from", "__to",
}

// templateScope is what the backend knows about a query when it replaces
// template variables.
type templateScope struct {
	From, To time.Time
	Interval time.Duration
	// Scrape is Prometheus's scrape interval; 0 for assumedScrapeInterval.
	Scrape time.Duration
}

// rateInterval is Grafana's $__rate_interval: the step plus a scrape, at
// least four scrapes, so that a rate always spans two samples or more.
func (s templateScope) rateInterval() time.Duration {
	scrape := s.Scrape
	if scrape <= 0 {
		scrape = assumedScrapeInterval
	}
	return max(s.Interval+scrape, 4*scrape)
}

// values returns the value of each backend variable in this scope.
func (s templateScope) values() map[string]string {
	rng := s.To.Sub(s.From)
	rate := s.rateInterval()
	return map[string]string{
		"__interval":      promDuration(s.Interval),
		"__interval_ms":   strconv.FormatInt(s.Interval.Milliseconds(), 10),
		"__rate_interval": promDuration(rate),
		"__range":         promDuration(rng),
		"__range_s":       strconv.FormatInt(int64(rng/time.Second), 10),
		"__range_ms":      strconv.FormatInt(rng.Milliseconds(), 10),
		"__from":          strconv.FormatInt(s.From.UnixMilli(), 10),
		"__to":            strconv.FormatInt(s.To.UnixMilli(), 10),
	}
}

// interpolate replaces the backend's template variables in s. A variable it
// does not know is an error naming it: in a dashboard the frontend would have
// replaced it, so it comes from an alert rule or an API call, where it would
// otherwise reach Prometheus as a puzzling parse error.
func interpolate(s string, scope templateScope) (string, error) {
	if !strings.ContainsAny(s, "$[") {
		return s, nil
	}
	vals := scope.values()
	var unknown string
	out := templateVarRE.ReplaceAllStringFunc(s, func(m string) string {
		sub := templateVarRE.FindStringSubmatch(m)
		name := sub[1] + sub[2] + sub[3]
		if v, ok := vals[name]; ok {
			return v
		}
		if unknown == "" {
			unknown = m
		}
		return m
	})
	if unknown != "" {
		return "", fmt.Errorf("template variable %s is not known to the backend: dashboard variables are replaced by Grafana's frontend, so alert rules and API calls must use literal values (the backend replaces $%s)", unknown, strings.Join(BackendVariables, ", $"))
	}
	return out, nil
}

// withoutTemplateVariables replaces every template variable with a duration,
// so that an expression can be syntax-checked before the variables' values
// are known (a variable stands for a duration in nearly every PromQL use).
func withoutTemplateVariables(s string) string {
	return templateVarRE.ReplaceAllString(s, "1m")
}

// promDuration formats d the way PromQL accepts it: whole seconds, or
// milliseconds below a second.
func promDuration(d time.Duration) string {
	if d%time.Second == 0 {
		return strconv.FormatInt(int64(d/time.Second), 10) + "s"
	}
	return strconv.FormatInt(d.Milliseconds(), 10) + "ms"
}
