package main

import (
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/telltale-dev/telltale/internal/proctest"
)

// TestFlagsDocumented: every flag --help lists is in detector/README.md,
// and a bad listen address names the flag.
func TestFlagsDocumented(t *testing.T) {
	det, _ := binaries(t)
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	if missing := proctest.Undocumented(proctest.HelpFlags(t, det), string(readme)); len(missing) > 0 {
		t.Errorf("flags missing from detector/README.md: %v", missing)
	}
	for _, arg := range []string{"--web.listen-address=:notaport", "--score.interval=soon", "--web.config.file=/nonexistent", "--series.limit=many"} {
		flag, value, _ := strings.Cut(arg, "=")
		if _, err := parseFlags([]string{arg}); err == nil || !strings.Contains(err.Error(), fmt.Sprintf("%s=%q", flag, value)) {
			t.Errorf("%s: %v; want an error naming the flag", arg, err)
		}
	}
}
