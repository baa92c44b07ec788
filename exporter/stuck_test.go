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
	srv, statPath, stat := stuckExporter(t)
	get := func(path, timeout string) (int, string) {
		t.Helper()
		return getWithTimeout(t, srv.URL+path, timeout)
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
	letRead(t, statPath, stat)
	select {
	case code := <-first:
		if code != http.StatusOK {
			t.Errorf("the stuck scrape ended with %d, want 200", code)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the stuck scrape did not end after its read returned")
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

// stuckExporter serves the exporter over a copy of the procfs fixture in
// which the stat file of process 100 is a FIFO: a scan that reads it
// blocks until a writer opens it. It returns the server, the FIFO's path
// and the stat file's content; should the test end with the scan still
// blocked, the scan is let go so that the server can close.
func stuckExporter(t *testing.T) (*httptest.Server, string, []byte) {
	t.Helper()
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
	// Cleanups run last in, first out: this one before the server's.
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
	return srv, statPath, stat
}

// getWithTimeout GETs url with Prometheus's scrape timeout header (none
// when timeout is "") and returns the status and body. A request that
// blocks with a stuck scan fails the test after 15 s instead of hanging.
func getWithTimeout(t *testing.T, url, timeout string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if timeout != "" {
		req.Header.Set("X-Prometheus-Scrape-Timeout-Seconds", timeout)
	}
	resp, err := (&http.Client{Timeout: 15 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// TestStuckScanAnswersInTime: a scrape with a timeout whose own scan
// reaches the FIFO is answered 503 before its timeout, saying a read is
// stuck, instead of waiting with the scan; the scan holds the exporter
// until the read returns (later scrapes are refused, /-/healthy says so),
// and scrapes are served again after it.
func TestStuckScanAnswersInTime(t *testing.T) {
	srv, statPath, stat := stuckExporter(t)
	start := time.Now()
	code, body := getWithTimeout(t, srv.URL+"/metrics", "1")
	if took := time.Since(start); code != http.StatusServiceUnavailable || took > time.Second || !strings.Contains(body, "a read of the procfs is stuck") {
		t.Fatalf("a scrape whose scan blocks: %d after %s, %q; want 503 within its 1 s timeout saying a read is stuck", code, took.Round(time.Millisecond), body)
	}
	if code, body := getWithTimeout(t, srv.URL+"/metrics", "0.5"); code != http.StatusServiceUnavailable || !strings.Contains(body, "another scrape still holds the exporter") {
		t.Errorf("a scrape behind the stuck scan: %d %q, want 503 saying another scrape holds the exporter", code, body)
	}
	time.Sleep(time.Second)
	if code, body := getWithTimeout(t, srv.URL+"/-/healthy", ""); code != http.StatusServiceUnavailable {
		t.Errorf("/-/healthy while the scan is stuck: %d %q, want 503", code, body)
	}
	letRead(t, statPath, stat)
	for end := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		code, body := getWithTimeout(t, srv.URL+"/metrics", "5")
		if code == http.StatusOK && strings.Contains(body, `service="nginx"`) {
			break
		}
		if time.Now().After(end) {
			t.Fatalf("scrapes after the read returned: %d, want 200 with nginx's series", code)
		}
	}
}

// letRead lets the scan blocked on the FIFO at statPath read stat, and puts
// a regular stat file in the FIFO's place for the scans after it.
func letRead(t *testing.T, statPath string, stat []byte) {
	t.Helper()
	f, err := os.OpenFile(statPath, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(stat); err != nil {
		t.Fatal(err)
	}
	f.Close()
	regular := statPath + ".new"
	if err := os.WriteFile(regular, stat, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(regular, statPath); err != nil {
		t.Fatal(err)
	}
}
