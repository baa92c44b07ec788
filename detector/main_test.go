package main

import (
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
	if _, err := parseFlags([]string{"--web.listen-address=:notaport"}); err == nil || !strings.Contains(err.Error(), `--web.listen-address=":notaport"`) {
		t.Errorf("a bad listen address: %v; want an error naming the flag", err)
	}
}
