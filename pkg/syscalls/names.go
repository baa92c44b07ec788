package syscalls

import (
	"strconv"
	"syscall"

	"golang.org/x/sys/unix"
)

// SyscallName returns the kernel's name of syscall nr in the native syscall
// table of Linux on arch (a GOARCH value; tables exist for "amd64" and
// "arm64"), such as "openat". When the table has no such number it returns
// the number in decimal and false, so the result can always serve as a
// label value.
func SyscallName(arch string, nr uint32) (string, bool) {
	if name := tableName(arch, nr); name != "" {
		return name, true
	}
	return strconv.FormatUint(uint64(nr), 10), false
}

// ErrnoName returns the symbolic name of errno, such as "ENOENT". Besides
// the errors user space sees, a syscall can end with one of the kernel's
// internal restart codes (a signal interrupted it and it will be restarted
// or fail with EINTR); those are named as in the kernel's
// include/linux/errno.h. Unknown numbers come back in decimal, with false.
func ErrnoName(errno syscall.Errno) (string, bool) {
	if name := unix.ErrnoName(errno); name != "" {
		return name, true
	}
	switch errno {
	case 512:
		return "ERESTARTSYS", true
	case 513:
		return "ERESTARTNOINTR", true
	case 514:
		return "ERESTARTNOHAND", true
	case 516:
		return "ERESTART_RESTARTBLOCK", true
	case 524:
		return "ENOTSUPP", true
	}
	return strconv.FormatUint(uint64(errno), 10), false
}
