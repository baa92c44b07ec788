package service

import (
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/telltale-dev/telltale/pkg/buildid"
)

func proc(pid, ppid int, start uint64, exe string, cpu float64) Process {
	name := exe[strings.LastIndexByte(exe, '/')+1:]
	return Process{PID: pid, PPID: ppid, Start: start, Exe: exe, Name: name, prog: program{name: name},
		Counters: Counters{UserTicks: uint64(math.Round(cpu * userHZ))}, Threads: 1}
}

func byName(t *testing.T, snap Snapshot, name string) Service {
	t.Helper()
	for _, s := range snap.Services {
		if s.Name == name {
			return s
		}
	}
	t.Fatalf("no service %q in %v", name, names(snap))
	return Service{}
}

func names(snap Snapshot) []string {
	var out []string
	for _, s := range snap.Services {
		out = append(out, s.Name)
	}
	return out
}

func TestCountersStayMonotonic(t *testing.T) {
	tr := NewTracker(Config{})
	tr.Update([]Process{proc(10, 1, 100, "/bin/web", 5), proc(11, 10, 110, "/bin/web", 3)})
	// The worker exits having used 4 s; the master grows to 6 s.
	snap := tr.Update([]Process{proc(10, 1, 100, "/bin/web", 6)})
	web := byName(t, snap, "web")
	if web.Counters.UserSeconds() != 9 || web.Processes != 1 {
		t.Errorf("after a worker exited: cpu %v, processes %d; want 9 (6 + the worker's 3 as last seen) and 1", web.Counters.UserSeconds(), web.Processes)
	}
	// A new worker arrives with 1 s already used.
	snap = tr.Update([]Process{proc(10, 1, 100, "/bin/web", 6), proc(12, 10, 130, "/bin/web", 1)})
	if got := byName(t, snap, "web").Counters.UserSeconds(); got != 10 {
		t.Errorf("cpu = %v, want 10 (6 + 3 from the exited worker + 1)", got)
	}
	// A per-process counter that goes backwards (a thread exited) never
	// takes the service's counter back.
	p := proc(10, 1, 100, "/bin/web", 6)
	p.Counters.VoluntarySwitches = 100
	tr.Update([]Process{p, proc(12, 10, 130, "/bin/web", 1)})
	p.Counters.VoluntarySwitches = 40
	snap = tr.Update([]Process{p, proc(12, 10, 130, "/bin/web", 1)})
	if got := byName(t, snap, "web").Counters.VoluntarySwitches; got != 100 {
		t.Errorf("voluntary switches = %v after a thread exited, want 100", got)
	}
}

func TestRestartsAndComeback(t *testing.T) {
	now := time.Unix(1000, 0)
	tr := NewTracker(Config{Now: func() time.Time { return now }, Retain: time.Minute})
	tr.Update([]Process{proc(10, 1, 100, "/bin/api", 5), proc(11, 10, 110, "/bin/api", 1)})
	// The oldest process is replaced by a new one: a restart.
	snap := tr.Update([]Process{proc(20, 1, 500, "/bin/api", 0.5)})
	api := byName(t, snap, "api")
	if api.Restarts != 1 {
		t.Errorf("restarts = %v, want 1", api.Restarts)
	}
	if api.Counters.UserSeconds() != 6.5 {
		t.Errorf("cpu = %v, want 6.5 (counts of exited processes carry over)", api.Counters.UserSeconds())
	}
	// The master dies but an old worker lives on: not a restart.
	tr.Update([]Process{proc(20, 1, 500, "/bin/api", 1), proc(21, 20, 510, "/bin/api", 1)})
	snap = tr.Update([]Process{proc(21, 1, 510, "/bin/api", 1)})
	if got := byName(t, snap, "api").Restarts; got != 1 {
		t.Errorf("restarts = %v after the master died and a worker was left, want 1", got)
	}
	// Gone, then back within Retain: a restart, counters carry on.
	snap = tr.Update(nil)
	if len(snap.Services) != 0 {
		t.Fatalf("services while gone: %v", names(snap))
	}
	now = now.Add(30 * time.Second)
	snap = tr.Update([]Process{proc(30, 1, 900, "/bin/api", 2)})
	api = byName(t, snap, "api")
	if api.Restarts != 2 || api.Counters.UserSeconds() != 10 {
		t.Errorf("after a comeback: restarts %v cpu %v, want 2 and 10 (8 before + 2)", api.Restarts, api.Counters.UserSeconds())
	}
	// Gone for longer than Retain: a new service.
	tr.Update(nil)
	now = now.Add(2 * time.Minute)
	tr.Update(nil)
	snap = tr.Update([]Process{proc(40, 1, 2000, "/bin/api", 1)})
	api = byName(t, snap, "api")
	if api.Restarts != 0 || api.Counters.UserSeconds() != 1 {
		t.Errorf("after Retain: restarts %v cpu %v, want 0 and 1", api.Restarts, api.Counters.UserSeconds())
	}
}

