package engine

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/prometheus/model/labels"

	"github.com/telltale-dev/telltale/pkg/anomaly"
)

// Checkpoints: with a storage path, the engine writes every series' state
// to one file, periodically and when it stops, and reads it back at start,
// so that a restart reads from Prometheus only what it missed since the
// checkpoint instead of the whole backfill, and goes on scoring exactly as
// if it had not stopped.
//
// The file, written to a temporary name and renamed over the last one (so a
// crash leaves the previous checkpoint whole), is
//
//	magic          8 bytes, "TTDETCK\n"
//	format         uint32, checkpointFormat
//	model          uint64, anomaly.StateVersion() of the writer
//	shard          uint64 index, uint64 count
//	watermark      int64, the end (Unix ms) of the last read scored whole
//	series         uvarint count, then per series:
//	  labels       uvarint count, then uvarint-length-prefixed names and values
//	  lastT        varint, the last sample scored (Unix ms)
//	  score        float64, the exposed score
//	  result       float64 Value, Score, Expected, Lower, Upper; a byte Warm
//	  state        uvarint length, then the detector's state (anomaly.Stateful)
//	crc            uint32, CRC-32C of everything before it
//
// with fixed-size integers and floats little-endian. A checkpoint that is
// missing, truncated, corrupt, of another format or written by a release
// whose detectors keep another state is not used: the engine says why in
// its log and backfills from Prometheus as without one.

const (
	checkpointMagic  = "TTDETCK\n"
	checkpointFormat = 1
	checkpointFile   = CheckpointFile
	// checkpointHeader is the size of the fixed part before the series.
	checkpointHeader = len(checkpointMagic) + 4 + 8 + 8 + 8 + 8
)

// CheckpointFile is the checkpoint's name in the storage directory.
const CheckpointFile = "detector.checkpoint"

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// checkpointPath is where the engine keeps its checkpoint.
func (e *Engine) checkpointPath() string {
	return filepath.Join(e.cfg.StoragePath, checkpointFile)
}

// checkpoint writes every series' state; it must not run during a round.
// It returns how many series it wrote.
func (e *Engine) checkpoint() (int, error) {
	path := e.checkpointPath()
	if err := os.MkdirAll(e.cfg.StoragePath, 0o755); err != nil {
		return 0, fmt.Errorf("checkpoint directory: %w", err)
	}
	tmp, err := os.CreateTemp(e.cfg.StoragePath, checkpointFile+".tmp*")
	if err != nil {
		return 0, fmt.Errorf("checkpoint: %w", err)
	}
	defer os.Remove(tmp.Name()) // once renamed, there is nothing to remove
	n, err := e.writeCheckpoint(tmp)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err == nil {
		// The rename is durable once the directory is.
		if d, derr := os.Open(e.cfg.StoragePath); derr == nil {
			err = d.Sync()
			d.Close()
		}
	}
	if err != nil {
		return 0, fmt.Errorf("checkpoint %s: %w", path, err)
	}
	return n, nil
}

func (e *Engine) writeCheckpoint(f io.Writer) (int, error) {
	crc := crc32.New(castagnoli)
	w := bufio.NewWriterSize(io.MultiWriter(f, crc), 1<<20)
	count := 0
	for _, sh := range e.shards {
		sh.mu.Lock()
		count += len(sh.series)
		sh.mu.Unlock()
	}
	b := []byte(checkpointMagic)
	b = binary.LittleEndian.AppendUint32(b, checkpointFormat)
	b = binary.LittleEndian.AppendUint64(b, anomaly.StateVersion())
	b = binary.LittleEndian.AppendUint64(b, e.cfg.ShardIndex)
	b = binary.LittleEndian.AppendUint64(b, e.cfg.ShardCount)
	b = binary.LittleEndian.AppendUint64(b, uint64(e.watermark.Load()))
	b = binary.AppendUvarint(b, uint64(count))
	if _, err := w.Write(b); err != nil {
		return 0, err
	}
	written := 0
	var rec, state []byte
	for _, sh := range e.shards {
		sh.mu.Lock()
		for _, st := range sh.series {
			det, ok := st.det.(anomaly.Stateful)
			if !ok {
				sh.mu.Unlock()
				return 0, fmt.Errorf("the detector %T cannot save its state", st.det)
			}
			state = det.AppendState(state[:0])
			rec = appendRecord(rec[:0], st, len(state))
			_, err := w.Write(rec)
			if err == nil {
				_, err = w.Write(state)
			}
			if err != nil {
				sh.mu.Unlock()
				return 0, err
			}
			written++
		}
		sh.mu.Unlock()
	}
	if written != count {
		// Only a round adds or forgets series, and none runs now.
		return 0, fmt.Errorf("%d series counted, %d written", count, written)
	}
	if err := w.Flush(); err != nil {
		return 0, err
	}
	if _, err := f.Write(binary.LittleEndian.AppendUint32(nil, crc.Sum32())); err != nil {
		return 0, err
	}
	return written, nil
}

