package remoteread

import (
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/golang/snappy"
	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/prompb"
)

func newTestClient(tb testing.TB, h http.Handler, opts Options) *Client {
	tb.Helper()
	srv := httptest.NewServer(h)
	tb.Cleanup(srv.Close)
	opts.URL = srv.URL + "/api/v1/read"
	c, err := NewClient(opts)
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

func query(start, end int64, selector string) *prompb.Query {
	ms, err := ParseSelector(selector)
	if err != nil {
		panic(err)
	}
	return &prompb.Query{StartTimestampMs: start, EndTimestampMs: end, Matchers: ms}
}

func linear(i int) float64 { return float64(i) }

func TestReadRequest(t *testing.T) {
	var req *prompb.ReadRequest
	var header http.Header
	c := newTestClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		header = r.Header.Clone()
		req = decodeRequest(t, r)
		w.Header().Set("Content-Type", "application/x-streamed-protobuf; proto=prometheus.ChunkedReadResponse")
	}), Options{Header: http.Header{"X-Scope-Orgid": {"tenant-1"}}})
	q := query(1000, 2000, `up{job=~"a|b",instance!="x"}`)
	if _, err := c.Read(t.Context(), []*prompb.Query{q}, func(*Series) error { return nil }); err != nil {
		t.Fatal(err)
	}
	want := &prompb.ReadRequest{
		Queries: []*prompb.Query{{StartTimestampMs: 1000, EndTimestampMs: 2000, Matchers: []*prompb.LabelMatcher{
			{Type: prompb.LabelMatcher_RE, Name: "job", Value: "a|b"},
			{Type: prompb.LabelMatcher_NEQ, Name: "instance", Value: "x"},
			{Type: prompb.LabelMatcher_EQ, Name: "__name__", Value: "up"},
		}}},
		AcceptedResponseTypes: []prompb.ReadRequest_ResponseType{prompb.ReadRequest_STREAMED_XOR_CHUNKS, prompb.ReadRequest_SAMPLES},
	}
	if diff := cmp.Diff(want.String(), req.String()); diff != "" {
		t.Errorf("request (-want +got):\n%s", diff)
	}
	for k, v := range map[string]string{
		"Content-Encoding":                 "snappy",
		"Content-Type":                     "application/x-protobuf",
		"X-Prometheus-Remote-Read-Version": "0.1.0",
		"X-Scope-Orgid":                    "tenant-1",
	} {
		if got := header.Get(k); got != v {
			t.Errorf("header %s = %q, want %q", k, got, v)
		}
	}
}

func TestReadStreamed(t *testing.T) {
	a := samples(0, 15000, 120, linear)
	b := samples(120*15000, 15000, 120, func(i int) float64 { return 120 + float64(i) })
	c := samples(0, 15000, 10, func(i int) float64 { return -float64(i) / 3 })
	series1 := pbLabels("__name__", "up", "job", "a")
	series2 := pbLabels("__name__", "up", "job", "b")
	tests := []struct {
		name    string
		queries []*prompb.Query
		body    [][]byte
		want    []got
	}{
		{
			name:    "sorted, one series split over two frames",
			queries: []*prompb.Query{query(0, 240*15000, "up")},
			body: [][]byte{
				chunkedFrame(t, 0, series1, xorChunk(t, a)),
				chunkedFrame(t, 0, series1, xorChunk(t, b)),
				chunkedFrame(t, 0, series2, xorChunk(t, c)),
			},
			want: []got{
				{Labels: lbls("__name__", "up", "job", "a"), Floats: a},
				{Labels: lbls("__name__", "up", "job", "a"), Floats: b},
				{Labels: lbls("__name__", "up", "job", "b"), Floats: c},
			},
		},
		{
			name:    "unsorted series and labels",
			queries: []*prompb.Query{query(0, 240*15000, "up")},
			body: [][]byte{
				chunkedFrame(t, 0, pbLabels("job", "b", "__name__", "up"), xorChunk(t, c)),
				chunkedFrame(t, 0, pbLabels("job", "a", "__name__", "up"), xorChunk(t, a), xorChunk(t, b)),
			},
			want: []got{
				{Labels: lbls("__name__", "up", "job", "b"), Floats: c},
				{Labels: lbls("__name__", "up", "job", "a"), Floats: append(append([]Sample(nil), a...), b...)},
			},
		},
		{
			name: "two queries, chunks trimmed to each query's range",
			queries: []*prompb.Query{
				query(30000, 60000, "up"),
				query(200*15000, 1e12, "up"),
			},
			body: [][]byte{
				chunkedFrame(t, 0, series1, xorChunk(t, a), xorChunk(t, b)),
				chunkedFrame(t, 1, series1, xorChunk(t, a), xorChunk(t, b)),
			},
			want: []got{
				{Query: 0, Labels: lbls("__name__", "up", "job", "a"), Floats: a[2:5]},
				{Query: 1, Labels: lbls("__name__", "up", "job", "a"), Floats: b[80:]},
			},
		},
		{
			name:    "several series in one frame",
			queries: []*prompb.Query{query(0, 1e12, "up")},
			body: [][]byte{frame(t, &prompb.ChunkedReadResponse{ChunkedSeries: []*prompb.ChunkedSeries{
				{Labels: series1, Chunks: []prompb.Chunk{xorChunk(t, a)}},
				{Labels: series2, Chunks: []prompb.Chunk{xorChunk(t, c)}},
			}})},
			want: []got{
				{Labels: lbls("__name__", "up", "job", "a"), Floats: a},
				{Labels: lbls("__name__", "up", "job", "b"), Floats: c},
			},
		},
		{
			name:    "empty answer",
			queries: []*prompb.Query{query(0, 1e12, "up")},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			client := newTestClient(t, streamed(t, tt.body...), Options{})
			series, st, err := collect(t, client, tt.queries)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, series); diff != "" {
				t.Errorf("series (-want +got):\n%s", diff)
			}
			if st.ResponseType != prompb.ReadRequest_STREAMED_XOR_CHUNKS || st.Frames != len(tt.body) || st.Series != len(tt.want) {
				t.Errorf("stats = %+v, want streamed, %d frames, %d series", st, len(tt.body), len(tt.want))
			}
		})
	}
}