func TestDeploys(t *testing.T) {
	builds := map[int]string{10: "aaa", 20: "bbb", 30: "bbb"}
	calls := 0
	tr := NewTracker(Config{Identify: func(pid int) (buildid.Identity, error) {
		calls++
		id, ok := builds[pid]
		if !ok {
			return buildid.Identity{}, errors.New("unreadable")
		}
		return buildid.Identity{ID: id, Source: buildid.SourceGNU}, nil
	}})
	snap := tr.Update([]Process{proc(10, 1, 100, "/bin/pay", 1)})
	if s := byName(t, snap, "pay"); s.Identity.ID != "aaa" || s.Deploys != 0 {
		t.Fatalf("first sight: %+v", s)
	}
	tr.Update([]Process{proc(10, 1, 100, "/bin/pay", 1)})
	if calls != 1 {
		t.Errorf("identity read %d times for an unchanged process, want 1", calls)
	}
	snap = tr.Update([]Process{proc(20, 1, 200, "/bin/pay", 1)})
	if s := byName(t, snap, "pay"); s.Identity.ID != "bbb" || s.Deploys != 1 || s.Restarts != 1 {
		t.Errorf("after a new build: identity %q deploys %v restarts %v; want bbb 1 1", s.Identity.ID, s.Deploys, s.Restarts)
	}
	// A restart of the same build is not a deploy.
	snap = tr.Update([]Process{proc(30, 1, 300, "/bin/pay", 1)})
	if s := byName(t, snap, "pay"); s.Deploys != 1 || s.Restarts != 2 {
		t.Errorf("after a plain restart: deploys %v restarts %v; want 1 2", s.Deploys, s.Restarts)
	}
	// An unreadable executable is counted and keeps the last identity.
	snap = tr.Update([]Process{proc(40, 1, 400, "/bin/pay", 1)})
	if snap.IdentityErrors != 1 || byName(t, snap, "pay").Identity.ID != "bbb" {
		t.Errorf("unreadable: errors %d identity %q", snap.IdentityErrors, byName(t, snap, "pay").Identity.ID)
	}
}

func TestGrouping(t *testing.T) {
	svc := &cgroupGroup{kind: KindSystemd, id: "shop.service", unit: "shop"}
	ctr := &cgroupGroup{kind: KindDocker, id: strings.Repeat("c", 64)}
	script := proc(50, 1, 100, "/usr/bin/bash", 0)
	script.Name, script.prog = "etl", program{name: "etl", script: true, shell: true}
	py := proc(53, 50, 103, "/usr/bin/python3", 0)
	py.Name, py.prog = "load", program{name: "load", script: true}
	inUnit := proc(60, 1, 100, "/usr/bin/python3", 0)
	inUnit.group = svc
	inUnit.Name = "app"
	ctrRoot := proc(70, 69, 100, "/usr/bin/tini", 0)
	ctrRoot.group = ctr
	ctrChild := proc(71, 70, 101, "/usr/local/bin/redis-server", 0)
	ctrChild.group = ctr
	procs := []Process{
		proc(10, 1, 100, "/usr/sbin/nginx", 0), proc(11, 10, 101, "/usr/sbin/nginx", 0),
		script, proc(51, 50, 101, "/usr/bin/tar", 0), proc(52, 50, 102, "/usr/bin/gzip", 0), py,
		inUnit, ctrRoot, ctrChild,
		proc(80, 1, 100, "/usr/bin/sleep", 0), proc(81, 1, 100, "/usr/bin/sleep", 0),
	}
	snap := NewTracker(Config{}).Update(procs)
	got := map[string]int{}
	kinds := map[string]Kind{}
	for _, s := range snap.Services {
		got[s.Name] = s.Processes
		kinds[s.Name] = s.Kind
	}
	want := map[string]int{"nginx": 2, "etl": 3, "load": 1, "shop": 1, "tini": 2, "sleep": 2}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("services (-want +got):\n%s", diff)
	}
	if kinds["shop"] != KindSystemd || kinds["tini"] != KindDocker || kinds["etl"] != KindProcess {
		t.Errorf("kinds = %v", kinds)
	}
	if snap.ByPID[52] != "etl" || snap.ByPID[71] != "tini" {
		t.Errorf("ByPID = %v", snap.ByPID)
	}
}

