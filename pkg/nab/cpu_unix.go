//go:build unix

package nab

import (
	"syscall"
	"time"
)

// cpuTime is the user plus system CPU time the process has used, so that
// throughput per core is measured in CPU time even when other work shares
// the machine.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
