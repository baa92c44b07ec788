package syscalls

import (
	"math"
	"testing"
	"time"

	"github.com/cilium/ebpf"

	"github.com/telltale-dev/telltale/internal/testenv"
)

// The kernel side sorts latencies into buckets with its own code; run that
// code (bucket.h, through a BPF_PROG_TYPE_SYSCALL test program) on every
// power-of-two boundary and check it against BucketUpperBound.
func TestKernelBucketsMatchBucketUpperBound(t *testing.T) {
	testenv.Root(t)
	var objs struct {
		BucketOf *ebpf.Program `ebpf:"bucket_of"`
	}
	spec, err := loadBucketprobe()
	if err != nil {
		t.Fatal(err)
	}
	if err := spec.LoadAndAssign(&objs, nil); err != nil {
		t.Fatalf("load bucket_of: %v", err)
	}
	defer objs.BucketOf.Close()

	kernelBucket := func(ns uint64) int {
		t.Helper()
		args := bucketprobeBucketArgs{Ns: ns}
		if _, err := objs.BucketOf.Run(&ebpf.RunOptions{Context: &args, ContextOut: &args}); err != nil {
			t.Fatalf("run bucket_of(%d): %v", ns, err)
		}
		return int(args.Bucket)
	}
	// wantBucket is the definition: the first bucket whose bound is above ns.
	wantBucket := func(ns uint64) int {
		for i := range NumBuckets {
			if ns < uint64(BucketUpperBound(i)) {
				return i
			}
		}
		return NumBuckets - 1
	}

	values := []uint64{0, 1, uint64(time.Millisecond), uint64(time.Second), math.MaxUint64}
	for k := range 64 {
		values = append(values, 1<<k-1, 1<<k, 1<<k+1)
	}
	for _, ns := range values {
		if got, want := kernelBucket(ns), wantBucket(ns); got != want {
			t.Errorf("%d ns: kernel bucket %d, BucketUpperBound says %d", ns, got, want)
		}
	}
}
