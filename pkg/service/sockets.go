package service

import (
	"strconv"
	"strings"
)

// socketCache remembers which process held which socket inode, so that a
// scan reads fd links only when a socket it is asked about is new.
type socketCache struct {
	owner map[uint64]procKey
	// unresolved are inodes that the last full pass could not place (held
	// in a PID namespace this one can't see, or by the kernel): they don't
	// force another pass on their own.
	unresolved map[uint64]bool
}

// SocketOwners maps the socket inodes in want to the PIDs (among procs, the
// result of the latest Scan) that hold them. Every fd link of every process
// is read only when some inode is new since the last call; otherwise the
// answer comes from memory, checked against the processes still alive.
// Inodes held by no visible process are left out of the result.
func (s *Scanner) SocketOwners(procs []Process, want []uint64, res *ScanResult) map[uint64]int {
	alive := make(map[procKey]bool, len(procs))
	for i := range procs {
		alive[procs[i].key()] = true
	}
	c := &s.sockets
	out := make(map[uint64]int, len(want))
	needPass := false
	for _, ino := range want {
		if k, ok := c.owner[ino]; ok && alive[k] {
			out[ino] = k.pid
			continue
		}
		if !c.unresolved[ino] {
			needPass = true
		}
	}
	if !needPass {
		return out
	}

	owner := make(map[uint64]procKey, len(want))
	for i := range procs {
		p := &procs[i]
		if e := s.cache[p.PID]; e != nil && e.key == p.key() && e.noFD {
			continue
		}
		proc, err := s.fs.Proc(p.PID)
		if err != nil {
			continue
		}
		targets, err := proc.FileDescriptorTargets()
		if err != nil {
			if !vanished(err) && res != nil {
				res.fail(p.PID, "fd", err)
			}
			continue
		}
		for _, t := range targets {
			if ino, ok := socketInode(t); ok {
				if _, dup := owner[ino]; !dup {
					owner[ino] = p.key()
				}
			}
		}
	}
	c.owner = owner
	c.unresolved = map[uint64]bool{}
	for _, ino := range want {
		if k, ok := owner[ino]; ok {
			out[ino] = k.pid
		} else {
			c.unresolved[ino] = true
		}
	}
	return out
}

// socketInode parses an fd link target of the form "socket:[12345]".
func socketInode(target string) (uint64, bool) {
	rest, ok := strings.CutPrefix(target, "socket:[")
	if !ok || !strings.HasSuffix(rest, "]") {
		return 0, false
	}
	n, err := strconv.ParseUint(rest[:len(rest)-1], 10, 64)
	if err != nil {
		// ParseUint returns the largest value on overflow, with the error.
		return 0, false
	}
	return n, true
}
