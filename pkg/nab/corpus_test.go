package nab

import (
	"bytes"
	"compress/gzip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestReadData(t *testing.T) {
	cases := []struct {
		name    string
		in      string
		n       int
		wantErr string
	}{
		{"valid", "timestamp,value\n2014-04-01 00:00:00,1.5\n2014-04-01 00:05:00,-2\n", 2, ""},
		{"columns swapped", "value,timestamp\n3,2014-04-01 00:00:00\n", 1, ""},
		{"crlf and bom", "\ufefftimestamp,value\r\n2014-04-01 00:00:00,1\r\n", 1, ""},
		{"empty", "", 0, "empty file"},
		{"header only", "timestamp,value\n", 0, "no samples"},
		{"truncated row", "timestamp,value\n2014-04-01 00:00:00\n", 0, "line 2: 1 fields, want 2"},
		{"bad number", "timestamp,value\n2014-04-01 00:00:00,abc\n", 0, `line 2: value: "abc" is not a number`},
		{"bad time", "timestamp,value\n01/04/2014,1\n", 0, "line 2: timestamp"},
		{"no value column", "timestamp,v\n2014-04-01 00:00:00,1\n", 0, `no "value" column`},
		{"bad quoting", "timestamp,value\n\"2014-04-01 00:00:00,1\n", 0, "line"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ts, vs, err := ReadData(strings.NewReader(c.in))
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("err %v, want it to contain %q", err, c.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(ts) != c.n || len(vs) != c.n {
				t.Fatalf("%d times %d values, want %d", len(ts), len(vs), c.n)
			}
		})
	}
}

