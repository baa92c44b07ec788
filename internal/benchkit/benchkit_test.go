package benchkit

import (
	"cmp"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/telltale-dev/telltale/internal/testenv"
)

// TestOwnFigures reads this test's own CPU time and peak memory: both
// positive, and CPU time grows with work.
func TestOwnFigures(t *testing.T) {
	pid := os.Getpid()
	before, err := CPUSeconds(pid)
	if err != nil {
		t.Fatal(err)
	}
	for end := time.Now().Add(300 * time.Millisecond); time.Now().Before(end); {
	}
	after, err := CPUSeconds(pid)
	if err != nil {
		t.Fatal(err)
	}
	if after-before < 0.1 {
		t.Errorf("CPU seconds %v -> %v over 300 ms of spinning", before, after)
	}
	rss, err := PeakRSS(pid)
	if err != nil || rss < 1<<20 {
		t.Errorf("PeakRSS = %v, %v; want at least 1 MiB", rss, err)
	}
	if _, err := CPUSeconds(1 << 30); err == nil {
		t.Error("CPUSeconds of a process that does not exist: no error")
	}
}

// TestProcessGroup starts a shell with a child, reads its output, and
// checks Stop ends both: the shell at SIGTERM, the child it left in its
// group after it.
func TestProcessGroup(t *testing.T) {
	testenv.Live(t)
	p, err := StartPiped("/bin/sh", "-c", "sleep 60 & echo $!; echo ready; wait")
	if err != nil {
		t.Fatal(err)
	}
	child, err := p.ReadLine()
	if err != nil {
		t.Fatal(err)
	}
	if l, err := p.ReadLine(); l != "ready" || err != nil {
		t.Fatalf("ReadLine = %q, %v", l, err)
	}
	p.Stop(5 * time.Second)
	p.Stop(5 * time.Second) // twice is fine
	if p.Running() {
		t.Error("the program runs after Stop")
	}
	pid, err := strconv.Atoi(child)
	if err != nil {
		t.Fatalf("child pid %q: %v", child, err)
	}
	// The child is killed with its group (a zombie until reaped by init
	// counts as gone: signal 0 fails or its state is Z).
	deadline := time.Now().Add(5 * time.Second)
	for syscall.Kill(pid, 0) == nil {
		if b, _ := os.ReadFile("/proc/" + child + "/stat"); strings.Contains(string(b), ") Z ") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("child %d of the stopped group still runs", pid)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if _, err := Start("/nonexistent/program"); err == nil {
		t.Error("Start of a missing program: no error")
	}
}

// TestWaitHTTPOnAProgramThatExits: a program that exits before its URL
// answers ends the wait at once, with how it exited.
func TestWaitHTTPOnAProgramThatExits(t *testing.T) {
	testenv.Live(t)
	addr, err := FreeAddr()
	if err != nil {
		t.Fatal(err)
	}
	p, err := Start("/bin/sh", "-c", "exit 3")
	if err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	err = p.WaitHTTP(context.Background(), "http://"+addr, time.Minute)
	if err == nil || !strings.Contains(err.Error(), "sh exited (exit status 3) before") {
		t.Errorf("WaitHTTP = %v, want the program's exit status 3", err)
	}
	if el := time.Since(began); el > 10*time.Second {
		t.Errorf("WaitHTTP took %s on a program that had exited", el)
	}
}

func TestWaitHTTPAndGet(t *testing.T) {
	calls := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls++
		if calls < 3 || r.URL.Path == "/broken" {
			http.Error(w, "not yet", http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte("# HELP x y\nup 1\nprocess_resident_memory_bytes 2.5e+07\nx{a=\"b\"} 3\n"))
	}))
	defer srv.Close()
	if err := WaitHTTP(context.Background(), srv.URL, 5*time.Second, nil); err != nil {
		t.Fatal(err)
	}
	body, err := Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	got := Samples(body)
	if len(got) != 2 || got["up"] != 1 || got["process_resident_memory_bytes"] != 2.5e7 {
		t.Errorf("Samples = %v", got)
	}
	if _, err := Get(srv.URL + "/broken"); err == nil || !strings.Contains(err.Error(), "503") {
		t.Errorf("Get of a 503: %v", err)
	}
	if err := WaitHTTP(context.Background(), srv.URL+"/broken", 300*time.Millisecond, nil); err == nil || !strings.Contains(err.Error(), "503") {
		t.Errorf("WaitHTTP of an endpoint that never answers 200: %v", err)
	}
	gone := errors.New("the program exited")
	if err := WaitHTTP(context.Background(), srv.URL+"/broken", time.Minute, func() error { return gone }); !errors.Is(err, gone) {
		t.Errorf("WaitHTTP with its program gone: %v, want %v", err, gone)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := WaitHTTP(ctx, srv.URL+"/broken", time.Minute, nil); !errors.Is(err, context.Canceled) {
		t.Errorf("WaitHTTP with its context done: %v", err)
	}
}

func TestEnvInt(t *testing.T) {
	t.Setenv("BENCHKIT_N", "")
	if n, err := EnvInt("BENCHKIT_N", 7, 1); n != 7 || err != nil {
		t.Errorf("unset: %d, %v", n, err)
	}
	t.Setenv("BENCHKIT_N", "12")
	if n, err := EnvInt("BENCHKIT_N", 7, 1); n != 12 || err != nil {
		t.Errorf("12: %d, %v", n, err)
	}
	for _, v := range []string{"0", "x", "1.5"} {
		t.Setenv("BENCHKIT_N", v)
		if _, err := EnvInt("BENCHKIT_N", 7, 1); err == nil || !strings.Contains(err.Error(), "at least 1") {
			t.Errorf("%q: %v", v, err)
		}
	}
}

func TestMedianAndAddr(t *testing.T) {
	xs := []int{5, 1, 4, 2, 3}
	if m := Median(xs, cmp.Compare[int]); m != 3 || xs[0] != 5 {
		t.Errorf("Median = %d (input now %v)", m, xs)
	}
	if m := Median(nil, cmp.Compare[int]); m != 0 {
		t.Errorf("Median(nil) = %d", m)
	}
	a, err := FreeAddr()
	if err != nil || !strings.HasPrefix(a, "127.0.0.1:") {
		t.Errorf("FreeAddr = %q, %v", a, err)
	}
	if _, err := LookBin("no-such-program-telltale", "BENCHKIT_BIN"); err == nil || !strings.Contains(err.Error(), "BENCHKIT_BIN") {
		t.Errorf("LookBin of a missing program: %v", err)
	}
}
