package remoteread

import (
	"encoding/binary"
	"hash/crc32"
	"io"
	"net/http"
	"slices"
	"testing"

	"github.com/golang/snappy"
	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/prompb"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
)

// xorChunk encodes samples as one XOR chunk with Prometheus's own encoder.
func xorChunk(tb testing.TB, samples []Sample) prompb.Chunk {
	tb.Helper()
	c := chunkenc.NewXORChunk()
	app, err := c.Appender()
	if err != nil {
		tb.Fatal(err)
	}
	for _, s := range samples {
		app.Append(s.T, s.V)
	}
	return prompb.Chunk{
		MinTimeMs: samples[0].T,
		MaxTimeMs: samples[len(samples)-1].T,
		Type:      prompb.Chunk_XOR,
		Data:      slices.Clone(c.Bytes()),
	}
}

// histogramChunk encodes integer histograms as one histogram chunk.
func histogramChunk(tb testing.TB, ts []int64, hs []*histogram.Histogram) prompb.Chunk {
	tb.Helper()
	c := chunkenc.NewHistogramChunk()
	app, err := c.Appender()
	if err != nil {
		tb.Fatal(err)
	}
	for i, h := range hs {
		if _, _, app, err = app.AppendHistogram(nil, ts[i], h, false); err != nil {
			tb.Fatal(err)
		}
	}
	return prompb.Chunk{MinTimeMs: ts[0], MaxTimeMs: ts[len(ts)-1], Type: prompb.Chunk_HISTOGRAM, Data: slices.Clone(c.Bytes())}
}

// samples returns n samples every step ms from start, values from f.
func samples(start, step int64, n int, f func(i int) float64) []Sample {
	out := make([]Sample, n)
	for i := range out {
		out[i] = Sample{T: start + int64(i)*step, V: f(i)}
	}
	return out
}

func pbLabels(kv ...string) []prompb.Label {
	var out []prompb.Label
	for i := 0; i < len(kv); i += 2 {
		out = append(out, prompb.Label{Name: kv[i], Value: kv[i+1]})
	}
	return out
}

// frame encodes a message the way Prometheus streams it: uvarint length,
// big-endian CRC-32 Castagnoli, payload.
func frame(tb testing.TB, msg *prompb.ChunkedReadResponse) []byte {
	tb.Helper()
	payload, err := msg.Marshal()
	if err != nil {
		tb.Fatal(err)
	}
	return rawFrame(payload, crc32c(payload))
}

// crc32c is computed independently of the package's own table.
func crc32c(b []byte) uint32 { return crc32.Checksum(b, crc32.MakeTable(crc32.Castagnoli)) }

func rawFrame(payload []byte, sum uint32) []byte {
	b := binary.AppendUvarint(nil, uint64(len(payload)))
	b = binary.BigEndian.AppendUint32(b, sum)
	return append(b, payload...)
}

func chunkedFrame(tb testing.TB, query int64, ls []prompb.Label, chunks ...prompb.Chunk) []byte {
	tb.Helper()
	return frame(tb, &prompb.ChunkedReadResponse{
		QueryIndex:    query,
		ChunkedSeries: []*prompb.ChunkedSeries{{Labels: ls, Chunks: chunks}},
	})
}

// decodeRequest reads a remote-read request the way Prometheus does.
func decodeRequest(tb testing.TB, r *http.Request) *prompb.ReadRequest {
	tb.Helper()
	compressed, err := io.ReadAll(r.Body)
	if err != nil {
		tb.Errorf("read request: %v", err)
		return &prompb.ReadRequest{}
	}
	raw, err := snappy.Decode(nil, compressed)
	if err != nil {
		tb.Errorf("request is not snappy: %v", err)
		return &prompb.ReadRequest{}
	}
	var req prompb.ReadRequest
	if err := req.Unmarshal(raw); err != nil {
		tb.Errorf("request is not a ReadRequest: %v", err)
	}
	return &req
}

// streamed answers with the given body as a streamed response.
func streamed(tb testing.TB, body ...[]byte) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		decodeRequest(tb, r)
		w.Header().Set("Content-Type", "application/x-streamed-protobuf; proto=prometheus.ChunkedReadResponse")
		for _, b := range body {
			_, _ = w.Write(b)
		}
	}
}

// sampledBody encodes a sampled response as Prometheus does.
func sampledBody(tb testing.TB, resp *prompb.ReadResponse) []byte {
	tb.Helper()
	raw, err := resp.Marshal()
	if err != nil {
		tb.Fatal(err)
	}
	return snappy.Encode(nil, raw)
}

func sampled(tb testing.TB, body []byte) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		decodeRequest(tb, r)
		w.Header().Set("Content-Type", "application/x-protobuf")
		w.Header().Set("Content-Encoding", "snappy")
		_, _ = w.Write(body)
	}
}

// got is a copy of what a Read callback saw.
type got struct {
	Query      int
	Labels     string
	Floats     []Sample
	Histograms int
}

// collect reads and copies every callback's series.
func collect(tb testing.TB, c *Client, queries []*prompb.Query) ([]got, Stats, error) {
	tb.Helper()
	var out []got
	st, err := c.Read(tb.Context(), queries, func(s *Series) error {
		out = append(out, got{Query: s.Query, Labels: s.Labels.String(), Floats: slices.Clone(s.Floats), Histograms: len(s.Histograms)})
		return nil
	})
	return out, st, err
}

func lbls(kv ...string) string { return labels.FromStrings(kv...).String() }
