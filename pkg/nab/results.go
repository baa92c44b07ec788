package nab

import (
	"bufio"
	"compress/gzip"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Scores holds a detector's anomaly score for every row of every file of a
// corpus, keyed by the file's Path.
type Scores map[string][]float64

type tableRow struct {
	line   int
	fields []string
}

// readTable reads a CSV with a header and returns, for each data row, the
// fields of the named columns in the order asked.
func readTable(r io.Reader, cols ...string) ([]tableRow, error) {
	cr := csv.NewReader(r)
	cr.ReuseRecord = false
	cr.FieldsPerRecord = -1
	header, err := cr.Read()
	if err == io.EOF {
		return nil, errors.New("empty file: want a header line")
	}
	if err != nil {
		return nil, fmt.Errorf("header: %w", err)
	}
	idx := make([]int, len(cols))
	for i, c := range cols {
		idx[i] = -1
		for j, h := range header {
			if strings.TrimSpace(strings.TrimPrefix(h, "\ufeff")) == c {
				idx[i] = j
				break
			}
		}
		if idx[i] < 0 {
			return nil, fmt.Errorf("header %q has no %q column", strings.Join(header, ","), c)
		}
	}
	var rows []tableRow
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			return rows, nil
		}
		if err != nil {
			// csv's errors already say "record on line N".
			return nil, err
		}
		line, _ := cr.FieldPos(0)
		if len(rec) != len(header) {
			return nil, fmt.Errorf("line %d: %d fields, want %d as in the header", line, len(rec), len(header))
		}
		f := make([]string, len(cols))
		for i, j := range idx {
			f[i] = rec[j]
		}
		rows = append(rows, tableRow{line: line, fields: f})
	}
}

func parseFloat(s string) (float64, error) {
	v, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil {
		return 0, fmt.Errorf("%q is not a number", s)
	}
	return v, nil
}

// ReadScores parses a NAB results file and returns its anomaly_score
// column. Scores must be numbers, not NaN: they are ranked.
func ReadScores(r io.Reader) ([]float64, error) {
	rows, err := readTable(r, "anomaly_score")
	if err != nil {
		return nil, err
	}
	out := make([]float64, len(rows))
	for i, row := range rows {
		v, err := parseFloat(row.fields[0])
		if err != nil {
			return nil, fmt.Errorf("line %d: anomaly_score: %w", row.line, err)
		}
		if math.IsNaN(v) {
			return nil, fmt.Errorf("line %d: anomaly_score is NaN", row.line)
		}
		out[i] = v
	}
	return out, nil
}

// ResultsPath is where NAB keeps detector det's results for a data file
// (a path relative to data/), relative to the results directory.
func ResultsPath(det, file string) string {
	dir, name := path.Split(file)
	return path.Join(det, dir, det+"_"+name)
}

// LoadResults reads detector det's results for every file of the corpus
// from resultsDir (NAB's results/ layout), gzip-compressed or not.
func (c *Corpus) LoadResults(resultsDir, det string) (Scores, error) {
	out := make(Scores, len(c.Files))
	for _, f := range c.Files {
		p := filepath.Join(resultsDir, filepath.FromSlash(ResultsPath(det, f.Path)))
		s, err := readScoresFile(p)
		if err != nil {
			return nil, err
		}
		if len(s) != len(f.Times) {
			return nil, fmt.Errorf("%s: %d rows, but the data file has %d", p, len(s), len(f.Times))
		}
		out[f.Path] = s
	}
	return out, nil
}

func readScoresFile(p string) ([]float64, error) {
	fh, err := os.Open(p + ".gz")
	gz := err == nil
	if errors.Is(err, os.ErrNotExist) {
		fh, err = os.Open(p)
	}
	if err != nil {
		return nil, fmt.Errorf("open results: %w", err)
	}
	defer fh.Close()
	var r io.Reader = bufio.NewReader(fh)
	if gz {
		zr, err := gzip.NewReader(r)
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", fh.Name(), err)
		}
		defer zr.Close()
		r = zr
	}
	s, err := ReadScores(r)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", fh.Name(), err)
	}
	return s, nil
}

// Detectors lists the detectors that have a directory under resultsDir,
// sorted; none when resultsDir does not exist.
func Detectors(resultsDir string) ([]string, error) {
	ents, err := os.ReadDir(resultsDir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list detectors: %w", err)
	}
	var out []string
	for _, e := range ents {
		if e.IsDir() {
			out = append(out, e.Name())
		}
	}
	sort.Strings(out)
	return out, nil
}

// WriteResults writes detector det's scores for the corpus under
// resultsDir in NAB's results layout (uncompressed CSV), so NAB's own tools
// can score them too.
func (c *Corpus) WriteResults(resultsDir, det string, s Scores) error {
	for _, f := range c.Files {
		scores, ok := s[f.Path]
		if !ok || len(scores) != len(f.Times) {
			return fmt.Errorf("write results of %s: no scores, or not one per row, for %s", det, f.Path)
		}
		p := filepath.Join(resultsDir, filepath.FromSlash(ResultsPath(det, f.Path)))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return fmt.Errorf("write results: %w", err)
		}
		if err := writeResultsFile(p, f, scores); err != nil {
			return err
		}
	}
	return nil
}

func writeResultsFile(p string, f *File, scores []float64) error {
	fh, err := os.Create(p)
	if err != nil {
		return fmt.Errorf("write results: %w", err)
	}
	w := bufio.NewWriter(fh)
	err = WriteResultsCSV(w, f, scores)
	if err == nil {
		err = w.Flush()
	}
	if cerr := fh.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", p, err)
	}
	return nil
}

// WriteResultsCSV writes one NAB results file: timestamp, value,
// anomaly_score and the window label of every row.
func WriteResultsCSV(w io.Writer, f *File, scores []float64) error {
	if _, err := io.WriteString(w, "timestamp,value,anomaly_score,label\n"); err != nil {
		return err
	}
	in := f.InWindow()
	buf := make([]byte, 0, 64)
	for i, t := range f.Times {
		buf = buf[:0]
		buf = t.AppendFormat(buf, time.DateTime)
		buf = append(buf, ',')
		buf = strconv.AppendFloat(buf, f.Values[i], 'g', -1, 64)
		buf = append(buf, ',')
		buf = strconv.AppendFloat(buf, scores[i], 'g', -1, 64)
		if in[i] {
			buf = append(buf, ",1\n"...)
		} else {
			buf = append(buf, ",0\n"...)
		}
		if _, err := w.Write(buf); err != nil {
			return err
		}
	}
	return nil
}
