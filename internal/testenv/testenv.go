// Package testenv gives tests the outside programs and privileges they need,
// and decides what happens when one is missing: outside CI the test is
// skipped with the reason; in CI (CI set to anything but "" or "false") it
// fails, so a missing install step can never turn a suite quietly green.
package testenv

import (
	"flag"
	"net"
	"os"
	"os/exec"
	"strconv"
	"testing"
)

// InCI reports whether the tests run under CI, where every dependency must be
// present.
func InCI() bool {
	v := os.Getenv("CI")
	if v == "" {
		return false
	}
	b, err := strconv.ParseBool(v)
	return err != nil || b
}

// Missing stops the test because something it needs is not here: a skip on a
// developer machine, a failure in CI.
func Missing(tb testing.TB, format string, args ...any) {
	tb.Helper()
	if InCI() {
		tb.Fatalf("required in CI: "+format, args...)
	}
	tb.Skipf(format, args...)
}

// Live marks a test that starts programs or servers (Prometheus, the
// project's binaries, a shop, a browser): under -short, the tier that
// starts nothing and answers in seconds, it is skipped. The starters of
// internal/proctest, promtest and plugintest call it, and so does Binary,
// so a test that reaches any of them is live without saying so.
func Live(tb testing.TB) {
	tb.Helper()
	if testing.Short() {
		tb.Skip("starts programs or servers: not in -short")
	}
}

// ShortMain runs a TestMain's tests without its setup under -short, where
// the live tests that need it skip; it returns only when not -short.
// Call it first in a TestMain that builds or starts something for them.
func ShortMain(m *testing.M) {
	flag.Parse()
	if testing.Short() {
		os.Exit(m.Run())
	}
}

// Binary returns the path of an outside program: the value of the
// environment variable envVar when set, else name looked up in PATH.
func Binary(tb testing.TB, name, envVar string) string {
	tb.Helper()
	Live(tb)
	if envVar != "" {
		if p := os.Getenv(envVar); p != "" {
			if _, err := os.Stat(p); err != nil {
				tb.Fatalf("%s=%s: %v", envVar, p, err)
			}
			return p
		}
	}
	p, err := exec.LookPath(name)
	if err != nil {
		Missing(tb, "%s not found in PATH (install it, or set %s)", name, envVar)
	}
	return p
}

// Root stops the test unless it runs as root (eBPF, other network namespaces).
func Root(tb testing.TB) {
	tb.Helper()
	Live(tb) // eBPF and namespaces: not in the portable -short tier
	if os.Geteuid() != 0 {
		Missing(tb, "needs root")
	}
}

// FreeAddr returns a loopback address with a port that was free a moment ago,
// for servers that cannot be told to listen on port 0 and report back.
func FreeAddr(tb testing.TB) string {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("find a free port: %v", err)
	}
	addr := l.Addr().String()
	if err := l.Close(); err != nil {
		tb.Fatalf("find a free port: %v", err)
	}
	return addr
}
