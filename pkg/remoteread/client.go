// Package remoteread is a client for the Prometheus remote-read protocol, as
// served by Prometheus, Cortex and Mimir. It asks for streamed XOR chunks and
// accepts sampled responses from servers that only speak those, checks every
// frame's checksum and size, decodes chunks with Prometheus's own chunk
// encoding package, and hands series to the caller one frame at a time, so
// memory stays proportional to a frame rather than to the whole answer.
package remoteread

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/golang/snappy"
	"github.com/prometheus/prometheus/prompb"
)

// Errors a Read can return, wrapped with what was being read; check them with
// errors.Is. A non-2xx answer is an *HTTPError instead (errors.As).
var (
	// ErrContentType means the server answered with a content type that is
	// neither a streamed nor a sampled remote-read response, typically an HTML
	// page from a proxy or a wrong URL.
	ErrContentType = errors.New("unexpected content type")
	// ErrChecksum means a streamed frame's CRC-32 did not match its payload.
	ErrChecksum = errors.New("frame checksum mismatch")
	// ErrFrameTooLarge means a streamed frame or a sampled response is larger
	// than the configured limit.
	ErrFrameTooLarge = errors.New("frame over the size limit")
	// ErrMalformed means the body could not be decoded: bad snappy, bad
	// protobuf, a truncated frame, an undecodable chunk.
	ErrMalformed = errors.New("malformed response")
	// ErrTimeout means the request or the body did not complete in time.
	// The underlying context or network error is wrapped as well.
	ErrTimeout = errors.New("remote read timed out")
	// ErrUnsupportedEncoding means a streamed chunk used an encoding this
	// client cannot decode. The client then asks that server for sampled
	// responses only, so the next Read succeeds.
	ErrUnsupportedEncoding = errors.New("unsupported chunk encoding")
)

// HTTPError is a non-2xx answer. Message is the start of the body, which is
// where Prometheus, Cortex and Mimir put the reason.
type HTTPError struct {
	URL        string
	StatusCode int
	Message    string
}

func (e *HTTPError) Error() string {
	if e.Message == "" {
		return fmt.Sprintf("remote read %s: server answered %d %s", e.URL, e.StatusCode, http.StatusText(e.StatusCode))
	}
	return fmt.Sprintf("remote read %s: server answered %d %s: %s", e.URL, e.StatusCode, http.StatusText(e.StatusCode), e.Message)
}

// Content types of the two response kinds, as Prometheus sends them.
const (
	streamedContentType = "application/x-streamed-protobuf"
	streamedProto       = "prometheus.ChunkedReadResponse"
	sampledContentType  = "application/x-protobuf"
)

// Defaults for Options.
const (
	// DefaultMaxFrameBytes matches Prometheus's own client default
	// (chunked_read_limit): servers cut frames near 1 MiB, but one frame
	// always carries at least one whole chunk plus the series' labels.
	DefaultMaxFrameBytes = 50_000_000
	// DefaultMaxSampledBytes bounds a sampled response, which arrives as one
	// message and must be held whole.
	DefaultMaxSampledBytes = 1 << 30
	// maxErrorBody is how much of a non-2xx body ends up in HTTPError.
	maxErrorBody = 1024
)

// Options configure a Client.
type Options struct {
	// URL is the remote-read endpoint, e.g.
	// http://prometheus:9090/api/v1/read or
	// http://mimir:8080/prometheus/api/v1/read.
	URL string
	// HTTPClient sends the requests; nil means a client with no timeout of
	// its own (use Timeout or the context).
	HTTPClient *http.Client
	// Header is added to every request, e.g. X-Scope-OrgID for a Mimir or
	// Cortex tenant.
	Header http.Header
	// Timeout bounds each Read, body included. Zero means only the
	// context's deadline applies.
	Timeout time.Duration
	// MaxFrameBytes limits one streamed frame; zero means
	// DefaultMaxFrameBytes.
	MaxFrameBytes uint64
	// MaxSampledBytes limits a sampled response after decompression; zero
	// means DefaultMaxSampledBytes.
	MaxSampledBytes uint64
	// Histograms asks for native histograms to be decoded. It is off by
	// default because Prometheus's histogram chunk decoder trusts its input:
	// a corrupt or hostile chunk can make it allocate without bound, which
	// fuzzing this package showed. Turn it on for servers you trust. When
	// off, histogram chunks and samples are skipped and counted in
	// Stats.HistogramsSkipped.
	Histograms bool
	// SamplesOnly asks for sampled responses only. Streamed chunks are
	// cheaper for both sides; this exists for servers that mishandle them.
	SamplesOnly bool
}

// Client reads series over remote read. It is safe for concurrent use.
type Client struct {
	opts Options
	hc   *http.Client
	// samplesOnly is set once a server streamed a chunk encoding we cannot
	// decode, so later reads ask it for samples.
	samplesOnly atomic.Bool
}

