// Package kpi lets a Go application declare its business KPIs — orders,
// revenue, checkout latency — so that Telltale finds them without
// configuration.
//
// A KPI is an ordinary Prometheus counter, gauge or histogram, registered on
// the Registerer the application passes in, plus two series that describe it:
//
//	telltale_kpi_info{kpi, metric, unit, direction, type} 1
//	telltale_kpi_objective{kpi} <objective>   (only when one is set)
//
// kpi is the KPI's name, metric the metric family that carries it (its name
// in the text exposition format: a counter's ends in _total, a histogram's
// is the name before _bucket, _sum and _count), type one of counter, gauge,
// histogram, direction whether higher or lower values are better. The
// detector scores every metric so declared and the Grafana datasource lists
// it as a KPI with its objective.
//
// The unit is that of the metric's values (what a counter counts, what a
// histogram observes): "orders", "EUR", "seconds". A counter's KPI is shown
// as its rate, so "orders" reads as orders per second there.
//
// Each KPI registers its info as a collector of its own, keyed by the KPI's
// name, so two declarations of one name on a registry fail like two
// registrations of one metric do.
package kpi

import (
	"errors"
	"fmt"
	"math"
	"regexp"
	"slices"
	"strings"
	"unicode"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/telltale-dev/telltale/pkg/schema"
)

// Direction says which way a KPI should move.
type Direction string

// The two directions.
const (
	// Higher is better: orders, revenue, success ratio.
	Higher Direction = "higher"
	// Lower is better: latency, error ratio, cost.
	Lower Direction = "lower"
)

// Names of the series that describe KPIs.
var (
	// InfoMetric is the name of the info series every KPI adds.
	InfoMetric = schema.KPIInfo.Name
	// ObjectiveMetric is the name of the series a KPI with an objective adds.
	ObjectiveMetric = schema.KPIObjective.Name
)

// maxUnitLen bounds a unit; longer ones are most likely something else
// passed by mistake.
const maxUnitLen = 40

// ErrInvalid is wrapped by the errors of declarations that are malformed: a
// bad name, an unknown direction, a missing unit or help.
var ErrInvalid = errors.New("invalid KPI declaration")

// ErrDuplicate is wrapped by the errors of declarations whose KPI name or
// metric is already registered on the Registerer.
var ErrDuplicate = errors.New("already registered")

// Opts declare a KPI.
type Opts struct {
	// Name is the KPI's name, as people will look for it: "orders",
	// "checkout_latency". Letters, digits and underscores.
	Name string
	// Metric is the name of the metric family that carries the KPI, e.g.
	// "shop_orders_total" (counters end in _total, others must not).
	Metric string
	// Help is the metric's help text.
	Help string
	// Unit is the unit of the metric's values: "orders", "EUR", "seconds".
	Unit string
	// Direction says whether higher or lower values are better.
	Direction Direction
	// Objective, when not nil, is the value the KPI should stay above
	// (Higher) or below (Lower), in the KPI's unit: for a counter, per
	// second; for a histogram, of the 95th percentile of observations,
	// as the datasource shows it.
	Objective *float64
}

// RatioUnits are the units of a share (a success ratio, a percentage),
// compared without regard to case: a gauge KPI in one of them is the mean
// of its series across replicas, not their sum, which would not be a share.
// Every reader of a KPI's value (the datasource, the recording rules) goes
// by them; RatioUnitRegexp is the same as a PromQL label regexp.
var RatioUnits = []string{"ratio", "percent", "%", "percentunit"}

// RatioUnitRegexp matches exactly the RatioUnits, in any case, as a PromQL
// (fully anchored RE2) label regexp.
var RatioUnitRegexp = func() string {
	q := make([]string, len(RatioUnits))
	for i, u := range RatioUnits {
		q[i] = regexp.QuoteMeta(u)
	}
	return "(?i)" + strings.Join(q, "|")
}()

// IsRatioUnit reports whether unit is one of the RatioUnits.
func IsRatioUnit(unit string) bool {
	for _, u := range RatioUnits {
		if strings.EqualFold(unit, u) {
			return true
		}
	}
	return false
}

// NewCounter declares a KPI carried by a counter and registers both on reg.
func NewCounter(reg prometheus.Registerer, o Opts) (prometheus.Counter, error) {
	if err := o.validate("counter", nil); err != nil {
		return nil, err
	}
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: o.Metric, Help: o.Help})
	return c, register(reg, o, "counter", c)
}

// NewCounterVec declares a KPI carried by a counter with labels (e.g. by
// payment method) and registers both on reg.
func NewCounterVec(reg prometheus.Registerer, o Opts, labels []string) (*prometheus.CounterVec, error) {
	if err := o.validate("counter", labels); err != nil {
		return nil, err
	}
	c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: o.Metric, Help: o.Help}, labels)
	return c, register(reg, o, "counter", c)
}

