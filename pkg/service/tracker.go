package service

import (
	"sort"
	"time"

	"github.com/telltale-dev/telltale/pkg/buildid"
)

// Service is one service as of the latest Update.
type Service struct {
	Name string
	Kind Kind
	// Exe is the executable of the service's oldest process.
	Exe       string
	Processes int
	Threads   int
	RSSBytes  float64
	FDs       int
	// Counters include what the service's exited processes counted, so they
	// never go backwards while the service is tracked.
	Counters Counters
	// Restarts counts how often the service's oldest process was replaced by
	// a new one, or the service came back after being gone.
	Restarts float64
	// Deploys counts changes of Identity.
	Deploys float64
	// StartTime is when the oldest process started, in Unix seconds.
	StartTime float64
	// Identity is the build identity of the oldest process's executable;
	// zero when not asked for or not readable.
	Identity buildid.Identity
}

// Snapshot is the state of every service after an Update.
type Snapshot struct {
	// Services sorted by name, at most Config.MaxServices of them.
	Services []Service
	// Dropped is how many services were over the limit in this update.
	Dropped int
	// ByPID maps each process of a kept service to the service's name.
	ByPID map[int]string
	// IdentityErrors counts executables whose identity could not be read.
	IdentityErrors int
}

// IdentifyFunc returns the build identity of a process's executable.
type IdentifyFunc func(pid int) (buildid.Identity, error)

// Config says how a Tracker groups and limits services.
type Config struct {
	// MaxServices bounds the number of services reported; 0 means no limit.
	MaxServices int
	// Rules rename or merge services; nil means none.
	Rules *Rules
	// Retain is how long a service that is gone keeps its counters, so that
	// coming back counts as a restart and its counters carry on. Defaults to
	// 15 minutes.
	Retain time.Duration
	// Identify, when set, is called for a service's oldest process whenever
	// that process changes, to detect deploys.
	Identify IdentifyFunc
	// Now returns the current time; defaults to time.Now.
	Now func() time.Time
	// Since is when the tracker began to look: at the first update, a
	// process started after it is new (see group). Defaults to the time
	// of NewTracker.
	Since time.Time
}

// Tracker groups processes into services and keeps each service's counters
// monotonic across process exits, restarts and deploys. It is not safe for
// concurrent use.
type Tracker struct {
	cfg      Config
	procs    map[procKey]*procState
	services map[string]*serviceState
	updates  int
}

type procState struct {
	service string
	last    Counters
	acc     Counters
}

type serviceState struct {
	kind     Kind
	base     Counters // counted by processes that have left the service
	leader   procKey
	leaderEx string
	// identified is the leader whose identity was last asked for, so an
	// unreadable executable is tried once per leader, not every update.
	identified procKey
	identity   buildid.Identity
	restarts   float64
	deploys    float64
	lastSeen   time.Time
	present    bool
	exported   bool
}

