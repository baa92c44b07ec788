// Package engine is the Telltale detector's scoring loop: it reads the
// selected series (and the KPIs apps declare) from Prometheus over remote
// read, feeds each to its own anomaly detector (pkg/anomaly), and exposes a
// score, an expected value and a band per series (pkg/schema's detector
// families). The detector's main wires flags and the config file to it.
package engine

import (
	"context"
	"errors"
	"log/slog"
	"math"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/prompb"

	"github.com/telltale-dev/telltale/pkg/anomaly"
	"github.com/telltale-dev/telltale/pkg/remoteread"
	"github.com/telltale-dev/telltale/pkg/schema"
)

// Config is everything the scoring loop needs; the detector's main fills
// it from flags and the config file.
type Config struct {
	Client *remoteread.Client
	// Selectors choose the series to score, besides the KPIs.
	Selectors []Selector
	// KPIs adds every metric apps declare through pkg/kpi.
	KPIs bool
	// Interval is how often a round reads and scores new samples.
	Interval time.Duration
	// Overlap is how far before the previous round's end a round starts
	// reading, to catch samples Prometheus appended late.
	Overlap time.Duration
	// Backfill is how much history the first round reads; later rounds
	// never reach further back than this either (after an outage).
	Backfill time.Duration
	// ReadTimeout bounds one round's read; BackfillTimeout the first one's.
	ReadTimeout, BackfillTimeout time.Duration
	// ShardIndex and ShardCount split the series between replicas.
	ShardIndex, ShardCount uint64
	// MaxSeries caps the series scored; more are dropped and counted.
	MaxSeries int
	// StaleAfter forgets a series that had no sample for this long.
	StaleAfter time.Duration
	// Workers score in parallel, each owning a part of the series.
	Workers int
	// NewDetector returns a fresh per-series detector.
	NewDetector func(counter bool) anomaly.Detector
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// StoragePath is the directory of the engine's checkpoint (see
	// checkpoint.go); empty keeps none, and every start backfills.
	StoragePath string
	// CheckpointInterval is how often a checkpoint is written, besides
	// when Run ends.
	CheckpointInterval time.Duration
}

// seriesState is what the detector keeps for one series.
type seriesState struct {
	labels labels.Labels
	// descs and values are built once: the series' labels with __name__
	// moved to "metric", for the four exposed gauges. The descriptors
	// depend only on the label names, so series with the same names
	// share them (see Engine.descs).
	descs  *[4]*prometheus.Desc
	values []string
	det    anomaly.Detector
	lastT  int64
	result anomaly.Result
	// score is the exposed score: the highest score among the samples
	// scored in the last round that scored any of the series' samples, so
	// a short spike between two scrapes of the detector is not lost.
	score float64
	// roundMax and touched collect the current round's scores.
	roundMax float64
	touched  bool
}

// shard is the part of the series one worker owns.
type shard struct {
	mu     sync.Mutex
	series map[uint64]*seriesState
	in     chan *batch
}

// batch carries series parts from the reader to one worker; the samples
// are copied out of the client's buffers, which it reuses.
type batch struct {
	items   []item
	samples []remoteread.Sample
	// cutoff: samples after it count towards the exposed score.
	cutoff int64
	done   *sync.WaitGroup
}

type item struct {
	hash   uint64
	labels labels.Labels
	from   int
	to     int
}

const batchSamples = 16 << 10

