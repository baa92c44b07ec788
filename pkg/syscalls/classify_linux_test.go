package syscalls

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"
)

// The unprivileged path runs for real in TestLoadWithoutPrivilegeIsUnavailable;
// the kernels that lack support cannot be had here, so their errors, as
// cilium/ebpf reports them, are classified in a table.
func TestClassify(t *testing.T) {
	for _, tc := range []struct {
		name        string
		attach      bool
		err         error
		unavailable bool
		says        string
	}{
		{"no permission", false, fmt.Errorf("map stats: map create: %w (MEMLOCK may be too low, consider rlimit.RemoveMemlock)", unix.EPERM), true, "CAP_BPF"},
		{"no bpf syscall", false, fmt.Errorf("map stats: %w", unix.ENOSYS), true, "CONFIG_BPF_SYSCALL"},
		{"old kernel", false, fmt.Errorf("map starts: %w", ebpf.ErrNotSupported), true, "5.11"},
		{"verifier", false, fmt.Errorf("program sys_exit: %w", &ebpf.VerifierError{Cause: unix.EINVAL, Log: []string{"unknown func bpf_task_storage_get#156"}}), true, "verifier rejected"},
		{"no tracepoint", true, fmt.Errorf("attach: %w", unix.ENOENT), true, "tracepoints"},
		{"no such file at load", false, fmt.Errorf("read object: %w", unix.ENOENT), false, "read object"},
		{"out of memory", false, fmt.Errorf("map stats: %w", unix.ENOMEM), false, "cannot allocate memory"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := classify("op", tc.attach, tc.err)
			if got := errors.Is(err, ErrUnavailable); got != tc.unavailable {
				t.Errorf("errors.Is(%q, ErrUnavailable) = %v, want %v", err, got, tc.unavailable)
			}
			if !errors.Is(err, tc.err) {
				t.Errorf("%q does not wrap the cause %q", err, tc.err)
			}
			if !strings.Contains(err.Error(), tc.says) {
				t.Errorf("%q does not say %q", err, tc.says)
			}
			if strings.Contains(err.Error(), "MEMLOCK") {
				t.Errorf("%q blames MEMLOCK", err)
			}
		})
	}
}

func TestLoadWithoutKernelBTF(t *testing.T) {
	_, err := load(Options{}, filepath.Join(t.TempDir(), "vmlinux"))
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("load without BTF: %v, want ErrUnavailable", err)
	}
	if !strings.Contains(err.Error(), "BTF") {
		t.Errorf("%q does not say that BTF is missing", err)
	}
}

func TestLoadRejectsHugeMaps(t *testing.T) {
	_, err := Load(Options{MaxEntries: 1 << 30})
	if err == nil || errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "MaxEntries") {
		t.Errorf("Load with MaxEntries 2^30: %v, want an options error naming MaxEntries", err)
	}
}

func TestLoadRejectsTinySamplingWindows(t *testing.T) {
	_, err := Load(Options{LatencySampleEvery: 1000})
	if err == nil || errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "LatencySampleEvery") {
		t.Errorf("Load with LatencySampleEvery 1000: %v, want an options error naming LatencySampleEvery", err)
	}
}
