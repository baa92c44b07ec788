package syscalls

import "errors"

// ErrUnavailable is what Load's error matches (errors.Is) when syscall
// tracing cannot run on this host: eBPF is not permitted to the process, or
// the kernel lacks something the tracer needs. The error's message says
// which. A caller should report it once and carry on without the tracer.
var ErrUnavailable = errors.New("syscall tracing unavailable")

// unavailableError explains why the tracer cannot run and keeps the
// underlying error for errors.Is/As.
type unavailableError struct {
	reason string // what the operator can act on
	detail string // what failed, for the curious
	err    error
}

func (e *unavailableError) Error() string {
	return ErrUnavailable.Error() + ": " + e.reason + " (" + e.detail + ")"
}

func (e *unavailableError) Is(target error) bool { return target == ErrUnavailable }

func (e *unavailableError) Unwrap() error { return e.err }
