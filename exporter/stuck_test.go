package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/common/promslog"

	"github.com/telltale-dev/telltale/exporter/collector"
)

// TestStuckScrapeIsRefused: a procfs whose stat file of one process is a
// FIFO (possible in a copied or fake tree) blocks the scan that reads it.
// Later scrapes are answered 503 once their X-Prometheus-Scrape-Timeout-
// Seconds is up, instead of queueing behind it for good; /-/healthy says a
// read of the procfs is stuck; and once the read returns, scrapes are
// served again.
func TestStuckScrapeIsRefused(t *testing.T) {
	root := filepath.Join(t.TempDir(), "proc")
	if out, err := exec.Command("cp", "-a", fixtureProc, root).CombinedOutput(); err != nil {
		t.Fatalf("copy the procfs fixture: %v: %s", err, out)
	}
	statPath := filepath.Join(root, "100", "stat")
	stat, err := os.ReadFile(statPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(statPath); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(statPath, 0o644); err != nil {
		t.Fatal(err)
	}
	h, closeFn, err := newHandler(collector.NewConfig(root), promslog.NewNopLogger(), handlerOptions{metricsPath: "/metrics", maxRequests: 40})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = closeFn() })
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	// Should the test fail with the scan still blocked, let it go, so
	// that the server can close (cleanups run last in, first out).
	t.Cleanup(func() {
		// A FIFO opened for reading and writing never blocks, and lets
		// a reader blocked in open go; the next scans read a regular
		// file.
		if f, err := os.OpenFile(statPath, os.O_RDWR, 0); err == nil {
			_ = os.WriteFile(statPath+".new", stat, 0o644)
			_ = os.Rename(statPath+".new", statPath)
			f.Close()
		}
	})
	get := func(path, timeout string) (int, string) {
		t.Helper()
		req, err := http.NewRequest(http.MethodGet, srv.URL+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		if timeout != "" {
			req.Header.Set("X-Prometheus-Scrape-Timeout-Seconds", timeout)
		}
		// A probe that got the lock before the stuck scrape would block
		// with it: the client's timeout fails the test instead.
		resp, err := (&http.Client{Timeout: 15 * time.Second}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}

	// The first scrape (no timeout: curl) blocks on the FIFO.
	first := make(chan int, 1)
	go func() {
		req, _ := http.NewRequest(http.MethodGet, srv.URL+"/metrics", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			first <- 0
			return
		}
		resp.Body.Close()
		first <- resp.StatusCode
	}()
	// It takes the exporter at once; give it time to reach the FIFO.
	time.Sleep(500 * time.Millisecond)
	var code int
	var body string
	for end := time.Now().Add(10 * time.Second); time.Now().Before(end); {
		start := time.Now()
		if code, body = get("/metrics", "0.5"); code == http.StatusServiceUnavailable {
			if took := time.Since(start); took > 3*time.Second {
				t.Errorf("a scrape with a 0.5 s timeout was refused after %s", took)
			}
			break
		}
	}
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "another scrape still holds the exporter") {
		t.Fatalf("scrape behind a stuck one: %d %q, want 503 saying another scrape holds the exporter", code, body)
	}
	for end := time.Now().Add(5 * time.Second); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
		if code, body = get("/-/healthy", ""); code == http.StatusServiceUnavailable {
			break
		}
	}
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "a read of the procfs is stuck") {
		t.Fatalf("/-/healthy while a scrape is stuck: %d %q, want 503 saying a read is stuck", code, body)
	}

	// The read returns; the stat file is a regular one from then on.
	f, err := os.OpenFile(statPath, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(stat); err != nil {
		t.Fatal(err)
	}
	f.Close()
	select {
	case code := <-first:
		if code != http.StatusOK {
			t.Errorf("the stuck scrape ended with %d, want 200", code)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the stuck scrape did not end after its read returned")
	}
	regular := statPath + ".new"
	if err := os.WriteFile(regular, stat, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(regular, statPath); err != nil {
		t.Fatal(err)
	}
	if code, body := get("/metrics", "5"); code != http.StatusOK || !strings.Contains(body, `service="nginx"`) {
		t.Errorf("scrape after the read returned: %d, want 200 with nginx's series", code)
	}
	if code, body := get("/-/healthy", ""); code != http.StatusOK {
		t.Errorf("/-/healthy after the read returned: %d %q, want 200", code, body)
	}
	if code, body := get("/metrics", "soon"); code != http.StatusBadRequest || !strings.Contains(body, "want a number of seconds") {
		t.Errorf("a scrape timeout of %q: %d %q, want 400 saying what it should be", "soon", code, body)
	}
}
