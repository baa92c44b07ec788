package service

import (
	"flag"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite golden files with the current output")

const (
	workstation       = "testdata/workstation"
	workstationGolden = "testdata/workstation/services.golden"
	// workstationSince is when the tracker begins to look at the
	// workstation: its btime plus 10,000 s (start tick 1,000,000; see
	// exporter/testdata/gen_fixture.py).
	workstationSince = 1700000000 + 10000
)

// TestWorkstationServices scans the /proc tree of a developer's workstation
// (exporter/testdata/gen_fixture.py writes it): interactive shells with a
// pipeline just typed, `go run` and the program it built, make running a
// compiler just started, an editor with its language server and a program
// run from a memfd, a cached build's binary named by a hash, a browser with
// its helpers, a terminal and an ssh daemon under systemd. The services
// found must be those of services.golden exactly (rewrite it with -update).
func TestWorkstationServices(t *testing.T) {
	dir := t.TempDir()
	copyTree(t, workstation, dir)
	// The cached build's binary, under the hash its exe link names.
	link, err := os.Readlink(filepath.Join(dir, "proc", "1050", "exe"))
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "proc", "1050", link)
	if err := os.MkdirAll(filepath.Dir(bin), 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("go", "build", "-o", bin, "./testdata/devtool").CombinedOutput(); err != nil {
		t.Fatalf("build devtool: %v\n%s", err, out)
	}

	sc, err := NewScanner(filepath.Join(dir, "proc"))
	if err != nil {
		t.Fatal(err)
	}
	res, err := sc.Scan()
	if err != nil {
		t.Fatal(err)
	}
	tr := NewTracker(Config{Since: time.Unix(workstationSince, 0)})
	snap := tr.Update(res.Processes)
	var b strings.Builder
	fmt.Fprintln(&b, "# service kind processes: the workstation fixture's services (TestWorkstationServices)")
	for _, s := range snap.Services {
		fmt.Fprintf(&b, "%s %s %d\n", s.Name, s.Kind, s.Processes)
	}
	got := b.String()
	if *update {
		if err := os.WriteFile(workstationGolden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(workstationGolden)
	if err != nil {
		t.Fatalf("%v (run with -update to write it)", err)
	}
	if diff := cmp.Diff(string(want), got); diff != "" {
		t.Errorf("workstation services (-want +got):\n%s", diff)
	}
}

// copyTree copies a fixture tree, symbolic links as links.
func copyTree(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		to := filepath.Join(dst, rel)
		switch {
		case d.Type()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			return os.Symlink(target, to)
		case d.IsDir():
			return os.MkdirAll(to, 0o755)
		default:
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			return os.WriteFile(to, b, 0o644)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
}
