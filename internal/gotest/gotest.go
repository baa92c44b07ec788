// Package gotest runs `go test -json` and reports as it goes, for the
// magefile's test targets: a line per package as it finishes, a line per
// test that took long (so a slow package shows it is alive), the whole
// output of every test that failed and of every build that broke, and at
// the end the list of skipped tests, each with the reason it gave. Plain
// `go test` without -v says nothing of skips; in CI a missing dependency
// fails instead (see internal/testenv), so there the list is empty.
package gotest

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"time"
)

// Slow is how long a test must take for its pass to be reported on its
// own line.
const Slow = 10 * time.Second

// event is one line of `go test -json` (cmd/test2json's TestEvent, plus
// the build events of go test -json since Go 1.24).
type event struct {
	Action     string
	Package    string
	ImportPath string
	Test       string
	Elapsed    float64
	Output     string
}

// Skip is a skipped test and the reason it logged.
type Skip struct {
	Package, Test, Reason string
}

// Report is what a run found.
type Report struct {
	Packages, Failed int
	Skipped          []Skip
}

// Options say where and how to run.
type Options struct {
	// Dir is the directory to run in; the current one when empty.
	Dir string
	// Verbose streams every line the tests write, as go test -v does,
	// for a long test whose log is its progress.
	Verbose bool
}

// Run runs `go test -json` with args, writes progress to w as events
// arrive, and returns what it saw. The error is go test's own (a failing
// test, a broken build).
func Run(o Options, w io.Writer, args ...string) (Report, error) {
	cmd := exec.Command("go", append([]string{"test", "-json"}, args...)...)
	cmd.Dir = o.Dir
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return Report{}, err
	}
	if err := cmd.Start(); err != nil {
		return Report{}, err
	}
	rep, rerr := Read(out, w, o.Verbose)
	werr := cmd.Wait()
	if rerr != nil {
		return rep, rerr
	}
	return rep, werr
}

// Read consumes a `go test -json` stream, reporting to w as it goes (every
// line of output when verbose); it ends with the skipped tests.
func Read(r io.Reader, w io.Writer, verbose bool) (Report, error) {
	var rep Report
	// Output of tests still running, by package and test (the
	// package's own output under "").
	output := map[[2]string][]string{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		line := sc.Bytes()
		var e event
		if err := json.Unmarshal(line, &e); err != nil || e.Action == "" {
			// Not an event: go test's own words (a vet or setup failure).
			fmt.Fprintf(w, "%s\n", line)
			continue
		}
		key := [2]string{e.Package, e.Test}
		switch e.Action {
		case "build-output":
			fmt.Fprint(w, e.Output)
		case "output":
			output[key] = append(output[key], e.Output)
			if verbose {
				fmt.Fprint(w, e.Output)
			}
		case "skip":
			if e.Test == "" {
				// A package without test files.
				delete(output, key)
				continue
			}
			rep.Skipped = append(rep.Skipped, Skip{Package: e.Package, Test: e.Test, Reason: skipReason(output[key])})
			delete(output, key)
		case "pass":
			if e.Test == "" {
				rep.Packages++
				fmt.Fprintf(w, "ok   %s %.1fs\n", e.Package, e.Elapsed)
			} else if !strings.Contains(e.Test, "/") && e.Elapsed >= Slow.Seconds() {
				fmt.Fprintf(w, "     %s %s passed in %.0fs\n", e.Package, e.Test, e.Elapsed)
			}
			delete(output, key)
		case "fail":
			if e.Test == "" {
				rep.Packages++
				// The package's own output says why when no test did
				// (a panic outside a test, a timeout, a broken build).
				for _, l := range output[key] {
					if t := strings.TrimSpace(l); !verbose && t != "FAIL" && t != "PASS" && !strings.HasPrefix(t, "FAIL\t") {
						fmt.Fprint(w, l)
					}
				}
				fmt.Fprintf(w, "FAIL %s %.1fs\n", e.Package, e.Elapsed)
			} else {
				rep.Failed++
				for _, l := range output[key] {
					if !verbose { // else shown already
						fmt.Fprint(w, l)
					}
				}
			}
			delete(output, key)
		}
	}
	if err := sc.Err(); err != nil {
		return rep, fmt.Errorf("read go test -json: %w", err)
	}
	slices.SortFunc(rep.Skipped, func(a, b Skip) int {
		return strings.Compare(a.Package+" "+a.Test, b.Package+" "+b.Test)
	})
	rep.WriteSkipped(w)
	return rep, nil
}

// WriteSkipped writes how many packages ran and the skipped tests with
// their reasons.
func (rep Report) WriteSkipped(w io.Writer) {
	if len(rep.Skipped) == 0 {
		fmt.Fprintf(w, "%s, no test skipped\n", plural(rep.Packages, "package"))
		return
	}
	fmt.Fprintf(w, "%s; %s skipped:\n", plural(rep.Packages, "package"), plural(len(rep.Skipped), "test"))
	for _, s := range rep.Skipped {
		fmt.Fprintf(w, "  %s %s: %s\n", s.Package, s.Test, s.Reason)
	}
}

// Add adds another run's report to rep.
func (rep *Report) Add(o Report) {
	rep.Packages += o.Packages
	rep.Failed += o.Failed
	rep.Skipped = append(rep.Skipped, o.Skipped...)
}

// skipReason is what a skipped test logged: its output without the run and
// result headers, on one line.
func skipReason(lines []string) string {
	var parts []string
	for _, l := range lines {
		t := strings.TrimSpace(l)
		if t == "" || strings.HasPrefix(t, "=== ") || strings.HasPrefix(t, "--- SKIP") {
			continue
		}
		parts = append(parts, t)
	}
	if len(parts) == 0 {
		return "no reason given"
	}
	return strings.Join(parts, " ")
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

// LineWriter writes whole lines to w, each with prefix before it: the
// output of one of several runs that share a terminal, told apart and never
// cut into by the others' lines. Close writes what is left of a last line.
type LineWriter struct {
	mu     sync.Mutex
	w      io.Writer
	prefix string
	buf    []byte
}

// NewLineWriter returns a LineWriter to w.
func NewLineWriter(w io.Writer, prefix string) *LineWriter {
	return &LineWriter{w: w, prefix: prefix}
}

func (lw *LineWriter) Write(p []byte) (int, error) {
	lw.mu.Lock()
	defer lw.mu.Unlock()
	lw.buf = append(lw.buf, p...)
	for {
		i := bytes.IndexByte(lw.buf, '\n')
		if i < 0 {
			return len(p), nil
		}
		// One write per line, prefix included: a write of a line is not
		// split by another writer's.
		line := append([]byte(lw.prefix), lw.buf[:i+1]...)
		if _, err := lw.w.Write(line); err != nil {
			return len(p), err
		}
		lw.buf = lw.buf[i+1:]
	}
}

// Close writes the last line if it had no newline.
func (lw *LineWriter) Close() error {
	lw.mu.Lock()
	defer lw.mu.Unlock()
	if len(lw.buf) == 0 {
		return nil
	}
	_, err := lw.w.Write(append(append([]byte(lw.prefix), lw.buf...), '\n'))
	lw.buf = nil
	return err
}
