// Package cortex builds and runs a real Cortex (Apache-2.0), the distributed
// Prometheus store, as one process with local storage: what the detector's
// sharding is tested against (a store whose remote read answers sampled
// responses and needs a tenant header).
//
// Cortex is built from the Go module proxy into a cache directory keyed by
// its version, outside the project's go.mod (its module has replace
// directives, which `go install module@version` refuses, and a thousand
// dependencies the project must not take on): the first build takes about
// eight minutes on two cores and 1.8 GB of module cache, later ones none.
package cortex

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/telltale-dev/telltale/internal/benchkit"
)

const (
	// Module and Version are the Cortex the project tests against.
	Module  = "github.com/cortexproject/cortex"
	Version = "v1.21.1"
	// EnvBinary names a Cortex binary to use instead of the cached build.
	EnvBinary = "TELLTALE_CORTEX"
	// TenantHeader carries the tenant of every request to a Cortex with
	// authentication on.
	TenantHeader = "X-Scope-OrgID"
)

// CachePath is where Build puts the binary: the user's cache directory
// (or $XDG_CACHE_HOME), telltale/cortex-<version>/cortex.
func CachePath() (string, error) {
	dir, err := os.UserCacheDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, "telltale", "cortex-"+Version, "cortex"), nil
}

// Binary returns the Cortex binary to run: $TELLTALE_CORTEX when set, else
// the cached build if there is one, else an error saying how to get one.
func Binary() (string, error) {
	if p := os.Getenv(EnvBinary); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("%s=%s: %w", EnvBinary, p, err)
		}
		return p, nil
	}
	p, err := CachePath()
	if err != nil {
		return "", err
	}
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("no Cortex %s at %s: `go tool mage cortexBuild` builds it (about eight minutes), or set %s", Version, p, EnvBinary)
	}
	return p, nil
}

// Build builds Cortex into CachePath unless it is there already, logging
// to w, and returns its path. goCmd is the go command.
func Build(goCmd string, w io.Writer) (string, error) {
	out, err := CachePath()
	if err != nil {
		return "", err
	}
	if _, err := os.Stat(out); err == nil {
		return out, nil
	}
	fmt.Fprintf(w, "building Cortex %s into %s (once; about eight minutes)\n", Version, out)
	// The module's source, from the proxy, built as the main module
	// so that its replace directives apply.
	dl := exec.Command(goCmd, "mod", "download", "-json", Module+"@"+Version)
	dl.Env = append(os.Environ(), "GOWORK=off")
	dl.Dir = os.TempDir()
	js, err := dl.Output()
	if err != nil {
		return "", fmt.Errorf("go mod download %s@%s: %w", Module, Version, exitDetail(err))
	}
	var mod struct{ Dir, Error string }
	if err := json.Unmarshal(js, &mod); err != nil || mod.Dir == "" {
		return "", fmt.Errorf("go mod download %s@%s: %s %v", Module, Version, mod.Error, err)
	}
	tmp := out + ".tmp"
	// Cortex's own build tags (its Makefile's): without slicelabels its
	// ingester misreads Prometheus's labels and panics on the first push.
	build := exec.Command(goCmd, "build", "-mod=mod", "-trimpath", "-tags=netgo,slicelabels", "-o", tmp, "./cmd/cortex")
	build.Dir = mod.Dir
	build.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=mod", "CGO_ENABLED=0")
	build.Stdout, build.Stderr = w, w
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return "", err
	}
	began := time.Now()
	if err := build.Run(); err != nil {
		return "", fmt.Errorf("build Cortex %s: %w", Version, err)
	}
	if err := os.Rename(tmp, out); err != nil {
		return "", err
	}
	fmt.Fprintf(w, "built Cortex %s in %s\n", Version, time.Since(began).Round(time.Second))
	return out, nil
}

func exitDetail(err error) error {
	var ee *exec.ExitError
	if errors.As(err, &ee) && len(ee.Stderr) > 0 {
		return fmt.Errorf("%w: %s", err, bytes.TrimSpace(ee.Stderr))
	}
	return err
}

// Server is a running single-process Cortex.
type Server struct {
	// URL is its HTTP base URL.
	URL  string
	proc *benchkit.Process
	log  *benchkit.Output
}