func TestReadStreamedHistograms(t *testing.T) {
	h := &histogram.Histogram{
		Count: 5, Sum: 12, Schema: 0, ZeroThreshold: 0.001, ZeroCount: 1,
		PositiveSpans:   []histogram.Span{{Offset: 0, Length: 2}},
		PositiveBuckets: []int64{2, 0},
	}
	chk := histogramChunk(t, []int64{1000, 2000, 3000}, []*histogram.Histogram{h, h, h})
	body := chunkedFrame(t, 0, pbLabels("__name__", "latency_seconds"), chk)
	q := []*prompb.Query{query(1500, 5000, "latency_seconds")}

	client := newTestClient(t, streamed(t, body), Options{Histograms: true})
	var hs []HistogramSample
	if _, err := client.Read(t.Context(), q, func(s *Series) error {
		hs = append(hs, s.Histograms...)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(hs) != 2 || hs[0].T != 2000 || hs[1].T != 3000 || hs[0].H.Count != 5 || hs[0].H.Sum != 12 {
		t.Errorf("histograms = %+v, want two with count 5 and sum 12 at 2000 and 3000", hs)
	}

	client = newTestClient(t, streamed(t, body), Options{})
	series, st, err := collect(t, client, q)
	if err != nil {
		t.Fatal(err)
	}
	if st.HistogramsSkipped != 1 || len(series) != 1 || series[0].Histograms != 0 {
		t.Errorf("with histograms off: stats %+v, series %+v; want the chunk skipped and counted", st, series)
	}
}

func TestReadSampled(t *testing.T) {
	unsorted := []prompb.Sample{{Timestamp: 3000, Value: 3}, {Timestamp: 1000, Value: 1}, {Timestamp: 2000, Value: 2}, {Timestamp: 9000, Value: 9}}
	body := sampledBody(t, &prompb.ReadResponse{Results: []*prompb.QueryResult{
		{Timeseries: []*prompb.TimeSeries{
			{Labels: pbLabels("job", "z", "__name__", "up"), Samples: unsorted},
			{Labels: pbLabels("__name__", "up", "job", "a"), Samples: []prompb.Sample{{Timestamp: 1000, Value: 7}}},
		}},
		{Timeseries: []*prompb.TimeSeries{
			{Labels: pbLabels("__name__", "down"), Samples: []prompb.Sample{{Timestamp: 500, Value: 0.5}}},
		}},
	}})
	client := newTestClient(t, sampled(t, body), Options{})
	series, st, err := collect(t, client, []*prompb.Query{query(0, 5000, "up"), query(0, 5000, "down")})
	if err != nil {
		t.Fatal(err)
	}
	want := []got{
		{Labels: lbls("__name__", "up", "job", "z"), Floats: []Sample{{1000, 1}, {2000, 2}, {3000, 3}}},
		{Labels: lbls("__name__", "up", "job", "a"), Floats: []Sample{{1000, 7}}},
		{Query: 1, Labels: lbls("__name__", "down"), Floats: []Sample{{500, 0.5}}},
	}
	if diff := cmp.Diff(want, series); diff != "" {
		t.Errorf("series (-want +got):\n%s", diff)
	}
	if st.ResponseType != prompb.ReadRequest_SAMPLES || st.Series != 3 || st.Samples != 5 {
		t.Errorf("stats = %+v, want sampled, 3 series, 5 samples", st)
	}
}

func TestReadSamplesOnly(t *testing.T) {
	var accepted []prompb.ReadRequest_ResponseType
	client := newTestClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		accepted = decodeRequest(t, r).AcceptedResponseTypes
		w.Header().Set("Content-Type", "application/x-protobuf")
		_, _ = w.Write(sampledBody(t, &prompb.ReadResponse{}))
	}), Options{SamplesOnly: true})
	if _, _, err := collect(t, client, []*prompb.Query{query(0, 1, "up")}); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]prompb.ReadRequest_ResponseType{prompb.ReadRequest_SAMPLES}, accepted); diff != "" {
		t.Errorf("accepted response types (-want +got):\n%s", diff)
	}
}

func TestReadErrors(t *testing.T) {
	good := chunkedFrame(t, 0, pbLabels("__name__", "up"), xorChunk(t, samples(0, 1000, 10, linear)))
	corrupt := append([]byte(nil), good...)
	corrupt[len(corrupt)-3] ^= 0xff
	streamedCT := "application/x-streamed-protobuf; proto=prometheus.ChunkedReadResponse"
	respond := func(status int, ct string, body []byte) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", ct)
			w.WriteHeader(status)
			_, _ = w.Write(body)
		}
	}
	tests := []struct {
		name    string
		handler http.HandlerFunc
		opts    Options
		is      []error
		message string
	}{
		{
			name:    "server error with message",
			handler: respond(http.StatusInternalServerError, "text/plain", []byte("remote read: too many concurrent queries\n")),
			message: "remote read: too many concurrent queries",
		},
		{
			name:    "bad request",
			handler: respond(http.StatusBadRequest, "text/plain", []byte("snappy: corrupt input")),
			message: "snappy: corrupt input",
		},
		{
			name:    "html page",
			handler: respond(http.StatusOK, "text/html; charset=utf-8", []byte("<html>login</html>")),
			is:      []error{ErrContentType},
		},
		{
			name:    "no content type",
			handler: respond(http.StatusOK, "", good),
			is:      []error{ErrContentType},
		},
		{
			name:    "streamed type for another message",
			handler: respond(http.StatusOK, "application/x-streamed-protobuf; proto=other.Message", good),
			is:      []error{ErrContentType},
		},
		{
			name:    "crc mismatch",
			handler: respond(http.StatusOK, streamedCT, append(append([]byte(nil), good...), corrupt...)),
			is:      []error{ErrChecksum},
		},
		{
			name:    "frame over the limit",
			handler: respond(http.StatusOK, streamedCT, good),
			opts:    Options{MaxFrameBytes: 16},
			is:      []error{ErrFrameTooLarge},
		},
		{
			name:    "truncated frame",
			handler: respond(http.StatusOK, streamedCT, good[:len(good)-5]),
			is:      []error{ErrMalformed, io.ErrUnexpectedEOF},
		},
		{
			name:    "frame that is not protobuf",
			handler: respond(http.StatusOK, streamedCT, rawFrame([]byte{0xff, 0xff, 0xff}, crc32c([]byte{0xff, 0xff, 0xff}))),
			is:      []error{ErrMalformed},
		},
		{
			name:    "chunk shorter than its header",
			handler: respond(http.StatusOK, streamedCT, chunkedFrame(t, 0, pbLabels("__name__", "up"), prompb.Chunk{Type: prompb.Chunk_XOR, Data: []byte{1}, MaxTimeMs: 10})),
			is:      []error{ErrMalformed},
		},
		{
			name:    "query index out of range",
			handler: respond(http.StatusOK, streamedCT, chunkedFrame(t, 3, pbLabels("__name__", "up"), xorChunk(t, samples(0, 1000, 10, linear)))),
			is:      []error{ErrMalformed},
		},
		{
			name:    "sampled body not snappy",
			handler: respond(http.StatusOK, "application/x-protobuf", []byte("this is not snappy")),
			is:      []error{ErrMalformed},
		},
		{
			name:    "sampled body not protobuf",
			handler: respond(http.StatusOK, "application/x-protobuf", snappy.Encode(nil, []byte{0x0a, 0xff, 0xff})),
			is:      []error{ErrMalformed},
		},
		{
			name: "sampled body over the limit",
			handler: respond(http.StatusOK, "application/x-protobuf", sampledBody(t, &prompb.ReadResponse{Results: []*prompb.QueryResult{{Timeseries: []*prompb.TimeSeries{
				{Labels: pbLabels("__name__", strings.Repeat("x", 1000))},
			}}}})),
			opts: Options{MaxSampledBytes: 100},
			is:   []error{ErrFrameTooLarge},
		},
		{
			name: "no answer in time",
			handler: func(w http.ResponseWriter, r *http.Request) {
				// The server notices a closed connection only once the
				// request body has been read.
				_, _ = io.ReadAll(r.Body)
				select {
				case <-r.Context().Done():
				case <-time.After(5 * time.Second):
				}
			},
			opts: Options{Timeout: 100 * time.Millisecond},
			is:   []error{ErrTimeout, context.DeadlineExceeded},
		},
		{
			name: "body stalls after the first frame",
			handler: func(w http.ResponseWriter, r *http.Request) {
				_, _ = io.ReadAll(r.Body)
				w.Header().Set("Content-Type", streamedCT)
				_, _ = w.Write(good)
				w.(http.Flusher).Flush()
				select {
				case <-r.Context().Done():
				case <-time.After(5 * time.Second):
				}
			},
			opts: Options{Timeout: 200 * time.Millisecond},
			is:   []error{ErrTimeout},
		},
		{
			name:    "unknown chunk encoding",
			handler: respond(http.StatusOK, streamedCT, chunkedFrame(t, 0, pbLabels("__name__", "up"), prompb.Chunk{Type: 9, Data: []byte{0, 0, 0}, MaxTimeMs: 10})),
			is:      []error{ErrUnsupportedEncoding},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			client := newTestClient(t, tt.handler, tt.opts)
			_, _, err := collect(t, client, []*prompb.Query{query(0, 1e12, "up")})
			if err == nil {
				t.Fatal("no error")
			}
			t.Log(err)
			for _, target := range tt.is {
				if !errors.Is(err, target) {
					t.Errorf("error %q is not %q", err, target)
				}
			}
			var httpErr *HTTPError
			if tt.message != "" {
				if !errors.As(err, &httpErr) {
					t.Fatalf("error %q is not an *HTTPError", err)
				}
				if httpErr.Message != tt.message || httpErr.StatusCode/100 == 2 {
					t.Errorf("HTTPError = %+v, want message %q", httpErr, tt.message)
				}
				if !strings.Contains(err.Error(), tt.message) {
					t.Errorf("error %q does not carry the server's message", err)
				}
			} else if errors.As(err, &httpErr) {
				t.Errorf("error %q is an *HTTPError", err)
			}
		})
	}
}

