package syscalls

import (
	"runtime"
	"testing"

	"golang.org/x/sys/unix"
)

// The table for the running architecture must agree with x/sys/unix's
// constants, which the Go toolchain's own syscalls use.
func TestSyscallNameMatchesUnix(t *testing.T) {
	if runtime.GOARCH != "amd64" && runtime.GOARCH != "arm64" {
		t.Skipf("no table for %s", runtime.GOARCH)
	}
	for nr, want := range map[uint32]string{
		unix.SYS_READ:            "read",
		unix.SYS_OPENAT:          "openat",
		unix.SYS_GETPPID:         "getppid",
		unix.SYS_CLOCK_NANOSLEEP: "clock_nanosleep",
		unix.SYS_EPOLL_PWAIT:     "epoll_pwait",
		unix.SYS_IO_URING_ENTER:  "io_uring_enter",
	} {
		if got, ok := SyscallName(runtime.GOARCH, nr); got != want || !ok {
			t.Errorf("SyscallName(%s, %d) = %q, %v; want %q", runtime.GOARCH, nr, got, ok, want)
		}
	}
}
