package syscalls

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/telltale-dev/telltale/internal/testenv"
)

func TestSyscallName(t *testing.T) {
	for _, tc := range []struct {
		arch   string
		nr     uint32
		want   string
		wantOK bool
	}{
		{"amd64", 0, "read", true},
		{"amd64", 1, "write", true},
		{"amd64", 24, "sched_yield", true},
		{"amd64", 39, "getpid", true},
		{"amd64", 110, "getppid", true},
		{"amd64", 202, "futex", true},
		{"amd64", 231, "exit_group", true},
		{"amd64", 257, "openat", true},
		{"amd64", 262, "newfstatat", true},
		{"amd64", 435, "clone3", true},
		{"arm64", 56, "openat", true},
		{"arm64", 63, "read", true},
		{"arm64", 64, "write", true},
		{"arm64", 79, "newfstatat", true},
		{"arm64", 94, "exit_group", true},
		{"arm64", 98, "futex", true},
		{"arm64", 124, "sched_yield", true},
		{"arm64", 172, "getpid", true},
		{"arm64", 173, "getppid", true},
		{"arm64", 435, "clone3", true},
		// arm64 has no open(2) and leaves numbers 244-259 to the arch.
		{"arm64", 2, "io_submit", true},
		{"arm64", 250, "250", false},
		{"amd64", 1023, "1023", false},
		{"amd64", 4294967295, "4294967295", false},
		{"riscv64", 63, "63", false},
		{"", 0, "0", false},
	} {
		got, ok := SyscallName(tc.arch, tc.nr)
		if got != tc.want || ok != tc.wantOK {
			t.Errorf("SyscallName(%q, %d) = %q, %v; want %q, %v", tc.arch, tc.nr, got, ok, tc.want, tc.wantOK)
		}
	}
}

// sysnum_tables.go must be what the generator makes from the x/sys version
// in go.mod; when x/sys is upgraded, `go tool mage generateSyscalls`.
func TestSyscallTablesAreGenerated(t *testing.T) {
	goBin := testenv.Binary(t, "go", "")
	out := filepath.Join(t.TempDir(), "tables.go")
	cmd := exec.Command(goBin, "run", "./internal/gensysnum", "-out", out, "amd64", "arm64")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("gensysnum: %v\n%s", err, b)
	}
	want, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile("sysnum_tables.go")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("sysnum_tables.go is out of date: run go tool mage generateSyscalls")
	}
}

func TestErrnoName(t *testing.T) {
	for _, tc := range []struct {
		errno  syscall.Errno
		want   string
		wantOK bool
	}{
		{1, "EPERM", true},
		{2, "ENOENT", true},
		{4, "EINTR", true},
		{11, "EAGAIN", true},
		{13, "EACCES", true},
		{32, "EPIPE", true},
		{104, "ECONNRESET", true},
		{110, "ETIMEDOUT", true},
		{111, "ECONNREFUSED", true},
		{115, "EINPROGRESS", true},
		{512, "ERESTARTSYS", true},
		{514, "ERESTARTNOHAND", true},
		{516, "ERESTART_RESTARTBLOCK", true},
		{524, "ENOTSUPP", true},
		{0, "0", false},
		{515, "515", false},
		{4095, "4095", false},
	} {
		got, ok := ErrnoName(tc.errno)
		if got != tc.want || ok != tc.wantOK {
			t.Errorf("ErrnoName(%d) = %q, %v; want %q, %v", tc.errno, got, ok, tc.want, tc.wantOK)
		}
	}
}

// The committed BPF objects must be built from the committed C sources. CI
// has no clang, so instead of rebuilding, compare the sources with the
// checksums GenerateSyscalls recorded when it built the objects.
func TestBPFObjectsAreGenerated(t *testing.T) {
	sums, err := os.ReadFile("bpf.sha256")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(sums)), "\n")
	if len(lines) < 3 {
		t.Fatalf("bpf.sha256 has %d lines, want one per C source", len(lines))
	}
	for _, line := range lines {
		want, name, ok := strings.Cut(line, "  ")
		if !ok {
			t.Fatalf("bpf.sha256: malformed line %q", line)
		}
		src, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(src)
		if got := hex.EncodeToString(sum[:]); got != want {
			t.Errorf("%s changed since the BPF objects were built: run go tool mage generateSyscalls", name)
		}
	}
}
