package service

import (
	"debug/buildinfo"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// TestOwnNameOf reads the Go build information of a real Go binary (this
// test's own) behind a hash-named executable link, and names a process whose
// executable is a FIFO by its argv[0] without opening it (a read would block
// the scan for good).
func TestOwnNameOf(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	bi, err := buildinfo.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	hashed := filepath.Join(root, "43e6a1be703bc940907ffb611be5f27cd70b2ef3ddb2eca85a2658f4ccdeac9c")
	if err := os.Symlink(self, hashed); err != nil {
		t.Fatal(err)
	}
	fifo := filepath.Join(root, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	for pid, target := range map[int]string{10: hashed, 11: fifo} {
		if err := os.MkdirAll(filepath.Join(root, "proc", strconv.Itoa(pid)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(target, filepath.Join(root, "proc", strconv.Itoa(pid), "exe")); err != nil {
			t.Fatal(err)
		}
	}
	s := &Scanner{root: filepath.Join(root, "proc")}
	if got, want := s.ownNameOf(10, []string{hashed}), path.Base(bi.Path); got != want {
		t.Errorf("Go binary behind a hash: %q, want %q (its main package)", got, want)
	}
	done := make(chan string, 1)
	go func() { done <- s.ownNameOf(11, []string{"/opt/tools/fetcher", "--once"}) }()
	select {
	case got := <-done:
		if got != "fetcher" {
			t.Errorf("FIFO executable: %q, want fetcher (argv[0])", got)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("ownNameOf blocked on a FIFO executable")
	}
}
