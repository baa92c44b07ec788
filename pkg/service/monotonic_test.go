package service

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// TestCountersNeverDecreaseUnderChurn: processes of one service come, grow
// now and then by whole clock ticks and nanoseconds, and exit in random order, as in a
// shell loop spawning short-lived workers. Every counter the service reports
// — as exported, in seconds — never goes down: Prometheus would read the
// smallest step back as a counter reset and a rate the size of the whole
// total. (Float sums of seconds, whose order of additions changes when an
// exited process is folded in, went 0.9000000000000001 → 0.9.)
func TestCountersNeverDecreaseUnderChurn(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	tr := NewTracker(Config{})
	type live struct {
		p     Process
		ticks uint64
		wait  uint64
	}
	var procs []*live
	next := 100
	var lastCPU, lastWait float64
	for step := range 5000 {
		// Some exit, some start (with what they used before they were
		// first seen), the rest grow.
		for i := len(procs) - 1; i >= 0; i-- {
			if rng.IntN(4) == 0 {
				procs = append(procs[:i], procs[i+1:]...)
			}
		}
		for range rng.IntN(4) {
			next++
			p := proc(next, 1, uint64(next), "/bin/go", 0)
			procs = append(procs, &live{p: p, ticks: uint64(rng.IntN(20)), wait: uint64(rng.IntN(5_000_000))})
		}
		var ps []Process
		for _, l := range procs {
			// Mostly idle, as most of a host's processes are: a
			// step that only folds an exited process in must not
			// move the total at all.
			if rng.IntN(10) == 0 {
				l.ticks += uint64(1 + rng.IntN(3))
				l.wait += uint64(1 + rng.IntN(1_000_000))
			}
			setCPU(&l.p.Counters, l.ticks, l.wait)
			ps = append(ps, l.p)
		}
		// The oldest first, then in a shuffled order: a scan's order is
		// the kernel's.
		rng.Shuffle(len(ps), func(i, j int) { ps[i], ps[j] = ps[j], ps[i] })
		snap := tr.Update(ps)
		if len(snap.Services) == 0 {
			continue
		}
		k := snap.Services[0].Counters
		cpu, wait := userSeconds(k), runqueueSeconds(k)
		if cpu < lastCPU || wait < lastWait {
			t.Fatalf("step %d: cpu %s → %s, run-queue wait %s → %s: a counter went down", step,
				fmt.Sprint(lastCPU), fmt.Sprint(cpu), fmt.Sprint(lastWait), fmt.Sprint(wait))
		}
		lastCPU, lastWait = cpu, wait
	}
	if lastCPU == 0 || lastWait == 0 {
		t.Fatalf("nothing counted: cpu %v, wait %v", lastCPU, lastWait)
	}
}
