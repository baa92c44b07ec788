package syscalls

import (
	"math"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestBucketUpperBound(t *testing.T) {
	for _, tc := range []struct {
		i    int
		want time.Duration
	}{
		{0, 512 * time.Nanosecond},
		{1, 1024 * time.Nanosecond},
		{11, 1 << 20}, // 1.05ms
		{NumBuckets - 2, 1 << 31},
		{NumBuckets - 1, math.MaxInt64},
		{NumBuckets, math.MaxInt64},
		{-1, math.MaxInt64},
	} {
		if got := BucketUpperBound(tc.i); got != tc.want {
			t.Errorf("BucketUpperBound(%d) = %v, want %v", tc.i, got, tc.want)
		}
	}
}

func TestSyscallAdd(t *testing.T) {
	a := &Syscall{Count: 30, Sampled: 3, Sum: 30, Errors: map[syscall.Errno]uint64{2: 1}}
	a.Buckets[0], a.Buckets[5] = 2, 1
	b := &Syscall{Count: 40, Sampled: 4, Sum: 400, Errors: map[syscall.Errno]uint64{2: 2, 11: 1}}
	b.Buckets[5], b.Buckets[NumBuckets-1] = 3, 1

	var sum Syscall // zero value: Errors is nil until needed
	sum.Add(a)
	sum.Add(b)
	want := Syscall{Count: 70, Sampled: 7, Sum: 430, Errors: map[syscall.Errno]uint64{2: 3, 11: 1}}
	want.Buckets[0], want.Buckets[5], want.Buckets[NumBuckets-1] = 2, 4, 1
	if diff := cmp.Diff(want, sum); diff != "" {
		t.Errorf("Add (-want +got):\n%s", diff)
	}
	if a.Errors[2] != 1 {
		t.Errorf("Add changed its argument's Errors: %v", a.Errors)
	}

	var none Syscall
	none.Add(&Syscall{})
	if none.Errors != nil {
		t.Errorf("adding no errors made an Errors map: %v", none.Errors)
	}
}

func TestCumulativeBuckets(t *testing.T) {
	s := &Syscall{Count: 100, Sampled: 10}
	s.Buckets[0], s.Buckets[2], s.Buckets[NumBuckets-1] = 4, 5, 1
	got := s.CumulativeBuckets()
	if len(got) != NumBuckets-1 {
		t.Fatalf("%d buckets, want %d (all but +Inf)", len(got), NumBuckets-1)
	}
	for _, tc := range []struct {
		le   float64
		want uint64
	}{
		{512e-9, 4},
		{1024e-9, 4},
		{2048e-9, 9},
		{BucketUpperBound(NumBuckets - 2).Seconds(), 9},
	} {
		n, ok := got[tc.le]
		if !ok || n != tc.want {
			t.Errorf("bucket le=%g: %d (present %v), want %d", tc.le, n, ok, tc.want)
		}
	}

	if got := (&Syscall{}).CumulativeBuckets(); len(got) != NumBuckets-1 {
		t.Errorf("empty histogram: %d buckets, want %d", len(got), NumBuckets-1)
	}
}
