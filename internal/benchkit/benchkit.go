// Package benchkit holds what the benchmark programs (internal/bench, run
// by mage targets), the tests' helpers and the demo stack share: starting
// programs in a process group of their own (Prometheus among them),
// reading a process's CPU time and peak memory (prometheus/procfs), free
// loopback addresses, waiting for and reading HTTP endpoints, Go builds,
// outside programs and settings from the environment, medians. Unlike
// internal/proctest it needs no testing.TB: a benchmark is a program, and
// says what went wrong in its error.
package benchkit

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/procfs"
)

// CPUSeconds is the user and system CPU time pid has used, in seconds.
func CPUSeconds(pid int) (float64, error) {
	p, err := procfs.NewProc(pid)
	if err != nil {
		return 0, err
	}
	st, err := p.Stat()
	if err != nil {
		return 0, fmt.Errorf("CPU time of %d: %w", pid, err)
	}
	return st.CPUTime(), nil
}

// PeakRSS is the most resident memory pid has held (VmHWM), in bytes.
func PeakRSS(pid int) (float64, error) {
	p, err := procfs.NewProc(pid)
	if err != nil {
		return 0, err
	}
	st, err := p.NewStatus()
	if err != nil {
		return 0, fmt.Errorf("peak memory of %d: %w", pid, err)
	}
	if st.VmHWM == 0 {
		return 0, fmt.Errorf("peak memory of %d: no VmHWM (a kernel thread, or gone)", pid)
	}
	return float64(st.VmHWM), nil
}

// FreeAddr is a loopback address with a port that was free a moment ago,
// for programs that cannot be told to listen on port 0 and report it.
func FreeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// Process is a program started in a process group of its own, which the
// kernel kills if its starter dies first; stopping it stops whatever it
// started and nothing else. Tests (internal/proctest, internal/promtest),
// the demo stack, Cortex and the benchmarks all start programs through it.
type Process struct {
	Cmd *exec.Cmd
	// Stdout reads the program's standard output when it was started
	// piped (StartPiped, StartCmd); nil otherwise.
	Stdout *bufio.Reader

	done    chan struct{}
	waitErr error
}

// Start runs bin with args, its standard error going to the caller's.
func Start(bin string, args ...string) (*Process, error) {
	cmd := exec.Command(bin, args...)
	cmd.Stderr = os.Stderr
	return StartCmd(cmd, false)
}

// StartPiped is Start with the program's standard output readable through
// Process.Stdout (ports it chose, "ready" lines).
func StartPiped(bin string, args ...string) (*Process, error) {
	cmd := exec.Command(bin, args...)
	cmd.Stderr = os.Stderr
	return StartCmd(cmd, true)
}

// StartCmd starts a command the caller prepared (its directory,
// environment, where its output goes); the process-group settings are
// added to the caller's. With piped, Process.Stdout reads its standard
// output.
func StartCmd(cmd *exec.Cmd, piped bool) (*Process, error) {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Setpgid, cmd.SysProcAttr.Pdeathsig = true, syscall.SIGKILL
	p := &Process{Cmd: cmd, done: make(chan struct{})}
	if piped {
		out, err := cmd.StdoutPipe()
		if err != nil {
			return nil, err
		}
		p.Stdout = bufio.NewReader(out)
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", cmd.Path, err)
	}
	go func() { p.waitErr = cmd.Wait(); close(p.done) }()
	return p, nil
}

// Pid is the program's process id.
func (p *Process) Pid() int { return p.Cmd.Process.Pid }

// Running reports whether the program has not exited.
func (p *Process) Running() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// Wait waits for the program to exit and returns Cmd.Wait's error.
func (p *Process) Wait() error {
	<-p.done
	return p.waitErr
}

// WaitHTTP waits until url answers 200, as the package's WaitHTTP does,
// and fails at once, saying how, when the program exits first.
func (p *Process) WaitHTTP(ctx context.Context, url string, timeout time.Duration) error {
	return WaitHTTP(ctx, url, timeout, func() error {
		if p.Running() {
			return nil
		}
		how := "with status 0"
		if p.waitErr != nil {
			how = "(" + p.waitErr.Error() + ")"
		}
		return fmt.Errorf("%s exited %s before %s answered", filepath.Base(p.Cmd.Path), how, url)
	})
}

// ReadLine reads a line of the program's standard output, without its end.
func (p *Process) ReadLine() (string, error) {
	if p.Stdout == nil {
		return "", errors.New("the program was not started piped")
	}
	l, err := p.Stdout.ReadString('\n')
	return strings.TrimSpace(l), err
}

// Stop asks the program's process group to end (SIGTERM), kills it after
// grace, and waits for the program; what the program started and left in
// its group is killed too. It may be called more than once, and on nil.
func (p *Process) Stop(grace time.Duration) { p.signal(syscall.SIGTERM, grace) }

// Kill kills the program's process group at once, as a crash would, and
// waits for the program. It may be called more than once, and on nil.
func (p *Process) Kill() { p.signal(syscall.SIGKILL, 0) }

func (p *Process) signal(sig syscall.Signal, grace time.Duration) {
	if p == nil || p.Cmd == nil || p.Cmd.Process == nil {
		return
	}
	pgid := p.Cmd.Process.Pid
	_ = syscall.Kill(-pgid, sig)
	select {
	case <-p.done:
	case <-time.After(grace):
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		<-p.done
	}
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
}