// Engine reads series over remote read, scores them and keeps each
// series' state; its collector (Register) exposes the scores.
type Engine struct {
	cfg    Config
	log    *slog.Logger
	shards []*shard
	pool   sync.Pool

	tracked atomic.Int64

	droppedMu sync.Mutex
	// dropped remembers refused series (by hash, with when they were last
	// seen) so the dropped counter counts each one once, not every round.
	dropped map[uint64]int64

	// watermark is the end (Unix ms) of the last successful read; 0 before.
	watermark atomic.Int64
	started   time.Time
	ready     atomic.Bool
	failing   bool

	// descs holds the exposed gauges' descriptors by label names (see
	// seriesState.descs): a few sets of names cover every series.
	descsMu sync.Mutex
	descs   map[string]*[4]*prometheus.Desc

	kpiMu     sync.Mutex
	kpiCounts map[string]bool // sample name -> read as a rate, from the KPIs declared

	samplesScored prometheus.Counter
	seriesDropped prometheus.Counter
	readDuration  prometheus.Histogram
	readErrors    *prometheus.CounterVec
}

// maxDroppedRemembered bounds the memory spent on remembering refused
// series; past it, refused series are counted every round they are seen.
const maxDroppedRemembered = 1 << 20

// New returns an engine for cfg; Run starts it.
func New(cfg Config, log *slog.Logger) *Engine {
	if cfg.Workers < 1 {
		cfg.Workers = 1
	}
	if cfg.ShardCount == 0 {
		cfg.ShardCount = 1
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	e := &Engine{
		cfg:           cfg,
		log:           log,
		dropped:       map[uint64]int64{},
		started:       cfg.Now(),
		kpiCounts:     map[string]bool{},
		descs:         map[string]*[4]*prometheus.Desc{},
		samplesScored: prometheus.NewCounter(prometheus.CounterOpts(schema.DetectorSamplesScored.Opts())),
		seriesDropped: prometheus.NewCounter(prometheus.CounterOpts(schema.DetectorSeriesDropped.Opts())),
		readDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    schema.DetectorReadDuration.Name,
			Help:    schema.DetectorReadDuration.Help,
			Buckets: prometheus.ExponentialBucketsRange(0.005, 600, 14),
		}),
		readErrors: prometheus.NewCounterVec(prometheus.CounterOpts(schema.DetectorReadErrors.Opts()), schema.DetectorReadErrors.Labels),
	}
	for _, r := range []string{"http", "timeout", "content_type", "checksum", "frame_size", "malformed", "encoding", "connection", "other"} {
		e.readErrors.WithLabelValues(r)
	}
	for range cfg.Workers {
		e.shards = append(e.shards, &shard{series: map[uint64]*seriesState{}})
	}
	e.pool.New = func() any { return &batch{samples: make([]remoteread.Sample, 0, batchSamples)} }
	return e
}

// Run scores every interval until ctx ends. With a storage path it starts
// from the checkpoint there, if any, writes one every CheckpointInterval,
// and a last one before it returns.
func (e *Engine) Run(ctx context.Context) {
	if e.cfg.StoragePath != "" {
		e.restore()
	}
	stop := e.start()
	tick := time.NewTicker(e.cfg.Interval)
	defer tick.Stop()
	last := time.Now()
	for {
		e.round(ctx)
		if e.cfg.StoragePath != "" && e.cfg.CheckpointInterval > 0 && time.Since(last) >= e.cfg.CheckpointInterval && ctx.Err() == nil {
			e.saveCheckpoint()
			last = time.Now()
		}
		select {
		case <-ctx.Done():
			stop()
			if e.cfg.StoragePath != "" {
				e.saveCheckpoint()
			}
			return
		case <-tick.C:
		}
	}
}

// saveCheckpoint writes a checkpoint and logs how it went; a failure
// leaves the previous checkpoint in place.
func (e *Engine) saveCheckpoint() {
	began := time.Now()
	n, err := e.checkpoint()
	if err != nil {
		e.log.Error("checkpoint failed; the previous one, if any, stays", "err", err)
		return
	}
	e.log.Info("checkpoint written", "file", e.checkpointPath(), "series", n, "took", time.Since(began))
}

// NoScoring is a detector that scores nothing (--bench.skip-scoring): it
// lets a benchmark measure what the engine costs besides the scoring.
type NoScoring struct{}