func TestReadUnsupportedEncodingFallsBackToSamples(t *testing.T) {
	var accepted [][]prompb.ReadRequest_ResponseType
	client := newTestClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		req := decodeRequest(t, r)
		accepted = append(accepted, req.AcceptedResponseTypes)
		if req.AcceptedResponseTypes[0] == prompb.ReadRequest_STREAMED_XOR_CHUNKS {
			w.Header().Set("Content-Type", "application/x-streamed-protobuf; proto=prometheus.ChunkedReadResponse")
			_, _ = w.Write(chunkedFrame(t, 0, pbLabels("__name__", "up"), prompb.Chunk{Type: 7, Data: []byte{0, 1, 2, 3}, MaxTimeMs: 5}))
			return
		}
		w.Header().Set("Content-Type", "application/x-protobuf")
		_, _ = w.Write(sampledBody(t, &prompb.ReadResponse{Results: []*prompb.QueryResult{{Timeseries: []*prompb.TimeSeries{
			{Labels: pbLabels("__name__", "up"), Samples: []prompb.Sample{{Timestamp: 1, Value: 1}}},
		}}}}))
	}), Options{})
	q := []*prompb.Query{query(0, 10, "up")}
	if _, _, err := collect(t, client, q); !errors.Is(err, ErrUnsupportedEncoding) {
		t.Fatalf("first read: error %v, want ErrUnsupportedEncoding", err)
	}
	series, _, err := collect(t, client, q)
	if err != nil {
		t.Fatalf("second read: %v", err)
	}
	if len(series) != 1 || len(series[0].Floats) != 1 {
		t.Errorf("second read gave %+v, want the one sampled series", series)
	}
	if len(accepted) != 2 || len(accepted[1]) != 1 || accepted[1][0] != prompb.ReadRequest_SAMPLES {
		t.Errorf("accepted types per request = %v, want samples only on the second", accepted)
	}
}

