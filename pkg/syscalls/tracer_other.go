//go:build !linux

package syscalls

import (
	"errors"
	"runtime"
)

// Tracer is not available off Linux; Load says so.
type Tracer struct{}

// Load reports that syscall tracing needs Linux.
func Load(opts Options) (*Tracer, error) {
	if _, err := opts.withDefaults(); err != nil {
		return nil, err
	}
	return nil, &unavailableError{reason: "eBPF syscall tracing needs Linux", detail: "running on " + runtime.GOOS, err: errors.ErrUnsupported}
}

// Snapshot fails: there is nothing to read off Linux.
func (t *Tracer) Snapshot() (*Snapshot, error) { return nil, ErrUnavailable }

// Close does nothing.
func (t *Tracer) Close() error { return nil }