// Config is the single-process configuration of a Cortex with local
// storage under dir, serving HTTP on httpAddr and gRPC on grpcPort, with
// authentication on (every request names its tenant). Everything it keeps
// is in memory or under dir.
func Config(dir, httpAddr string, grpcPort int) (string, error) {
	host, port, ok := strings.Cut(httpAddr, ":")
	if !ok {
		return "", fmt.Errorf("address %q: want host:port", httpAddr)
	}
	for _, d := range []string{"tsdb", "sync", "blocks", "compactor", "rules", "alerts"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return "", err
		}
	}
	return fmt.Sprintf(`auth_enabled: true
server:
  http_listen_address: %[2]s
  http_listen_port: %[3]s
  grpc_listen_address: %[2]s
  grpc_listen_port: %[4]d
  log_level: warn
distributor:
  shard_by_all_labels: true
  pool:
    health_check_ingesters: true
  ring:
    instance_addr: %[2]s
    kvstore:
      store: inmemory
ingester:
  lifecycler:
    address: %[2]s
    min_ready_duration: 0s
    final_sleep: 0s
    num_tokens: 64
    ring:
      kvstore:
        store: inmemory
      replication_factor: 1
blocks_storage:
  backend: filesystem
  filesystem:
    dir: %[1]s/blocks
  tsdb:
    dir: %[1]s/tsdb
  bucket_store:
    sync_dir: %[1]s/sync
compactor:
  data_dir: %[1]s/compactor
  sharding_ring:
    instance_addr: %[2]s
    kvstore:
      store: inmemory
store_gateway:
  sharding_ring:
    instance_addr: %[2]s
    kvstore:
      store: inmemory
frontend_worker:
  match_max_concurrent: true
ruler:
  ring:
    instance_addr: %[2]s
    kvstore:
      store: inmemory
ruler_storage:
  backend: local
  local:
    directory: %[1]s/rules
alertmanager:
  external_url: http://%[2]s/alertmanager
  sharding_ring:
    instance_addr: %[2]s
    kvstore:
      store: inmemory
alertmanager_storage:
  backend: local
  local:
    path: %[1]s/alerts
`, dir, host, port, grpcPort), nil
}

// Start starts Cortex with the configuration of Config and waits until it
// is ready.
func Start(ctx context.Context, bin, dir, httpAddr string, grpcPort int) (*Server, error) {
	cfg, err := Config(dir, httpAddr, grpcPort)
	if err != nil {
		return nil, err
	}
	path := filepath.Join(dir, "cortex.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		return nil, err
	}
	s := &Server{URL: "http://" + httpAddr, log: &benchkit.Output{}}
	cmd := exec.Command(bin, "-config.file="+path, "-target=all")
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = s.log, s.log
	if s.proc, err = benchkit.StartCmd(cmd, false); err != nil {
		return nil, err
	}
	if err := s.proc.WaitHTTP(ctx, s.URL+"/ready", 2*time.Minute); err != nil {
		s.Stop()
		return nil, fmt.Errorf("cortex: %w\n%s", err, s.log)
	}
	return s, nil
}

// Logs returns what Cortex has written.
func (s *Server) Logs() string { return s.log.String() }

// Stop stops Cortex (SIGTERM, then SIGKILL after 20 s) and waits for it.
func (s *Server) Stop() { s.proc.Stop(20 * time.Second) }

// PushURL is where Prometheus remote-writes.
func (s *Server) PushURL() string { return s.URL + "/api/v1/push" }

// ReadURL is Cortex's remote-read endpoint, under its Prometheus API prefix.
func (s *Server) ReadURL() string { return s.URL + "/prometheus/api/v1/read" }

// Series returns the label sets of the series of tenant matching the
// selector with a sample in [start, end], from Cortex's Prometheus API.
func (s *Server) Series(ctx context.Context, tenant, selector string, start, end time.Time) ([]map[string]string, error) {
	q := fmt.Sprintf("%s/prometheus/api/v1/series?match[]=%s&start=%d&end=%d", s.URL, url.QueryEscape(selector), start.Unix(), end.Unix())
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, q, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set(TenantHeader, tenant)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("cortex series: %s: %s", resp.Status, body)
	}
	var ans struct{ Data []map[string]string }
	if err := json.Unmarshal(body, &ans); err != nil {
		return nil, fmt.Errorf("cortex series: %w", err)
	}
	return ans.Data, nil
}
