package remoteread

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"testing"

	"github.com/golang/snappy"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/prometheus/prometheus/prompb"
)

func TestFrameReader(t *testing.T) {
	hello := []byte("hello")
	big := bytes.Repeat([]byte{7}, 300)
	cat := func(bs ...[]byte) []byte { return bytes.Join(bs, nil) }
	tests := []struct {
		name  string
		body  []byte
		limit uint64
		want  [][]byte
		err   error
	}{
		{name: "empty body", body: nil},
		{name: "one frame", body: rawFrame(hello, crc32c(hello)), want: [][]byte{hello}},
		{name: "empty frame", body: rawFrame(nil, crc32c(nil)), want: [][]byte{{}}},
		{name: "two-byte length", body: cat(rawFrame(big, crc32c(big)), rawFrame(hello, crc32c(hello))), want: [][]byte{big, hello}},
		{name: "frame at the limit", body: rawFrame(hello, crc32c(hello)), limit: 5, want: [][]byte{hello}},
		{name: "frame over the limit", body: rawFrame(hello, crc32c(hello)), limit: 4, err: ErrFrameTooLarge},
		{name: "truncated in length", body: []byte{0x80}, err: io.ErrUnexpectedEOF},
		{name: "truncated in checksum", body: rawFrame(hello, crc32c(hello))[:3], err: io.ErrUnexpectedEOF},
		{name: "truncated in payload", body: rawFrame(hello, crc32c(hello))[:7], err: io.ErrUnexpectedEOF},
		{name: "good frame then a truncated one", body: cat(rawFrame(hello, crc32c(hello)), []byte{5, 0}), want: [][]byte{hello}, err: ErrMalformed},
		{name: "length overflows", body: bytes.Repeat([]byte{0xff}, 11), err: ErrMalformed},
		{name: "checksum mismatch", body: rawFrame(hello, crc32c(hello)+1), err: ErrChecksum},
		{name: "checksum of the wrong polynomial", body: rawFrame(hello, 0x3610a686), err: ErrChecksum},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			limit := tt.limit
			if limit == 0 {
				limit = 1 << 20
			}
			fr := newFrameReader(bytes.NewReader(tt.body), limit)
			var got [][]byte
			var err error
			for {
				var p []byte
				p, err = fr.next()
				if err != nil {
					break
				}
				got = append(got, bytes.Clone(p))
			}
			if diff := cmp.Diff(tt.want, got, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("frames (-want +got):\n%s", diff)
			}
			switch {
			case tt.err == nil && !errors.Is(err, io.EOF):
				t.Errorf("error %v, want a clean end", err)
			case tt.err != nil && !errors.Is(err, tt.err):
				t.Errorf("error %v, want %v", err, tt.err)
			}
		})
	}
}

// seedStreamed returns valid streamed bodies for the fuzz corpus.
func seedStreamed(tb testing.TB) [][]byte {
	rng := rand.New(rand.NewPCG(3, 4))
	a := xorChunk(tb, samples(0, 15000, 50, func(int) float64 { return rng.Float64() }))
	b := xorChunk(tb, samples(750000, 15000, 3, linear))
	return [][]byte{
		chunkedFrame(tb, 0, pbLabels("__name__", "up", "job", "a"), a, b),
		append(chunkedFrame(tb, 0, pbLabels("__name__", "x"), a), chunkedFrame(tb, 0, pbLabels("__name__", "x"), b)...),
		{},
	}
}

func FuzzStreamedBody(f *testing.F) {
	for _, b := range seedStreamed(f) {
		f.Add(b)
	}
	queries := []*prompb.Query{query(0, 1e12, "up")}
	c, err := NewClient(Options{URL: "http://unused", MaxFrameBytes: 1 << 16})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var st Stats
		err := c.readStreamed(bytes.NewReader(body), newDecoder(queries, false), func(s *Series) error {
			for i := 1; i < len(s.Floats); i++ {
				if s.Floats[i].T < s.Floats[i-1].T {
					t.Fatalf("samples out of order: %v", s.Floats)
				}
			}
			return nil
		}, &st)
		if err != nil && !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrChecksum) &&
			!errors.Is(err, ErrFrameTooLarge) && !errors.Is(err, ErrUnsupportedEncoding) {
			t.Fatalf("error %v is none of the documented kinds", err)
		}
	})
}

func FuzzSampledBody(f *testing.F) {
	seed, err := (&prompb.ReadResponse{Results: []*prompb.QueryResult{{Timeseries: []*prompb.TimeSeries{
		{Labels: pbLabels("__name__", "up"), Samples: []prompb.Sample{{Timestamp: 2, Value: 1}, {Timestamp: 1, Value: 0}}},
	}}}}).Marshal()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(snappy.Encode(nil, seed))
	f.Add([]byte{})
	queries := []*prompb.Query{query(0, 1e12, "up")}
	c, err := NewClient(Options{URL: "http://unused", MaxSampledBytes: 1 << 16})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var st Stats
		err := c.readSampled(bytes.NewReader(body), "snappy", newDecoder(queries, false), func(s *Series) error { return nil }, &st)
		if err != nil && !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrFrameTooLarge) {
			t.Fatalf("error %v is none of the documented kinds", err)
		}
	})
}

// FuzzChunk feeds arbitrary chunk bytes to the decoder past the frame
// checksum, which the body fuzzer rarely gets through.
func FuzzChunk(f *testing.F) {
	for _, s := range [][]Sample{samples(0, 15000, 120, linear), samples(5, 1, 2, func(int) float64 { return 0.5 })} {
		f.Add(uint8(prompb.Chunk_XOR), xorChunk(f, s).Data)
	}
	f.Add(uint8(prompb.Chunk_HISTOGRAM), []byte{0, 0, 0})
	f.Add(uint8(prompb.Chunk_FLOAT_HISTOGRAM), []byte{0, 1, 0, 0})
	queries := []*prompb.Query{query(0, 1e12, "up")}
	f.Fuzz(func(t *testing.T, enc uint8, data []byte) {
		d := newDecoder(queries, false)
		cs := &prompb.ChunkedSeries{
			Labels: pbLabels("__name__", "up"),
			Chunks: []prompb.Chunk{{Type: prompb.Chunk_Encoding(enc), Data: data, MaxTimeMs: 1e12}},
		}
		if _, err := d.chunked(0, cs); err != nil && !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrUnsupportedEncoding) {
			t.Fatalf("error %v is none of the documented kinds", err)
		}
	})
}
