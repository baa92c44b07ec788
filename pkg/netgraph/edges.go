package netgraph

import (
	"net/netip"
	"sort"
	"time"
)

// Socket is an established TCP connection seen in one network namespace.
type Socket struct {
	// NS is the inode of the network namespace the socket lives in.
	NS uint64
	Conn
}

// Other is the address that remote peers beyond the limit are folded into.
const Other = "other"

// EdgeKey names an edge, client → server. Client and Server are services of
// this host; a side that is not on this host has no service, and its IP is
// in ClientAddress or ServerAddress. Port is always the server's port: a
// client's ephemeral port is never part of a key.
type EdgeKey struct {
	Client, ClientAddress string
	Server, ServerAddress string
	Port                  uint16
}

// Edge is an edge's state after an Update.
type Edge struct {
	EdgeKey
	// Connections is the number of established connections now.
	Connections int
	// SentBytes, ReceivedBytes and Retransmits are counters from the
	// client's point of view (sent: client to server), summed over every
	// connection the edge has had while watched. They grow by what each
	// connection transferred between two updates, so a connection that
	// closes takes with it only what it sent after the last update.
	SentBytes, ReceivedBytes, Retransmits float64
	// RTTSeconds is the mean smoothed round-trip time of the current
	// connections that report it.
	RTTSeconds float64
	// HasInfo says whether the counters and RTT come from tcp_info; false
	// when the sockets were read from /proc/net/tcp.
	HasInfo bool
}

// GraphConfig bounds a Graph.
type GraphConfig struct {
	// MaxPeers bounds the remote addresses that get their own label; the
	// rest are folded into Other. 0 means no limit.
	MaxPeers int
	// Retain is how long an edge without connections keeps being reported
	// (with its counters), so that reconnecting carries its counters on.
	// Defaults to 15 minutes.
	Retain time.Duration
}

// Graph turns the host's established connections into service-to-service
// edges, scrape after scrape, keeping the edges' counters monotonic while
// connections come and go. It is not safe for concurrent use.
type Graph struct {
	cfg     GraphConfig
	sockets map[sockID]*sockState
	edges   map[EdgeKey]*edgeState
	peers   map[netip.Addr]bool
}

type sockID struct{ ns, id uint64 }

type sockState struct {
	edge                EdgeKey
	sent, recv, retrans uint64
}

type edgeState struct {
	sent, recv, retrans float64
	hasInfo             bool
	lastSeen            time.Time
}

// NewGraph returns an empty Graph.
func NewGraph(cfg GraphConfig) *Graph {
	if cfg.Retain == 0 {
		cfg.Retain = 15 * time.Minute
	}
	return &Graph{cfg: cfg, sockets: map[sockID]*sockState{}, edges: map[EdgeKey]*edgeState{}, peers: map[netip.Addr]bool{}}
}

// Owner returns the service that holds a socket inode, if it is known.
type Owner func(inode uint64) (service string, ok bool)

// Listening reports whether a port is listened on in a network namespace.
type Listening func(ns uint64, port uint16) bool

// UpdateResult is what one Update found.
type UpdateResult struct {
	// Edges, sorted by key.
	Edges []Edge
	// Folded is the number of connections whose remote address was folded
	// into Other because of MaxPeers.
	Folded int
}

