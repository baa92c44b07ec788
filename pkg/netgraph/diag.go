package netgraph

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"path/filepath"

	"github.com/vishvananda/netlink/nl"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// Socket diag constants from linux/inet_diag.h.
const (
	inetDiagInfo     = 2 // INET_DIAG_INFO: struct tcp_info
	sizeofDiagReq    = 56
	sizeofDiagMsg    = 72
	stateListenBit   = 1 << tcpListen
	stateCloseBit    = 1 << tcpClose
	stateEstablished = 1 << tcpEstablished
)

// Namespace reads the sockets of one network namespace over netlink's
// NETLINK_SOCK_DIAG, through a socket opened inside that namespace.
//
// vishvananda/netlink's own socket dumps ask for every TCP state, which
// makes the kernel walk the whole established-connection hash table (about
// 3 ms per address family on a 24 GiB host, and as slow through
// /proc/net/tcp). Asking for the states needed, LISTEN alone skips it, so
// Namespace builds its own inet_diag_req_v2 and uses the library's netlink
// plumbing to send it and iterate the answer.
type Namespace struct {
	sock *nl.NetlinkSocket
}

// OpenNamespace opens a sock_diag socket in the network namespace at nsPath
// (e.g. /proc/<pid>/ns/net); an empty path means the caller's own.
func OpenNamespace(nsPath string) (*Namespace, error) {
	if nsPath == "" {
		s, err := nl.GetNetlinkSocketAt(netns.None(), netns.None(), unix.NETLINK_INET_DIAG)
		if err != nil {
			return nil, fmt.Errorf("open sock_diag socket: %w", err)
		}
		return &Namespace{sock: s}, nil
	}
	h, err := netns.GetFromPath(nsPath)
	if err != nil {
		return nil, fmt.Errorf("open network namespace %s: %w", nsPath, err)
	}
	defer h.Close()
	s, err := nl.GetNetlinkSocketAt(h, netns.None(), unix.NETLINK_INET_DIAG)
	if err != nil {
		return nil, fmt.Errorf("open sock_diag socket in %s: %w", nsPath, err)
	}
	return &Namespace{sock: s}, nil
}

// Close closes the namespace's socket.
func (n *Namespace) Close() { n.sock.Close() }

// diagMsg is the fixed part of a sock_diag answer (struct inet_diag_msg).
type diagMsg struct {
	Family  uint8
	State   uint8
	SrcPort uint16
	DstPort uint16
	Src     netip.Addr
	Dst     netip.Addr
	UID     uint32
	Inode   uint64
	Cookie  uint64
}

// ErrShortMessage is returned for a sock_diag message shorter than its
// fixed header.
var ErrShortMessage = errors.New("short inet_diag_msg")

// parseDiagMsg decodes struct inet_diag_msg: family, state, timer, retrans
// (one byte each); the socket id (ports and addresses in network order,
// interface, cookie); expires, rqueue, wqueue, uid, inode (native order).
func parseDiagMsg(b []byte) (diagMsg, error) {
	if len(b) < sizeofDiagMsg {
		return diagMsg{}, fmt.Errorf("%w: %d bytes, want %d", ErrShortMessage, len(b), sizeofDiagMsg)
	}
	m := diagMsg{
		Family:  b[0],
		State:   b[1],
		SrcPort: binary.BigEndian.Uint16(b[4:6]),
		DstPort: binary.BigEndian.Uint16(b[6:8]),
		UID:     nl.NativeEndian().Uint32(b[64:68]),
		Inode:   uint64(nl.NativeEndian().Uint32(b[68:72])),
		Cookie:  uint64(nl.NativeEndian().Uint32(b[44:48])) | uint64(nl.NativeEndian().Uint32(b[48:52]))<<32,
	}
	switch m.Family {
	case unix.AF_INET:
		m.Src = netip.AddrFrom4([4]byte(b[8:12]))
		m.Dst = netip.AddrFrom4([4]byte(b[24:28]))
	case unix.AF_INET6:
		m.Src = netip.AddrFrom16([16]byte(b[8:24]))
		m.Dst = netip.AddrFrom16([16]byte(b[24:40]))
	default:
		return diagMsg{}, fmt.Errorf("inet_diag_msg of family %d, want AF_INET or AF_INET6", m.Family)
	}
	return m, nil
}