// Output keeps what a program writes, safe to read while it writes.
type Output struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (o *Output) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.b.Write(p)
}

// String is everything written so far.
func (o *Output) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.b.String()
}

// WaitHTTP waits until url answers 200, polling every 100 ms with a 2 s
// timeout per request, for at most timeout. It stops early when ctx ends,
// or when gone (if not nil) returns an error: the program that should
// answer has exited, say. The error names the last answer or failure.
// Tests (internal/proctest), the demo stack and the benchmarks all wait
// through it.
func WaitHTTP(ctx context.Context, url string, timeout time.Duration, gone func() error) error {
	deadline := time.Now().Add(timeout)
	client := &http.Client{Timeout: 2 * time.Second}
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		resp, err := client.Do(req)
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("answered %s", resp.Status)
		}
		if gone != nil {
			if gerr := gone(); gerr != nil {
				return gerr
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not up after %s: %w", url, timeout, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Get reads url's body; an answer other than 200 is an error that quotes
// the start of the body.
func Get(url string) (string, error) {
	resp, err := http.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", fmt.Errorf("GET %s: %w", url, err)
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("GET %s: %s: %.200s", url, resp.Status, b)
	}
	return string(b), nil
}

// Samples reads the unlabelled samples of a text exposition ("name value"
// lines), by name: a program's own gauges and counters.
func Samples(exposition string) map[string]float64 {
	out := map[string]float64{}
	for line := range strings.Lines(exposition) {
		name, val, ok := strings.Cut(strings.TrimSpace(line), " ")
		if !ok || strings.HasPrefix(name, "#") || strings.Contains(name, "{") {
			continue
		}
		if v, err := strconv.ParseFloat(val, 64); err == nil {
			out[name] = v
		}
	}
	return out
}

// PrometheusFlags are the flags every Prometheus the project starts gets
// (tests, the demo stack, the benchmarks): its configuration file, its
// TSDB, its address, the lifecycle API (reload, quit) and warnings only,
// then extra. Each starter adds what it needs (remote-write receiving, a
// retention for imported blocks) in extra.
func PrometheusFlags(configFile, tsdb, addr string, extra ...string) []string {
	return append([]string{
		"--config.file=" + configFile,
		"--storage.tsdb.path=" + tsdb,
		"--web.listen-address=" + addr,
		"--web.enable-lifecycle",
		"--log.level=warn",
	}, extra...)
}

// PrometheusReady is the URL that answers 200 once the Prometheus at base
// (http://host:port) serves queries.
func PrometheusReady(base string) string { return base + "/-/ready" }

// StartPrometheus starts the Prometheus bin with the configuration file
// cfg and the storage tsdb on addr (PrometheusFlags, then extra), its
// output going to out, and waits at most timeout until it is ready. The
// error quotes the end of what it wrote when out is an *Output.
func StartPrometheus(ctx context.Context, bin, cfg, tsdb, addr string, out io.Writer, timeout time.Duration, extra ...string) (*Process, error) {
	cmd := exec.Command(bin, PrometheusFlags(cfg, tsdb, addr, extra...)...)
	cmd.Stdout, cmd.Stderr = out, out
	p, err := StartCmd(cmd, false)
	if err != nil {
		return nil, err
	}
	if err := p.WaitHTTP(ctx, PrometheusReady("http://"+addr), timeout); err != nil {
		p.Kill()
		if o, ok := out.(*Output); ok {
			err = fmt.Errorf("%w\n%s", err, lastBytes(o.String(), 4000))
		}
		return nil, err
	}
	return p, nil
}

// lastBytes is the end of s, at most n bytes of it.
func lastBytes(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

// GoCmd is the go command mage runs with ($MAGEFILE_GOCMD), else "go".
func GoCmd() string { return cmp.Or(os.Getenv("MAGEFILE_GOCMD"), "go") }

// GoBuild builds pkg into out, with the build flags given before it.
func GoBuild(out, pkg string, flags ...string) error {
	args := append(append([]string{"build", "-o", out}, flags...), pkg)
	cmd := exec.Command(GoCmd(), args...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go build %s: %w", pkg, err)
	}
	return nil
}

// LookBin is an outside program's path: $envVar when set, else name in
// PATH; the error says how to provide it.
func LookBin(name, envVar string) (string, error) {
	if p := os.Getenv(envVar); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("%s=%s: %w", envVar, p, err)
		}
		return p, nil
	}
	p, err := exec.LookPath(name)
	if err != nil {
		return "", fmt.Errorf("%s not found in PATH (install it, or set %s): %w", name, envVar, err)
	}
	return p, nil
}

// EnvInt reads a whole number no smaller than floor from the environment
// variable name; def when it is unset.
func EnvInt(name string, def, floor int) (int, error) {
	v := os.Getenv(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < floor {
		return 0, fmt.Errorf("%s=%q: want a whole number, at least %d", name, v, floor)
	}
	return n, nil
}

// Median is the middle of xs (the upper middle for an even count) by cmp;
// the zero value for none. xs is not changed.
func Median[T any](xs []T, cmp func(a, b T) int) T {
	var zero T
	if len(xs) == 0 {
		return zero
	}
	s := slices.Clone(xs)
	slices.SortFunc(s, cmp)
	return s[len(s)/2]
}
