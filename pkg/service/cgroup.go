package service

import (
	"regexp"
	"strings"
)

// Kind says where a service's boundary came from.
type Kind string

// The ways a service is found, strongest first.
const (
	KindKubernetes Kind = "kubernetes"
	KindDocker     Kind = "docker"
	KindPodman     Kind = "podman"
	KindContainerd Kind = "containerd"
	KindSystemd    Kind = "systemd"
	KindProcess    Kind = "process"
)

// cgroupGroup is a group of processes that a cgroup path puts together.
type cgroupGroup struct {
	kind Kind
	// id is unique per group: a container ID, a pod UID, a unit name.
	id string
	// unit is the systemd unit's name without suffix; containers have none
	// and are named after their first process.
	unit string
}

var (
	hex64          = `([0-9a-f]{64})`
	podSegment     = regexp.MustCompile(`^pod([0-9a-f]{8}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{12})$`)
	podSlice       = regexp.MustCompile(`^kubepods(?:-[a-z]+)*-pod([0-9a-f]{8}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{12})\.slice$`)
	podContainer   = regexp.MustCompile(`^(?:cri-containerd-|crio-|docker-|containerd-)?` + hex64 + `(?:\.scope)?$`)
	dockerScope    = regexp.MustCompile(`^docker-` + hex64 + `\.scope$`)
	podmanScope    = regexp.MustCompile(`^libpod-` + hex64 + `(?:\.scope)?$`)
	containerdPath = regexp.MustCompile(`^(?:cri-containerd-|nerdctl-)` + hex64 + `\.scope$`)
	bareID         = regexp.MustCompile(`^` + hex64 + `$`)
)

// classifyCgroup finds the service boundary in a process's cgroup paths (one
// per hierarchy; the unified hierarchy's and systemd's name= hierarchy's are
// the useful ones, but v1 controllers carry container paths too). Paths that
// say nothing about a service (the root, user sessions, init.scope, a
// sandbox's own cgroups) give ok=false and the process tree decides.
func classifyCgroup(paths []string) (g cgroupGroup, ok bool) {
	// Containers and pods first: a container's processes may also sit under
	// a systemd unit (docker.service, containerd.service) in some setups.
	for _, p := range paths {
		if g, ok := containerGroup(p); ok {
			return g, true
		}
	}
	for _, p := range paths {
		if g, ok := systemdGroup(p); ok {
			return g, true
		}
	}
	return cgroupGroup{}, false
}

func containerGroup(p string) (cgroupGroup, bool) {
	segs := strings.Split(strings.Trim(p, "/"), "/")
	if strings.Contains(p, "kubepods") {
		var pod string
		for _, s := range segs {
			if m := podSegment.FindStringSubmatch(s); m != nil {
				pod = strings.ReplaceAll(m[1], "_", "-")
			} else if m := podSlice.FindStringSubmatch(s); m != nil {
				pod = strings.ReplaceAll(m[1], "_", "-")
			}
		}
		if pod == "" {
			return cgroupGroup{}, false
		}
		if m := podContainer.FindStringSubmatch(segs[len(segs)-1]); m != nil {
			return cgroupGroup{kind: KindKubernetes, id: "container/" + m[1]}, true
		}
		return cgroupGroup{kind: KindKubernetes, id: "pod/" + pod}, true
	}
	for i, s := range segs {
		switch {
		case dockerScope.MatchString(s):
			return cgroupGroup{kind: KindDocker, id: dockerScope.FindStringSubmatch(s)[1]}, true
		case s == "docker" && i+1 < len(segs) && bareID.MatchString(segs[i+1]):
			return cgroupGroup{kind: KindDocker, id: segs[i+1]}, true
		case podmanScope.MatchString(s):
			return cgroupGroup{kind: KindPodman, id: podmanScope.FindStringSubmatch(s)[1]}, true
		case containerdPath.MatchString(s):
			return cgroupGroup{kind: KindContainerd, id: containerdPath.FindStringSubmatch(s)[1]}, true
		case i == 0 && len(segs) == 2 && bareID.MatchString(segs[1]) && s != "docker":
			// containerd's cgroupfs layout: /<namespace>/<container id>.
			return cgroupGroup{kind: KindContainerd, id: segs[1]}, true
		}
	}
	return cgroupGroup{}, false
}

func systemdGroup(p string) (cgroupGroup, bool) {
	segs := strings.Split(strings.Trim(p, "/"), "/")
	for i := len(segs) - 1; i >= 0; i-- {
		unit, ok := strings.CutSuffix(segs[i], ".service")
		if !ok || unit == "" {
			continue
		}
		if strings.HasPrefix(unit, "user@") {
			// The per-user service manager: its own processes are not a
			// service of the host, and what runs in its sessions is named
			// by the process tree.
			return cgroupGroup{}, false
		}
		name := unit
		if at := strings.IndexByte(unit, '@'); at > 0 {
			// Template instances (getty@tty1, postgresql@15-main) are one
			// service per template.
			name = unit[:at]
		}
		return cgroupGroup{kind: KindSystemd, id: unit, unit: unescapeUnit(name)}, true
	}
	return cgroupGroup{}, false
}

// unescapeUnit undoes systemd's \xNN escaping in unit names.
func unescapeUnit(s string) string {
	if !strings.Contains(s, `\x`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) && s[i+1] == 'x' {
			if v, ok := unhex(s[i+2], s[i+3]); ok {
				b.WriteByte(v)
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func unhex(a, b byte) (byte, bool) {
	h, ok1 := hexVal(a)
	l, ok2 := hexVal(b)
	return h<<4 | l, ok1 && ok2
}

func hexVal(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}
