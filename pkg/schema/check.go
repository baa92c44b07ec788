package schema

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	dto "github.com/prometheus/client_model/go"
)

// Check compares families a program exposes (as parsed from its /metrics)
// with the contract: every telltale_ family must be one of part's, of the
// same type and help, and each of its series must carry exactly the
// family's labels (at least them, for an Open family). It returns one
// error per difference, sorted.
func Check(families map[string]*dto.MetricFamily, part Part) []error {
	var errs []string
	for name, f := range families {
		if !strings.HasPrefix(name, "telltale_") {
			continue
		}
		m, ok := Lookup(name)
		switch {
		case !ok:
			errs = append(errs, fmt.Sprintf("%s is exposed but is not in the contract (pkg/schema)", name))
			continue
		case m.Part != part:
			errs = append(errs, fmt.Sprintf("%s belongs to the %s, not the %s", name, m.Part, part))
		case !strings.EqualFold(f.GetType().String(), string(m.Type)):
			errs = append(errs, fmt.Sprintf("%s is exposed as a %s, the contract says %s", name, strings.ToLower(f.GetType().String()), m.Type))
		case m.Help != "" && f.GetHelp() != m.Help:
			errs = append(errs, fmt.Sprintf("%s has help %q, the contract says %q", name, f.GetHelp(), m.Help))
		}
		for _, s := range f.GetMetric() {
			var got []string
			for _, l := range s.GetLabel() {
				got = append(got, l.GetName())
			}
			missing := slices.DeleteFunc(slices.Clone(m.Labels), func(l string) bool { return slices.Contains(got, l) })
			extra := slices.DeleteFunc(got, func(l string) bool { return slices.Contains(m.Labels, l) || l == "le" || l == "quantile" })
			if len(missing) > 0 || (!m.Open && len(extra) > 0) {
				errs = append(errs, fmt.Sprintf("%s has a series with labels missing %q and not in the contract %q; the contract says %q", name, missing, extra, m.Labels))
				break
			}
		}
	}
	sort.Strings(errs)
	out := make([]error, len(errs))
	for i, e := range errs {
		out[i] = fmt.Errorf("%s", e)
	}
	return out
}