func TestReadCallbackError(t *testing.T) {
	stop := errors.New("stop here")
	body := [][]byte{
		chunkedFrame(t, 0, pbLabels("__name__", "a"), xorChunk(t, samples(0, 1000, 10, linear))),
		chunkedFrame(t, 0, pbLabels("__name__", "b"), xorChunk(t, samples(0, 1000, 10, linear))),
	}
	client := newTestClient(t, streamed(t, body...), Options{})
	calls := 0
	_, err := client.Read(t.Context(), []*prompb.Query{query(0, 1e12, "up")}, func(*Series) error {
		calls++
		return stop
	})
	if err != stop || calls != 1 {
		t.Errorf("Read returned %v after %d calls, want the callback's error after 1", err, calls)
	}
}

func TestNewClientBadURL(t *testing.T) {
	for _, u := range []string{"", "localhost:9090/api/v1/read", "ftp://x/api/v1/read"} {
		if _, err := NewClient(Options{URL: u}); err == nil {
			t.Errorf("NewClient(%q): no error", u)
		}
	}
}

// TestReadMemoryFollowsFrames streams a body far larger than any frame and
// checks that the live heap never grows with it: the client must hold one
// frame, not the answer.
func TestReadMemoryFollowsFrames(t *testing.T) {
	if testing.Short() {
		t.Skip("streams 64 MiB")
	}
	rng := rand.New(rand.NewPCG(1, 2))
	chunk := xorChunk(t, samples(0, 15000, 120, func(int) float64 { return rng.NormFloat64() }))
	var chunks []prompb.Chunk
	for range 64 {
		chunks = append(chunks, chunk)
	}
	const frames = 1000
	var sent int64
	client := newTestClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/x-streamed-protobuf; proto=prometheus.ChunkedReadResponse")
		for i := range frames {
			b := chunkedFrame(t, 0, pbLabels("__name__", "m", "i", strings.Repeat("x", i%7)), chunks...)
			sent += int64(len(b))
			if _, err := w.Write(b); err != nil {
				return
			}
		}
	}), Options{})
	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	base := ms.HeapAlloc
	var peak uint64
	n := 0
	st, err := client.Read(t.Context(), []*prompb.Query{query(0, 1e12, "m")}, func(s *Series) error {
		n++
		if n%100 == 0 {
			runtime.GC()
			runtime.ReadMemStats(&ms)
			peak = max(peak, ms.HeapAlloc)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if sent < 60<<20 || st.Bytes != sent {
		t.Fatalf("sent %d bytes, client read %d; want the same, at least 60 MiB", sent, st.Bytes)
	}
	growth := int64(peak) - int64(base)
	t.Logf("body %d MiB in %d frames, live heap grew by at most %d KiB", sent>>20, st.Frames, growth>>10)
	if growth > 8<<20 {
		t.Errorf("live heap grew by %d MiB while reading a %d MiB body: the client holds more than a frame", growth>>20, sent>>20)
	}
}

// BenchmarkReadStreamed measures decoding throughput over a loopback
// connection: 1000 series of 4 h at 15 s, in 120-sample chunks.
func BenchmarkReadStreamed(b *testing.B) {
	rng := rand.New(rand.NewPCG(5, 6))
	var body []byte
	for i := range 1000 {
		var chunks []prompb.Chunk
		for c := range 8 {
			chunks = append(chunks, xorChunk(b, samples(int64(c)*120*15000, 15000, 120, func(int) float64 { return float64(rng.IntN(1000)) })))
		}
		body = append(body, chunkedFrame(b, 0, pbLabels("__name__", "m", "i", strings.Repeat("x", i%50)), chunks...)...)
	}
	client := newTestClient(b, streamed(b, body), Options{})
	q := []*prompb.Query{query(0, 1e12, "m")}
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	var n int
	for b.Loop() {
		st, err := client.Read(b.Context(), q, func(*Series) error { return nil })
		if err != nil {
			b.Fatal(err)
		}
		n += st.Samples
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "samples/s")
}