// NewTracker returns a Tracker with the given configuration.
func NewTracker(cfg Config) *Tracker {
	if cfg.Retain == 0 {
		cfg.Retain = 15 * time.Minute
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Since.IsZero() {
		cfg.Since = cfg.Now()
	}
	return &Tracker{cfg: cfg, procs: map[procKey]*procState{}, services: map[string]*serviceState{}}
}

// Update takes the processes of one scan and returns every service's state.
func (t *Tracker) Update(procs []Process) Snapshot {
	now := t.cfg.Now()
	first := t.updates == 0
	t.updates++

	names := t.group(procs)

	type agg struct {
		Service
		members []*Process
	}
	aggs := map[string]*agg{}
	alive := make(map[procKey]bool, len(procs))
	for i := range procs {
		p := &procs[i]
		k := p.key()
		alive[k] = true
		name := names[k]
		a := aggs[name.name]
		if a == nil {
			a = &agg{Service: Service{Name: name.name, Kind: name.kind}}
			aggs[name.name] = a
		}
		a.members = append(a.members, p)
	}

	// Processes that exited or moved hand their counts to the service they
	// leave, so its counters don't go backwards.
	for k, ps := range t.procs {
		if n, ok := names[k]; alive[k] && ok && n.name == ps.service {
			continue
		}
		if s := t.services[ps.service]; s != nil {
			s.base.add(ps.acc)
		}
		if !alive[k] {
			delete(t.procs, k)
		} else {
			ps.service = names[k].name
			ps.acc = Counters{}
		}
	}

	snap := Snapshot{ByPID: make(map[int]string, len(procs))}
	fresh := map[procKey]bool{}
	for name, a := range aggs {
		s := t.services[name]
		if s == nil {
			s = &serviceState{kind: a.Kind}
			t.services[name] = s
		} else if !s.present {
			// Gone for a while and back: a restart.
			s.restarts++
		}
		s.present = true
		s.lastSeen = now
		a.Counters = s.base
		leader := a.members[0]
		leaderIsNew := false
		for _, p := range a.members {
			k := p.key()
			ps := t.procs[k]
			if ps == nil {
				ps = &procState{service: name, acc: p.Counters}
				t.procs[k] = ps
				fresh[k] = true
			} else {
				ps.acc.addIncrease(ps.last, p.Counters)
			}
			ps.last = p.Counters
			a.Counters.add(ps.acc)
			a.Processes++
			a.Threads += p.Threads
			a.RSSBytes += p.RSSBytes
			a.FDs += p.FDs
			if p.Start < leader.Start || p.Start == leader.Start && p.PID < leader.PID {
				leader = p
			}
		}
		if lk := leader.key(); lk != s.leader {
			if s.leader != (procKey{}) && !alive[s.leader] && !first {
				// The oldest process was replaced by one started since
				// the last update, not merely succeeded by a worker.
				leaderIsNew = fresh[lk]
				if leaderIsNew {
					s.restarts++
				}
			}
			s.leader = lk
		}
		a.Kind = t.groupKind(names[leader.key()], s)
		a.Exe = leader.Exe
		a.StartTime = leader.StartTime
		if t.cfg.Identify != nil && (s.identified != leader.key() || s.leaderEx != leader.Exe) {
			s.identified = leader.key()
			id, err := t.cfg.Identify(leader.PID)
			switch {
			case vanished(err):
				// Exited since the scan; the next leader will be read.
			case err != nil:
				snap.IdentityErrors++
			default:
				if s.identity.ID != "" && id.ID != s.identity.ID {
					s.deploys++
				}
				s.identity = id
			}
		}
		s.leaderEx = leader.Exe
		a.Identity = s.identity
		a.Restarts = s.restarts
		a.Deploys = s.deploys
	}

	for name, s := range t.services {
		if _, ok := aggs[name]; ok {
			continue
		}
		s.present = false
		s.leader = procKey{}
		if now.Sub(s.lastSeen) > t.cfg.Retain {
			delete(t.services, name)
		}
	}

	all := make([]string, 0, len(aggs))
	for name := range aggs {
		all = append(all, name)
	}
	// Over the limit, services already reported keep their place, so that
	// series don't flap; then names decide.
	sort.Slice(all, func(i, j int) bool {
		ei, ej := t.services[all[i]].exported, t.services[all[j]].exported
		if ei != ej {
			return ei
		}
		return all[i] < all[j]
	})
	if m := t.cfg.MaxServices; m > 0 && len(all) > m {
		snap.Dropped = len(all) - m
		for _, name := range all[m:] {
			t.services[name].exported = false
		}
		all = all[:m]
	}
	sort.Strings(all)
	snap.Services = make([]Service, 0, len(all))
	for _, name := range all {
		a := aggs[name]
		t.services[name].exported = true
		snap.Services = append(snap.Services, a.Service)
		for _, p := range a.members {
			snap.ByPID[p.PID] = name
		}
	}
	return snap
}

// isNew reports whether p appeared since the last update: not seen by an
// earlier one and, at the first, started after Config.Since.
func (t *Tracker) isNew(p *Process) bool {
	if _, seen := t.procs[p.key()]; seen {
		return false
	}
	return t.updates > 1 || p.StartTime > float64(t.cfg.Since.UnixNano())/1e9
}

// present reports whether a service of that name was there at the last
// update.
func (t *Tracker) present(name string) bool {
	s := t.services[name]
	return s != nil && s.present
}

// groupKind keeps a service's kind stable once seen.
func (t *Tracker) groupKind(n groupName, s *serviceState) Kind {
	if s.kind == "" {
		s.kind = n.kind
	}
	return s.kind
}

type groupName struct {
	name string
	kind Kind
}

// group names every process's service: cgroup, then process tree, then
// program name, then the rules. It reads the state of the last update (the
// processes and services seen), so it runs before Update changes it.
func (t *Tracker) group(procs []Process) map[procKey]groupName {
	byPID := make(map[int]*Process, len(procs))
	for i := range procs {
		byPID[procs[i].PID] = &procs[i]
	}
	// A container is named after its first process: the oldest member
	// whose parent is outside the container.
	containerRoot := map[string]*Process{}
	for i := range procs {
		p := &procs[i]
		if p.group == nil || p.group.unit != "" {
			continue
		}
		if parent := byPID[p.PPID]; parent != nil && parent.group != nil && parent.group.id == p.group.id {
			continue
		}
		if r := containerRoot[p.group.id]; r == nil || p.Start < r.Start {
			containerRoot[p.group.id] = p
		}
	}

	memo := make(map[int]groupName, len(procs))
	var resolve func(p *Process, depth int) groupName
	resolve = func(p *Process, depth int) groupName {
		if n, ok := memo[p.PID]; ok {
			return n
		}
		var n groupName
		switch {
		case p.group != nil && p.group.unit != "":
			n = groupName{p.group.unit, p.group.kind}
		case p.group != nil:
			root := containerRoot[p.group.id]
			if root == nil {
				root = p
			}
			n = groupName{root.Name, p.group.kind}
		default:
			parent := byPID[p.PPID]
			linked := depth < 64 && parent != nil && parent.PID != p.PID
			switch {
			case linked && parent.group == nil && (p.Exe != "" && parent.Exe == p.Exe || parent.prog.shell && !p.prog.script):
				// A worker runs its master's executable; a command run
				// by a shell script is part of the script, unless it is
				// a program with a name of its own (python3 worker.py).
				n = resolve(parent, depth+1)
			case linked && t.isNew(p) && !p.Serves && !t.present(p.Name):
				// New since the last look, no server (it holds no
				// listening socket) and no service of its name was
				// there: a command typed in a shell, a compiler a
				// build runs. It counts for its parent's service until
				// it has lived through an update, so no service is made
				// of a process that lived less than a scrape (nor
				// restarted each time the command runs again); one
				// that lives on is a service from the next update. A
				// server's ports would otherwise be its parent's for a
				// scrape, and stay on the map as the parent's.
				n = resolve(parent, depth+1)
			default:
				n = groupName{p.Name, KindProcess}
			}
		}
		memo[p.PID] = n
		return n
	}

	out := make(map[procKey]groupName, len(procs))
	for i := range procs {
		p := &procs[i]
		n := resolve(p, 0)
		if t.cfg.Rules != nil {
			n.name = t.cfg.Rules.Apply(n.name, p.Exe, p.cgroupPath)
		}
		out[p.key()] = n
	}
	return out
}
