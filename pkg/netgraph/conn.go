package netgraph

import (
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"

	"github.com/prometheus/procfs"
	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"
)

// Conn is one established TCP connection as seen from one of its ends.
type Conn struct {
	Local, Remote netip.AddrPort
	// Inode identifies the socket, to find the process that holds it.
	Inode uint64
	// Cookie is the kernel's unique socket identifier (0 when read from
	// /proc/net/tcp, which does not show it).
	Cookie uint64
	// Info is the socket's tcp_info; nil when read from /proc/net/tcp.
	Info *TCPInfo
}

// TCPInfo holds the fields of struct tcp_info (linux/tcp.h) that Telltale
// uses.
type TCPInfo struct {
	// RTT is the smoothed round-trip time in microseconds (tcpi_rtt).
	RTT uint32
	// TotalRetrans counts retransmitted segments over the socket's life.
	TotalRetrans uint32
	// BytesAcked is the number of bytes the peer acknowledged: sent and
	// received (Linux 4.1 and later).
	BytesAcked uint64
	// BytesReceived is the number of bytes received (Linux 4.1 and later).
	BytesReceived uint64
}

// Offsets in struct tcp_info, fixed by the Linux ABI.
const (
	tcpiRTT           = 68
	tcpiTotalRetrans  = 100
	tcpiBytesAcked    = 120
	tcpiBytesReceived = 128
	tcpInfoMinLen     = 136 // up to and including tcpi_bytes_received
)

// ErrShortTCPInfo is returned for a tcp_info too short to hold the byte
// counters (a kernel older than 4.1).
var ErrShortTCPInfo = errors.New("tcp_info too short")

// parseTCPInfo decodes the fields of TCPInfo from a struct tcp_info in
// native byte order.
func parseTCPInfo(b []byte) (TCPInfo, error) {
	if len(b) < tcpInfoMinLen {
		return TCPInfo{}, fmt.Errorf("%w: %d bytes, want at least %d", ErrShortTCPInfo, len(b), tcpInfoMinLen)
	}
	ne := nl.NativeEndian()
	return TCPInfo{
		RTT:           ne.Uint32(b[tcpiRTT:]),
		TotalRetrans:  ne.Uint32(b[tcpiTotalRetrans:]),
		BytesAcked:    ne.Uint64(b[tcpiBytesAcked:]),
		BytesReceived: ne.Uint64(b[tcpiBytesReceived:]),
	}, nil
}

// findAttr returns the payload of the first netlink attribute of type typ
// in a run of attributes.
func findAttr(b []byte, typ uint16) ([]byte, bool) {
	attrs, err := nl.ParseRouteAttr(b)
	if err != nil {
		return nil, false
	}
	for _, a := range attrs {
		if a.Attr.Type == typ {
			return a.Value, true
		}
	}
	return nil, false
}

// Established reads the namespace's established TCP connections (IPv4 and
// IPv6) with their tcp_info.
func (n *Namespace) Established() ([]Conn, error) {
	var out []Conn
	for _, family := range []uint8{unix.AF_INET, unix.AF_INET6} {
		err := n.dump(family, unix.IPPROTO_TCP, stateEstablished, 1<<(inetDiagInfo-1), func(m diagMsg, attrs []byte) {
			c := Conn{
				Local:  netip.AddrPortFrom(m.Src.Unmap(), m.SrcPort),
				Remote: netip.AddrPortFrom(m.Dst.Unmap(), m.DstPort),
				Inode:  m.Inode,
				Cookie: m.Cookie,
			}
			if raw, ok := findAttr(attrs, inetDiagInfo); ok {
				if info, err := parseTCPInfo(raw); err == nil {
					c.Info = &info
				}
			}
			out = append(out, c)
		})
		if err != nil {
			return nil, fmt.Errorf("established connections: %w", err)
		}
	}
	return out, nil
}

// EstablishedFromFiles reads established TCP connections from the
// dir/net/tcp and dir/net/tcp6 tables (no tcp_info there).
func EstablishedFromFiles(dir string) ([]Conn, []error) {
	pfs, err := procfs.NewFS(dir)
	if err != nil {
		return nil, []error{fmt.Errorf("open %s: %w", dir, err)}
	}
	var (
		out  []Conn
		errs []error
	)
	for _, tb := range []struct {
		name string
		read func() (procfs.NetTCP, error)
	}{{"net/tcp", pfs.NetTCP}, {"net/tcp6", pfs.NetTCP6}} {
		lines, err := tb.read()
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			errs = append(errs, &FileError{File: tb.name, Err: err})
			continue
		}
		for _, l := range lines {
			if l.St != tcpEstablished || l.Inode == 0 || l.LocalPort > 65535 || l.RemPort > 65535 {
				continue
			}
			la, ok1 := netip.AddrFromSlice(l.LocalAddr)
			ra, ok2 := netip.AddrFromSlice(l.RemAddr)
			if !ok1 || !ok2 {
				continue
			}
			out = append(out, Conn{
				Local:  netip.AddrPortFrom(la.Unmap(), uint16(l.LocalPort)),
				Remote: netip.AddrPortFrom(ra.Unmap(), uint16(l.RemPort)),
				Inode:  l.Inode,
			})
		}
	}
	if len(out) == 0 && len(errs) == 0 {
		if _, err := os.Stat(dir); err != nil {
			errs = append(errs, err)
		}
	}
	return out, errs
}

// ConnsOf reads the established connections of the network namespace of
// the process whose /proc directory is dir: over netlink when the namespace
// can be entered, else from its /proc tables.
func ConnsOf(dir string) ([]Conn, []error) {
	ns, err := OpenNamespace(dir + "/ns/net")
	if err == nil {
		defer ns.Close()
		cs, err := ns.Established()
		if err == nil {
			return cs, nil
		}
	}
	return EstablishedFromFiles(dir)
}
