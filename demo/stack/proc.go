package stack

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/telltale-dev/telltale/internal/benchkit"
)

// proc is a program the stack started (a benchkit.Process: a process
// group of its own, so that stopping it stops whatever it started and
// nothing else), with its output in a log file; it can be started again
// after it stopped.
type proc struct {
	name string
	path string
	args []string
	env  []string
	log  string // file the program's output goes to

	mu sync.Mutex
	p  *benchkit.Process
}

// start starts the program.
func (p *proc) start() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.p != nil {
		return fmt.Errorf("start %s: already running", p.name)
	}
	out, err := os.OpenFile(p.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("start %s: %w", p.name, err)
	}
	defer out.Close()
	cmd := exec.Command(p.path, p.args...)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.Env = append(os.Environ(), p.env...)
	bp, err := benchkit.StartCmd(cmd, false)
	if err != nil {
		return fmt.Errorf("start %s: %w", p.name, err)
	}
	p.p = bp
	return nil
}

// stop sends SIGTERM to the program's process group, then SIGKILL after
// grace, and waits for the program to exit.
func (p *proc) stop(grace time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.p.Stop(grace) // nil when not running: nothing to do
	p.p = nil
}

// pid is the program's process ID, 0 when it does not run.
func (p *proc) pid() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.p == nil {
		return 0
	}
	return p.p.Pid()
}

// waitHTTP waits until url answers 200, the program exits, or timeout.
func (p *proc) waitHTTP(ctx context.Context, url string, timeout time.Duration) error {
	p.mu.Lock()
	bp := p.p
	p.mu.Unlock()
	if bp == nil {
		return fmt.Errorf("%s is not running", p.name)
	}
	err := bp.WaitHTTP(ctx, url, timeout)
	if err == nil || ctx.Err() != nil {
		return err
	}
	return fmt.Errorf("%s: %w; end of %s:\n%s", p.name, err, p.log, tail(p.log, 2000))
}

// tail returns the last n bytes of a file.
func tail(path string, n int64) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return ""
	}
	off := max(st.Size()-n, 0)
	b := make([]byte, st.Size()-off)
	_, _ = f.ReadAt(b, off)
	return string(b)
}

// copyExecutable puts the executable src at dst as a new file (a new inode,
// renamed into place), so a running copy of dst keeps its old file and the
// next start runs the new one, as a deploy does.
func copyExecutable(src, dst string) error {
	b, err := os.ReadFile(src)
	if err != nil {
		return fmt.Errorf("read build %s: %w", src, err)
	}
	tmp := filepath.Join(filepath.Dir(dst), "."+filepath.Base(dst)+".new")
	if err := os.WriteFile(tmp, b, 0o755); err != nil {
		return fmt.Errorf("write %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, dst); err != nil {
		return fmt.Errorf("install %s: %w", dst, err)
	}
	return nil
}

// pickPort returns port if it is free on loopback, else (when fallback) a
// free port the kernel picks, else an error naming what holds it.
func pickPort(what string, port int, fallback bool) (int, error) {
	if port > 0 {
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		if err == nil {
			_ = l.Close()
			return port, nil
		}
		if !fallback {
			return 0, fmt.Errorf("%s: port %d is taken (%w); free it or choose another", what, port, err)
		}
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("%s: find a free port: %w", what, err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// errStopped is returned by operations on a stack that was closed.
var errStopped = errors.New("the stack is stopped")
