//go:build ignore

// Per-process, per-syscall counts, errors and latency, aggregated in the
// kernel. Built by bpf2go (go tool mage generateSyscalls); the generated
// tracer_bpfel.{go,o} are committed so that building the Go package needs
// no clang.
//
// Cost matters more than anything else here: the syscall hooks run on every
// syscall of every process on the host. Every call is counted by sys_exit
// alone: one per-CPU hash lookup, plus, with latency, one task storage
// lookup that finds no entry time for most calls. Latency is sampled: user
// space attaches sys_enter, which stores the entry time, only during short
// windows, because an attached program costs about as much as sys_exit's
// whole work even when it returns at once. Everything else (new keys,
// process info, errors) is off the hot path.

#include <stdbool.h>
#include <linux/bpf.h>
#include <linux/errno.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

#include "bucket.h"

char LICENSE[] SEC("license") = "GPL";

// Only the fields this program reads; CO-RE relocates them against the
// running kernel's BTF, so no vmlinux.h is needed.
struct pt_regs;

// struct pt_regs as the supported architectures define it; CO-RE keeps the
// branch for the running kernel's and the verifier drops the other.
struct pt_regs___x86 {
	unsigned long orig_ax;
} __attribute__((preserve_access_index));

struct pt_regs___arm64 {
	int syscallno;
} __attribute__((preserve_access_index));

typedef struct {
	int counter;
} atomic_t;

struct signal_struct {
	atomic_t live;
} __attribute__((preserve_access_index));

struct task_struct {
	int tgid;
	char comm[16];
	struct task_struct *group_leader;
	struct task_struct *real_parent;
	struct signal_struct *signal;
} __attribute__((preserve_access_index));

// Syscall numbers at or above this are not syscalls of the native table
// (x32 calls carry bit 30, seccomp and ptrace may set -1); they are counted
// as dropped rather than stored under a misleading number.
#define MAX_SYSCALL_NR 1024

// Indexes into the dropped array: what did not fit, and why.
enum drop_reason {
	DROP_STATS_FULL = 0,
	DROP_ERRORS_FULL = 1,
	DROP_PROCS_FULL = 2,
	DROP_BAD_NR = 3,
	NR_DROP_REASONS = 4,
};

// Entry state of one thread, kept in task-local storage so that a syscall
// that blocks and migrates to another CPU still finds its start time. ns is
// zero when the thread's current call is not being timed.
struct start {
	__u64 ns;
	__u32 nr;
	__u32 pad;
};

// The bucket of calls that were counted but not timed: those that did not
// start in a sampling window, and every call without latency. Real buckets
// are below NR_BUCKETS.
#define UNTIMED 255

// Key of the stats map: one process, one syscall, one latency bucket (or
// UNTIMED). Only buckets that occur take memory, which keeps the per-CPU map small. The
// per-CPU values are updated with plain adds, not atomics: a program runs
// with migration disabled and the kernel does not let it run twice at once
// on one CPU, so only preemption in the middle of an add (on a preemptible
// kernel) could lose an update, and that is not worth a locked instruction
// on every syscall.
struct stat_key {
	__u32 tgid;
	__u16 nr;
	__u8 bucket;
	__u8 pad;
};

struct stat_val {
	__u64 count;
	__u64 ns;
};

struct err_key {
	__u32 tgid;
	__u16 nr;
	__u16 errno;
};

// What the kernel knows about a process when it is first seen and after each
// exec, so that a process which exits before user space looks at it can
// still be attributed.
struct proc {
	__u64 cgroup_id;
	__u32 ppid;
	__u32 exited;
	char comm[16];
};

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct start);
} starts SEC(".maps");

// Sizes are placeholders; the loader sets them from its options.
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 1);
	__type(key, struct stat_key);
	__type(value, struct stat_val);
} stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 1);
	__type(key, struct err_key);
	__type(value, __u64);
} errors SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct proc);
} procs SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, NR_DROP_REASONS);
	__type(key, __u32);
	__type(value, __u64);
} dropped SEC(".maps");

static __always_inline void drop(__u32 reason)
{
	__u64 *n = bpf_map_lookup_elem(&dropped, &reason);

	if (n)
		*n += 1;
}

// fill_process reads through BTF pointers rather than bpf_probe_read, which
// kernel lockdown may forbid.
static __always_inline void fill_process(struct proc *p, struct task_struct *task)
{
	p->cgroup_id = bpf_get_current_cgroup_id();
	p->ppid = task->real_parent->tgid;
	__builtin_memcpy(p->comm, task->group_leader->comm, sizeof(p->comm));
}

// note_process records a process's identity the first time one of its
// syscalls creates a stats entry.
static __noinline void note_process(__u32 tgid)
{
	struct proc p = {};

	if (bpf_map_lookup_elem(&procs, &tgid))
		return;
	fill_process(&p, bpf_get_current_task_btf());
	// -EEXIST means another thread of the process got here first.
	if (bpf_map_update_elem(&procs, &tgid, &p, BPF_NOEXIST) == -E2BIG)
		drop(DROP_PROCS_FULL);
}

static __noinline void new_stat(struct stat_key *k, __u64 ns)
{
	struct stat_val v = {.count = 1, .ns = ns};
	struct stat_val *old;
	long err;

	err = bpf_map_update_elem(&stats, k, &v, BPF_NOEXIST);
	if (err == 0) {
		note_process(k->tgid);
		return;
	}
	// Another CPU created the key in the meantime: add to it.
	old = bpf_map_lookup_elem(&stats, k);
	if (old) {
		old->count++;
		old->ns += ns;
		return;
	}
	drop(DROP_STATS_FULL);
}

