package collector

import (
	"io/fs"
	"testing"

	"github.com/telltale-dev/telltale/pkg/netgraph"
)

// TestReadNamespaceConnsFirst: a server that starts listening while the
// namespace is read, with a client connected to it by the time the
// connections are read, is among the listeners read: connections are read
// first. (Read the other way round, its connection had no listening end
// and was put on the map backwards, for 15 minutes, after a redeploy.)
func TestReadNamespaceConnsFirst(t *testing.T) {
	up := false // the server's listener
	conns := func() ([]netgraph.Conn, []error) {
		up = true // it came up, and the client connected, by now
		return []netgraph.Conn{{Inode: 7}}, nil
	}
	listeners := func() ([]netgraph.Listener, []error) {
		if !up {
			return nil, nil
		}
		return []netgraph.Listener{{Protocol: "tcp", Port: 43649, Inode: 8}}, nil
	}
	ls, cs, _, ok := readNamespace(true, conns, listeners)
	if !ok || len(cs) != 1 || len(ls) != 1 || ls[0].Port != 43649 {
		t.Fatalf("listeners %v, connections %v, ok %v: want the server that came up listening", ls, cs, ok)
	}
	// A process gone between the reads: the namespace is read through
	// another.
	if _, _, _, ok := readNamespace(true, conns, func() ([]netgraph.Listener, []error) { return nil, []error{fs.ErrNotExist} }); ok {
		t.Error("a process gone while its namespace was read was taken as read")
	}
	// Without connections wanted, they are not read.
	up = false
	if _, cs, _, _ := readNamespace(false, conns, listeners); cs != nil || up {
		t.Errorf("connections %v read when not wanted", cs)
	}
}