func appendString(b []byte, s string) []byte {
	return append(binary.AppendUvarint(b, uint64(len(s))), s...)
}

func appendFloat(b []byte, f float64) []byte {
	return binary.LittleEndian.AppendUint64(b, math.Float64bits(f))
}

// appendRecord appends one series' record up to its detector's state,
// which is stateLen bytes long and follows it.
func appendRecord(b []byte, st *seriesState, stateLen int) []byte {
	b = binary.AppendUvarint(b, uint64(st.labels.Len()))
	st.labels.Range(func(l labels.Label) {
		b = appendString(appendString(b, l.Name), l.Value)
	})
	b = binary.AppendVarint(b, st.lastT)
	b = appendFloat(b, st.score)
	r := st.result
	for _, f := range []float64{r.Value, r.Score, r.Expected, r.Lower, r.Upper} {
		b = appendFloat(b, f)
	}
	warm := byte(0)
	if r.Warm {
		warm = 1
	}
	b = append(b, warm)
	return binary.AppendUvarint(b, uint64(stateLen))
}

// restored is what a checkpoint held.
type restored struct {
	shardIndex, shardCount uint64
	watermark              int64
	series                 []*seriesState
}

// errNoCheckpoint means there is no checkpoint to read.
var errNoCheckpoint = errors.New("no checkpoint")

// readCheckpoint reads and checks the checkpoint at path; newDet makes the
// detectors states are restored into.
func readCheckpoint(path string, newDet func() anomaly.Detector, workers int) (*restored, error) {
	data, unmap, err := mapFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, errNoCheckpoint
	}
	if err != nil {
		return nil, err
	}
	// Nothing restored refers to the file's bytes: the labels are
	// copied, and the states are read into the detectors.
	defer unmap()
	if len(data) < len(checkpointMagic) || string(data[:len(checkpointMagic)]) != checkpointMagic {
		return nil, fmt.Errorf("not a Telltale detector checkpoint (it does not start with %q)", checkpointMagic)
	}
	if len(data) < checkpointHeader+1+4 {
		return nil, fmt.Errorf("truncated: %d bytes, less than a header", len(data))
	}
	body, sum := data[:len(data)-4], binary.LittleEndian.Uint32(data[len(data)-4:])
	format := binary.LittleEndian.Uint32(data[8:])
	if format != checkpointFormat {
		return nil, fmt.Errorf("format version %d; this release reads version %d", format, checkpointFormat)
	}
	if got := crc32.Checksum(body, castagnoli); got != sum {
		return nil, fmt.Errorf("corrupt or truncated: checksum %08x, the file says %08x", got, sum)
	}
	if model := binary.LittleEndian.Uint64(data[12:]); model != anomaly.StateVersion() {
		return nil, fmt.Errorf("written by a release whose detectors keep another state (layout %016x, this release's is %016x)", model, anomaly.StateVersion())
	}
	out := &restored{
		shardIndex: binary.LittleEndian.Uint64(data[20:]),
		shardCount: binary.LittleEndian.Uint64(data[28:]),
		watermark:  int64(binary.LittleEndian.Uint64(data[36:])),
	}
	r := recordReader{b: body[checkpointHeader:]}
	count := r.uvarint()
	if r.err == nil && count > uint64(len(r.b)) {
		r.err = fmt.Errorf("%d series in %d bytes", count, len(r.b))
	}
	if r.err != nil {
		return nil, r.err
	}
	// Split the records, then restore their detectors in parallel: most
	// of the time goes to the states.
	type job struct {
		st    *seriesState
		state []byte
	}
	jobs := make([]job, 0, count)
	for range count {
		st, state := r.record()
		if r.err != nil {
			return nil, fmt.Errorf("series %d: %w", len(jobs)+1, r.err)
		}
		jobs = append(jobs, job{st, state})
	}
	if len(r.b) != 0 {
		return nil, fmt.Errorf("%d bytes after the last series", len(r.b))
	}
	var (
		wg    sync.WaitGroup
		errMu sync.Mutex
		first error
	)
	workers = max(1, min(workers, runtime.GOMAXPROCS(0)))
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < len(jobs); i += workers {
				det := newDet()
				s, ok := det.(anomaly.Stateful)
				var err error
				if !ok {
					err = fmt.Errorf("the detector %T cannot restore a state", det)
				} else {
					err = s.RestoreState(jobs[i].state)
				}
				if err != nil {
					errMu.Lock()
					if first == nil {
						first = fmt.Errorf("series %s: %w", jobs[i].st.labels, err)
					}
					errMu.Unlock()
					return
				}
				jobs[i].st.det = det
			}
		}()
	}
	wg.Wait()
	if first != nil {
		return nil, first
	}
	out.series = make([]*seriesState, len(jobs))
	for i, j := range jobs {
		out.series[i] = j.st
	}
	return out, nil
}

