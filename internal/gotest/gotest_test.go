package gotest

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// TestRun runs go test on a module of its own whose tests pass, skip with a
// reason, skip a subtest, fail, and whose second package has no tests.
func TestRun(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("go.mod", "module example.com/m\n\ngo 1.26\n")
	write("a/a_test.go", `package a

import "testing"

func TestPasses(t *testing.T) { t.Log("fine") }

func TestNeedsRoot(t *testing.T) { t.Skip("needs root") }

func TestParts(t *testing.T) {
	t.Run("one", func(t *testing.T) {})
	t.Run("two", func(t *testing.T) { t.Skipf("no %s here", "IPv6") })
}

func TestBreaks(t *testing.T) {
	t.Log("what was seen")
	t.Error("1 is not 2")
}
`)
	write("b/b.go", "package b\n")
	var out strings.Builder
	rep, err := Run(Options{Dir: dir}, &out, "-count=1", "./...")
	if err == nil {
		t.Errorf("Run: no error, want go test's failure")
	}
	got := out.String()
	t.Logf("report:\n%s", got)
	if rep.Failed != 1 || rep.Packages != 1 {
		t.Errorf("failed %d tests in %d packages, want 1 in 1", rep.Failed, rep.Packages)
	}
	want := []Skip{
		{"example.com/m/a", "TestNeedsRoot", "a_test.go:7: needs root"},
		{"example.com/m/a", "TestParts/two", "a_test.go:11: no IPv6 here"},
	}
	if len(rep.Skipped) != len(want) {
		t.Fatalf("skipped %+v, want %+v", rep.Skipped, want)
	}
	for i, s := range want {
		if rep.Skipped[i] != s {
			t.Errorf("skip %d = %+v, want %+v", i, rep.Skipped[i], s)
		}
	}
	for _, line := range []string{
		"what was seen", "1 is not 2", // the failed test's output, whole
		"FAIL example.com/m/a",
		"2 tests skipped:",
		"  example.com/m/a TestNeedsRoot: a_test.go:7: needs root",
	} {
		if !strings.Contains(got, line) {
			t.Errorf("report lacks %q", line)
		}
	}
	if strings.Contains(got, "fine") {
		t.Errorf("report shows a passing test's log")
	}
}

// TestBuildFailure: a package that does not compile shows the compiler's
// words.
func TestBuildFailure(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module example.com/m\n\ngo 1.26\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "x_test.go"), []byte("package m\n\nimport \"testing\"\n\nfunc TestX(t *testing.T) { undefinedThing() }\n"), 0o644)
	var out strings.Builder
	if _, err := Run(Options{Dir: dir}, &out, "."); err == nil {
		t.Errorf("Run: no error for a broken build")
	}
	if !strings.Contains(out.String(), "undefined: undefinedThing") {
		t.Errorf("report lacks the compiler's error:\n%s", out.String())
	}
}

// TestVerbose streams what the tests log and still finds the skip reasons.
func TestVerbose(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module example.com/m\n\ngo 1.26\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "x_test.go"), []byte("package m\n\nimport \"testing\"\n\nfunc TestLogs(t *testing.T) { t.Log(\"step one done\") }\n\nfunc TestSkips(t *testing.T) { t.Skip(\"no chromium\") }\n"), 0o644)
	var out strings.Builder
	rep, err := Run(Options{Dir: dir, Verbose: true}, &out, "-count=1", ".")
	if err != nil {
		t.Fatalf("Run: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "step one done") {
		t.Errorf("verbose report lacks a passing test's log:\n%s", out.String())
	}
	if len(rep.Skipped) != 1 || !strings.HasSuffix(rep.Skipped[0].Reason, "no chromium") {
		t.Errorf("skipped %+v, want TestSkips with its reason", rep.Skipped)
	}
}

// TestDeadlineRace tells the fuzzing coordinator's deadline race (the
// output of a failed CI run) from real failures.
func TestDeadlineRace(t *testing.T) {
	race := "fuzz: elapsed: 3s, execs: 10397 (3459/sec), new interesting: 0 (total: 24)\n" +
		"fuzz: elapsed: 4s, execs: 10397 (0/sec), new interesting: 0 (total: 24)\n" +
		"--- FAIL: FuzzStreamedBody (4.02s)\n    context deadline exceeded\nFAIL\nexit status 1\n"
	crash := "--- FAIL: FuzzStreamedBody (0.21s)\n    --- FAIL: FuzzStreamedBody (0.00s)\n" +
		"        testing.go:1: panic: index out of range\n\n" +
		"    Failing input written to testdata/fuzz/FuzzStreamedBody/0a1b2c\n" +
		"    To re-run:\n    go test -run=FuzzStreamedBody/0a1b2c\nFAIL\n"
	both := "--- FAIL: FuzzStreamedBody (4.02s)\n    context deadline exceeded\n    frame.go:12: checksum mismatch\nFAIL\n"
	for _, c := range []struct {
		name, out string
		want      bool
	}{
		{"the race", race, true},
		{"a crash", crash, false},
		{"a deadline and a failure", both, false},
		{"another target's race", race, false},
		{"a build failure", "# pkg\n./x.go:1:1: syntax error\nFAIL\tpkg [build failed]\n", false},
	} {
		target := "FuzzStreamedBody"
		if c.name == "another target's race" {
			target = "FuzzOther"
		}
		if got := deadlineRace(c.out, target); got != c.want {
			t.Errorf("%s: deadlineRace = %v, want %v", c.name, got, c.want)
		}
	}
}

// TestLineWriter writes lines in pieces from two writers at once: every
// line comes out whole, with its writer's prefix, and a last line without
// a newline comes out on Close.
func TestLineWriter(t *testing.T) {
	var mu sync.Mutex
	var out strings.Builder
	sink := writerFunc(func(p []byte) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		return out.Write(p)
	})
	a, b := NewLineWriter(sink, "a| "), NewLineWriter(sink, "b| ")
	var wg sync.WaitGroup
	for _, w := range []*LineWriter{a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				// A line in three writes, the newline in the last.
				fmt.Fprintf(w, "line %d ", i)
				fmt.Fprint(w, "of 200")
				fmt.Fprint(w, "\n")
			}
			fmt.Fprint(w, "tail")
		}()
	}
	wg.Wait()
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	for _, line := range strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n") {
		prefix, rest, ok := strings.Cut(line, "| ")
		if !ok || (prefix != "a" && prefix != "b") {
			t.Fatalf("line %q has no writer's prefix", line)
		}
		if rest != "tail" && !strings.HasSuffix(rest, " of 200") {
			t.Fatalf("line %q was cut into", line)
		}
		seen[prefix]++
	}
	if seen["a"] != 201 || seen["b"] != 201 {
		t.Errorf("lines per writer %v, want 201 each (200 and the tail)", seen)
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }
