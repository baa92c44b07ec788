package plugin

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang/snappy"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/prompb"
)

// fakeSeries is a series whose value the fake computes from the time; ok
// false means no sample at that time.
type fakeSeries struct {
	Metric model.Metric
	F      func(t time.Time) (v float64, ok bool)
}

// fakeProm is Prometheus faked at the HTTP edge: the API endpoints the
// datasource calls, answering from fixtures keyed by the exact PromQL
// expression, and remote read answering from raw series. A query it has no
// fixture for gets an empty answer, as Prometheus gives for a metric it does
// not have; unused fixtures fail the test, so a fixture cannot silently
// drift from the expression the code builds.
type fakeProm struct {
	tb  testing.TB
	srv *httptest.Server

	// instant and ranged are keyed by expression.
	instant map[string]model.Vector
	ranged  map[string][]fakeSeries
	// raw are the series remote read serves, sampled every rawStep.
	raw     []fakeSeries
	rawStep time.Duration
	// metadata maps a metric family to its type; targets lists the
	// families each target exposes (target metadata).
	metadata map[string]string
	targets  []targetFamily
	// config is Prometheus's configuration as /api/v1/status/config
	// gives it; empty answers 404, as a store that does not scrape.
	config string
	// labelValues maps a label name to its values.
	labelValues map[string][]string

	// bearer, when set, is the token every request must carry;
	// basicUser and basicPassword the basic credentials.
	bearer                   string
	basicUser, basicPassword string
	// failures maps an expression to the bad_data error Prometheus gives
	// for it.
	failures map[string]string
	// noRemoteRead makes /api/v1/read answer 404, as Thanos does.
	noRemoteRead bool

	mu      sync.Mutex
	used    map[string]bool
	unknown []string
	// starts holds the start of the last range query of each expression.
	starts map[string]time.Time
}

// targetFamily is a metric family a scrape target exposes.
type targetFamily struct{ Instance, Job, Family, Type string }

