// Package chaos holds the probes of `go tool mage chaos`: Telltale's
// programs, built and run as a user runs them, under the abuse a host and a
// network give them — processes that come and go by the hundred each
// second, command lines with secrets in them, clients that send half a
// request or nothing, a procfs that blocks a read, a Prometheus killed
// under the detector, a remote-read endpoint that answers garbage, hostile
// queries sent to the plugin binary over Grafana's plugin protocol. Each
// probe is a test (build tag chaos, in this package) that measures what
// happened, fails when it did not hold, and appends its figure to the
// report file named by ReportEnv; the mage target prints the report as a
// table.
package chaos

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
)

// ReportEnv names the environment variable that holds the report file's
// path; probes append one JSON Result per line to it.
const ReportEnv = "TELLTALE_CHAOS_REPORT"

// Result is one probe's outcome.
type Result struct {
	Probe string `json:"probe"`
	// Figure says what was measured, with the numbers.
	Figure string `json:"figure"`
	Held   bool   `json:"held"`
}

// Append adds r to the report file at path.
func Append(path string, r Result) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	if err := json.NewEncoder(f).Encode(r); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// ReadReport reads the results a run appended to the file at path.
func ReadReport(path string) ([]Result, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []Result
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		var r Result
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			return nil, fmt.Errorf("%s: a line that is no result: %q: %w", path, line, err)
		}
		out = append(out, r)
	}
	return out, sc.Err()
}

// WriteTable prints the results as a table, probe, held or failed and
// figure, then one line of JSON with every result and the counts.
func WriteTable(w io.Writer, rs []Result) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "probe\toutcome\tfigure")
	held := 0
	for _, r := range rs {
		outcome := "FAILED"
		if r.Held {
			outcome, held = "held", held+1
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", r.Probe, outcome, r.Figure)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	b, err := json.Marshal(map[string]any{"probes": rs, "held": held, "failed": len(rs) - held})
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "%s\n", b)
	return err
}
