package service

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
)

// TestMissingFilesKeepTheProcess: a kernel without per-task I/O accounting
// has no /proc/<pid>/io, and a copied or partial procfs can lack status or
// fd. The process is still there: it is kept, with what could be read, and
// each missing file is counted with reason "missing" — not dropped as if it
// had exited.
func TestMissingFilesKeepTheProcess(t *testing.T) {
	root := filepath.Join(t.TempDir(), "proc")
	if out, err := exec.Command("cp", "-a", filepath.Join("..", "..", "exporter", "testdata", "proc"), root).CombinedOutput(); err != nil {
		t.Fatalf("copy the procfs fixture: %v: %s", err, out)
	}
	full, before := scanPIDs(t, newScanner(t, root))
	gone := map[string]int{"io": 100, "status": 101, "fd": 102}
	for file, pid := range gone {
		if !full[pid] {
			t.Fatalf("fixture: process %d not scanned with every file present", pid)
		}
		if err := os.RemoveAll(filepath.Join(root, strconv.Itoa(pid), file)); err != nil {
			t.Fatal(err)
		}
	}
	sc := newScanner(t, root)
	got, errs := scanPIDs(t, sc)
	for file, pid := range gone {
		if !got[pid] {
			t.Errorf("process %d was dropped when its %s was missing", pid, file)
		}
		if k := (ReadError{File: file, Reason: "missing"}); errs[k] != before[k]+1 {
			t.Errorf("errors %v with the files removed, %v before: want one more missing %s", errs, before, file)
		}
	}
	if len(got) != len(full) {
		t.Errorf("%d processes scanned, want the %d of the full fixture", len(got), len(full))
	}
	// A process that is gone for good is no error.
	if err := os.RemoveAll(filepath.Join(root, "100")); err != nil {
		t.Fatal(err)
	}
	got, errs = scanPIDs(t, sc)
	if got[100] {
		t.Errorf("process 100 scanned after it was gone")
	}
	// (Each process's missing files were counted once, in the first scan.)
	for k := range errs {
		if k.Reason == "missing" {
			t.Errorf("errors %v after process 100 exited: want no missing file", errs)
		}
	}
}

func newScanner(t *testing.T, root string) *Scanner {
	t.Helper()
	sc, err := NewScanner(root)
	if err != nil {
		t.Fatal(err)
	}
	return sc
}

// scanPIDs scans once and returns the PIDs found and the errors counted.
func scanPIDs(t *testing.T, sc *Scanner) (map[int]bool, map[ReadError]int) {
	t.Helper()
	res, err := sc.Scan()
	if err != nil {
		t.Fatal(err)
	}
	out := map[int]bool{}
	for _, p := range res.Processes {
		out[p.PID] = true
	}
	return out, res.Errors
}
