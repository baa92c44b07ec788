package collector

import (
	"errors"
	"io/fs"
	"path/filepath"
	"sort"
	"strconv"

	"github.com/telltale-dev/telltale/pkg/netgraph"
	"github.com/telltale-dev/telltale/pkg/service"
)

// network is what one scrape read of the host's sockets, shared by the
// ports and edges collectors: listeners and established connections of
// every network namespace that has a process, and which process holds each
// socket.
type network struct {
	listeners []nsListener
	conns     []netgraph.Socket
	listening map[nsPort]bool
	owners    map[uint64]int
}

type nsListener struct {
	ns uint64
	netgraph.Listener
}

type nsPort struct {
	ns   uint64
	port uint16
}

// network reads the sockets once per scrape. Processes whose namespace
// could not be read are left to the others: a socket they hold in a
// namespace that is read is still found.
func (s *Scrape) network() *network {
	if s.net != nil {
		return s.net
	}
	e := s.exporter
	n := &network{listening: map[nsPort]bool{}}
	s.net = n
	root := e.scanner.Root()
	// Each namespace is read through one of its processes, the oldest
	// first: a process may exit between the scan and the read, and then
	// the next one is tried.
	members := map[uint64][]*service.Process{}
	var order []uint64
	for i := range s.Processes {
		p := &s.Processes[i]
		if p.NetNS == 0 {
			continue
		}
		if _, ok := members[p.NetNS]; !ok {
			order = append(order, p.NetNS)
		}
		members[p.NetNS] = append(members[p.NetNS], p)
	}
	count := func(errs []error) {
		for _, err := range errs {
			var fe *netgraph.FileError
			if errors.As(err, &fe) && !errors.Is(err, fs.ErrNotExist) {
				s.countError(service.ReadError{File: fe.File, Reason: "malformed"}, 1)
			}
		}
	}
	var inodes []uint64
	for _, ns := range order {
		ps := members[ns]
		sort.Slice(ps, func(i, j int) bool { return ps[i].Start < ps[j].Start })
		for _, p := range ps {
			dir := filepath.Join(root, strconv.Itoa(p.PID))
			ls, cs, errs, ok := readNamespace(e.wantConns,
				func() ([]netgraph.Conn, []error) { return netgraph.ConnsOf(dir) },
				func() ([]netgraph.Listener, []error) { return netgraph.ListenersOf(dir, e.ephemeral) })
			if !ok {
				continue
			}
			count(errs)
			for _, l := range ls {
				n.listeners = append(n.listeners, nsListener{ns, l})
				n.listening[nsPort{ns, l.Port}] = true
				inodes = append(inodes, l.Inode)
			}
			for _, c := range cs {
				n.conns = append(n.conns, netgraph.Socket{NS: ns, Conn: c})
				inodes = append(inodes, c.Inode)
			}
			break
		}
	}
	n.owners = e.scanner.SocketOwners(s.Processes, inodes, nil)
	return n
}

// service returns the service that holds a socket, if any kept service
// does.
func (n *network) service(s *Scrape, inode uint64) (string, bool) {
	pid, ok := n.owners[inode]
	if !ok {
		return "", false
	}
	svc, ok := s.Services.ByPID[pid]
	return svc, ok
}

// gone reports whether reading a process's sockets failed because the
// process is no longer there.
// readNamespace reads a namespace's established connections (when
// wantConns), then its listeners; ok is false when the process it is read
// through has gone. The connections come first: a server whose listener
// came up between the two reads is then still listening when the
// listeners are read, whereas read the other way round a client that had
// just connected to it would find no one listening at either end, and
// its connection would be read backwards (the lower port taken as the
// server's) and kept on the map for the edges' retention.
func readNamespace(wantConns bool, conns func() ([]netgraph.Conn, []error), listeners func() ([]netgraph.Listener, []error)) (ls []netgraph.Listener, cs []netgraph.Conn, errs []error, ok bool) {
	if wantConns {
		cs, errs = conns()
		if gone(errs) {
			return nil, nil, nil, false
		}
	}
	ls, lerrs := listeners()
	if gone(lerrs) {
		return nil, nil, nil, false
	}
	return ls, cs, append(errs, lerrs...), true
}

func gone(errs []error) bool {
	for _, err := range errs {
		if errors.Is(err, fs.ErrNotExist) {
			return true
		}
	}
	return false
}
