package syscalls

// ServiceTotals turns per-process Snapshots into per-service totals that
// never go backwards: a process's totals count towards its service while it
// lives and, from the Snapshot that reports it exited, stay in the service's
// retired totals. The zero value is ready to use; it is not safe for
// concurrent use.
type ServiceTotals struct {
	retired map[string]map[uint32]*Syscall
}

// Update folds snap into the totals and returns every service's cumulative
// totals by syscall number, including services whose processes have all
// exited. service names a process's service; "" leaves the process out (its
// calls are then never counted, alive or exited). The result is the
// caller's to keep.
//
// The totals only grow as long as each process keeps its service while it
// lives; Update must see every Snapshot of the Tracer, since an exited
// process is reported once.
func (st *ServiceTotals) Update(snap *Snapshot, service func(tgid uint32, p *Process) string) map[string]map[uint32]*Syscall {
	if st.retired == nil {
		st.retired = map[string]map[uint32]*Syscall{}
	}
	out := make(map[string]map[uint32]*Syscall, len(st.retired))
	for svc, calls := range st.retired {
		addCalls(out, svc, calls)
	}
	for tgid, p := range snap.Processes {
		svc := service(tgid, p)
		if svc == "" {
			continue
		}
		addCalls(out, svc, p.Syscalls)
		if p.Exited {
			addCalls(st.retired, svc, p.Syscalls)
		}
	}
	return out
}

// Forget drops a service's retired totals, for a service that is gone for
// good; were it to come back, its counters would start again from zero.
func (st *ServiceTotals) Forget(service string) {
	delete(st.retired, service)
}

func addCalls(to map[string]map[uint32]*Syscall, svc string, calls map[uint32]*Syscall) {
	m := to[svc]
	if m == nil {
		m = make(map[uint32]*Syscall, len(calls))
		to[svc] = m
	}
	for nr, s := range calls {
		sum := m[nr]
		if sum == nil {
			sum = &Syscall{}
			m[nr] = sum
		}
		sum.Add(s)
	}
}