func TestLimitAndRules(t *testing.T) {
	rules, err := ParseRules(strings.NewReader(`
services:
  - match: {service: "worker-(.*)"}
    name: "jobs-$1"
  - match: {exe: "/opt/legacy/.*"}
    name: legacy
`))
	if err != nil {
		t.Fatal(err)
	}
	tr := NewTracker(Config{MaxServices: 3, Rules: rules})
	snap := tr.Update([]Process{
		proc(1, 0, 1, "/bin/worker-a", 0), proc(2, 0, 1, "/opt/legacy/x", 0), proc(3, 0, 1, "/opt/legacy/y", 0),
		proc(4, 0, 1, "/bin/zeta", 0),
	})
	if diff := cmp.Diff([]string{"jobs-a", "legacy", "zeta"}, names(snap)); diff != "" {
		t.Errorf("services (-want +got):\n%s", diff)
	}
	if snap.Dropped != 0 {
		t.Errorf("dropped = %d", snap.Dropped)
	}
	// A fourth service that sorts first does not push out one already
	// reported.
	snap = tr.Update([]Process{
		proc(1, 0, 1, "/bin/worker-a", 0), proc(2, 0, 1, "/opt/legacy/x", 0), proc(4, 0, 1, "/bin/zeta", 0), proc(5, 0, 1, "/bin/alpha", 0),
	})
	if diff := cmp.Diff([]string{"jobs-a", "legacy", "zeta"}, names(snap)); diff != "" {
		t.Errorf("services over the limit (-want +got):\n%s", diff)
	}
	if snap.Dropped != 1 {
		t.Errorf("dropped = %d, want 1", snap.Dropped)
	}
	if _, ok := snap.ByPID[5]; ok {
		t.Errorf("a dropped service's process is mapped: %v", snap.ByPID)
	}
}

func TestParseRulesErrors(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"empty file", "", ""},
		{"no name", "services:\n  - match: {service: x}\n", "name is empty"},
		{"no match", "services:\n  - name: x\n", "match is empty"},
		{"bad regex", "services:\n  - match: {exe: \"(\"}\n    name: x\n", "match.exe"},
		{"unknown field", "services:\n  - match: {program: x}\n    name: x\n", `line 2: rule 1: unknown key "program" in match; want service, exe or cgroup`},
		{"not yaml", "services: [", "parse"},
		// Mistakes are told by line and key, never by Go types.
		{"list for a regex", "services:\n  - match: {service: [a, b]}\n    name: x\n", "line 2: rule 1: match.service must be a string"},
		{"misspelt top key", "service:\n  - name: x\n", `line 1: unknown key "service"; the file has one key, services`},
		{"services a mapping", "services:\n  name: x\n", "line 2: services must be a list of rules"},
		{"unknown rule key", "services:\n  - match: {exe: x}\n    nmae: y\n", `line 3: rule 1: unknown key "nmae"`},
		{"name a list", "services:\n  - match: {exe: x}\n    name: [y]\n", "line 3: rule 1: name must be a string"},
		{"rule a string", "services:\n  - x\n", "line 2: rule 1 must be a mapping"},
		{"file a list", "- services\n", "line 1: the file must be a mapping"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := ParseRules(strings.NewReader(tt.in))
			if tt.want == "" {
				if err != nil || r.Len() != 0 {
					t.Fatalf("ParseRules = %v, %v; want no rules, no error", r, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("ParseRules error = %v, want it to mention %q", err, tt.want)
			}
			if err != nil && (strings.Contains(err.Error(), "struct {") || strings.Contains(err.Error(), "rulesFile")) {
				t.Errorf("ParseRules error shows Go types: %v", err)
			}
		})
	}
}

func FuzzParseRules(f *testing.F) {
	f.Add("services:\n  - match: {service: \"a(.*)\"}\n    name: \"$1\"\n")
	f.Add("services: []")
	f.Fuzz(func(t *testing.T, in string) {
		r, err := ParseRules(strings.NewReader(in))
		if err != nil {
			return
		}
		_ = r.Apply("service", "/bin/exe", "/cg")
	})
}

func setCPU(c *Counters, ticks, waitNanos uint64) {
	c.UserTicks, c.RunqueueWaitNanoseconds = ticks, waitNanos
}

