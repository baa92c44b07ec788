package collector

import (
	"strings"
	"testing"

	"github.com/telltale-dev/telltale/pkg/service"
)

// TestReadErrorFix: a refused read names the capabilities to grant, unless
// the exporter has them, when it says the kernel protects that process.
func TestReadErrorFix(t *testing.T) {
	perm := service.ReadError{File: "exe", Reason: "permission"}
	if fix := readErrorFix(perm, false); !strings.Contains(fix, "CAP_SYS_PTRACE") || !strings.Contains(fix, "root") {
		t.Errorf("unprivileged: %q", fix)
	}
	if fix := readErrorFix(perm, true); !strings.Contains(fix, "protects this process") {
		t.Errorf("privileged: %q", fix)
	}
	if fix := readErrorFix(service.ReadError{File: "io", Reason: "missing"}, true); !strings.Contains(fix, "CONFIG_TASK_IO_ACCOUNTING") {
		t.Errorf("io missing: %q", fix)
	}
}