// Update returns an empty result.
func (NoScoring) Update(int64, float64) anomaly.Result { return anomaly.Result{} }

// Ready reports whether the backfill has completed: the scores stand for
// the whole backfill window.
func (e *Engine) Ready() bool { return e.ready.Load() }

// start launches the scoring workers and returns the function that stops
// them.
func (e *Engine) start() (stop func()) {
	var wg sync.WaitGroup
	for _, sh := range e.shards {
		sh.in = make(chan *batch, 4)
		wg.Add(1)
		go func() {
			defer wg.Done()
			e.work(sh)
		}()
	}
	return func() {
		for _, sh := range e.shards {
			close(sh.in)
		}
		wg.Wait()
	}
}

// round reads what is new since the last successful round and scores it.
// On failure the watermark stays, so the next round reads the same span
// again; samples already scored are skipped by timestamp.
func (e *Engine) round(ctx context.Context) {
	now := e.cfg.Now()
	end := now.UnixMilli()
	// Without backfill the first round still reads one interval, and a
	// round after an outage never reaches further back than the backfill.
	reach := max(e.cfg.Backfill, e.cfg.Interval+e.cfg.Overlap)
	oldest := now.Add(-reach).UnixMilli()
	start := now.Add(-max(e.cfg.Backfill, e.cfg.Interval)).UnixMilli()
	timeout := e.cfg.BackfillTimeout
	if wm := e.watermark.Load(); wm > 0 {
		start = max(wm-e.cfg.Overlap.Milliseconds(), oldest)
		timeout = e.cfg.ReadTimeout
	}
	rctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	began := time.Now()
	st, err := e.read(rctx, start, end)
	took := time.Since(began)
	e.readDuration.Observe(took.Seconds())
	if err == nil {
		e.watermark.Store(end)
	}
	e.finishRound()
	if err != nil {
		if ctx.Err() != nil {
			return
		}
		e.readErrors.WithLabelValues(errorReason(err)).Inc()
		if !e.failing {
			e.log.Error("remote read failed; scores are kept and the next rounds retry", "url", e.cfg.Client.URL(), "err", err)
		} else {
			e.log.Debug("remote read still failing", "err", err)
		}
		e.failing = true
		return
	}
	if e.failing {
		e.log.Info("remote read recovered", "url", e.cfg.Client.URL(), "from", time.UnixMilli(start).UTC())
		e.failing = false
	}
	if !e.ready.Load() {
		e.ready.Store(true)
		e.log.Info("backfill done", "duration", took, "window", time.Duration(end-start)*time.Millisecond,
			"series", e.tracked.Load(), "samples", st.Samples, "bytes", st.Bytes, "response", st.ResponseType.String())
	} else {
		e.log.Debug("round done", "duration", took, "series", e.tracked.Load(), "samples", st.Samples, "bytes", st.Bytes)
	}
}

// read runs the remote read of [start, end] and feeds the workers. It
// returns when every worker has scored what it was given.
func (e *Engine) read(ctx context.Context, start, end int64) (remoteread.Stats, error) {
	queries, err := e.queries(ctx, start, end)
	if err != nil {
		return remoteread.Stats{}, err
	}
	var done sync.WaitGroup
	pending := make([]*batch, len(e.shards))
	// Every sample scored in a round counts towards the exposed score, so
	// a sample Prometheus appended late still can raise it; only the
	// backfill counts just its last interval.
	cutoff := int64(math.MinInt64)
	if e.watermark.Load() == 0 {
		cutoff = end - e.cfg.Interval.Milliseconds()
	}
	send := func(i int) {
		b := pending[i]
		pending[i] = nil
		done.Add(1)
		b.done = &done
		e.shards[i].in <- b
	}
	st, err := e.cfg.Client.Read(ctx, queries, func(s *remoteread.Series) error {
		if len(s.Floats) == 0 {
			return nil
		}
		h := labels.StableHash(s.Labels)
		if !e.mine(h) {
			return nil
		}
		w := e.worker(h)
		b := pending[w]
		if b != nil && len(b.samples)+len(s.Floats) > cap(b.samples) {
			// Send a batch rather than grow it (and copy it all again).
			send(w)
			b = nil
		}
		if b == nil {
			b = e.pool.Get().(*batch)
			b.items, b.samples, b.cutoff = b.items[:0], b.samples[:0], cutoff
			pending[w] = b
		}
		from := len(b.samples)
		b.samples = append(b.samples, s.Floats...)
		b.items = append(b.items, item{hash: h, labels: s.Labels, from: from, to: len(b.samples)})
		return nil
	})
	for i := range pending {
		if pending[i] != nil {
			send(i)
		}
	}
	done.Wait()
	return st, err
}