// NewClient checks the options and returns a Client.
func NewClient(opts Options) (*Client, error) {
	if opts.URL == "" {
		return nil, errors.New("remote read: no URL given")
	}
	if !strings.HasPrefix(opts.URL, "http://") && !strings.HasPrefix(opts.URL, "https://") {
		return nil, fmt.Errorf("remote read URL %q: want http:// or https://", opts.URL)
	}
	if opts.MaxFrameBytes == 0 {
		opts.MaxFrameBytes = DefaultMaxFrameBytes
	}
	if opts.MaxSampledBytes == 0 {
		opts.MaxSampledBytes = DefaultMaxSampledBytes
	}
	c := &Client{opts: opts, hc: opts.HTTPClient}
	if c.hc == nil {
		c.hc = &http.Client{}
	}
	c.samplesOnly.Store(opts.SamplesOnly)
	return c, nil
}

// URL returns the endpoint the client reads from.
func (c *Client) URL() string { return c.opts.URL }

// Stats describe one Read.
type Stats struct {
	// ResponseType is what the server answered with.
	ResponseType prompb.ReadRequest_ResponseType
	// Frames counts streamed frames (1 for a sampled response).
	Frames int
	// Bytes counts body bytes as received.
	Bytes int64
	// Series counts calls of the callback.
	Series int
	// Samples counts float samples and histograms handed to the callback.
	Samples int
	// HistogramsSkipped counts histogram chunks (streamed) or histogram
	// samples (sampled) left out because Options.Histograms is off.
	HistogramsSkipped int
}

// Read sends the queries in one request and calls fn for every series of the
// answer, in the order the server sends them (Prometheus sorts series by
// labels within a query; other servers need not). A streamed series can come
// in several consecutive parts, one call each, with equal labels and later
// samples. The *Series and its slices are reused after fn returns: copy what
// you keep. Samples outside a query's time range are dropped (streamed
// chunks are whole chunks and can reach past it). An error from fn stops the
// read and is returned as is.
func (c *Client) Read(ctx context.Context, queries []*prompb.Query, fn func(*Series) error) (Stats, error) {
	var stats Stats
	if len(queries) == 0 {
		return stats, nil
	}
	if c.opts.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.opts.Timeout)
		defer cancel()
	}
	req := &prompb.ReadRequest{Queries: queries}
	if c.samplesOnly.Load() {
		req.AcceptedResponseTypes = []prompb.ReadRequest_ResponseType{prompb.ReadRequest_SAMPLES}
	} else {
		req.AcceptedResponseTypes = []prompb.ReadRequest_ResponseType{prompb.ReadRequest_STREAMED_XOR_CHUNKS, prompb.ReadRequest_SAMPLES}
	}
	pb, err := req.Marshal()
	if err != nil {
		return stats, fmt.Errorf("remote read %s: encode request: %w", c.opts.URL, err)
	}
	httpReq, err := http.NewRequestWithContext(ctx, http.MethodPost, c.opts.URL, bytes.NewReader(snappy.Encode(nil, pb)))
	if err != nil {
		return stats, fmt.Errorf("remote read %s: %w", c.opts.URL, err)
	}
	for k, vs := range c.opts.Header {
		for _, v := range vs {
			httpReq.Header.Add(k, v)
		}
	}
	httpReq.Header.Set("Content-Type", "application/x-protobuf")
	httpReq.Header.Set("Content-Encoding", "snappy")
	httpReq.Header.Set("X-Prometheus-Remote-Read-Version", "0.1.0")
	httpReq.Header.Set("User-Agent", "telltale-remoteread")

	resp, err := c.hc.Do(httpReq)
	if err != nil {
		return stats, c.wrap(ctx, "send request", err)
	}
	defer func() {
		// Drain a little so the connection can be reused after a clean end;
		// a body left mid-stream is simply closed.
		_, _ = io.CopyN(io.Discard, resp.Body, 4<<10)
		_ = resp.Body.Close()
	}()
	if resp.StatusCode/100 != 2 {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
		return stats, &HTTPError{URL: c.opts.URL, StatusCode: resp.StatusCode, Message: strings.TrimSpace(string(msg))}
	}

	body := &countingReader{r: resp.Body}
	ct := resp.Header.Get("Content-Type")
	d := newDecoder(queries, c.opts.Histograms)
	kind, err := responseKind(ct)
	if err != nil {
		snippet, _ := io.ReadAll(io.LimitReader(body, 256))
		return stats, fmt.Errorf("remote read %s: content type %q (body starts %q): %w", c.opts.URL, ct, snippet, err)
	}
	stats.ResponseType = kind
	if kind == prompb.ReadRequest_STREAMED_XOR_CHUNKS {
		err = c.readStreamed(body, d, fn, &stats)
	} else {
		err = c.readSampled(body, resp.Header.Get("Content-Encoding"), d, fn, &stats)
	}
	stats.Bytes = body.n
	stats.HistogramsSkipped = d.skipped
	if err != nil {
		var fnErr callbackError
		if errors.As(err, &fnErr) {
			return stats, fnErr.err
		}
		if errors.Is(err, ErrUnsupportedEncoding) {
			c.samplesOnly.Store(true)
		}
		return stats, c.wrap(ctx, "read response", err)
	}
	return stats, nil
}