// recordReader reads the series of a checkpoint; the first error sticks.
type recordReader struct {
	b   []byte
	err error
}

func (r *recordReader) fail(err error) {
	if r.err == nil {
		r.err = err
	}
}

func (r *recordReader) uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	x, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.fail(io.ErrUnexpectedEOF)
		return 0
	}
	r.b = r.b[n:]
	return x
}

func (r *recordReader) bytes() []byte {
	n := r.uvarint()
	if r.err != nil {
		return nil
	}
	if n > uint64(len(r.b)) {
		r.fail(io.ErrUnexpectedEOF)
		return nil
	}
	out := r.b[:n:n]
	r.b = r.b[n:]
	return out
}

func (r *recordReader) float() float64 {
	if r.err != nil {
		return 0
	}
	if len(r.b) < 8 {
		r.fail(io.ErrUnexpectedEOF)
		return 0
	}
	f := math.Float64frombits(binary.LittleEndian.Uint64(r.b))
	r.b = r.b[8:]
	return f
}

func (r *recordReader) record() (*seriesState, []byte) {
	n := r.uvarint()
	if r.err == nil && n > uint64(len(r.b)) {
		r.fail(fmt.Errorf("%d labels in %d bytes", n, len(r.b)))
	}
	lb := labels.NewScratchBuilder(int(min(n, 64)))
	// A series' labels are few; n only bounds the loop.
	for range n {
		name, value := r.bytes(), r.bytes()
		if r.err != nil {
			return nil, nil
		}
		lb.Add(string(name), string(value))
	}
	lb.Sort()
	st := &seriesState{labels: lb.Labels()}
	if x, k := binary.Varint(r.b); k > 0 && r.err == nil {
		st.lastT, r.b = x, r.b[k:]
	} else {
		r.fail(io.ErrUnexpectedEOF)
	}
	st.score = r.float()
	res := &st.result
	for _, f := range []*float64{&res.Value, &res.Score, &res.Expected, &res.Lower, &res.Upper} {
		*f = r.float()
	}
	if r.err == nil {
		if len(r.b) == 0 || r.b[0] > 1 {
			r.fail(errors.New("bad warm flag"))
		} else {
			res.Warm, r.b = r.b[0] == 1, r.b[1:]
		}
	}
	state := r.bytes()
	if r.err == nil && st.labels.Get(labels.MetricName) == "" {
		r.fail(fmt.Errorf("a series without a name: %s", st.labels))
	}
	return st, state
}

// mapFile maps the file at path into memory, read-only: a checkpoint of
// hundreds of megabytes is read without a copy on the heap.
func mapFile(path string) ([]byte, func(), error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, nil, err
	}
	if fi.Size() == 0 {
		return nil, func() {}, nil
	}
	if fi.Size() != int64(int(fi.Size())) {
		return nil, nil, fmt.Errorf("%d bytes is too large to map", fi.Size())
	}
	data, err := syscall.Mmap(int(f.Fd()), 0, int(fi.Size()), syscall.PROT_READ, syscall.MAP_SHARED)
	if err != nil {
		return nil, nil, fmt.Errorf("map %s: %w", path, err)
	}
	return data, func() { _ = syscall.Munmap(data) }, nil
}

// restore loads the checkpoint, if there is one, into the engine before
// its first round. It returns whether the first round may read from the
// checkpoint's watermark on (only what was missed): not when the series
// this replica owns changed with the shard flags, since the series that
// became its own have no history here yet.
func (e *Engine) restore() bool {
	path := e.checkpointPath()
	began := time.Now()
	rs, err := readCheckpoint(path, func() anomaly.Detector { return e.cfg.NewDetector(false) }, len(e.shards))
	switch {
	case errors.Is(err, errNoCheckpoint):
		e.log.Info("no checkpoint yet; backfilling from Prometheus", "file", path)
		return false
	case err != nil:
		e.log.Warn("checkpoint not used; backfilling from Prometheus", "file", path, "err", err)
		return false
	}
	kept, dropped := 0, 0
	for _, st := range rs.series {
		h := labels.StableHash(st.labels)
		if !e.mine(h) {
			dropped++
			continue
		}
		sh := e.shards[e.worker(h)]
		sh.mu.Lock()
		if _, dup := sh.series[h]; !dup && e.admit(h) {
			e.describe(st)
			sh.series[h] = st
			kept++
		}
		sh.mu.Unlock()
	}
	same := rs.shardIndex == e.cfg.ShardIndex && rs.shardCount == e.cfg.ShardCount
	if same {
		e.watermark.Store(rs.watermark)
	}
	e.log.Info("checkpoint restored", "file", path, "series", kept, "not this shard's", dropped,
		"took", time.Since(began), "scored_until", time.UnixMilli(rs.watermark).UTC(), "reads_only_what_was_missed", same)
	return same
}