func TestReadDataValues(t *testing.T) {
	ts, vs, err := ReadData(strings.NewReader("timestamp,value\n2014-04-01 00:00:00,1.5\n2014-04-01 00:05:00.250000,-2e3\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := []time.Time{time.Date(2014, 4, 1, 0, 0, 0, 0, time.UTC), time.Date(2014, 4, 1, 0, 5, 0, 250e6, time.UTC)}
	if diff := cmp.Diff(want, ts); diff != "" {
		t.Errorf("times (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]float64{1.5, -2000}, vs); diff != "" {
		t.Errorf("values (-want +got):\n%s", diff)
	}
}

func TestReadWindows(t *testing.T) {
	cases := []struct {
		name    string
		in      string
		want    map[string][]Window
		wantErr string
	}{
		{"valid", `{"a/b.csv": [["2014-04-01 00:00:00.000000", "2014-04-02 00:00:00.000000"]], "a/c.csv": []}`,
			map[string][]Window{
				"a/b.csv": {{Start: time.Date(2014, 4, 1, 0, 0, 0, 0, time.UTC), End: time.Date(2014, 4, 2, 0, 0, 0, 0, time.UTC)}},
				"a/c.csv": {},
			}, ""},
		{"empty object", `{}`, map[string][]Window{}, ""},
		{"empty", ``, nil, "decode labels"},
		{"null", `null`, nil, "got null"},
		{"truncated", `{"a/b.csv": [["2014-04-01 00:00:00"`, nil, "decode labels"},
		{"not pairs", `{"a/b.csv": [["2014-04-01 00:00:00"]]}`, nil, "has 1 timestamps"},
		{"wrong type", `{"a/b.csv": "x"}`, nil, "decode labels"},
		{"bad time", `{"a/b.csv": [["yesterday", "today"]]}`, nil, "window 0: timestamp"},
		{"reversed", `{"a/b.csv": [["2014-04-02 00:00:00", "2014-04-01 00:00:00"]]}`, nil, "ends"},
		{"overlapping", `{"a/b.csv": [["2014-04-01 00:00:00", "2014-04-03 00:00:00"], ["2014-04-02 00:00:00", "2014-04-04 00:00:00"]]}`, nil, "starts before"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := ReadWindows(strings.NewReader(c.in))
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("err %v, want it to contain %q", err, c.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(c.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestReadScores(t *testing.T) {
	got, err := ReadScores(strings.NewReader("timestamp,value,anomaly_score,label\n2014-04-01 00:00:00,1,0.25,0\n2014-04-01 00:05:00,1,1,1\n"))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]float64{0.25, 1}, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	for in, wantErr := range map[string]string{
		"timestamp,value\n2014-04-01 00:00:00,1\n":                   `no "anomaly_score" column`,
		"timestamp,value,anomaly_score\n2014-04-01 00:00:00,1,nan\n": "NaN",
		"timestamp,value,anomaly_score\n2014-04-01 00:00:00,1,x\n":   "not a number",
		"": "empty file",
	} {
		if _, err := ReadScores(strings.NewReader(in)); err == nil || !strings.Contains(err.Error(), wantErr) {
			t.Errorf("ReadScores(%q): err %v, want %q", in, err, wantErr)
		}
	}
}

// writeCorpus lays out a small NAB corpus in dir: one file per category,
// with windows.
func writeCorpus(tb testing.TB, dir string, files map[string]string, labels string) {
	tb.Helper()
	for rel, body := range files {
		p := filepath.Join(dir, "data", rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			tb.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			tb.Fatal(err)
		}
	}
	if err := os.MkdirAll(filepath.Join(dir, "labels"), 0o755); err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, LabelsPath), []byte(labels), 0o644); err != nil {
		tb.Fatal(err)
	}
}

func series(n int) string {
	var b strings.Builder
	b.WriteString("timestamp,value\n")
	for i := range n {
		b.WriteString(t0.Add(time.Duration(i) * 5 * time.Minute).Format(time.DateTime))
		b.WriteString(",1\n")
	}
	return b.String()
}

func TestCorpusRoundTrip(t *testing.T) {
	dir := t.TempDir()
	w := t0.Add(50 * 5 * time.Minute).Format(time.DateTime)
	we := t0.Add(59 * 5 * time.Minute).Format(time.DateTime)
	writeCorpus(t, dir, map[string]string{"x/a.csv": series(100), "y/b.csv": series(80)},
		`{"x/a.csv": [["`+w+`.000000", "`+we+`.000000"]], "y/b.csv": [], "z/gone.csv": []}`)
	c, err := LoadCorpus(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Files) != 2 || c.Files[0].Path != "x/a.csv" || c.Files[1].Path != "y/b.csv" {
		t.Fatalf("files %v", c.Files)
	}
	if diff := cmp.Diff([]string{"z/gone.csv"}, c.Unused); diff != "" {
		t.Errorf("unused labels (-want +got):\n%s", diff)
	}
	s := Scores{"x/a.csv": make([]float64, 100), "y/b.csv": make([]float64, 80)}
	s["x/a.csv"][50] = 0.75
	res := filepath.Join(dir, "results")
	if err := c.WriteResults(res, "mine", s); err != nil {
		t.Fatal(err)
	}
	// A second detector, gzip-compressed as in NAB's repository.
	raw, err := os.ReadFile(filepath.Join(res, "mine", "x", "mine_a.csv"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(raw, []byte(w+",1,0.75,1\n")) {
		t.Errorf("results file lacks the labelled detection row:\n%s", raw)
	}
	for _, rel := range []string{"x/a.csv", "y/b.csv"} {
		body, err := os.ReadFile(filepath.Join(res, filepath.FromSlash(ResultsPath("mine", rel))))
		if err != nil {
			t.Fatal(err)
		}
		var gz bytes.Buffer
		zw := gzip.NewWriter(&gz)
		zw.Write(body)
		zw.Close()
		p := filepath.Join(res, filepath.FromSlash(ResultsPath("zipped", rel))) + ".gz"
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, gz.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	dets, err := Detectors(res)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"mine", "zipped"}, dets); diff != "" {
		t.Errorf("detectors (-want +got):\n%s", diff)
	}
	for _, det := range dets {
		back, err := c.LoadResults(res, det)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(s, back); diff != "" {
			t.Errorf("%s: scores after round trip (-want +got):\n%s", det, diff)
		}
		r, err := c.Score(back, Profiles()[0])
		if err != nil {
			t.Fatal(err)
		}
		if r.Score != 100 {
			t.Errorf("%s: a detection at the window's first row scores %v, want 100", det, r.Score)
		}
	}
}

func TestLoadCorpusErrors(t *testing.T) {
	for name, c := range map[string]struct {
		files   map[string]string
		labels  string
		wantErr string
	}{
		"no labels entry": {map[string]string{"x/a.csv": series(10)}, `{}`, "has no entry"},
		"bad labels":      {map[string]string{"x/a.csv": series(10)}, `[`, "read"},
		"no data":         {map[string]string{}, `{}`, "no data files"},
		"bad data":        {map[string]string{"x/a.csv": "timestamp,value\nnope,1\n"}, `{"x/a.csv": []}`, "x/a.csv"},
		"window outside":  {map[string]string{"x/a.csv": series(10)}, `{"x/a.csv": [["2020-01-01 00:00:00", "2020-01-02 00:00:00"]]}`, "holds no sample"},
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			writeCorpus(t, dir, c.files, c.labels)
			if name == "no data" {
				os.MkdirAll(filepath.Join(dir, "data"), 0o755)
			}
			_, err := LoadCorpus(dir)
			if err == nil || !strings.Contains(err.Error(), c.wantErr) {
				t.Fatalf("err %v, want it to contain %q", err, c.wantErr)
			}
		})
	}
	// A directory that is no corpus says where a corpus comes from.
	if _, err := LoadCorpus(t.TempDir()); err == nil || !strings.Contains(err.Error(), "no NAB corpus at") || !strings.Contains(err.Error(), KitEnv) {
		t.Errorf("empty dir: err %v, want it to say what a corpus is and %s", err, KitEnv)
	}
}

func FuzzReadData(f *testing.F) {
	f.Add("timestamp,value\n2014-04-01 00:00:00,1.5\n2014-04-01 00:05:00,-2\n")
	f.Add("timestamp,value\n2014-04-01 00:00:00,1\n2014-04-01 00:00:00,1\n")
	f.Add("value,timestamp,extra\n1,2014-04-01 00:00:00.5,x\n")
	f.Add("timestamp,value\n\"2014\n")
	f.Add("")
	f.Fuzz(func(t *testing.T, in string) {
		ts, vs, err := ReadData(strings.NewReader(in))
		if err != nil {
			return
		}
		if len(ts) == 0 || len(ts) != len(vs) {
			t.Fatalf("%d times, %d values", len(ts), len(vs))
		}
	})
}

func FuzzReadWindows(f *testing.F) {
	f.Add(`{"a/b.csv": [["2014-04-01 00:00:00.000000", "2014-04-02 00:00:00.000000"]], "a/c.csv": []}`)
	f.Add(`{"a": [["2014-04-01 00:00:00", "2014-04-01 00:00:00"], ["2014-04-03 00:00:00", "2014-04-04 00:00:00"]]}`)
	f.Add(`{"a": [[]]}`)
	f.Add(`null`)
	f.Fuzz(func(t *testing.T, in string) {
		ws, err := ReadWindows(strings.NewReader(in))
		if err != nil {
			return
		}
		for p, list := range ws {
			for i, w := range list {
				if w.End.Before(w.Start) || (i > 0 && !w.Start.After(list[i-1].End)) {
					t.Fatalf("%s: window %d out of order: %v", p, i, list)
				}
			}
		}
	})
}

func FuzzReadScores(f *testing.F) {
	f.Add("timestamp,value,anomaly_score,label\n2014-04-01 00:00:00,1,0.25,0\n")
	f.Add("anomaly_score\n1e308\n-0\n")
	f.Add("anomaly_score\nNaN\n")
	f.Fuzz(func(t *testing.T, in string) {
		s, err := ReadScores(strings.NewReader(in))
		if err != nil {
			return
		}
		for _, v := range s {
			if v != v {
				t.Fatal("NaN score accepted")
			}
		}
	})
}