func newFakeProm(tb testing.TB) *fakeProm {
	tb.Helper()
	f := &fakeProm{
		tb:          tb,
		instant:     map[string]model.Vector{},
		ranged:      map[string][]fakeSeries{},
		rawStep:     15 * time.Second,
		metadata:    map[string]string{},
		labelValues: map[string][]string{},
		used:        map[string]bool{},
		failures:    map[string]string{},
		starts:      map[string]time.Time{},
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/api/v1/query", f.handleQuery)
	mux.HandleFunc("/api/v1/query_range", f.handleQueryRange)
	mux.HandleFunc("/api/v1/read", f.handleRead)
	mux.HandleFunc("/api/v1/metadata", f.handleMetadata)
	mux.HandleFunc("/api/v1/status/config", func(w http.ResponseWriter, r *http.Request) {
		if f.config == "" {
			http.NotFound(w, r)
			return
		}
		f.answer(w, map[string]string{"yaml": f.config})
	})
	mux.HandleFunc("/api/v1/targets/metadata", func(w http.ResponseWriter, r *http.Request) {
		out := []map[string]any{}
		for _, t := range f.targets {
			out = append(out, map[string]any{"target": map[string]string{"instance": t.Instance, "job": t.Job}, "metric": t.Family, "type": t.Type, "help": "fake", "unit": ""})
		}
		f.answer(w, out)
	})
	mux.HandleFunc("/api/v1/status/buildinfo", func(w http.ResponseWriter, r *http.Request) {
		f.answer(w, map[string]string{"version": "2.42.0-fake", "revision": "fake"})
	})
	mux.HandleFunc("/api/v1/label/{name}/values", func(w http.ResponseWriter, r *http.Request) {
		vals := f.labelValues[r.PathValue("name")]
		if vals == nil {
			vals = []string{}
		}
		f.answer(w, vals)
	})
	f.srv = httptest.NewServer(f.auth(mux))
	tb.Cleanup(f.srv.Close)
	return f
}

// checkAllUsed fails the test when a fixture was never asked for, except
// those the test says it does not need.
func (f *fakeProm) checkAllUsed(except ...string) {
	f.tb.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	var unused []string
	for _, m := range []map[string]bool{keys(f.instant), keys(f.ranged)} {
		for e := range m {
			if !f.used[e] && !slices.Contains(except, e) {
				unused = append(unused, e)
			}
		}
	}
	if len(unused) > 0 {
		sort.Strings(unused)
		f.tb.Errorf("fixtures never queried:\n  %s\nqueries without fixtures:\n  %s", strings.Join(unused, "\n  "), strings.Join(f.unknown, "\n  "))
	}
}

func keys[V any](m map[string]V) map[string]bool {
	out := make(map[string]bool, len(m))
	for k := range m {
		out[k] = true
	}
	return out
}

func (f *fakeProm) auth(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if f.bearer != "" && r.Header.Get("Authorization") != "Bearer "+f.bearer {
			http.Error(w, "Unauthorized", http.StatusUnauthorized)
			return
		}
		if f.basicUser != "" {
			if u, p, ok := r.BasicAuth(); !ok || u != f.basicUser || p != f.basicPassword {
				http.Error(w, "Unauthorized", http.StatusUnauthorized)
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

func (f *fakeProm) note(expr string, known bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if known {
		f.used[expr] = true
	} else {
		f.unknown = append(f.unknown, expr)
	}
}

func (f *fakeProm) answer(w http.ResponseWriter, data any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"status": "success", "data": data})
}

// fail answers with Prometheus's error for expr, if the test set one.
func (f *fakeProm) fail(w http.ResponseWriter, expr string) bool {
	msg, ok := f.failures[expr]
	if !ok {
		return false
	}
	f.note(expr, true)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusBadRequest)
	_ = json.NewEncoder(w).Encode(map[string]string{"status": "error", "errorType": "bad_data", "error": msg})
	return true
}

func (f *fakeProm) handleQuery(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	expr := r.Form.Get("query")
	if f.fail(w, expr) {
		return
	}
	v, ok := f.instant[expr]
	if series, ranged := f.ranged[expr]; !ok && ranged {
		// An instant query is a range query of one step: a ranged
		// fixture answers it with its value at the query's time.
		t, err := parseTime(r.Form.Get("time"))
		if err != nil {
			http.Error(w, "bad time: "+err.Error(), http.StatusBadRequest)
			return
		}
		ok = true
		for _, s := range series {
			if x, has := s.F(t); has {
				v = append(v, &model.Sample{Metric: s.Metric, Value: model.SampleValue(x), Timestamp: model.TimeFromUnixNano(t.UnixNano())})
			}
		}
	}
	f.note(expr, ok)
	if v == nil {
		v = model.Vector{}
	}
	f.answer(w, map[string]any{"resultType": "vector", "result": v})
}

func (f *fakeProm) handleQueryRange(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	expr := r.Form.Get("query")
	if f.fail(w, expr) {
		return
	}
	start, err1 := parseTime(r.Form.Get("start"))
	end, err2 := parseTime(r.Form.Get("end"))
	step, err3 := strconv.ParseFloat(r.Form.Get("step"), 64)
	if err1 != nil || err2 != nil || err3 != nil || step <= 0 {
		w.WriteHeader(http.StatusBadRequest)
		_ = json.NewEncoder(w).Encode(map[string]string{"status": "error", "errorType": "bad_data", "error": "bad start, end or step"})
		return
	}
	if n := end.Sub(start).Seconds() / step; n > maxPointsPerSeries {
		w.WriteHeader(http.StatusBadRequest)
		_ = json.NewEncoder(w).Encode(map[string]string{"status": "error", "errorType": "bad_data", "error": "exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)"})
		return
	}
	series, ok := f.ranged[expr]
	f.note(expr, ok)
	f.mu.Lock()
	f.starts[expr] = start
	f.mu.Unlock()
	m := model.Matrix{}
	d := time.Duration(step * float64(time.Second))
	for _, s := range series {
		ss := &model.SampleStream{Metric: s.Metric}
		for t := start; !t.After(end); t = t.Add(d) {
			if v, ok := s.F(t); ok {
				ss.Values = append(ss.Values, model.SamplePair{Timestamp: model.TimeFromUnixNano(t.UnixNano()), Value: model.SampleValue(v)})
			}
		}
		if len(ss.Values) > 0 {
			m = append(m, ss)
		}
	}
	f.answer(w, map[string]any{"resultType": "matrix", "result": m})
}

func (f *fakeProm) handleMetadata(w http.ResponseWriter, r *http.Request) {
	name := r.URL.Query().Get("metric")
	out := map[string][]map[string]string{}
	if typ, ok := f.metadata[name]; ok {
		out[name] = []map[string]string{{"type": typ, "help": "fake", "unit": ""}}
	}
	f.answer(w, out)
}

// handleRead answers remote read with a sampled response, as a server
// without streaming would: the datasource must take either.
func (f *fakeProm) handleRead(w http.ResponseWriter, r *http.Request) {
	if f.noRemoteRead {
		http.Error(w, "404 page not found", http.StatusNotFound)
		return
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	raw, err := snappy.Decode(nil, body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var req prompb.ReadRequest
	if err := req.Unmarshal(raw); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var resp prompb.ReadResponse
	for _, q := range req.Queries {
		var ms []*labels.Matcher
		for _, m := range q.Matchers {
			lm, err := labels.NewMatcher(labels.MatchType(m.Type), m.Name, m.Value)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			ms = append(ms, lm)
		}
		res := &prompb.QueryResult{}
		for _, s := range f.raw {
			if !matches(s.Metric, ms) {
				continue
			}
			ts := &prompb.TimeSeries{}
			names := make([]string, 0, len(s.Metric))
			for n := range s.Metric {
				names = append(names, string(n))
			}
			sort.Strings(names)
			for _, n := range names {
				ts.Labels = append(ts.Labels, prompb.Label{Name: n, Value: string(s.Metric[model.LabelName(n)])})
			}
			start := time.UnixMilli(q.StartTimestampMs).Truncate(f.rawStep)
			for t := start; t.UnixMilli() <= q.EndTimestampMs; t = t.Add(f.rawStep) {
				if t.UnixMilli() < q.StartTimestampMs {
					continue
				}
				if v, ok := s.F(t); ok {
					ts.Samples = append(ts.Samples, prompb.Sample{Timestamp: t.UnixMilli(), Value: v})
				}
			}
			res.Timeseries = append(res.Timeseries, ts)
		}
		resp.Results = append(resp.Results, res)
	}
	out, err := resp.Marshal()
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/x-protobuf")
	w.Header().Set("Content-Encoding", "snappy")
	_, _ = w.Write(snappy.Encode(nil, out))
}

func matches(m model.Metric, ms []*labels.Matcher) bool {
	for _, lm := range ms {
		if !lm.Matches(string(m[model.LabelName(lm.Name)])) {
			return false
		}
	}
	return true
}

func parseTime(s string) (time.Time, error) {
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return time.Parse(time.RFC3339Nano, s)
	}
	return time.UnixMilli(int64(f * 1000)).UTC(), nil
}
