package anomalybench

import (
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/telltale-dev/telltale/pkg/anomaly"
)

const (
	// RecallWithin is how many samples after an anomaly starts an alarm
	// still counts as finding it in time.
	RecallWithin = 5
	// afterSlack is how long after an anomaly ends an alarm still belongs
	// to it (the return to normal is a change too).
	afterSlack = 60
)

// KindResult is how a detector did on one kind of anomaly.
type KindResult struct {
	Kind      Kind
	Anomalies int
	// InTime counts the anomalies alarmed on within RecallWithin samples
	// of their start; Found those alarmed on at any time before they
	// ended (plus RecallWithin samples).
	InTime, Found int
	// Recall is InTime/Anomalies.
	Recall float64
	// MedianDelay is the median, over the anomalies found, of the samples
	// from the start to the first alarm.
	MedianDelay float64
	// Alarms counts the alarms on the series of this kind, True those
	// during an anomaly or shortly after it; Precision is True/Alarms.
	Alarms, True int
	Precision    float64
	// First and FirstInTime count the first anomaly of each series only,
	// judged before any other anomaly entered the series' history.
	First, FirstInTime int
}

// MinSize is the smallest size, in σ, of the corpus's spikes, dips,
// shifts and trend changes.
const MinSize = 4

// FamilyResult is the false alarms on the healthy series of one noise.
type FamilyResult struct {
	Noise            string
	Samples, Alarms  int
	FalseAlarmsPer10 float64 // per 10,000 samples
}

// Report is a detector's result on a corpus.
type Report struct {
	Series, Samples int
	Kinds           []KindResult
	// HealthySamples and HealthyAlarms are over the series without
	// anomalies; FalseAlarmsPer10k is their ratio per 10,000 samples, and
	// FalseAlarmsPer10kAfterDay1 the same after each series' first day.
	HealthySamples, HealthyAlarms int
	FalseAlarmsPer10k             float64
	FalseAlarmsPer10kAfterDay1    float64
	ByNoise                       []FamilyResult
	// NsPerSample is the CPU time per sample scored.
	NsPerSample float64
	// Ideal, when set, is the ideal detector's recall on the same corpus,
	// reported beside the detector's.
	Ideal *Ideal
}

// Evaluate scores every series of c with a fresh detector from newDet and
// measures recall, delay and precision per kind and false alarms on the
// healthy series. An alarm is a score of at least anomaly.AlertScore.
func Evaluate(c *Corpus, newDet func(counter bool) anomaly.Detector) *Report {
	type out struct {
		alarms []int // indices of alarming samples
	}
	res := make([]out, len(c.Series))
	jobs := make(chan int)
	var wg sync.WaitGroup
	var busy time.Duration
	var mu sync.Mutex
	for range runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			for i := range jobs {
				s := &c.Series[i]
				d := newDet(s.Counter)
				t0 := time.Now()
				var al []int
				for k, p := range s.Points {
					if d.Update(p.T, p.V).Score >= anomaly.AlertScore {
						al = append(al, k)
					}
				}
				el := time.Since(t0)
				mu.Lock()
				busy += el
				mu.Unlock()
				res[i].alarms = al
			}
		})
	}
	for i := range c.Series {
		jobs <- i
	}
	close(jobs)
	wg.Wait()

	r := &Report{Series: len(c.Series)}
	byKind := map[Kind]*KindResult{}
	delays := map[Kind][]float64{}
	for _, k := range Kinds() {
		byKind[k] = &KindResult{Kind: k}
	}
	byNoise := map[string]*FamilyResult{}
	var healthyAfter, alarmsAfter int
	for i, s := range c.Series {
		r.Samples += len(s.Points)
		al := res[i].alarms
		if len(s.Anomalies) == 0 {
			r.HealthySamples += len(s.Points)
			r.HealthyAlarms += len(al)
			f := byNoise[s.Noise]
			if f == nil {
				f = &FamilyResult{Noise: s.Noise}
				byNoise[s.Noise] = f
			}
			f.Samples += len(s.Points)
			f.Alarms += len(al)
			day1 := dayOneEnd(s.Points)
			healthyAfter += len(s.Points) - day1
			for _, k := range al {
				if k >= day1 {
					alarmsAfter++
				}
			}
			continue
		}
		kr := byKind[s.Anomalies[0].Kind]
		kr.Alarms += len(al)
		for _, k := range al {
			if slices.ContainsFunc(s.Anomalies, func(a Anomaly) bool { return k >= a.Start && k < max(a.End, a.Start+RecallWithin+1)+afterSlack }) {
				kr.True++
			}
		}
		for n, a := range s.Anomalies {
			kr.Anomalies++
			first := n == 0
			if first {
				kr.First++
			}
			j, _ := slices.BinarySearch(al, a.Start)
			if j == len(al) || al[j] >= max(a.End, a.Start+RecallWithin+1) {
				continue
			}
			kr.Found++
			d := al[j] - a.Start
			delays[a.Kind] = append(delays[a.Kind], float64(d))
			if d <= RecallWithin {
				kr.InTime++
				if first {
					kr.FirstInTime++
				}
			}
		}
	}
	for _, k := range Kinds() {
		kr := byKind[k]
		if kr.Anomalies == 0 {
			continue
		}
		kr.Recall = float64(kr.InTime) / float64(kr.Anomalies)
		if kr.Alarms > 0 {
			kr.Precision = float64(kr.True) / float64(kr.Alarms)
		}
		kr.MedianDelay = median(delays[k])
		r.Kinds = append(r.Kinds, *kr)
	}
	for _, n := range noises {
		if f := byNoise[n]; f != nil {
			f.FalseAlarmsPer10 = 1e4 * float64(f.Alarms) / float64(f.Samples)
			r.ByNoise = append(r.ByNoise, *f)
		}
	}
	if r.HealthySamples > 0 {
		r.FalseAlarmsPer10k = 1e4 * float64(r.HealthyAlarms) / float64(r.HealthySamples)
	}
	if healthyAfter > 0 {
		r.FalseAlarmsPer10kAfterDay1 = 1e4 * float64(alarmsAfter) / float64(healthyAfter)
	}
	if r.Samples > 0 {
		r.NsPerSample = float64(busy.Nanoseconds()) / float64(r.Samples)
	}
	return r
}

