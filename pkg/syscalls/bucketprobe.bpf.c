//go:build ignore

// A test-only program that runs the tracer's bucket() on a value user space
// passes in, so that the Go test can check every bucket boundary against
// BucketUpperBound. Built by bpf2go into *_test files.

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "bucket.h"

char LICENSE[] SEC("license") = "GPL";

struct bucket_args {
	__u64 ns;
	__u32 bucket;
	__u32 pad;
};

SEC("syscall")
int bucket_of(struct bucket_args *args)
{
	args->bucket = bucket(args->ns);
	return 0;
}