// mine reports whether the series of label hash h is this replica's.
func (e *Engine) mine(h uint64) bool { return h%e.cfg.ShardCount == e.cfg.ShardIndex }

// worker is the index of the worker that owns the series of label hash h.
// The high bits pick it, so that the replica's share (low bits modulo the
// replica count) does not leave some workers idle.
func (e *Engine) worker(h uint64) int { return int((h >> 32) % uint64(len(e.shards))) }

// queries are the configured selectors plus, when enabled, the KPI metrics
// currently declared.
func (e *Engine) queries(ctx context.Context, start, end int64) ([]*prompb.Query, error) {
	var qs []*prompb.Query
	for _, s := range e.cfg.Selectors {
		qs = append(qs, &prompb.Query{StartTimestampMs: start, EndTimestampMs: end, Matchers: s.matchers})
	}
	if !e.cfg.KPIs {
		return qs, nil
	}
	kpis, err := e.discoverKPIs(ctx, end)
	if err != nil {
		return nil, err
	}
	for _, m := range kpis {
		qs = append(qs, &prompb.Query{StartTimestampMs: start, EndTimestampMs: end, Matchers: m})
	}
	return qs, nil
}

// work scores the batches of one shard.
func (e *Engine) work(sh *shard) {
	for b := range sh.in {
		var n int64
		sh.mu.Lock()
		for _, it := range b.items {
			st := sh.series[it.hash]
			if st == nil {
				if !e.admit(it.hash) {
					continue
				}
				st = e.newState(it.labels)
				sh.series[it.hash] = st
			} else if !labels.Equal(st.labels, it.labels) {
				// Two series with one 64-bit hash: keep the first.
				e.refuse(it.hash)
				continue
			}
			n += st.feed(b.samples[it.from:it.to], b.cutoff)
		}
		sh.mu.Unlock()
		e.samplesScored.Add(float64(n))
		b.done.Done()
		b.done = nil
		e.pool.Put(b)
	}
}

// feed gives the samples not scored yet to the series' detector and
// returns how many it fed. Locals keep the per-sample loop free of stores
// into the state.
func (st *seriesState) feed(samples []remoteread.Sample, cutoff int64) int64 {
	det, lastT := st.det, st.lastT
	roundMax, touched := st.roundMax, st.touched
	var (
		r anomaly.Result
		n int64
	)
	for _, smp := range samples {
		// NaN is Prometheus's staleness marker, not a value.
		if smp.T <= lastT || math.IsNaN(smp.V) {
			continue
		}
		r = det.Update(smp.T, smp.V)
		lastT = smp.T
		n++
		if smp.T > cutoff {
			if !touched || r.Score > roundMax {
				roundMax = r.Score
			}
			touched = true
		}
	}
	if n > 0 {
		st.lastT, st.result = lastT, r
		st.roundMax, st.touched = roundMax, touched
	}
	return n
}