func userSeconds(c Counters) float64     { return c.UserSeconds() }
func runqueueSeconds(c Counters) float64 { return c.RunqueueWaitSeconds() }

// TestNewProcessesWaitAScan: a process new since the last update that would
// start a service of its own counts for its parent's until it has lived
// through an update; one that joins a service already there (a restart, a
// deploy) joins at once.
func TestNewProcessesWaitAScan(t *testing.T) {
	now := time.Unix(5000, 0)
	tr := NewTracker(Config{Now: func() time.Time { return now }, Since: time.Unix(4000, 0)})
	at := func(p Process, start float64) Process { p.StartTime = start; return p }
	shell := at(proc(10, 1, 100, "/usr/bin/bash", 1), 3000)
	sup := at(proc(5, 1, 10, "/usr/bin/supervisord", 0), 1000)
	// At the first update, what started before the tracker looked is
	// established; what started after is new.
	snap := tr.Update([]Process{shell, at(proc(11, 10, 4100, "/usr/bin/tail", 0.5), 4100), at(proc(20, 5, 50, "/usr/sbin/api", 2), 2000), sup})
	if got := names(snap); !cmp.Equal(got, []string{"api", "bash", "supervisord"}) {
		t.Errorf("first update: services %v, want [api bash supervisord] (tail is new: it counts for its shell)", got)
	}
	if got := byName(t, snap, "bash").Counters.UserSeconds(); got != 1.5 {
		t.Errorf("bash cpu %v, want 1.5 (its own 1 and its new child's 0.5)", got)
	}
	// A pipeline typed in the shell.
	curl, grep := proc(12, 10, 4200, "/usr/bin/curl", 0.25), proc(13, 10, 4200, "/usr/bin/grep", 0.25)
	snap = tr.Update([]Process{shell, curl, grep, at(proc(11, 10, 4100, "/usr/bin/tail", 0.5), 4100), at(proc(20, 5, 50, "/usr/sbin/api", 2), 2000), sup})
	if got := names(snap); !cmp.Equal(got, []string{"api", "bash", "supervisord", "tail"}) {
		t.Errorf("second update: services %v, want [api bash supervisord tail] (tail lived through an update; curl and grep are new)", got)
	}
	bash := byName(t, snap, "bash")
	if got := bash.Counters.UserSeconds(); got != 2 {
		t.Errorf("bash cpu %v, want 2 (1 + tail's 0.5 before it left + curl's and grep's 0.25 each)", got)
	}
	// curl exits; grep lives on and becomes a service; bash never goes
	// back; curl again is no service and no restart.
	grep.Counters.UserTicks += userHZ / 4
	snap = tr.Update([]Process{shell, grep, proc(14, 10, 4300, "/usr/bin/curl", 0.25), at(proc(20, 5, 50, "/usr/sbin/api", 2), 2000), sup})
	if got := names(snap); !cmp.Equal(got, []string{"api", "bash", "grep", "supervisord"}) {
		t.Errorf("third update: services %v, want [api bash grep supervisord]", got)
	}
	if b, g := byName(t, snap, "bash"), byName(t, snap, "grep"); b.Counters.UserSeconds() != 2.25 || g.Counters.UserSeconds() != 0.25 || b.Restarts != 0 {
		t.Errorf("bash cpu %v restarts %v, grep cpu %v; want 2.25 (curl's and grep's first 0.25 stay), 0, 0.25 (grep's since it moved)",
			b.Counters.UserSeconds(), b.Restarts, g.Counters.UserSeconds())
	}
	// A server started in the shell (it listens) is a service at once.
	srv := proc(15, 10, 4350, "/usr/bin/python3", 0.1)
	srv.Serves = true
	snap = tr.Update([]Process{shell, grep, srv, at(proc(20, 5, 50, "/usr/sbin/api", 2), 2000), sup})
	if got := names(snap); !cmp.Equal(got, []string{"api", "bash", "grep", "python3", "supervisord"}) {
		t.Errorf("a new server: services %v, want it among them at once", got)
	}
	// The api's process is replaced by a new one: the service is there,
	// so the new process joins it at once — a restart, as before.
	snap = tr.Update([]Process{shell, sup, proc(21, 5, 4400, "/usr/sbin/api", 0.1)})
	if api := byName(t, snap, "api"); api.Restarts != 1 || api.Processes != 1 {
		t.Errorf("api after its process was replaced: restarts %v, processes %d; want 1 and 1", api.Restarts, api.Processes)
	}
}
