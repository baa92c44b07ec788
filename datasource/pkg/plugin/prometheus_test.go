package plugin

import (
	"compress/gzip"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"
)

// queryRange decodes answers itself and leaves the others to client_golang:
// what it returns is what client_golang's QueryRange returns for the same
// answer, and a server that refuses POST is asked again with GET.
func TestQueryRangeDecodesAsClientGolang(t *testing.T) {
	const matrix = `{"status":"success","data":{"resultType":"matrix","result":[` +
		`{"metric":{"__name__":"up","instance":"a:1"},"values":[[1700000000,"1"],[1700000001.5,"NaN"],[1700000003,"+Inf"]]},` +
		`{"metric":{},"histograms":[[1700000000,{"count":"2","sum":"3","buckets":[[0,"0","1","2"]]}]]}]}}`
	for _, tc := range []struct {
		name, body  string
		status      int
		postRefused bool
		wantErr     string
	}{
		{name: "matrix", body: matrix, status: 200},
		{name: "matrix after POST refused", body: matrix, status: 200, postRefused: true},
		{name: "empty", body: `{"status":"success","data":{"resultType":"matrix","result":[]}}`, status: 200},
		{name: "a vector", body: `{"status":"success","data":{"resultType":"vector","result":[]}}`, status: 200, wantErr: "want a matrix"},
		{name: "bad query", body: `{"status":"error","errorType":"bad_data","error":"1:3: parse error"}`, status: 400, wantErr: "parse error"},
		{name: "error with 200", body: `{"status":"error","errorType":"execution","error":"query timed out"}`, status: 200, wantErr: "query timed out"},
		{name: "not JSON", body: `<html>oops</html>`, status: 200, wantErr: "prometheus query_range up"},
		{name: "server error", body: `overloaded`, status: 502, wantErr: "server error: 502"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var methods []string
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				methods = append(methods, r.Method)
				if err := r.ParseForm(); err != nil || r.Form.Get("query") != "up" || r.Form.Get("step") != "1.5" {
					t.Errorf("form %v (%v), want query=up step=1.5", r.Form, err)
				}
				if tc.postRefused && r.Method == http.MethodPost {
					w.WriteHeader(http.StatusMethodNotAllowed)
					return
				}
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(tc.status)
				_, _ = w.Write([]byte(tc.body))
			}))
			defer srv.Close()
			p, err := newPrometheus(srv.URL, srv.Client(), 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			start := time.Unix(1700000000, 0)
			end, step := start.Add(3*time.Second), 1500*time.Millisecond
			got, err := p.queryRange(context.Background(), "up", start, end, step)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one saying %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if _, ok := decodeMatrix([]byte(tc.body)); !ok {
				t.Error("the answer was left to client_golang, not decoded in one pass")
			}
			if tc.postRefused && !reflect.DeepEqual(methods, []string{http.MethodPost, http.MethodGet}) {
				t.Errorf("requests %v, want POST then GET", methods)
			}
			want, _, _, err := p.api.QueryRange(context.Background(), "up", promv1.Range{Start: start, End: end, Step: step})
			if err != nil {
				t.Fatal(err)
			}
			if got.String() != want.String() {
				t.Errorf("decoded\n%v\nclient_golang decodes\n%v", got, want)
			}
		})
	}
}

// A server that is not Prometheus's API (a proxy asking for credentials)
// is named as such, with its status.
func TestQueryRangeHTTPStatus(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "who are you", http.StatusUnauthorized)
	}))
	defer srv.Close()
	p, err := newPrometheus(srv.URL, srv.Client(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	_, err = p.queryRange(context.Background(), "up", time.Unix(0, 0), time.Unix(60, 0), time.Second)
	var se *HTTPStatusError
	if !errors.As(err, &se) || se.StatusCode != http.StatusUnauthorized {
		t.Fatalf("error %v, want an HTTPStatusError 401", err)
	}
}

// A Prometheus on the same host is asked for plain range answers; one over
// a network for gzip, which is decoded as before.
func TestQueryRangeCompression(t *testing.T) {
	const matrix = `{"status":"success","data":{"resultType":"matrix","result":[{"metric":{"__name__":"up"},"values":[[1700000000,"1"]]}]}}`
	var asked string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		asked = r.Header.Get("Accept-Encoding")
		w.Header().Set("Content-Type", "application/json")
		if !strings.Contains(asked, "gzip") {
			io.WriteString(w, matrix)
			return
		}
		w.Header().Set("Content-Encoding", "gzip")
		gz := gzip.NewWriter(w)
		io.WriteString(gz, matrix)
		gz.Close()
	}))
	defer srv.Close()
	// Every connection goes to the test server, whatever the URL's host.
	dial := func(ctx context.Context, network, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, network, srv.Listener.Addr().String())
	}
	hc := &http.Client{Transport: &http.Transport{DialContext: dial}}
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	for _, tc := range []struct {
		host, want string
	}{
		{"127.0.0.1", "identity"},
		{"localhost", "identity"},
		{"[::1]", "identity"},
		{"prometheus.example", "gzip"},
		{"192.0.2.7", "gzip"},
	} {
		p, err := newPrometheus("http://"+tc.host+":"+port, hc, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		m, err := p.queryRange(context.Background(), "up", time.Unix(1700000000, 0), time.Unix(1700000000, 0), time.Second)
		if err != nil {
			t.Fatalf("%s: %v", tc.host, err)
		}
		if asked != tc.want || len(m) != 1 || len(m[0].Values) != 1 || m[0].Values[0].Value != 1 {
			t.Errorf("%s: Accept-Encoding %q, answer %v; want %q and the one sample", tc.host, asked, m, tc.want)
		}
	}
}
