// Latency buckets, shared by the tracer and the test program that checks
// them against the Go side's BucketUpperBound.

#ifndef TELLTALE_BUCKET_H
#define TELLTALE_BUCKET_H

// Bucket b < NR_BUCKETS-1 holds durations below 2^(b+BUCKET_SHIFT) ns and
// at least the bound of bucket b-1; the last bucket holds everything
// longer. Both must match stats.go.
#define BUCKET_SHIFT 9
#define NR_BUCKETS 24

// bucket returns the latency bucket of a duration: the bit length of ns,
// shifted so that bucket 0 is everything below 2^BUCKET_SHIFT ns. BPF has
// no count-leading-zeros instruction, hence the binary search.
static __always_inline __u8 bucket(__u64 ns)
{
	__u32 b = 0;

	ns >>= BUCKET_SHIFT;
	if (ns >= 1ULL << 32) {
		ns >>= 32;
		b += 32;
	}
	if (ns >= 1ULL << 16) {
		ns >>= 16;
		b += 16;
	}
	if (ns >= 1 << 8) {
		ns >>= 8;
		b += 8;
	}
	if (ns >= 1 << 4) {
		ns >>= 4;
		b += 4;
	}
	if (ns >= 1 << 2) {
		ns >>= 2;
		b += 2;
	}
	if (ns >= 1 << 1) {
		ns >>= 1;
		b += 1;
	}
	b += ns;
	return b < NR_BUCKETS - 1 ? b : NR_BUCKETS - 1;
}

#endif