// NewGauge declares a KPI carried by a gauge and registers both on reg.
func NewGauge(reg prometheus.Registerer, o Opts) (prometheus.Gauge, error) {
	if err := o.validate("gauge", nil); err != nil {
		return nil, err
	}
	g := prometheus.NewGauge(prometheus.GaugeOpts{Name: o.Metric, Help: o.Help})
	return g, register(reg, o, "gauge", g)
}

// NewGaugeVec declares a KPI carried by a gauge with labels and registers
// both on reg.
func NewGaugeVec(reg prometheus.Registerer, o Opts, labels []string) (*prometheus.GaugeVec, error) {
	if err := o.validate("gauge", labels); err != nil {
		return nil, err
	}
	g := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: o.Metric, Help: o.Help}, labels)
	return g, register(reg, o, "gauge", g)
}

// NewHistogram declares a KPI carried by a histogram with the given bucket
// upper bounds (prometheus.DefBuckets when nil) and registers both on reg.
func NewHistogram(reg prometheus.Registerer, o Opts, buckets []float64) (prometheus.Histogram, error) {
	if err := o.validate("histogram", nil); err != nil {
		return nil, err
	}
	if err := validBuckets(o.Name, buckets); err != nil {
		return nil, err
	}
	h := prometheus.NewHistogram(prometheus.HistogramOpts{Name: o.Metric, Help: o.Help, Buckets: buckets})
	return h, register(reg, o, "histogram", h)
}

// NewHistogramVec declares a KPI carried by a histogram with labels and
// registers both on reg.
func NewHistogramVec(reg prometheus.Registerer, o Opts, buckets []float64, labels []string) (*prometheus.HistogramVec, error) {
	if err := o.validate("histogram", labels); err != nil {
		return nil, err
	}
	if err := validBuckets(o.Name, buckets); err != nil {
		return nil, err
	}
	h := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: o.Metric, Help: o.Help, Buckets: buckets}, labels)
	return h, register(reg, o, "histogram", h)
}

// register registers the metric, then the KPI's info; when the info is
// refused the metric is unregistered again, so a failed declaration leaves
// the registry as it was.
func register(reg prometheus.Registerer, o Opts, typ string, metric prometheus.Collector) error {
	if reg == nil {
		return fmt.Errorf("declare KPI %q: %w: the Registerer is nil", o.Name, ErrInvalid)
	}
	info, err := newInfoCollector(o, typ)
	if err != nil {
		return err
	}
	if err := reg.Register(metric); err != nil {
		if _, ok := errors.AsType[prometheus.AlreadyRegisteredError](err); ok {
			return fmt.Errorf("declare KPI %q: metric %s is %w", o.Name, o.Metric, ErrDuplicate)
		}
		return fmt.Errorf("declare KPI %q: register metric %s: %w", o.Name, o.Metric, err)
	}
	if err := reg.Register(info); err != nil {
		reg.Unregister(metric)
		if _, ok := errors.AsType[prometheus.AlreadyRegisteredError](err); ok {
			return fmt.Errorf("declare KPI %q: a KPI of that name is %w", o.Name, ErrDuplicate)
		}
		return fmt.Errorf("declare KPI %q: register %s: %w", o.Name, InfoMetric, err)
	}
	return nil
}

// infoCollector exposes one KPI's info and objective. Both descriptors carry
// the KPI's name as a constant label, so the collector's identity in a
// registry is the KPI's name: a second KPI of the same name is an
// AlreadyRegisteredError, whatever its other labels.
type infoCollector struct {
	infoDesc, objDesc *prometheus.Desc
	info, objective   prometheus.Metric // objective nil when not set
}

func newInfoCollector(o Opts, typ string) (*infoCollector, error) {
	// Help texts are the same for every KPI of a registry (schema's): the
	// registry refuses two descriptors of one name with different help.
	kpiLabel := prometheus.Labels{schema.LabelKPI: o.Name}
	c := &infoCollector{
		infoDesc: prometheus.NewDesc(InfoMetric, schema.KPIInfo.Help, schema.KPIInfo.Labels[1:], kpiLabel),
		objDesc:  prometheus.NewDesc(ObjectiveMetric, schema.KPIObjective.Help, nil, kpiLabel),
	}
	var err error
	c.info, err = prometheus.NewConstMetric(c.infoDesc, prometheus.GaugeValue, 1, o.Metric, o.Unit, string(o.Direction), typ)
	if err != nil {
		return nil, fmt.Errorf("declare KPI %q: %w", o.Name, err)
	}
	if o.Objective != nil {
		c.objective, err = prometheus.NewConstMetric(c.objDesc, prometheus.GaugeValue, *o.Objective)
		if err != nil {
			return nil, fmt.Errorf("declare KPI %q: %w", o.Name, err)
		}
	}
	return c, nil
}

