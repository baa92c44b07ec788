// Package syscalls counts every process's syscalls with eBPF: per process
// and syscall, the number of calls, the errors by errno and a log2
// histogram of the latency of a sample of the calls, all aggregated in the
// kernel so that user space reads totals rather than events.
//
// Load attaches BPF programs to the kernel's syscall tracepoints (BTF raw
// tracepoints sys_enter and sys_exit, plus sched_process_exec and
// sched_process_exit to follow processes). Snapshot returns cumulative
// totals per process (thread group); a process that has exited is reported
// once, marked Exited, and then forgotten, and ServiceTotals folds such
// reports into per-service totals that never go backwards. SyscallName and
// ErrnoName turn numbers into the kernel's names for labels.
//
// Requirements: Linux 5.11 or later with BTF (/sys/kernel/btf/vmlinux,
// CONFIG_DEBUG_INFO_BTF) and syscall tracepoints (CONFIG_FTRACE_SYSCALLS);
// CAP_BPF and CAP_PERFMON, or CAP_SYS_ADMIN; the caller in the initial PID
// namespace, since processes are keyed by their PIDs there. Without these,
// Load's error matches ErrUnavailable and says what is missing.
//
// Counts and errors are exact: the hook on syscall exit counts every call.
// Latency is sampled (Options.LatencySampleEvery): once a second, for a
// window of 1/16 of a second at a random moment, a second hook on syscall
// entry notes when calls start, and the calls that start in the window are
// timed, however long they take. The histogram (Syscall.Sampled, Buckets,
// Sum) is therefore of about one call in 16 (fewer for a thread that does
// nothing but syscalls, since calls are slower while timed), and its count
// is Sampled, not Count. LatencySampleEvery 1 times every call.
//
// Cost: every syscall on the host runs the exit hook. Outside the windows
// the entry hook is detached rather than attached and idle, because an
// attached program costs each syscall about 20 ns even when it returns at
// once. Measured on a 2-CPU VM with Linux 6.18 under load (go tool mage
// benchSyscalls, wall time of undisturbed slices, two runs): about 50-60 ns
// added to each syscall by default, 40-50 ns counting only
// (Options.NoLatency) and 125-140 ns timing every call; by default a
// 64-byte read from /dev/zero runs 1.35 times slower, a 64-byte pipe write
// and read 1.3 times and a getppid loop 1.6 times (counting only 1.3, 1.25
// and 1.5; timing every call 1.85, 1.7 and 2.5). Kernel memory is bounded
// by Options; what does not fit is counted in Snapshot.Dropped.
//
// Not counted: syscalls that never return (exit, exit_group), and a new
// thread's or process's return from clone or fork (its parent's call is
// counted). Not timed: syscalls already in progress when the tracer is
// loaded or a window opens, and syscalls a seccomp filter refuses (they
// never reach sys_enter). 32-bit compat processes on a 64-bit kernel are
// counted under the native table's names, which are wrong for them.
//
// The BPF program is tracer.bpf.c; tracer_bpfel.go and tracer_bpfel.o are
// generated from it by bpf2go and committed, as is sysnum_tables.go, so
// building needs no clang. Regenerate with `go generate ./pkg/syscalls`
// (or `go tool mage generateSyscalls`): the BPF objects need clang,
// llvm-strip and libbpf-dev; the name tables the golang.org/x/sys in go.mod.
package syscalls

//go:generate go run ./internal/genbpf
//go:generate go run ./internal/gensysnum -out sysnum_tables.go amd64 arm64
