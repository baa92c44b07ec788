// Package proctest runs the real programs that tests need — Telltale's own
// commands built once per test binary, small stand-in services — as child
// processes in process groups of their own, so that a test's end, or the
// test binary's death, takes every one of them down.
package proctest

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
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

// Process is a child process a test started.
type Process struct {
	// Cmd is the running command.
	Cmd *exec.Cmd
	// Stdout reads what the process writes to its standard output (ports
	// it chose, "ready" lines).
	Stdout *bufio.Reader

	stderr *buffer
	done   chan struct{}
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
	name := cmd.Path
	p := &Process{Cmd: cmd, stderr: &buffer{}, done: make(chan struct{})}
	p.Cmd.Stderr = p.stderr
	if p.Cmd.SysProcAttr == nil {
		p.Cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	p.Cmd.SysProcAttr.Setpgid = true
	p.Cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	out, err := p.Cmd.StdoutPipe()
	if err != nil {
		tb.Fatal(err)
	}
	if err := p.Cmd.Start(); err != nil {
		tb.Fatalf("start %s: %v", name, err)
	}
	p.Stdout = bufio.NewReader(out)
	go func() { _ = p.Cmd.Wait(); close(p.done) }()
	tb.Cleanup(func() {
		p.Stop()
		if tb.Failed() {
			tb.Logf("%s standard error:\n%s", filepath.Base(name), p.stderr.String())
		}
	})
	return p
}

// Running reports whether the process has not exited.
func (p *Process) Running() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// Output is what the process has written to its standard error.
func (p *Process) Output() string { return p.stderr.String() }

// Stop asks the process group to end (SIGTERM) and kills it after 10 s.
func (p *Process) Stop() { p.signal(syscall.SIGTERM, 10*time.Second) }

// Kill kills the process group at once, as a crash would.
func (p *Process) Kill() { p.signal(syscall.SIGKILL, time.Minute) }

func (p *Process) signal(sig syscall.Signal, grace time.Duration) {
	if !p.Running() {
		return
	}
	_ = syscall.Kill(-p.Cmd.Process.Pid, sig)
	select {
	case <-p.done:
	case <-time.After(grace):
		_ = syscall.Kill(-p.Cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
	}
}

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
	err := benchkit.WaitHTTP(tb.Context(), url, timeout, func() error {
		if p != nil && !p.Running() {
			return fmt.Errorf("%s exited before %s answered:\n%s", p.Cmd.Path, url, p.Output())
		}
		return nil
	})
	if err != nil {
		tb.Fatal(err)
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

// buffer collects a child's output while the test reads it.
type buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *buffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *buffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
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