static __noinline void count_error(__u32 tgid, __u16 nr, __u16 errno)
{
	struct err_key k = {.tgid = tgid, .nr = nr, .errno = errno};
	__u64 one = 1, *n;

	n = bpf_map_lookup_elem(&errors, &k);
	if (n) {
		*n += 1;
		return;
	}
	if (bpf_map_update_elem(&errors, &k, &one, BPF_NOEXIST) == 0)
		return;
	n = bpf_map_lookup_elem(&errors, &k);
	if (n) {
		*n += 1;
		return;
	}
	drop(DROP_ERRORS_FULL);
}

// sys_enter is attached only while latency is being sampled: it stores the
// entry time for sys_exit to find.
SEC("tp_btf/sys_enter")
int BPF_PROG(sys_enter, struct pt_regs *regs, long id)
{
	struct start *s;

	// sys_exit drops these calls without looking for an entry time.
	if ((unsigned long)id >= MAX_SYSCALL_NR)
		return 0;
	s = bpf_task_storage_get(&starts, bpf_get_current_task_btf(), 0,
				 BPF_LOCAL_STORAGE_GET_F_CREATE);
	// Without memory for the thread's storage the call is counted but not
	// timed, like any call outside a window.
	if (s) {
		s->ns = bpf_ktime_get_ns();
		s->nr = id;
	}
	return 0;
}

static __always_inline unsigned long exit_nr(struct pt_regs *regs)
{
	if (bpf_core_field_exists(struct pt_regs___x86, orig_ax))
		return ((struct pt_regs___x86 *)regs)->orig_ax;
	if (bpf_core_field_exists(struct pt_regs___arm64, syscallno))
		return (unsigned int)((struct pt_regs___arm64 *)regs)->syscallno;
	return MAX_SYSCALL_NR;
}

// child_return tells a new thread's or process's first return to user
// space, which passes sys_exit as if it were returning from its parent's
// clone or fork with 0: the parent's call is counted in the parent, and
// counting it again in the child would count one call twice.
static __always_inline bool child_return(unsigned long nr, long ret)
{
	if (ret != 0)
		return false;
	if (nr == 435) // clone3, on every architecture
		return true;
	if (bpf_core_field_exists(struct pt_regs___x86, orig_ax))
		return nr == 56 || nr == 57 || nr == 58; // clone, fork, vfork
	return nr == 220; // arm64 clone
}

static __always_inline void count(__u32 tgid, __u16 nr, __u8 b, __u64 ns, long ret)
{
	struct stat_key k = {.tgid = tgid, .nr = nr, .bucket = b};
	struct stat_val *v;

	v = bpf_map_lookup_elem(&stats, &k);
	if (v) {
		v->count++;
		v->ns += ns;
	} else {
		new_stat(&k, ns);
	}
	if ((unsigned long)ret >= (unsigned long)-4095)
		count_error(tgid, nr, -ret);
}

// on_exit counts every call; with latency it also looks for the entry time
// sys_enter stored, which it finds only for calls that started in a
// sampling window.
static __always_inline int on_exit(struct pt_regs *regs, long ret, bool latency)
{
	struct task_struct *task = bpf_get_current_task_btf();
	unsigned long nr = exit_nr(regs);
	struct start *s;
	__u8 b = UNTIMED;
	__u64 ns = 0;

	if (nr >= MAX_SYSCALL_NR) {
		drop(DROP_BAD_NR);
		return 0;
	}
	if (child_return(nr, ret))
		return 0;
	if (latency) {
		s = bpf_task_storage_get(&starts, task, 0, 0);
		if (s && s->ns) {
			// A number that differs means the entry time is not
			// this call's: count the call untimed.
			if (s->nr == nr) {
				ns = bpf_ktime_get_ns() - s->ns;
				b = bucket(ns);
			}
			s->ns = 0;
		}
	}
	count(task->tgid, nr, b, ns, ret);
	return 0;
}

SEC("tp_btf/sys_exit")
int BPF_PROG(sys_exit, struct pt_regs *regs, long ret)
{
	return on_exit(regs, ret, true);
}

// Without latency: no task storage at all.
SEC("tp_btf/sys_exit")
int BPF_PROG(sys_exit_count, struct pt_regs *regs, long ret)
{
	return on_exit(regs, ret, false);
}

// A process that forks and then execs makes its first syscalls under its
// parent's name; after exec it is what it will be known as.
SEC("tp_btf/sched_process_exec")
int BPF_PROG(sched_process_exec, struct task_struct *task)
{
	__u32 tgid = task->tgid;
	struct proc *p;

	p = bpf_map_lookup_elem(&procs, &tgid);
	if (p)
		fill_process(p, bpf_get_current_task_btf());
	return 0;
}

// A process's last thread is exiting: mark it, so that user space reports
// its final totals once and then frees its entries.
SEC("tp_btf/sched_process_exit")
int BPF_PROG(sched_process_exit, struct task_struct *task)
{
	struct proc *p;
	__u32 tgid;

	if (task->signal->live.counter != 0)
		return 0;
	tgid = task->tgid;
	p = bpf_map_lookup_elem(&procs, &tgid);
	if (p)
		p->exited = 1;
	return 0;
}
