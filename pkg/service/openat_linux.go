package service

import (
	"syscall"
	"unsafe"
)

// openat opens a NUL-terminated path read-only without converting it to a
// string, so the scan's hot path does not allocate.
func openat(path []byte) (int, error) {
	dirfd := atFDCWD
	fd, _, errno := syscall.Syscall6(syscall.SYS_OPENAT, uintptr(dirfd),
		uintptr(unsafe.Pointer(&path[0])), uintptr(syscall.O_RDONLY|syscall.O_CLOEXEC), 0, 0, 0)
	if errno != 0 {
		return -1, errno
	}
	return int(fd), nil
}

const atFDCWD = -100 // AT_FDCWD
