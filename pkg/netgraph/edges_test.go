package netgraph

import (
	"net/netip"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

func ap(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }

func sock(ns uint64, local, remote string, inode uint64, info *TCPInfo) Socket {
	return Socket{NS: ns, Conn: Conn{Local: ap(local), Remote: ap(remote), Inode: inode, Cookie: inode * 10, Info: info}}
}

func owners(m map[uint64]string) Owner {
	return func(inode uint64) (string, bool) { s, ok := m[inode]; return s, ok }
}

func listeningOn(ports ...uint16) Listening {
	return func(_ uint64, port uint16) bool {
		for _, p := range ports {
			if p == port {
				return true
			}
		}
		return false
	}
}

func TestGraphEdges(t *testing.T) {
	own := owners(map[uint64]string{1: "checkout", 2: "payments", 3: "checkout", 4: "payments", 5: "web", 6: "checkout"})
	socks := []Socket{
		// checkout → payments:8082 on IPv4 loopback, both ends visible.
		sock(1, "127.0.0.1:40000", "127.0.0.1:8082", 1, &TCPInfo{RTT: 200, BytesAcked: 100, BytesReceived: 1000, TotalRetrans: 1}),
		sock(1, "127.0.0.1:8082", "127.0.0.1:40000", 2, &TCPInfo{RTT: 180, BytesAcked: 1000, BytesReceived: 100, TotalRetrans: 2}),
		// A second connection on IPv6 loopback.
		sock(1, "[::1]:40001", "[::1]:8082", 3, &TCPInfo{RTT: 400, BytesAcked: 50, BytesReceived: 500}),
		sock(1, "[::1]:8082", "[::1]:40001", 4, &TCPInfo{RTT: 400, BytesAcked: 500, BytesReceived: 50}),
		// A remote client of web:443.
		sock(1, "10.0.0.5:443", "198.51.100.9:51515", 5, &TCPInfo{RTT: 30000, BytesAcked: 7000, BytesReceived: 300}),
		// checkout → a remote database.
		sock(1, "10.0.0.5:41000", "10.0.0.9:5432", 6, &TCPInfo{RTT: 1000, BytesAcked: 10, BytesReceived: 20}),
		// A socket held by no visible process: left out.
		sock(1, "10.0.0.5:41001", "10.0.0.9:5432", 99, nil),
	}
	g := NewGraph(GraphConfig{})
	res := g.Update(socks, own, listeningOn(8082, 443), time.Unix(100, 0))
	want := []Edge{
		{EdgeKey: EdgeKey{ClientAddress: "198.51.100.9", Server: "web", Port: 443}, Connections: 1,
			SentBytes: 300, ReceivedBytes: 7000, RTTSeconds: 30000e-6, HasInfo: true},
		{EdgeKey: EdgeKey{Client: "checkout", ServerAddress: "10.0.0.9", Port: 5432}, Connections: 1,
			SentBytes: 10, ReceivedBytes: 20, RTTSeconds: 1000e-6, HasInfo: true},
		{EdgeKey: EdgeKey{Client: "checkout", Server: "payments", Port: 8082}, Connections: 2,
			SentBytes: 150, ReceivedBytes: 1500, Retransmits: 3, RTTSeconds: 300e-6, HasInfo: true},
	}
	if diff := cmp.Diff(want, res.Edges, cmpopts.EquateApprox(0, 1e-12)); diff != "" {
		t.Errorf("edges (-want +got):\n%s", diff)
	}

	// The IPv6 connection closes, the IPv4 one moves 10 more bytes each way.
	socks[0].Info = &TCPInfo{RTT: 200, BytesAcked: 110, BytesReceived: 1010, TotalRetrans: 1}
	socks[1].Info = &TCPInfo{RTT: 180, BytesAcked: 1010, BytesReceived: 110, TotalRetrans: 2}
	res = g.Update(append(socks[:2:2], socks[4:]...), own, listeningOn(8082, 443), time.Unix(115, 0))
	got := res.Edges[2]
	if got.Connections != 1 || got.SentBytes != 160 || got.ReceivedBytes != 1510 || got.Retransmits != 3 {
		t.Errorf("after a connection closed: %+v; want 1 connection, 160 sent, 1510 received, 3 retransmits", got)
	}

	// Everything closes: the edges are still reported, with no connections
	// and their counters, until Retain passes.
	res = g.Update(nil, own, listeningOn(), time.Unix(130, 0))
	if len(res.Edges) != 3 || res.Edges[2].Connections != 0 || res.Edges[2].SentBytes != 160 {
		t.Errorf("with no connections: %+v", res.Edges)
	}
	res = g.Update(nil, own, listeningOn(), time.Unix(130+16*60, 0))
	if len(res.Edges) != 0 {
		t.Errorf("after Retain: %+v", res.Edges)
	}
}

func TestGraphPairsWithoutListener(t *testing.T) {
	// Neither end listens (the listener closed after accepting): the lower
	// port is the server's.
	own := owners(map[uint64]string{1: "a", 2: "b"})
	socks := []Socket{sock(1, "127.0.0.1:50000", "127.0.0.1:9000", 1, nil), sock(1, "127.0.0.1:9000", "127.0.0.1:50000", 2, nil)}
	res := NewGraph(GraphConfig{}).Update(socks, own, listeningOn(), time.Unix(0, 0))
	want := []Edge{{EdgeKey: EdgeKey{Client: "a", Server: "b", Port: 9000}, Connections: 1}}
	if diff := cmp.Diff(want, res.Edges); diff != "" {
		t.Errorf("edges (-want +got):\n%s", diff)
	}
	// Loopback sockets in two namespaces are not one connection.
	socks[1].NS = 2
	res = NewGraph(GraphConfig{}).Update(socks, own, listeningOn(9000), time.Unix(0, 0))
	if len(res.Edges) != 2 {
		t.Errorf("loopback pair across namespaces: %+v", res.Edges)
	}
}

func TestGraphFoldsPeers(t *testing.T) {
	own := owners(map[uint64]string{1: "web", 2: "web", 3: "web"})
	g := NewGraph(GraphConfig{MaxPeers: 2})
	socks := []Socket{
		sock(1, "10.0.0.5:443", "198.51.100.1:50001", 1, nil),
		sock(1, "10.0.0.5:443", "198.51.100.2:50002", 2, nil),
		sock(1, "10.0.0.5:443", "198.51.100.3:50003", 3, nil),
	}
	res := g.Update(socks, own, listeningOn(443), time.Unix(0, 0))
	var addrs []string
	for _, e := range res.Edges {
		addrs = append(addrs, e.ClientAddress)
	}
	if diff := cmp.Diff([]string{"198.51.100.1", "198.51.100.2", Other}, addrs); diff != "" {
		t.Errorf("client addresses (-want +got):\n%s", diff)
	}
	if res.Folded != 1 {
		t.Errorf("folded = %d, want 1", res.Folded)
	}
}

func TestParseTCPInfo(t *testing.T) {
	b := make([]byte, 232)
	b[tcpiRTT] = 0x10
	b[tcpiRTT+1] = 0x27 // 10000 µs, little-endian
	b[tcpiTotalRetrans] = 3
	b[tcpiBytesAcked] = 0xff
	b[tcpiBytesReceived+1] = 1
	info, err := parseTCPInfo(b)
	if err != nil {
		t.Fatal(err)
	}
	if want := (TCPInfo{RTT: 10000, TotalRetrans: 3, BytesAcked: 255, BytesReceived: 256}); info != want {
		t.Errorf("parseTCPInfo = %+v, want %+v", info, want)
	}
	if _, err := parseTCPInfo(b[:104]); err == nil {
		t.Error("no error for a tcp_info without byte counters")
	}
}

func FuzzParseTCPInfo(f *testing.F) {
	f.Add(make([]byte, 232))
	f.Add([]byte{1, 2, 3})
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = parseTCPInfo(b)
	})
}
