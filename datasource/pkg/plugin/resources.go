package plugin

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/telltale-dev/telltale/pkg/schema"
)

// resourceWindow is how far back the editors' lists look when the request
// names no range.
const resourceWindow = time.Hour

// resourceMux serves the editors' resources, each a JSON array:
//
//	GET kpis      every KPI (settings and discovered): name, expr, unit, objective, direction, source, metric, type
//	GET services  the service names the exporter reports
//	GET metrics   metric names; ?match[]=<selector> narrows them
//
// from and to (Unix milliseconds) set the range; the last hour by default.
func (d *Datasource) resourceMux() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("/kpis", d.resource(func(r *http.Request, from, to time.Time) (any, error) {
		kpis, err := d.kpis(r.Context(), to, to.Sub(from))
		if kpis == nil {
			kpis = []KPI{}
		}
		return kpis, err
	}))
	mux.HandleFunc("/services", d.resource(func(r *http.Request, from, to time.Time) (any, error) {
		return d.prom.labelValues(r.Context(), "service", []string{schema.ServiceInfo.Name}, from, to)
	}))
	mux.HandleFunc("/metrics", d.resource(func(r *http.Request, from, to time.Time) (any, error) {
		return d.prom.labelValues(r.Context(), "__name__", r.URL.Query()["match[]"], from, to)
	}))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusNotFound, map[string]string{"error": fmt.Sprintf("no resource %q: the resources are kpis, services and metrics", r.URL.Path)})
	})
	return mux
}

// resource wraps a resource's lookup with the method check, the range
// parameters and the error answers.
func (d *Datasource) resource(get func(r *http.Request, from, to time.Time) (any, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet {
			writeJSON(w, http.StatusMethodNotAllowed, map[string]string{"error": r.Method + " is not allowed: use GET"})
			return
		}
		if d.settingsErr != nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "datasource settings: " + d.settingsErr.Error()})
			return
		}
		now := time.Now()
		from, err := msParam(r, "from", now.Add(-resourceWindow))
		if err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
			return
		}
		to, err := msParam(r, "to", now)
		if err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
			return
		}
		if !from.Before(to) {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "from must be before to"})
			return
		}
		v, err := get(r, from, to)
		if err != nil {
			status := http.StatusBadGateway
			var qe *queryError
			if errors.As(err, &qe) {
				status = http.StatusBadRequest
			}
			writeJSON(w, status, map[string]string{"error": err.Error()})
			return
		}
		writeJSON(w, http.StatusOK, v)
	}
}

// msParam reads a Unix-milliseconds query parameter.
func msParam(r *http.Request, name string, def time.Time) (time.Time, error) {
	s := r.URL.Query().Get(name)
	if s == "" {
		return def, nil
	}
	ms, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return time.Time{}, fmt.Errorf("%s=%q is not Unix milliseconds", name, s)
	}
	return time.UnixMilli(ms), nil
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
