// Package nab scores anomaly detectors on the Numenta Anomaly Benchmark
// (NAB v1.1, Lavin and Ahmad, "Evaluating real-time anomaly detection
// algorithms – the Numenta Anomaly Benchmark", IEEE ICMLA 2015;
// github.com/numenta/NAB), reproducing the rules of NAB's own scorer:
// anomaly windows, the scaled sigmoid reward, the probationary period, the
// three application profiles, one threshold per detector and profile
// optimised over the whole corpus, and normalisation so that the null
// detector scores 0 and a perfect one 100.
//
// A corpus is a directory in NAB's layout:
//
//	data/<category>/<name>.csv                    timestamp,value
//	labels/combined_windows.json                  {"<category>/<name>.csv": [[start, end], ...]}
//	results/<detector>/<category>/<detector>_<name>.csv[.gz]
//	                                              timestamp,value,anomaly_score,label
package nab

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"
)

// Window is one labelled anomaly window, both ends included.
type Window struct {
	Start, End time.Time
}

// File is one data file of the corpus with its labels.
type File struct {
	// Path is relative to data/, with forward slashes, as in the labels
	// file ("realTweets/Twitter_volume_AAPL.csv").
	Path    string
	Times   []time.Time
	Values  []float64
	Windows []Window

	// spans are the windows as row indices [first, last], computed once.
	spans [][2]int
}

// Corpus is a NAB data set: every data file under data/ with its windows.
type Corpus struct {
	Dir   string
	Files []*File
	// Unused lists label entries that name no data file; they are left
	// out of the scoring (a perfect detector could not find them).
	Unused []string

	nullMu sync.Mutex
	null   map[Profile]optimum
}

// LabelsPath is where a corpus keeps its windows, relative to its root.
const LabelsPath = "labels/combined_windows.json"

// KitEnv names the environment variable that says where the NAB kit is,
// for the tests and `go tool mage nab`.
const KitEnv = "TELLTALE_NAB_DIR"

// KitHint says, in one line, what the NAB kit is and where to get it.
const KitHint = "the kit is NAB v1.1's layout (data/, " + LabelsPath + ", results/ with the published detectors' outputs) from github.com/numenta/NAB, or the project's ../shared/nab; set " + KitEnv + " to its directory"

// timeLayouts are the timestamp forms NAB files use: data files have whole
// seconds, label files microseconds.
var timeLayouts = []string{"2006-01-02 15:04:05", "2006-01-02 15:04:05.999999999", time.RFC3339Nano}

