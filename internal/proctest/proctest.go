// Package proctest runs the real programs that tests need — Telltale's own
// commands built once per test binary, small stand-in services — as child
// processes in process groups of their own, so that a test's end, or the
// test binary's death, takes every one of them down.
package proctest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/telltale-dev/telltale/internal/benchkit"
	"github.com/telltale-dev/telltale/internal/testenv"
)

// Build runs `go build -o out args...` (args: flags, then the package) and
// returns its output with the error when it fails. It takes no testing.TB,
// so TestMain can call it.
func Build(out string, args ...string) error {
	cmd := exec.Command("go", append([]string{"build", "-o", out}, args...)...)
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build -o %s %v: %w\n%s", out, args, err, b)
	}
	return nil
}

// Builds builds packages into one directory, each once per test binary.
type Builds struct {
	// Dir is where the binaries go; the caller removes it.
	Dir string

	mu   sync.Mutex
	done map[string]error
}

// Get returns the path of name in Dir, building it from args (flags, then
// the package) the first time it is asked for.
func (b *Builds) Get(tb testing.TB, name string, args ...string) string {
	tb.Helper()
	testenv.Live(tb)
	b.mu.Lock()
	defer b.mu.Unlock()
	out := filepath.Join(b.Dir, name)
	if b.done == nil {
		b.done = map[string]error{}
	}
	err, ok := b.done[name]
	if !ok {
		err = Build(out, args...)
		b.done[name] = err
	}
	if err != nil {
		tb.Fatal(err)
	}
	return out
}

// Process is a child process a test started: a benchkit.Process (its own
// process group, killed with the test binary) whose standard error is
// kept.
type Process struct {
	*benchkit.Process
	stderr *benchkit.Output
}

// Start runs name with args in dir (the test's directory when empty), in a
// process group of its own. Its standard error is kept and shown when the
// test fails; the group is stopped when the test ends.
func Start(tb testing.TB, dir, name string, args ...string) *Process {
	tb.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	return StartCmd(tb, cmd)
}

// StartCmd is Start for a command the caller prepared (credentials,
// environment); its process-group settings are added to the caller's.
func StartCmd(tb testing.TB, cmd *exec.Cmd) *Process {
	tb.Helper()
	testenv.Live(tb)
	p := &Process{stderr: &benchkit.Output{}}
	cmd.Stderr = p.stderr
	bp, err := benchkit.StartCmd(cmd, true)
	if err != nil {
		tb.Fatal(err)
	}
	p.Process = bp
	tb.Cleanup(func() {
		p.Stop()
		if tb.Failed() {
			tb.Logf("%s standard error:\n%s", filepath.Base(cmd.Path), p.stderr.String())
		}
	})
	return p
}

// Output is what the process has written to its standard error.
func (p *Process) Output() string { return p.stderr.String() }

// Stop asks the process group to end (SIGTERM) and kills it after 10 s.
func (p *Process) Stop() { p.Process.Stop(10 * time.Second) }

// ReadLine reads one line of the process's standard output, without its
// end of line.
func (p *Process) ReadLine(tb testing.TB) string {
	tb.Helper()
	l, err := p.Stdout.ReadString('\n')
	if err != nil {
		tb.Fatalf("read from %s: %v\n%s", filepath.Base(p.Cmd.Path), err, p.Output())
	}
	return l[:len(l)-1]
}

// WaitHTTP waits until url answers 200, failing the test after timeout or
// when p (if not nil) exits first.
func WaitHTTP(tb testing.TB, url string, timeout time.Duration, p *Process) {
	tb.Helper()
	if p == nil {
		if err := benchkit.WaitHTTP(tb.Context(), url, timeout, nil); err != nil {
			tb.Fatal(err)
		}
		return
	}
	if err := p.Process.WaitHTTP(tb.Context(), url, timeout); err != nil {
		tb.Fatalf("%v\n%s", err, p.Output())
	}
}

// Deploy copies an executable over dst the way a deploy does: a new file
// renamed over the old, so a running process keeps its old executable.
func Deploy(src, dst string) error {
	data, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	tmp := dst + ".new"
	if err := os.WriteFile(tmp, data, 0o755); err != nil {
		return err
	}
	return os.Rename(tmp, dst)
}

// helpFlag matches a flag in kingpin's --help: "--name" or "--[no-]name".
var helpFlag = regexp.MustCompile(`^\s+(?:-\w, )?--(?:\[no-\])?([a-z0-9][a-z0-9.-]*)`)

// HelpFlags returns the flags a program's --help lists (kingpin's own help
// and version flags left out).
func HelpFlags(tb testing.TB, bin string) []string {
	tb.Helper()
	out, err := exec.Command(bin, "--help").CombinedOutput()
	if err != nil {
		tb.Fatalf("%s --help: %v\n%s", bin, err, out)
	}
	var flags []string
	for _, line := range strings.Split(string(out), "\n") {
		if m := helpFlag.FindStringSubmatch(line); m != nil && m[1] != "help" && m[1] != "help-long" && m[1] != "help-man" && m[1] != "version" {
			flags = append(flags, m[1])
		}
	}
	if len(flags) == 0 {
		tb.Fatalf("%s --help lists no flags:\n%s", bin, out)
	}
	return flags
}

// Undocumented returns the flags a document does not mention, as --name
// or --[no-]name.
func Undocumented(flags []string, doc string) []string {
	var out []string
	for _, f := range flags {
		if !strings.Contains(doc, "--"+f) && !strings.Contains(doc, "--[no-]"+f) {
			out = append(out, f)
		}
	}
	return out
}