// Update takes every established connection of the host and returns the
// edges. A connection between two processes of this host appears in the
// dumps twice, once from each end: the two are paired by their addresses
// and counted once, client → server. The server end is the one whose local
// port is listened on.
func (g *Graph) Update(socks []Socket, owner Owner, listening Listening, now time.Time) UpdateResult {
	type end struct{ local, remote netip.AddrPort }
	byEnds := make(map[end]int, len(socks))
	for i, s := range socks {
		byEnds[end{s.Local, s.Remote}] = i
	}
	peerOf := func(i int) (int, bool) {
		s := socks[i]
		j, ok := byEnds[end{s.Remote, s.Local}]
		if !ok || j == i {
			return 0, false
		}
		// Loopback addresses are per namespace: a pair across namespaces
		// would be a coincidence of addresses.
		if s.Local.Addr().IsLoopback() && socks[j].NS != s.NS {
			return 0, false
		}
		return j, true
	}
	isServer := func(s Socket) bool { return listening(s.NS, s.Local.Port()) }

	var res UpdateResult
	type current struct {
		conns  int
		rttSum float64
		rttN   int
	}
	cur := map[EdgeKey]*current{}
	alive := make(map[sockID]bool, len(socks))

	for i, s := range socks {
		svc, ok := owner(s.Inode)
		if !ok {
			continue
		}
		var (
			key  EdgeKey
			info *TCPInfo
			// server says the counters are the server's view, to be
			// swapped into the client's.
			server  bool
			partner *TCPInfo
		)
		if j, paired := peerOf(i); paired {
			p := socks[j]
			psvc, pok := owner(p.Inode)
			sIsServer, pIsServer := isServer(s), isServer(p)
			if sIsServer == pIsServer {
				// Neither end (or both) listens: call the lower port
				// the server's.
				sIsServer = s.Local.Port() < p.Local.Port()
			}
			if sIsServer {
				if pok {
					continue // counted from the client's end
				}
				// The client end belongs to no visible process: count
				// it from here.
				key = EdgeKey{Server: svc, ClientAddress: p.Local.Addr().String(), Port: s.Local.Port()}
				info, server = s.Info, true
			} else {
				if !pok {
					key = EdgeKey{Client: svc, ServerAddress: s.Remote.Addr().String(), Port: s.Remote.Port()}
				} else {
					key = EdgeKey{Client: svc, Server: psvc, Port: s.Remote.Port()}
				}
				info, partner = s.Info, p.Info
			}
		} else if isServer(s) {
			key = EdgeKey{Server: svc, ClientAddress: g.peer(s.Remote.Addr(), &res), Port: s.Local.Port()}
			info, server = s.Info, true
		} else {
			key = EdgeKey{Client: svc, ServerAddress: g.peer(s.Remote.Addr(), &res), Port: s.Remote.Port()}
			info = s.Info
		}

		c := cur[key]
		if c == nil {
			c = &current{}
			cur[key] = c
		}
		c.conns++
		e := g.edge(key)
		e.lastSeen = now
		if info == nil {
			continue
		}
		e.hasInfo = true
		c.rttSum += float64(info.RTT) / 1e6
		c.rttN++

		id := sockID{s.NS, s.Cookie}
		if s.Cookie == 0 {
			id.id = s.Inode
		}
		alive[id] = true
		st := g.sockets[id]
		if st == nil || st.edge != key {
			st = &sockState{edge: key}
			g.sockets[id] = st
		}
		sent, recv := info.BytesAcked, info.BytesReceived
		if server {
			sent, recv = recv, sent
		}
		retrans := uint64(info.TotalRetrans)
		if partner != nil {
			retrans += uint64(partner.TotalRetrans)
		}
		e.sent += increase(st.sent, sent)
		e.recv += increase(st.recv, recv)
		e.retrans += increase(st.retrans, retrans)
		st.sent, st.recv, st.retrans = sent, recv, retrans
	}

	for id := range g.sockets {
		if !alive[id] {
			delete(g.sockets, id)
		}
	}
	for key, e := range g.edges {
		c := cur[key]
		if c == nil && now.Sub(e.lastSeen) > g.cfg.Retain {
			delete(g.edges, key)
			continue
		}
		out := Edge{EdgeKey: key, SentBytes: e.sent, ReceivedBytes: e.recv, Retransmits: e.retrans, HasInfo: e.hasInfo}
		if c != nil {
			out.Connections = c.conns
			if c.rttN > 0 {
				out.RTTSeconds = c.rttSum / float64(c.rttN)
			}
		}
		res.Edges = append(res.Edges, out)
	}
	sort.Slice(res.Edges, func(i, j int) bool { return lessKey(res.Edges[i].EdgeKey, res.Edges[j].EdgeKey) })
	return res
}

func (g *Graph) edge(k EdgeKey) *edgeState {
	e := g.edges[k]
	if e == nil {
		e = &edgeState{}
		g.edges[k] = e
	}
	return e
}

// peer returns the label for a remote address: the address itself while
// there is room, Other beyond MaxPeers. An address keeps its label once
// given, so that series don't move in and out of Other.
func (g *Graph) peer(a netip.Addr, res *UpdateResult) string {
	if g.peers[a] {
		return a.String()
	}
	if g.cfg.MaxPeers > 0 && len(g.peers) >= g.cfg.MaxPeers {
		res.Folded++
		return Other
	}
	g.peers[a] = true
	return a.String()
}

// increase is how much a per-socket counter grew; a socket's counters don't
// go backwards, but a reused identifier could.
func increase(prev, cur uint64) float64 {
	if cur < prev {
		return float64(cur)
	}
	return float64(cur - prev)
}

func lessKey(a, b EdgeKey) bool {
	if a.Client != b.Client {
		return a.Client < b.Client
	}
	if a.ClientAddress != b.ClientAddress {
		return a.ClientAddress < b.ClientAddress
	}
	if a.Server != b.Server {
		return a.Server < b.Server
	}
	if a.ServerAddress != b.ServerAddress {
		return a.ServerAddress < b.ServerAddress
	}
	return a.Port < b.Port
}
