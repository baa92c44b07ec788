package gotest

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// Fuzz runs the fuzz target of package pkg beyond its seed corpus for
// fuzztime, writing go test's output to w.
//
// Go's fuzzing coordinator before Go 1.27 can end a run that found nothing
// with a bare "context deadline exceeded" when -fuzztime expires while a
// worker is busy (go.dev/issue/75804: the deadline reaches the coordinator
// before its workers, and escapes the check meant to treat it as the
// normal end). A failing input is always written to the target's
// testdata/fuzz directory and named in the output; a run that failed only
// with that message and wrote nothing is run once more, and if the race
// strikes again it is said so and counted as passed.
func Fuzz(goCmd, pkg, target, fuzztime string, w io.Writer) error {
	dir, err := exec.Command(goCmd, "list", "-f", "{{.Dir}}", pkg).Output()
	if err != nil {
		return fmt.Errorf("go list %s: %w", pkg, err)
	}
	corpus := filepath.Join(strings.TrimSpace(string(dir)), "testdata", "fuzz", target)
	for attempt := 1; ; attempt++ {
		before := inputs(corpus)
		var out bytes.Buffer
		cmd := exec.Command(goCmd, "test", "-run", "^$", "-fuzz", "^"+target+"$", "-fuzztime", fuzztime, pkg)
		cmd.Stdout, cmd.Stderr = io.MultiWriter(w, &out), io.MultiWriter(w, &out)
		err := cmd.Run()
		if err == nil {
			return nil
		}
		if !deadlineRace(out.String(), target) || inputs(corpus) != before {
			return fmt.Errorf("%s in %s: %w", target, pkg, err)
		}
		fmt.Fprintf(w, "fuzz: %s ended with the fuzzing coordinator's deadline race (go.dev/issue/75804), no failing input written", target)
		if attempt == 2 {
			fmt.Fprintln(w, "; counted as passed")
			return nil
		}
		fmt.Fprintln(w, "; running it again")
	}
}

// deadlineRace reports whether go test's output of a fuzz run shows only
// the coordinator's deadline race: the target failed with nothing but
// "context deadline exceeded", and no failing input.
func deadlineRace(out, target string) bool {
	_, after, ok := strings.Cut(out, "--- FAIL: "+target+" (")
	if !ok || strings.Contains(out, "Failing input written to") {
		return false
	}
	// The failure's own lines, indented, up to the next unindented line.
	var reasons []string
	for _, l := range strings.Split(after, "\n")[1:] {
		if !strings.HasPrefix(l, "    ") {
			break
		}
		reasons = append(reasons, strings.TrimSpace(l))
	}
	return len(reasons) == 1 && reasons[0] == "context deadline exceeded"
}

// inputs names the files of a corpus directory, to tell whether a run
// wrote one.
func inputs(dir string) string {
	es, err := os.ReadDir(dir)
	if err != nil {
		return ""
	}
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
	}
	return strings.Join(names, "\n")
}
