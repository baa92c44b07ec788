package syscalls

import (
	"syscall"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func calls(count uint64, errs map[syscall.Errno]uint64) map[uint32]*Syscall {
	s := &Syscall{Count: count, Sampled: count, Sum: 10 * 1000 * 1000, Errors: errs}
	s.Buckets[3] = count
	return map[uint32]*Syscall{0: s}
}

func TestServiceTotals(t *testing.T) {
	service := func(tgid uint32, p *Process) string { return p.Comm }
	var st ServiceTotals
	type want map[string]uint64 // service → count of syscall 0

	check := func(step string, got map[string]map[uint32]*Syscall, w want, wantErrs map[string]map[syscall.Errno]uint64) {
		t.Helper()
		gotCounts := want{}
		gotErrs := map[string]map[syscall.Errno]uint64{}
		for svc, m := range got {
			gotCounts[svc] = m[0].Count
			if m[0].Buckets[3] != m[0].Count {
				t.Errorf("%s: %s: bucket 3 = %d, want %d", step, svc, m[0].Buckets[3], m[0].Count)
			}
			if m[0].Errors != nil {
				gotErrs[svc] = m[0].Errors
			}
		}
		if diff := cmp.Diff(w, gotCounts); diff != "" {
			t.Errorf("%s: counts (-want +got):\n%s", step, diff)
		}
		if diff := cmp.Diff(wantErrs, gotErrs); diff != "" {
			t.Errorf("%s: errors (-want +got):\n%s", step, diff)
		}
	}

	// Two web processes and a db; a process with no service is left out.
	got := st.Update(&Snapshot{Processes: map[uint32]*Process{
		10: {Comm: "web", Syscalls: calls(5, nil)},
		11: {Comm: "web", Syscalls: calls(7, map[syscall.Errno]uint64{2: 1})},
		20: {Comm: "db", Syscalls: calls(3, nil)},
		30: {Comm: "", Syscalls: calls(100, nil)},
	}}, service)
	check("first", got, want{"web": 12, "db": 3}, map[string]map[syscall.Errno]uint64{"web": {2: 1}})

	// Web 11 exits (reported once, with its final totals), web 10 goes on.
	got = st.Update(&Snapshot{Processes: map[uint32]*Process{
		10: {Comm: "web", Syscalls: calls(6, nil)},
		11: {Comm: "web", Exited: true, Syscalls: calls(9, map[syscall.Errno]uint64{2: 2})},
		20: {Comm: "db", Exited: true, Syscalls: calls(4, nil)},
	}}, service)
	check("exits", got, want{"web": 15, "db": 4}, map[string]map[syscall.Errno]uint64{"web": {2: 2}})

	// Later: the exited processes are gone from the snapshot, their totals
	// stay; a new web process starts from zero and adds to them.
	got = st.Update(&Snapshot{Processes: map[uint32]*Process{
		10: {Comm: "web", Syscalls: calls(8, nil)},
		12: {Comm: "web", Syscalls: calls(1, nil)},
	}}, service)
	check("after", got, want{"web": 18, "db": 4}, map[string]map[syscall.Errno]uint64{"web": {2: 2}})

	// The result belongs to the caller: changing it changes nothing here.
	got["db"][0].Count = 1000
	got = st.Update(&Snapshot{}, service)
	check("empty snapshot", got, want{"web": 9, "db": 4}, map[string]map[syscall.Errno]uint64{"web": {2: 2}})

	st.Forget("db")
	got = st.Update(&Snapshot{}, service)
	check("forgotten", got, want{"web": 9}, map[string]map[syscall.Errno]uint64{"web": {2: 2}})
}

// TestServiceTotalsMove: a process that moves to another service while it
// lives leaves what it counted with the service it leaves and counts for
// the new one from then on; neither goes backwards.
func TestServiceTotalsMove(t *testing.T) {
	svcOf := map[uint32]string{40: "bash"}
	service := func(tgid uint32, p *Process) string { return svcOf[tgid] }
	var st ServiceTotals
	count := func(got map[string]map[uint32]*Syscall, svc string) (uint64, uint64, uint64) {
		if got[svc] == nil {
			return 0, 0, 0
		}
		s := got[svc][0]
		return s.Count, s.Errors[2], s.Buckets[3]
	}
	got := st.Update(&Snapshot{Processes: map[uint32]*Process{40: {Syscalls: calls(10, map[syscall.Errno]uint64{2: 4})}}}, service)
	if c, e, b := count(got, "bash"); c != 10 || e != 4 || b != 10 {
		t.Errorf("before the move: bash %d calls, %d errors, bucket %d; want 10, 4, 10", c, e, b)
	}
	svcOf[40] = "grep"
	got = st.Update(&Snapshot{Processes: map[uint32]*Process{40: {Syscalls: calls(15, map[syscall.Errno]uint64{2: 5})}}}, service)
	if c, e, _ := count(got, "bash"); c != 15 || e != 5 {
		t.Errorf("at the move: bash %d calls, %d errors; want 15 and 5 (all it counted until the move)", c, e)
	}
	if c, _, _ := count(got, "grep"); c != 0 {
		t.Errorf("at the move: grep %d calls, want 0 (it counts from the move on)", c)
	}
	got = st.Update(&Snapshot{Processes: map[uint32]*Process{40: {Syscalls: calls(21, map[syscall.Errno]uint64{2: 7}), Exited: true}}}, service)
	bc, be, _ := count(got, "bash")
	gc, ge, gb := count(got, "grep")
	if bc != 15 || be != 5 || gc != 6 || ge != 2 || gb != 6 {
		t.Errorf("after the exit: bash %d/%d, grep %d/%d (bucket %d); want bash 15/5, grep 6/2 (bucket 6)", bc, be, gc, ge, gb)
	}
	got = st.Update(&Snapshot{}, service)
	if c, _, _ := count(got, "grep"); c != 6 {
		t.Errorf("later: grep %d, want its 6 retired", c)
	}
}