// callbackError carries an error returned by the caller's fn, so Read gives
// it back unwrapped.
type callbackError struct{ err error }

func (e callbackError) Error() string { return e.err.Error() }

// wrap names the endpoint and marks timeouts.
func (c *Client) wrap(ctx context.Context, what string, err error) error {
	var ne net.Error
	if errors.Is(err, context.DeadlineExceeded) || ctx.Err() == context.DeadlineExceeded || (errors.As(err, &ne) && ne.Timeout()) {
		return fmt.Errorf("remote read %s: %s: %w: %w", c.opts.URL, what, ErrTimeout, err)
	}
	return fmt.Errorf("remote read %s: %s: %w", c.opts.URL, what, err)
}

// responseKind tells the two remote-read answers apart by content type.
func responseKind(ct string) (prompb.ReadRequest_ResponseType, error) {
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil {
		return 0, ErrContentType
	}
	switch {
	case mt == streamedContentType && params["proto"] == streamedProto:
		return prompb.ReadRequest_STREAMED_XOR_CHUNKS, nil
	case mt == sampledContentType:
		return prompb.ReadRequest_SAMPLES, nil
	}
	return 0, ErrContentType
}

func (c *Client) readStreamed(body io.Reader, d *decoder, fn func(*Series) error, stats *Stats) error {
	fr := newFrameReader(body, c.opts.MaxFrameBytes)
	var msg prompb.ChunkedReadResponse
	for {
		payload, err := fr.next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		stats.Frames++
		msg.Reset()
		if err := msg.Unmarshal(payload); err != nil {
			return fmt.Errorf("frame %d: %w: %w", stats.Frames, ErrMalformed, err)
		}
		for _, cs := range msg.ChunkedSeries {
			s, err := d.chunked(msg.QueryIndex, cs)
			if err != nil {
				return fmt.Errorf("frame %d: %w", stats.Frames, err)
			}
			stats.Series++
			stats.Samples += len(s.Floats) + len(s.Histograms)
			if err := fn(s); err != nil {
				return callbackError{err}
			}
		}
	}
}

func (c *Client) readSampled(body io.Reader, encoding string, d *decoder, fn func(*Series) error, stats *Stats) error {
	if encoding != "" && encoding != "snappy" {
		return fmt.Errorf("sampled response with content encoding %q, want snappy: %w", encoding, ErrContentType)
	}
	// Compressed data is never much larger than its decoded size, so the
	// decoded limit bounds the read too.
	limit := int64(snappy.MaxEncodedLen(int(min(c.opts.MaxSampledBytes, 1<<40))))
	if limit < 0 {
		limit = 1 << 62
	}
	compressed, err := io.ReadAll(io.LimitReader(body, limit+1))
	if err != nil {
		return err
	}
	if int64(len(compressed)) > limit {
		return fmt.Errorf("sampled response over %d bytes: %w", limit, ErrFrameTooLarge)
	}
	n, err := snappy.DecodedLen(compressed)
	if err != nil {
		return fmt.Errorf("sampled response: %w: %w", ErrMalformed, err)
	}
	if uint64(n) > c.opts.MaxSampledBytes {
		return fmt.Errorf("sampled response decodes to %d bytes, over the limit of %d: %w", n, c.opts.MaxSampledBytes, ErrFrameTooLarge)
	}
	raw, err := snappy.Decode(nil, compressed)
	if err != nil {
		return fmt.Errorf("sampled response: %w: %w", ErrMalformed, err)
	}
	var msg prompb.ReadResponse
	if err := msg.Unmarshal(raw); err != nil {
		return fmt.Errorf("sampled response: %w: %w", ErrMalformed, err)
	}
	stats.Frames = 1
	if len(msg.Results) > len(d.queries) {
		return fmt.Errorf("sampled response has %d results for %d queries: %w", len(msg.Results), len(d.queries), ErrMalformed)
	}
	for qi, res := range msg.Results {
		if res == nil {
			continue
		}
		for i := range res.Timeseries {
			if res.Timeseries[i] == nil {
				continue
			}
			s := d.sampled(qi, res.Timeseries[i])
			stats.Series++
			stats.Samples += len(s.Floats) + len(s.Histograms)
			if err := fn(s); err != nil {
				return callbackError{err}
			}
		}
	}
	return nil
}

// countingReader counts body bytes for Stats.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}
