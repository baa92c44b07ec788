// Package syscalls counts every process's syscalls with eBPF: per process
// and syscall, the number of calls, the errors by errno and a log2
// histogram of their latency, all aggregated in the kernel so that user
// space reads totals rather than events.
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
// Cost: every syscall on the host runs the hooks. Measured on a 2-CPU VM
// with Linux 6.18 (go tool mage benchSyscalls): about 120 ns added to each
// syscall with latency, about 45 ns with Options.NoLatency; a getppid loop
// runs 2.4 and 1.5 times slower, a 64-byte pipe write and read 1.7 and 1.25
// times. Kernel memory is bounded by Options; what
// does not fit is counted in Snapshot.Dropped.
//
// Not counted: syscalls that never return (exit, exit_group), and, with
// latency, syscalls already in progress when the tracer is loaded and
// syscalls a seccomp filter refuses (they never reach sys_enter). 32-bit
// compat processes on a 64-bit kernel are counted under the native table's
// names, which are wrong for them.
//
// The BPF program is tracer.bpf.c; tracer_bpfel.go and tracer_bpfel.o are
// generated from it by bpf2go and committed, as is sysnum_tables.go, so
// building needs no clang. Regenerate with `go tool mage generateSyscalls`.
package syscalls