// Describe always sends both descriptors, so that the objective's name is
// claimed even when no objective is set.
func (c *infoCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.infoDesc
	ch <- c.objDesc
}

func (c *infoCollector) Collect(ch chan<- prometheus.Metric) {
	ch <- c.info
	if c.objective != nil {
		ch <- c.objective
	}
}

// identRE is what KPI, metric and label names may look like: a Prometheus
// label name. Metric names could also hold colons, but those are reserved
// for recording rules; KPI names keep to it so they are easy to type in a
// query.
var identRE = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)

// validate checks a declaration of the given type with the given labels and
// says what is wrong and what would be right.
func (o Opts) validate(typ string, labels []string) error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("declare KPI %q: %w: %s", o.Name, ErrInvalid, fmt.Sprintf(format, args...))
	}
	switch {
	case o.Name == "":
		return bad("the name is empty; give the KPI a name such as \"orders\"")
	case !identRE.MatchString(o.Name):
		return bad("the name may hold only letters, digits and underscores, not starting with a digit")
	case o.Metric == "":
		return bad("the metric name is empty; name the metric that carries the KPI, e.g. \"shop_orders_total\"")
	case !identRE.MatchString(o.Metric) || strings.HasPrefix(o.Metric, "__"):
		return bad("metric name %q is not a valid Prometheus metric name (letters, digits and underscores, not starting with a digit or __)", o.Metric)
	case o.Metric == InfoMetric || o.Metric == ObjectiveMetric:
		return bad("metric name %q is reserved for the KPI's own description", o.Metric)
	case o.Help == "":
		return bad("the help text is empty; say what the metric counts or measures")
	case o.Unit == "":
		return bad("the unit is empty; give the unit of the metric's values, e.g. \"orders\", \"EUR\" or \"seconds\"")
	case len(o.Unit) > maxUnitLen || strings.ContainsFunc(o.Unit, func(r rune) bool { return !unicode.IsPrint(r) }):
		return bad("unit %q is not a unit: at most %d printable characters", o.Unit, maxUnitLen)
	case o.Direction == "":
		return bad("the direction is empty; want %q or %q (which way is better)", Higher, Lower)
	case o.Direction != Higher && o.Direction != Lower:
		return bad("unknown direction %q; want %q or %q", o.Direction, Higher, Lower)
	case o.Objective != nil && (math.IsNaN(*o.Objective) || math.IsInf(*o.Objective, 0)):
		return bad("objective %v is not a finite number", *o.Objective)
	}
	if err := validMetricSuffix(o.Metric, typ); err != nil {
		return bad("%s", err)
	}
	for i, l := range labels {
		switch {
		case !identRE.MatchString(l) || strings.HasPrefix(l, "__"):
			return bad("label name %q is not a valid Prometheus label name", l)
		case typ == "histogram" && l == "le":
			return bad("a histogram cannot have a label called le: Prometheus uses it for the buckets")
		case slices.Contains(labels[:i], l):
			return bad("label name %q is given twice", l)
		}
	}
	return nil
}

// validMetricSuffix checks the name against the type, the way promtool
// check metrics and the text format expect: counters end in _total; other
// types must not, and a histogram's name must not end in what the
// exposition appends to it.
func validMetricSuffix(name, typ string) error {
	total := strings.HasSuffix(name, "_total")
	switch {
	case typ == "counter" && !total:
		return fmt.Errorf("counter metric name %q must end in _total", name)
	case typ != "counter" && total:
		return fmt.Errorf("%s metric name %q must not end in _total, which marks counters", typ, name)
	}
	if typ == "histogram" {
		for _, s := range []string{"_bucket", "_sum", "_count"} {
			if strings.HasSuffix(name, s) {
				return fmt.Errorf("histogram metric name %q must not end in %s: the exposition adds _bucket, _sum and _count to it", name, s)
			}
		}
	}
	return nil
}

// validBuckets checks histogram bounds before client_golang would panic on
// them.
func validBuckets(name string, buckets []float64) error {
	for i, b := range buckets {
		if math.IsNaN(b) {
			return fmt.Errorf("declare KPI %q: %w: bucket %d is NaN", name, ErrInvalid, i)
		}
		if i > 0 && b <= buckets[i-1] {
			return fmt.Errorf("declare KPI %q: %w: bucket bounds must increase, but %v follows %v", name, ErrInvalid, b, buckets[i-1])
		}
	}
	return nil
}