func parseTime(s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	for _, l := range timeLayouts {
		if t, err := time.Parse(l, s); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("timestamp %q is not YYYY-MM-DD HH:MM:SS[.ffffff]", s)
}

// LoadCorpus reads the data files and windows of the corpus rooted at dir.
func LoadCorpus(dir string) (*Corpus, error) {
	lf, err := os.Open(filepath.Join(dir, LabelsPath))
	if err != nil {
		return nil, fmt.Errorf("no NAB corpus at %s: %w (%s)", dir, err, KitHint)
	}
	defer lf.Close()
	windows, err := ReadWindows(lf)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", lf.Name(), err)
	}
	dataDir := filepath.Join(dir, "data")
	var paths []string
	err = filepath.WalkDir(dataDir, func(p string, de fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !de.IsDir() && strings.HasSuffix(p, ".csv") {
			rel, err := filepath.Rel(dataDir, p)
			if err != nil {
				return err
			}
			paths = append(paths, filepath.ToSlash(rel))
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list data files: %w", err)
	}
	if len(paths) == 0 {
		return nil, fmt.Errorf("no data files (*.csv) under %s", dataDir)
	}
	sort.Strings(paths)
	c := &Corpus{Dir: dir}
	for _, rel := range paths {
		w, ok := windows[rel]
		if !ok {
			return nil, fmt.Errorf("data file %s has no entry in %s (an empty list [] means no anomalies)", rel, LabelsPath)
		}
		f, err := loadFile(filepath.Join(dataDir, filepath.FromSlash(rel)))
		if err != nil {
			return nil, err
		}
		f.Path, f.Windows = rel, w
		if err := f.index(); err != nil {
			return nil, fmt.Errorf("%s: %w", rel, err)
		}
		c.Files = append(c.Files, f)
	}
	for rel := range windows {
		if !slices.ContainsFunc(c.Files, func(f *File) bool { return f.Path == rel }) {
			c.Unused = append(c.Unused, rel)
		}
	}
	sort.Strings(c.Unused)
	return c, nil
}

func loadFile(path string) (*File, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open data file: %w", err)
	}
	defer fh.Close()
	times, values, err := ReadData(fh)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return &File{Times: times, Values: values}, nil
}

// index finds each window's rows as NAB's sweeper does: scanning in file
// order after the previous window, the window starts at the first row
// whose timestamp equals its start and ends at the first row at or after
// that whose timestamp equals its end. Real NAB files repeat a few
// timestamps (clock changes), so this is not a search on sorted times.
// When a corpus's labels name timestamps that are not in the file, the
// window is taken as the rows between its ends; a window that holds no row
// is an error.
func (f *File) index() error {
	f.spans = f.spans[:0]
	from := 0
	for _, w := range f.Windows {
		a := -1
		for i := from; i < len(f.Times); i++ {
			if f.Times[i].Equal(w.Start) {
				a = i
				break
			}
		}
		if a < 0 {
			for i := from; i < len(f.Times); i++ {
				if f.Times[i].After(w.Start) {
					a = i
					break
				}
			}
		}
		b := -1
		if a >= 0 {
			for i := a; i < len(f.Times) && !f.Times[i].After(w.End); i++ {
				b = i
				if f.Times[i].Equal(w.End) {
					break
				}
			}
		}
		if a < 0 || b < a {
			return fmt.Errorf("window [%s, %s] holds no sample", w.Start.Format(time.DateTime), w.End.Format(time.DateTime))
		}
		f.spans = append(f.spans, [2]int{a, b})
		from = b + 1
	}
	return nil
}

// InWindow reports for each row whether it lies in an anomaly window (the
// label column of NAB's results files).
func (f *File) InWindow() []bool {
	in := make([]bool, len(f.Times))
	for _, s := range f.spans {
		for i := s[0]; i <= s[1]; i++ {
			in[i] = true
		}
	}
	return in
}

// ReadData parses a NAB data file: a header naming timestamp and value
// columns, then one row per sample. Rows should be in time order, but NAB's
// own files repeat a few timestamps, so that is not enforced.
func ReadData(r io.Reader) ([]time.Time, []float64, error) {
	rows, err := readTable(r, "timestamp", "value")
	if err != nil {
		return nil, nil, err
	}
	times := make([]time.Time, len(rows))
	values := make([]float64, len(rows))
	for i, row := range rows {
		t, err := parseTime(row.fields[0])
		if err != nil {
			return nil, nil, fmt.Errorf("line %d: %w", row.line, err)
		}
		v, err := parseFloat(row.fields[1])
		if err != nil {
			return nil, nil, fmt.Errorf("line %d: value: %w", row.line, err)
		}
		times[i], values[i] = t, v
	}
	if len(rows) == 0 {
		return nil, nil, errors.New("no samples after the header")
	}
	return times, values, nil
}

// ReadWindows parses NAB's combined_windows.json: for each data file path,
// a list of [start, end] timestamp pairs in time order.
func ReadWindows(r io.Reader) (map[string][]Window, error) {
	var raw map[string][][]string
	dec := json.NewDecoder(r)
	if err := dec.Decode(&raw); err != nil {
		return nil, fmt.Errorf("decode labels: want {\"<category>/<file>.csv\": [[start, end], ...]}: %w", err)
	}
	if raw == nil {
		return nil, errors.New("decode labels: want a JSON object, got null")
	}
	out := make(map[string][]Window, len(raw))
	for path, pairs := range raw {
		ws := make([]Window, 0, len(pairs))
		for i, p := range pairs {
			if len(p) != 2 {
				return nil, fmt.Errorf("%s: window %d has %d timestamps, want [start, end]", path, i, len(p))
			}
			a, err := parseTime(p[0])
			if err != nil {
				return nil, fmt.Errorf("%s: window %d: %w", path, i, err)
			}
			b, err := parseTime(p[1])
			if err != nil {
				return nil, fmt.Errorf("%s: window %d: %w", path, i, err)
			}
			if b.Before(a) {
				return nil, fmt.Errorf("%s: window %d ends (%s) before it starts (%s)", path, i, p[1], p[0])
			}
			if i > 0 && !a.After(ws[i-1].End) {
				return nil, fmt.Errorf("%s: window %d starts before window %d ends", path, i, i-1)
			}
			ws = append(ws, Window{Start: a, End: b})
		}
		out[path] = ws
	}
	return out, nil
}