// admit takes a slot under the series limit, or counts the series dropped.
func (e *Engine) admit(h uint64) bool {
	for {
		n := e.tracked.Load()
		if n >= int64(e.cfg.MaxSeries) {
			e.refuse(h)
			return false
		}
		if e.tracked.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

func (e *Engine) refuse(h uint64) {
	now := e.cfg.Now().UnixMilli()
	e.droppedMu.Lock()
	defer e.droppedMu.Unlock()
	if _, seen := e.dropped[h]; seen {
		e.dropped[h] = now
		return
	}
	e.seriesDropped.Inc()
	if len(e.dropped) < maxDroppedRemembered {
		e.dropped[h] = now
	}
}

// minTime marks a series that has no sample scored yet.
const minTime = math.MinInt64

// exposedLabel is the label the series' metric name moves to.
const exposedLabel = schema.LabelMetric

func (e *Engine) newState(ls labels.Labels) *seriesState {
	st := &seriesState{labels: ls, det: e.cfg.NewDetector(e.isCounter(ls.Get(labels.MetricName))), lastT: minTime}
	e.describe(st)
	return st
}

// describe builds the series' exposed label names and values, and its
// descriptors, from its labels.
func (e *Engine) describe(st *seriesState) {
	ls := st.labels
	name := ls.Get(labels.MetricName)
	names := []string{exposedLabel}
	st.values = []string{name}
	ls.Range(func(l labels.Label) {
		switch l.Name {
		case labels.MetricName:
			return
		case exposedLabel:
			// The series has a label of that name already: keep it the way
			// Prometheus keeps clashing target labels.
			names = append(names, "exported_"+exposedLabel)
		default:
			names = append(names, l.Name)
		}
		st.values = append(st.values, l.Value)
	})
	key := strings.Join(names, "\xff")
	e.descsMu.Lock()
	defer e.descsMu.Unlock()
	if d, ok := e.descs[key]; ok {
		st.descs = d
		return
	}
	d := new([4]*prometheus.Desc)
	for i, m := range schema.AnomalyFamilies {
		d[i] = prometheus.NewDesc(m.Name, m.Help, names, nil)
	}
	st.descs = d
	if len(e.descs) < maxDescSets {
		e.descs[key] = d
	}
}

// maxDescSets bounds the shared descriptors: past that many sets of label
// names (none seen in practice), a series gets descriptors of its own.
const maxDescSets = 4096

// finishRound settles each series' exposed score and forgets series that
// went quiet. Quiet is measured against the end of the last successful
// read, not the clock, so an outage of the remote-read endpoint does not
// make every series stale.
func (e *Engine) finishRound() {
	wm := e.watermark.Load()
	staleBefore := wm - e.cfg.StaleAfter.Milliseconds()
	for _, sh := range e.shards {
		sh.mu.Lock()
		for h, st := range sh.series {
			if st.touched {
				st.score, st.touched = st.roundMax, false
			}
			if wm > 0 && st.lastT < staleBefore {
				delete(sh.series, h)
				e.tracked.Add(-1)
			}
		}
		sh.mu.Unlock()
	}
	if wm == 0 {
		return
	}
	e.droppedMu.Lock()
	for h, seen := range e.dropped {
		if seen < staleBefore {
			delete(e.dropped, h)
		}
	}
	e.droppedMu.Unlock()
}

// errorReason is the reason label of schema.DetectorReadErrors.
func errorReason(err error) string {
	var httpErr *remoteread.HTTPError
	var netErr net.Error
	switch {
	case errors.As(err, &httpErr):
		return "http"
	case errors.Is(err, remoteread.ErrTimeout), errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	case errors.Is(err, remoteread.ErrContentType):
		return "content_type"
	case errors.Is(err, remoteread.ErrChecksum):
		return "checksum"
	case errors.Is(err, remoteread.ErrFrameTooLarge):
		return "frame_size"
	case errors.Is(err, remoteread.ErrMalformed):
		return "malformed"
	case errors.Is(err, remoteread.ErrUnsupportedEncoding):
		return "encoding"
	case errors.As(err, &netErr):
		return "connection"
	}
	return "other"
}