// diagReq is struct inet_diag_req_v2 with an empty socket id: dump every
// socket of a family and protocol in the given states.
type diagReq struct {
	family, protocol, ext uint8
	states                uint32
}

func (r *diagReq) Len() int { return sizeofDiagReq }

func (r *diagReq) Serialize() []byte {
	b := make([]byte, sizeofDiagReq)
	b[0], b[1], b[2] = r.family, r.protocol, r.ext
	nl.NativeEndian().PutUint32(b[4:8], r.states)
	return b
}

// dump asks for every socket of family and protocol in states, with the
// extensions in ext, and calls fn with each answer's header and the rest of
// the message (its attributes).
func (n *Namespace) dump(family, protocol uint8, states uint32, ext uint8, fn func(m diagMsg, attrs []byte)) error {
	req := nl.NewNetlinkRequest(nl.SOCK_DIAG_BY_FAMILY, unix.NLM_F_DUMP)
	req.Sockets = map[int]*nl.SocketHandle{unix.NETLINK_INET_DIAG: {Socket: n.sock}}
	req.AddData(&diagReq{family: family, protocol: protocol, ext: ext, states: states})
	var perr error
	err := req.ExecuteIter(unix.NETLINK_INET_DIAG, nl.SOCK_DIAG_BY_FAMILY, func(msg []byte) bool {
		m, err := parseDiagMsg(msg)
		if err != nil {
			perr = err
			return false
		}
		fn(m, msg[sizeofDiagMsg:])
		return true
	})
	if err != nil && !errors.Is(err, nl.ErrDumpInterrupted) {
		return fmt.Errorf("sock_diag dump: %w", err)
	}
	return perr
}

// Listeners reads the namespace's listening TCP sockets and bound,
// unconnected UDP sockets, leaving out UDP ports in the ephemeral range.
func (n *Namespace) Listeners(ephemeral PortRange) ([]Listener, error) {
	var out []Listener
	for _, q := range []struct {
		proto    string
		family   uint8
		protocol uint8
		states   uint32
	}{
		{"tcp", unix.AF_INET, unix.IPPROTO_TCP, stateListenBit},
		{"tcp6", unix.AF_INET6, unix.IPPROTO_TCP, stateListenBit},
		{"udp", unix.AF_INET, unix.IPPROTO_UDP, stateCloseBit},
		{"udp6", unix.AF_INET6, unix.IPPROTO_UDP, stateCloseBit},
	} {
		udp := q.protocol == unix.IPPROTO_UDP
		err := n.dump(q.family, q.protocol, q.states, 0, func(m diagMsg, _ []byte) {
			if m.Inode == 0 || m.SrcPort == 0 || udp && (m.DstPort != 0 || ephemeral.Contains(m.SrcPort)) {
				return
			}
			out = append(out, Listener{Protocol: q.proto, Port: m.SrcPort, Inode: m.Inode})
		})
		if err != nil {
			return nil, fmt.Errorf("%s listeners: %w", q.proto, err)
		}
	}
	sortListeners(out)
	return out, nil
}

// ListenersOf reads the listeners of the network namespace that the process
// whose /proc directory is dir lives in: over netlink when its namespace can
// be entered, else from the dir/net/ tables (a copy of /proc, or no
// privilege to enter).
func ListenersOf(dir string, ephemeral PortRange) ([]Listener, []error) {
	ns, err := OpenNamespace(filepath.Join(dir, "ns", "net"))
	if err == nil {
		defer ns.Close()
		ls, err := ns.Listeners(ephemeral)
		if err == nil {
			return ls, nil
		}
	}
	return Listeners(dir, ephemeral)
}
