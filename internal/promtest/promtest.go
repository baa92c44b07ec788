// Package promtest runs a real Prometheus server for tests: the binary from
// $TELLTALE_PROMETHEUS or PATH, its own storage directory, a loopback port,
// and helpers to query it over the HTTP API. It can be stopped and started
// again on the same address and storage, as an outage would.
package promtest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/api"
	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"

	"github.com/telltale-dev/telltale/internal/benchkit"
	"github.com/telltale-dev/telltale/internal/testenv"
)

// Options say how to run the server.
type Options struct {
	// Config is the prometheus.yml content. "{{.Dir}}" is not expanded: write
	// paths as the caller knows them.
	Config string
	// Args are extra command-line flags.
	Args []string
}

// Server is a running Prometheus.
type Server struct {
	// URL is the server's base URL, e.g. http://127.0.0.1:41234.
	URL string
	// Dir holds the config file and the TSDB.
	Dir string
	// API is a client for the HTTP API.
	API promv1.API

	tb        testing.TB
	bin       string
	cfg, tsdb string
	addr      string
	args      []string

	mu   sync.Mutex
	proc *benchkit.Process
	logs *benchkit.Output
}

// Binary returns the prometheus binary the tests use.
func Binary(tb testing.TB) string {
	tb.Helper()
	return testenv.Binary(tb, "prometheus", "TELLTALE_PROMETHEUS")
}

// Promtool returns the promtool binary the tests use.
func Promtool(tb testing.TB) string {
	tb.Helper()
	return testenv.Binary(tb, "promtool", "TELLTALE_PROMTOOL")
}

// Start writes the config and starts Prometheus, waiting until it is ready.
// The server is stopped when the test ends; its logs are printed if the
// test failed.
func Start(tb testing.TB, opts Options) *Server {
	tb.Helper()
	bin := Binary(tb)
	dir := tb.TempDir()
	cfg := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfg, []byte(opts.Config), 0o644); err != nil {
		tb.Fatal(err)
	}
	addr := testenv.FreeAddr(tb)
	s := &Server{
		URL:  "http://" + addr,
		Dir:  dir,
		tb:   tb,
		bin:  bin,
		cfg:  cfg,
		tsdb: filepath.Join(dir, "data"),
		addr: addr,
		args: opts.Args,
	}
	client, err := api.NewClient(api.Config{Address: s.URL})
	if err != nil {
		tb.Fatal(err)
	}
	s.API = promv1.NewAPI(client)
	tb.Cleanup(func() {
		s.Stop()
		if tb.Failed() {
			tb.Logf("prometheus logs:\n%s", s.Logs())
		}
	})
	s.Start()
	return s
}

// Start starts the server again after Stop, on the same address and storage.
func (s *Server) Start() {
	s.tb.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc != nil {
		return
	}
	s.logs = &benchkit.Output{}
	p, err := benchkit.StartPrometheus(context.Background(), s.bin, s.cfg, s.tsdb, s.addr, s.logs, 60*time.Second, s.args...)
	if err != nil {
		s.tb.Fatalf("start prometheus: %v", err)
	}
	s.proc = p
}

// Stop stops the server and waits for it to exit.
func (s *Server) Stop() { s.end((*benchkit.Process).Stop) }

// Kill kills the server at once, as a crash or the OOM killer would, and
// waits for it to exit; Start starts it again, recovering its storage.
func (s *Server) Kill() { s.end(func(p *benchkit.Process, _ time.Duration) { p.Kill() }) }

func (s *Server) end(how func(p *benchkit.Process, grace time.Duration)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc == nil {
		return
	}
	how(s.proc, 20*time.Second)
	s.proc = nil
}

// Logs returns what the server has printed since it was last started.
func (s *Server) Logs() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.logs == nil {
		return ""
	}
	return s.logs.String()
}

// Query evaluates an instant query now.
func (s *Server) Query(ctx context.Context, expr string) (model.Vector, error) {
	v, _, _, err := s.API.Query(ctx, expr, time.Now())
	if err != nil {
		return nil, fmt.Errorf("query %q: %w", expr, err)
	}
	vec, ok := v.(model.Vector)
	if !ok {
		return nil, fmt.Errorf("query %q: got %s, want a vector", expr, v.Type())
	}
	return vec, nil
}

// WaitFor polls an instant query until ok accepts its result or the timeout
// passes, and returns the last result. The test fails on timeout.
func (s *Server) WaitFor(expr string, timeout time.Duration, ok func(model.Vector) bool) model.Vector {
	s.tb.Helper()
	deadline := time.Now().Add(timeout)
	var (
		last model.Vector
		err  error
	)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		last, err = s.Query(ctx, expr)
		cancel()
		if err == nil && ok(last) {
			return last
		}
		if time.Now().After(deadline) {
			s.tb.Fatalf("%s: condition not met after %s; last result %v, error %v", expr, timeout, last, err)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// NonEmpty accepts any result with at least one sample.
func NonEmpty(v model.Vector) bool { return len(v) > 0 }
