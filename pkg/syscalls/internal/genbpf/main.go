// Command genbpf rebuilds pkg/syscalls' BPF objects and their Go wrappers
// with bpf2go (needs clang, llvm-strip and libbpf-dev), then writes the
// checksums that tie the committed objects to their C sources
// (bpf.sha256, checked by the package's tests). It runs from a go:generate
// line of pkg/syscalls, in that directory: `go generate ./pkg/syscalls`
// or `go tool mage generateSyscalls`.
package main

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"strings"
)

// sources are the C sources of the BPF objects, in bpf.sha256's order.
var sources = []string{"bucket.h", "tracer.bpf.c", "bucketprobe.bpf.c"}

// objects are the BPF objects: bpf2go's identifier, the C source, the
// output suffix (_test: only the tests load it) and the C types to export.
var objects = []struct {
	ident, source, suffix string
	types                 []string
}{
	{"tracer", "tracer.bpf.c", "", []string{"stat_key", "stat_val", "err_key", "proc"}},
	{"bucketprobe", "bucketprobe.bpf.c", "_test", []string{"bucket_args"}},
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "genbpf:", err)
		os.Exit(1)
	}
}

func run() error {
	multiarch, err := exec.Command("gcc", "-print-multiarch").Output()
	if err != nil {
		return fmt.Errorf("find the multiarch include directory (gcc -print-multiarch; apt-get install gcc): %w", err)
	}
	cflags := []string{
		// Task storage needs Linux 5.11, which runs the v3 instruction set.
		"-mcpu=v3", "-Wall", "-Werror", "-I/usr/include/" + strings.TrimSpace(string(multiarch)),
	}
	for _, obj := range objects {
		args := []string{"tool", "bpf2go", "-go-package", "syscalls", "-tags", "linux", "-target", "bpfel"}
		if obj.suffix != "" {
			args = append(args, "-output-suffix", obj.suffix)
		}
		for _, t := range obj.types {
			args = append(args, "-type", t)
		}
		args = append(append(args, obj.ident, obj.source, "--"), cflags...)
		// go generate puts its own go first in PATH.
		cmd := exec.Command("go", args...)
		cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("bpf2go %s (needs clang, llvm-strip and libbpf-dev): %w", obj.source, err)
		}
	}
	var sums strings.Builder
	for _, name := range sources {
		src, err := os.ReadFile(name)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(src)
		fmt.Fprintf(&sums, "%s  %s\n", hex.EncodeToString(sum[:]), name)
	}
	return os.WriteFile("bpf.sha256", []byte(sums.String()), 0o644)
}
