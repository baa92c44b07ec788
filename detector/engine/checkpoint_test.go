package engine

import (
	"bytes"
	"context"
	"encoding/binary"
	"hash/crc32"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang/snappy"
	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/prompb"

	"github.com/telltale-dev/telltale/pkg/anomaly"
	"github.com/telltale-dev/telltale/pkg/schema"
)

// readRecorder forwards remote reads to Prometheus and remembers where
// each began.
type readRecorder struct {
	upstream string
	mu       sync.Mutex
	starts   []int64
}

func (rr *readRecorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	raw, err := snappy.Decode(nil, body)
	var req prompb.ReadRequest
	if err == nil {
		err = req.Unmarshal(raw)
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	rr.mu.Lock()
	for _, q := range req.Queries {
		rr.starts = append(rr.starts, q.StartTimestampMs)
	}
	rr.mu.Unlock()
	r.Body = io.NopCloser(bytes.NewReader(body))
	(&faultyProxy{upstream: rr.upstream}).pass(w, r)
}

// earliest is the earliest start of the reads since the last call.
func (rr *readRecorder) earliest() int64 {
	rr.mu.Lock()
	defer rr.mu.Unlock()
	m := rr.starts[0]
	for _, s := range rr.starts {
		m = min(m, s)
	}
	rr.starts = nil
	return m
}

// logBuffer collects an engine's log lines and passes them to the test's.
type logBuffer struct {
	tb testing.TB
	mu sync.Mutex
	b  strings.Builder
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	l.b.Write(p)
	l.mu.Unlock()
	l.tb.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// everything is what an engine exposes: every anomaly family's series.
func everything(tb testing.TB, reg prometheus.Gatherer) map[string]map[string]float64 {
	out := map[string]map[string]float64{}
	for _, f := range schema.AnomalyFamilies {
		out[f.Name] = exposed(tb, reg, f.Name)
	}
	return out
}

// states returns each series' detector state, by its labels.
func states(e *Engine) map[string][]byte {
	out := map[string][]byte{}
	for _, sh := range e.shards {
		sh.mu.Lock()
		for _, st := range sh.series {
			out[st.labels.String()] = st.det.(anomaly.Stateful).AppendState(nil)
		}
		sh.mu.Unlock()
	}
	return out
}

// TestCheckpoints stops an engine halfway through the data and starts
// another from its checkpoint: it reads only what it missed and goes on
// exactly as an engine that never stopped. Checkpoints that can't be used
// are said so in the log and replaced by a full backfill.
func TestCheckpoints(t *testing.T) {
	srv := sharedPrometheus(t)
	rec := &readRecorder{upstream: srv.URL}
	proxy := httptest.NewServer(rec)
	t.Cleanup(proxy.Close)
	url := proxy.URL + "/api/v1/read"
	ctx := t.Context()

	end := time.Now()
	mid := end.Add(-time.Duration(testSamples/3) * testStep)
	var mu sync.Mutex
	now := mid
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	setNow := func(t time.Time) { mu.Lock(); now = t; mu.Unlock() }
	engine := func(dir string, edit func(*Config)) (*Engine, *prometheus.Registry, *logBuffer) {
		e, reg := testEngine(t, url, func(c *Config) {
			c.Now, c.StoragePath = clock, dir
			if edit != nil {
				edit(c)
			}
		})
		lb := &logBuffer{tb: t}
		e.log = slog.New(slog.NewTextHandler(lb, nil))
		return e, reg, lb
	}

	// The engine that never stops: a round at mid, one at the end.
	setNow(mid)
	whole, wholeReg, _ := engine("", nil)
	whole.round(ctx)
	setNow(end)
	whole.round(ctx)
	want, wantStates := everything(t, wholeReg), states(whole)
	rec.earliest()
	// One that starts at the end with a full backfill. Its states are
	// the same; its exposed scores are those of the last interval only.
	fresh, freshReg, _ := engine("", nil)
	fresh.round(ctx)
	rec.earliest()
	if diff := cmp.Diff(wantStates, states(fresh)); diff != "" {
		t.Fatal("a backfill and two rounds over the same samples leave different states")
	}
	backfilled := everything(t, freshReg)

	// The one that stops at mid.
	dir := t.TempDir()
	setNow(mid)
	first, _, _ := engine(dir, nil)
	first.round(ctx)
	rec.earliest()
	n, err := first.checkpoint()
	if err != nil || n != wantTracked {
		t.Fatalf("checkpoint: %d series, %v; want %d", n, err, wantTracked)
	}
	good, err := os.ReadFile(filepath.Join(dir, checkpointFile))
	if err != nil {
		t.Fatal(err)
	}

	t.Run("restart", func(t *testing.T) {
		setNow(end)
		e, reg, log := engine(dir, nil)
		if !e.restore() {
			t.Fatalf("the checkpoint was not restored:\n%s", log)
		}
		if got := e.tracked.Load(); got != wantTracked {
			t.Errorf("restored %d series, want %d", got, wantTracked)
		}
		e.round(ctx)
		if from, wantFrom := rec.earliest(), mid.Add(-e.cfg.Overlap).UnixMilli(); from != wantFrom {
			t.Errorf("the first read after the restart began at %s, want at the checkpoint less the overlap, %s",
				time.UnixMilli(from).UTC(), time.UnixMilli(wantFrom).UTC())
		}
		if got, all := testutil.ToFloat64(e.samplesScored), testutil.ToFloat64(whole.samplesScored)-testutil.ToFloat64(first.samplesScored); got != all {
			t.Errorf("scored %v samples after the restart, want the %v the checkpoint did not hold", got, all)
		}
		if diff := cmp.Diff(want, everything(t, reg)); diff != "" {
			t.Errorf("exposed values differ from an engine that never stopped (-never stopped +restarted):\n%s", diff)
		}
		if diff := cmp.Diff(wantStates, states(e)); diff != "" {
			t.Error("detector states differ from an engine that never stopped")
		}
	})

	// reseal gives a changed checkpoint a valid checksum again.
	reseal := func(b []byte) []byte {
		return binary.LittleEndian.AppendUint32(b[:len(b)-4:len(b)-4], crc32.Checksum(b[:len(b)-4], castagnoli))
	}
	changed := func(at int, v []byte) []byte {
		b := bytes.Clone(good)
		copy(b[at:], v)
		return b
	}
	for _, c := range []struct {
		name, says string
		file       []byte
	}{
		{"truncated", "truncated", good[:len(good)*2/3]},
		{"a flipped bit", "corrupt", changed(len(good)/2, []byte{good[len(good)/2] ^ 0x10})},
		{"foreign", "not a Telltale detector checkpoint", []byte("# HELP up Whether the target is up.\n")},
		{"older format", "format version 0", changed(8, []byte{0, 0, 0, 0})},
		{"another model", "another state", reseal(changed(12, []byte{1, 2, 3, 4, 5, 6, 7, 8}))},
		{"empty", "not a Telltale detector checkpoint", nil},
		{"bad record", "series 1", reseal(changed(checkpointHeader+1, bytes.Repeat([]byte{0xff}, 12)))},
	} {
		t.Run(c.name, func(t *testing.T) {
			d := t.TempDir()
			if err := os.WriteFile(filepath.Join(d, checkpointFile), c.file, 0o644); err != nil {
				t.Fatal(err)
			}
			setNow(end)
			e, reg, log := engine(d, nil)
			if e.restore() {
				t.Fatal("a bad checkpoint was restored")
			}
			if !strings.Contains(log.String(), "checkpoint not used") || !strings.Contains(log.String(), c.says) {
				t.Errorf("the log does not say the checkpoint was not used because %q:\n%s", c.says, log)
			}
			e.round(ctx)
			if from, full := rec.earliest(), end.Add(-e.cfg.Backfill).UnixMilli(); from != full {
				t.Errorf("read from %s, want a full backfill from %s", time.UnixMilli(from).UTC(), time.UnixMilli(full).UTC())
			}
			if diff := cmp.Diff(backfilled, everything(t, reg)); diff != "" {
				t.Errorf("after a full backfill the values differ from an engine's that started without a checkpoint:\n%s", diff)
			}
		})
	}

	t.Run("shard count changed", func(t *testing.T) {
		setNow(end)
		e, reg, log := engine(dir, func(c *Config) { c.ShardIndex, c.ShardCount = 1, 3 })
		if e.restore() {
			t.Error("with other shards, the first read must reach back for the series new to this replica")
		}
		mine := 0
		for _, sh := range first.shards {
			for h := range sh.series {
				if h%3 == 1 {
					mine++
				}
			}
		}
		if got := e.tracked.Load(); got != int64(mine) || mine == 0 || mine == wantTracked {
			t.Errorf("restored %d series, want this shard's %d of %d:\n%s", got, mine, wantTracked, log)
		}
		e.round(ctx)
		// What a replica of that shard that never stopped exposes.
		shard, shardReg, _ := engine("", func(c *Config) { c.ShardIndex, c.ShardCount = 1, 3 })
		shard.round(ctx)
		// Not the scores: a backfill exposes the highest score of its
		// last interval, in which these data have no sample, so the
		// fresh replica's are 0 and the restored one's are those it
		// checkpointed.
		bands := func(reg prometheus.Gatherer) map[string]map[string]float64 {
			m := everything(t, reg)
			delete(m, schema.AnomalyScore.Name)
			return m
		}
		if diff := cmp.Diff(bands(shardReg), bands(reg)); diff != "" {
			t.Errorf("exposed values differ from the shard's when never stopped (-never stopped +restarted):\n%s", diff)
		}
		if diff := cmp.Diff(states(shard), states(e)); diff != "" {
			t.Error("detector states differ from the shard's when never stopped")
		}
	})

	t.Run("Run checkpoints when it stops", func(t *testing.T) {
		d := t.TempDir()
		setNow(end)
		cfg := testConfig(t, url, func(c *Config) { c.Now, c.StoragePath, c.CheckpointInterval = clock, d, time.Hour })
		e := New(cfg, slog.New(slog.NewTextHandler(testWriter{t}, nil)))
		runCtx, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() { defer close(done); e.Run(runCtx) }()
		for !e.Ready() {
			time.Sleep(10 * time.Millisecond)
		}
		cancel()
		<-done
		rs, err := readCheckpoint(filepath.Join(d, checkpointFile), func() anomaly.Detector { return anomaly.NewEnsemble(anomaly.Config{}) }, 2)
		if err != nil {
			t.Fatal(err)
		}
		if len(rs.series) != wantTracked || rs.watermark != end.UnixMilli() {
			t.Errorf("the checkpoint at shutdown holds %d series scored until %d, want %d until %d", len(rs.series), rs.watermark, wantTracked, end.UnixMilli())
		}
		for _, st := range rs.series {
			if st.labels.Get(labels.MetricName) == "" {
				t.Errorf("a series without a name: %s", st.labels)
			}
		}
	})
}
