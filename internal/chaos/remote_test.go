//go:build chaos

package chaos

import (
	"bytes"
	"encoding/binary"
	"math"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang/snappy"
	"github.com/prometheus/prometheus/prompb"

	"github.com/telltale-dev/telltale/internal/benchkit"
	"github.com/telltale-dev/telltale/internal/proctest"
	"github.com/telltale-dev/telltale/internal/testenv"
	"github.com/telltale-dev/telltale/pkg/schema"
)

// garbage is one kind of wrong answer a remote-read endpoint can give.
type garbage struct {
	name  string
	serve func(w http.ResponseWriter, rng *rand.Rand)
}

// readTimeout is the detector's remote-read deadline in the garbage probe.
const readTimeout = 2 * time.Second

func garbageKinds() []garbage {
	random := func(rng *rand.Rand, n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rng.UintN(256))
		}
		return b
	}
	sampled := func(w http.ResponseWriter) {
		w.Header().Set("Content-Type", "application/x-protobuf")
		w.Header().Set("Content-Encoding", "snappy")
	}
	streamed := func(w http.ResponseWriter) {
		w.Header().Set("Content-Type", "application/x-streamed-protobuf; proto=prometheus.ChunkedReadResponse")
	}
	weird := &prompb.ReadResponse{Results: []*prompb.QueryResult{{Timeseries: []*prompb.TimeSeries{
		{Labels: []prompb.Label{{Name: "", Value: "x"}, {Name: "__name__", Value: ""}}, Samples: []prompb.Sample{{Value: math.NaN(), Timestamp: 5}, {Value: math.Inf(1), Timestamp: 1}}},
		{Labels: []prompb.Label{{Name: "z", Value: "1"}, {Name: "a", Value: "2"}, {Name: "a", Value: "3"}}, Samples: []prompb.Sample{{Value: 1, Timestamp: math.MaxInt64}, {Value: 2, Timestamp: math.MinInt64}}},
	}}}}
	weirdBytes, err := weird.Marshal()
	if err != nil {
		panic(err)
	}
	return []garbage{
		{"random bytes", func(w http.ResponseWriter, rng *rand.Rand) { sampled(w); _, _ = w.Write(random(rng, 4096)) }},
		{"snappy of random bytes", func(w http.ResponseWriter, rng *rand.Rand) {
			sampled(w)
			_, _ = w.Write(snappy.Encode(nil, random(rng, 4096)))
		}},
		{"a snappy block claiming 4 GiB", func(w http.ResponseWriter, rng *rand.Rand) {
			sampled(w)
			_, _ = w.Write(append(binary.AppendUvarint(nil, 1<<32-1), random(rng, 64)...))
		}},
		{"HTTP 500 with 1 MiB of text", func(w http.ResponseWriter, _ *rand.Rand) {
			w.WriteHeader(http.StatusInternalServerError)
			_, _ = w.Write(bytes.Repeat([]byte("overloaded "), 1<<20/11))
		}},
		{"a streamed frame of 1 TiB", func(w http.ResponseWriter, rng *rand.Rand) {
			streamed(w)
			_, _ = w.Write(append(binary.AppendUvarint(nil, 1<<40), random(rng, 64)...))
		}},
		{"a streamed frame with a wrong checksum", func(w http.ResponseWriter, rng *rand.Rand) {
			streamed(w)
			payload := random(rng, 100)
			b := binary.AppendUvarint(nil, uint64(len(payload)))
			b = binary.BigEndian.AppendUint32(b, 0xdeadbeef)
			_, _ = w.Write(append(b, payload...))
		}},
		{"an unknown content type", func(w http.ResponseWriter, rng *rand.Rand) {
			w.Header().Set("Content-Type", "text/html")
			_, _ = w.Write([]byte("<html>login</html>"))
		}},
		{"an empty 200", func(w http.ResponseWriter, _ *rand.Rand) { sampled(w) }},
		{"labels empty, unsorted and repeated; NaN, Inf and out-of-order samples", func(w http.ResponseWriter, _ *rand.Rand) {
			sampled(w)
			_, _ = w.Write(snappy.Encode(nil, weirdBytes))
		}},
		{"no answer before the deadline", func(w http.ResponseWriter, _ *rand.Rand) { time.Sleep(readTimeout + time.Second) }},
		{"the connection cut mid-answer", func(w http.ResponseWriter, rng *rand.Rand) {
			sampled(w)
			w.Header().Set("Content-Length", "100000")
			_, _ = w.Write(random(rng, 1000))
			if hj, ok := w.(http.Hijacker); ok {
				if c, _, err := hj.Hijack(); err == nil {
					_ = c.Close()
				}
			}
		}},
	}
}

// TestGarbageRemoteRead: the detector reads from an endpoint that answers
// every kind of garbage in turn. It must stay up and healthy, count the
// reads that failed, keep its memory bounded and never panic.
func TestGarbageRemoteRead(t *testing.T) {
	kinds := garbageKinds()
	var (
		mu      sync.Mutex
		answers int
		served  = map[string]int{}
	)
	rng := rand.New(rand.NewPCG(7, 7))
	srv := &http.Server{Addr: testenv.FreeAddr(t), Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		mu.Lock()
		k := kinds[answers%len(kinds)]
		answers++
		served[k.name]++
		r := rand.New(rand.NewPCG(rng.Uint64(), 0))
		mu.Unlock()
		k.serve(w, r)
	})}
	go func() { _ = srv.ListenAndServe() }()
	t.Cleanup(func() { _ = srv.Close() })

	addr := testenv.FreeAddr(t)
	det := proctest.Start(t, "", detectorBin(t), "--remote-read.url=http://"+srv.Addr+"/api/v1/read", "--web.listen-address="+addr,
		"--score.interval=1s", "--backfill.duration=10m", "--remote-read.timeout="+readTimeout.String(), "--backfill.timeout="+readTimeout.String(), "--log.level=warn")
	base := "http://" + addr
	proctest.WaitHTTP(t, base+"/-/healthy", 30*time.Second, det)
	const length = 40 * time.Second
	unhealthy := 0
	for end := time.Now().Add(length); time.Now().Before(end); time.Sleep(time.Second) {
		resp, err := (&http.Client{Timeout: 5 * time.Second}).Get(base + "/-/healthy")
		if err != nil || resp.StatusCode != http.StatusOK {
			unhealthy++
		}
		if err == nil {
			resp.Body.Close()
		}
	}
	errs := detectorMetric(t, base, schema.DetectorReadErrors.Name)
	rss, err := benchkit.PeakRSS(det.Cmd.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	n, kindsServed := answers, len(served)
	mu.Unlock()
	// Every kind was served, and every read failed but the one whose
	// odd series decode.
	held := kindsServed == len(kinds) && errs >= float64(n)/2 && unhealthy == 0 && rss < 300<<20 && det.Running() && !panicked(det.Output())
	var names []string
	for _, k := range kinds {
		names = append(names, k.name)
	}
	report(t, "garbage remote read", held, "%d answers of %d kinds of garbage in %s: %.0f failed reads counted, %d health checks failed, peak RSS %.0f MiB, detector running %v (kinds: %s)",
		n, kindsServed, length, errs, unhealthy, rss/(1<<20), det.Running(), strings.Join(names, "; "))
}