// dayOneEnd is the index of the first sample a day after the first.
func dayOneEnd(pts []anomaly.Point) int {
	if len(pts) == 0 {
		return 0
	}
	return indexAt(pts, pts[0].T+24*3600*1000)
}

// indexAt is the index of the first point at or after t.
func indexAt(pts []anomaly.Point, t int64) int {
	i, _ := slices.BinarySearchFunc(pts, t, func(p anomaly.Point, t int64) int { return cmp.Compare(p.T, t) })
	return i
}

// median is the median of x, NaN when empty.
func median(x []float64) float64 {
	if len(x) == 0 {
		return -1
	}
	s := slices.Clone(x)
	slices.Sort(s)
	n := len(s)
	return (s[(n-1)/2] + s[n/2]) / 2
}

// WriteTable prints the report: per kind, recall within RecallWithin
// samples (of all anomalies, and of each series' first), median delay and
// precision; then false alarms on the healthy series.
func (r *Report) WriteTable(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "%d series, %d samples at 15 s\n", r.Series, r.Samples)
	fmt.Fprintf(&b, "%-22s %9s %9s %9s %15s %10s %10s\n", "kind", "anomalies", "found", "recall@5", "recall@5 first", "delay p50", "precision")
	for _, k := range r.Kinds {
		first := "-"
		if k.First > 0 {
			first = fmt.Sprintf("%.0f%%", 100*float64(k.FirstInTime)/float64(k.First))
		}
		delay := "-"
		if k.Found > 0 {
			delay = fmt.Sprintf("%.1f", k.MedianDelay)
		}
		fmt.Fprintf(&b, "%-22s %9d %9d %8.0f%% %15s %10s %9.0f%%\n", k.Kind, k.Anomalies, k.Found, 100*k.Recall, first, delay, 100*k.Precision)
	}
	fmt.Fprintf(&b, "false alarms on healthy series: %d in %d samples = %.2f per 10,000 (%.2f after each series' first day)\n",
		r.HealthyAlarms, r.HealthySamples, r.FalseAlarmsPer10k, r.FalseAlarmsPer10kAfterDay1)
	for _, f := range r.ByNoise {
		fmt.Fprintf(&b, "  %-10s %6d alarms %9d samples %6.2f per 10,000\n", f.Noise, f.Alarms, f.Samples, f.FalseAlarmsPer10)
	}
	fmt.Fprintf(&b, "CPU per sample: %.0f ns\n", r.NsPerSample)
	_, err := io.WriteString(w, b.String())
	return err
}

// JSON is the report's figures as one JSON object.
func (r *Report) JSON() ([]byte, error) {
	kinds := map[Kind]map[string]float64{}
	for _, k := range r.Kinds {
		m := map[string]float64{"recall_at_5": k.Recall, "median_delay_samples": k.MedianDelay, "precision": k.Precision, "anomalies": float64(k.Anomalies)}
		if k.First > 0 {
			m["recall_at_5_first"] = float64(k.FirstInTime) / float64(k.First)
		}
		kinds[k.Kind] = m
	}
	out := map[string]any{
		"kinds":                           kinds,
		"false_alarms_per_10k":            r.FalseAlarmsPer10k,
		"false_alarms_per_10k_after_day1": r.FalseAlarmsPer10kAfterDay1,
		"ns_per_sample":                   r.NsPerSample,
	}
	if r.Ideal != nil {
		out["ideal_recall"] = map[Kind]float64{Spike: r.Ideal.Recall(Spike), Dip: r.Ideal.Recall(Dip)}
		out["ideal_false_alarms_per_10k"] = r.Ideal.Per10k
	}
	return json.Marshal(out)
}
