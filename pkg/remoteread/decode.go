package remoteread

import (
	"cmp"
	"fmt"
	"slices"

	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/prompb"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
)

// Sample is one float sample: a timestamp in milliseconds and a value.
type Sample struct {
	T int64
	V float64
}

// HistogramSample is one native-histogram sample, integer histograms
// converted to float ones.
type HistogramSample struct {
	T int64
	H *histogram.FloatHistogram
}

// Series is one series, or one part of a streamed series, as handed to the
// Read callback. Floats and Histograms are each in time order.
type Series struct {
	// Query is the index of the query this series answers.
	Query int
	// Labels are the series' labels, __name__ included, sorted.
	Labels labels.Labels
	// Floats are the float samples.
	Floats []Sample
	// Histograms are the native-histogram samples.
	Histograms []HistogramSample
}

// decoder turns protobuf series into Series, reusing its buffers across
// calls so decoding costs no allocation per sample.
type decoder struct {
	queries []*prompb.Query
	series  Series
	lb      labels.ScratchBuilder
	it      chunkenc.Iterator
	chunk   chunkenc.Chunk
	// prev holds the labels of the previous streamed part, so the parts of
	// one series share a single labels.Labels instead of building it again.
	prevQuery  int64
	prevLabels []prompb.Label
	// histograms says whether to decode native histograms; skipped counts
	// what was left out when not.
	histograms bool
	skipped    int
}

func newDecoder(queries []*prompb.Query, histograms bool) *decoder {
	return &decoder{queries: queries, lb: labels.NewScratchBuilder(16), prevQuery: -1, histograms: histograms}
}

// setLabels builds the labels of a series, sorting them in case the server
// did not.
func (d *decoder) setLabels(ls []prompb.Label) {
	d.lb.Reset()
	for _, l := range ls {
		d.lb.Add(l.Name, l.Value)
	}
	d.lb.Sort()
	d.series.Labels = d.lb.Labels()
}

func sameLabels(a, b []prompb.Label) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Name != b[i].Name || a[i].Value != b[i].Value {
			return false
		}
	}
	return true
}

// chunked decodes one streamed series part.
func (d *decoder) chunked(queryIndex int64, cs *prompb.ChunkedSeries) (*Series, error) {
	if queryIndex < 0 || queryIndex >= int64(len(d.queries)) {
		return nil, fmt.Errorf("query index %d for %d queries: %w", queryIndex, len(d.queries), ErrMalformed)
	}
	if queryIndex != d.prevQuery || !sameLabels(cs.Labels, d.prevLabels) {
		d.setLabels(cs.Labels)
		d.prevQuery = queryIndex
		// The label strings are copies the protobuf decoder made, so
		// keeping them past the next Unmarshal is safe.
		d.prevLabels = append(d.prevLabels[:0], cs.Labels...)
	}
	q := d.queries[queryIndex]
	mint, maxt := q.StartTimestampMs, q.EndTimestampMs
	s := &d.series
	s.Query = int(queryIndex)
	s.Floats = s.Floats[:0]
	s.Histograms = s.Histograms[:0]
	for i := range cs.Chunks {
		c := &cs.Chunks[i]
		if c.MaxTimeMs < mint || c.MinTimeMs > maxt {
			continue
		}
		enc := chunkenc.Encoding(c.Type)
		if !chunkenc.IsValidEncoding(enc) {
			return nil, fmt.Errorf("series %s: chunk encoding %s (%d): %w", s.Labels, c.Type, c.Type, ErrUnsupportedEncoding)
		}
		if enc != chunkenc.EncXOR && !d.histograms {
			d.skipped++
			continue
		}
		// chunkenc reads the header without checking the length first.
		if len(c.Data) < chunkHeaderSize(enc) {
			return nil, fmt.Errorf("series %s: %s chunk of %d bytes, shorter than its header: %w", s.Labels, enc, len(c.Data), ErrMalformed)
		}
		chk, err := d.reuseChunk(enc, c.Data)
		if err != nil {
			return nil, fmt.Errorf("series %s: %w: %w", s.Labels, ErrMalformed, err)
		}
		d.it = chk.Iterator(d.it)
		for vt := d.it.Next(); vt != chunkenc.ValNone; vt = d.it.Next() {
			t := d.it.AtT()
			if t < mint {
				continue
			}
			if t > maxt {
				break
			}
			switch vt {
			case chunkenc.ValFloat:
				_, v := d.it.At()
				s.Floats = append(s.Floats, Sample{T: t, V: v})
			case chunkenc.ValHistogram, chunkenc.ValFloatHistogram:
				_, h := d.it.AtFloatHistogram(nil)
				s.Histograms = append(s.Histograms, HistogramSample{T: t, H: h})
			}
		}
		if err := d.it.Err(); err != nil {
			return nil, fmt.Errorf("series %s: %s chunk: %w: %w", s.Labels, enc, ErrMalformed, err)
		}
	}
	return s, nil
}

// chunkHeaderSize is the size of the header each chunk encoding starts with:
// a 2-byte sample count, plus a flags byte for histograms.
func chunkHeaderSize(enc chunkenc.Encoding) int {
	if enc == chunkenc.EncXOR {
		return 2
	}
	return 3
}

// reuseChunk returns a chunk over data, reusing the previous chunk value when
// the encoding allows it.
func (d *decoder) reuseChunk(enc chunkenc.Encoding, data []byte) (chunkenc.Chunk, error) {
	if enc == chunkenc.EncXOR {
		if x, ok := d.chunk.(*chunkenc.XORChunk); ok {
			x.Reset(data)
			return x, nil
		}
	}
	c, err := chunkenc.FromData(enc, data)
	if err != nil {
		return nil, err
	}
	if enc == chunkenc.EncXOR {
		d.chunk = c
	}
	return c, nil
}

// sampled converts one series of a sampled response. Samples are sorted by
// time if the server sent them out of order.
func (d *decoder) sampled(queryIndex int, ts *prompb.TimeSeries) *Series {
	d.setLabels(ts.Labels)
	d.prevQuery = -1
	q := d.queries[queryIndex]
	s := &d.series
	s.Query = queryIndex
	s.Floats = s.Floats[:0]
	s.Histograms = s.Histograms[:0]
	for _, smp := range ts.Samples {
		if smp.Timestamp < q.StartTimestampMs || smp.Timestamp > q.EndTimestampMs {
			continue
		}
		s.Floats = append(s.Floats, Sample{T: smp.Timestamp, V: smp.Value})
	}
	for i := range ts.Histograms {
		h := &ts.Histograms[i]
		if !d.histograms {
			d.skipped++
			continue
		}
		if h.Timestamp < q.StartTimestampMs || h.Timestamp > q.EndTimestampMs {
			continue
		}
		s.Histograms = append(s.Histograms, HistogramSample{T: h.Timestamp, H: h.ToFloatHistogram()})
	}
	byTime := func(a, b Sample) int { return cmp.Compare(a.T, b.T) }
	if !slices.IsSortedFunc(s.Floats, byTime) {
		slices.SortStableFunc(s.Floats, byTime)
	}
	hByTime := func(a, b HistogramSample) int { return cmp.Compare(a.T, b.T) }
	if !slices.IsSortedFunc(s.Histograms, hByTime) {
		slices.SortStableFunc(s.Histograms, hByTime)
	}
	return s
}
