package syscalls

import "maps"

// ServiceTotals turns per-process Snapshots into per-service totals that
// never go backwards: a process's totals count towards its service while it
// lives and, from the Snapshot that reports it exited, stay in the service's
// retired totals. The zero value is ready to use; it is not safe for
// concurrent use.
type ServiceTotals struct {
	retired map[string]map[uint32]*Syscall
	// owners is, per live process, the service it counts for and its
	// totals when it began to (nil: from its start).
	owners map[uint32]owner
}

type owner struct {
	service string
	base    map[uint32]*Syscall
}

// Update folds snap into the totals and returns every service's cumulative
// totals by syscall number, including services whose processes have all
// exited. service names a process's service; "" leaves the process out (its
// calls are then never counted, alive or exited). The result is the
// caller's to keep.
//
// A process that moves to another service while it lives (a command that
// counted for its parent's service until it lived long enough to be one of
// its own) leaves what it counted so far with the service it leaves, and
// counts for the new one from then on, so neither goes backwards. Update
// must see every Snapshot of the Tracer, since an exited process is
// reported once.
func (st *ServiceTotals) Update(snap *Snapshot, service func(tgid uint32, p *Process) string) map[string]map[uint32]*Syscall {
	if st.retired == nil {
		st.retired = map[string]map[uint32]*Syscall{}
		st.owners = map[uint32]owner{}
	}
	for tgid, p := range snap.Processes {
		svc := service(tgid, p)
		o, had := st.owners[tgid]
		if had && o.service != svc {
			if o.service != "" {
				st.retire(o.service, since(p.Syscalls, o.base))
			}
			o = owner{service: svc, base: cloneCalls(p.Syscalls)}
		} else if !had {
			o = owner{service: svc}
		}
		if p.Exited {
			if svc != "" {
				st.retire(svc, since(p.Syscalls, o.base))
			}
			delete(st.owners, tgid)
			continue
		}
		st.owners[tgid] = o
	}
	for tgid := range st.owners {
		if _, ok := snap.Processes[tgid]; !ok {
			delete(st.owners, tgid) // forgotten by the tracer
		}
	}
	out := make(map[string]map[uint32]*Syscall, len(st.retired))
	for svc, calls := range st.retired {
		addCalls(out, svc, calls)
	}
	for tgid, o := range st.owners {
		if o.service != "" {
			addCalls(out, o.service, since(snap.Processes[tgid].Syscalls, o.base))
		}
	}
	return out
}

func (st *ServiceTotals) retire(svc string, calls map[uint32]*Syscall) {
	addCalls(st.retired, svc, calls)
}

// since returns the totals counted after base (all of them when base is
// nil).
func since(calls, base map[uint32]*Syscall) map[uint32]*Syscall {
	if base == nil {
		return calls
	}
	out := make(map[uint32]*Syscall, len(calls))
	for nr, s := range calls {
		out[nr] = s.Since(base[nr])
	}
	return out
}

// cloneCalls copies totals.
func cloneCalls(calls map[uint32]*Syscall) map[uint32]*Syscall {
	out := make(map[uint32]*Syscall, len(calls))
	for nr, s := range calls {
		c := *s
		c.Errors = maps.Clone(s.Errors)
		out[nr] = &c
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
