//go:build !unix

package nab

import "time"

// cpuTime is not available here; Run falls back to the time its workers
// were busy.
func cpuTime() time.Duration { return 0 }
