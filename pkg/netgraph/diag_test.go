package netgraph

import (
	"errors"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"

	"github.com/telltale-dev/telltale/internal/testenv"
)

// diagBytes builds an inet_diag_msg as the kernel would.
func diagBytes(family, state uint8, src, dst netip.Addr, sport, dport uint16, uid, inode uint32) []byte {
	b := make([]byte, sizeofDiagMsg)
	b[0], b[1] = family, state
	b[4], b[5] = byte(sport>>8), byte(sport)
	b[6], b[7] = byte(dport>>8), byte(dport)
	s, d := src.As16(), dst.As16()
	if family == unix.AF_INET {
		s4, d4 := src.As4(), dst.As4()
		copy(b[8:], s4[:])
		copy(b[24:], d4[:])
	} else {
		copy(b[8:], s[:])
		copy(b[24:], d[:])
	}
	nl.NativeEndian().PutUint32(b[64:], uid)
	nl.NativeEndian().PutUint32(b[68:], inode)
	return b
}

func TestParseDiagMsg(t *testing.T) {
	lo4, lo6 := netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("::1")
	tests := []struct {
		name    string
		in      []byte
		want    diagMsg
		wantErr error
	}{
		{"ipv4", diagBytes(unix.AF_INET, 1, lo4, lo4, 8080, 50000, 1000, 4242),
			diagMsg{Family: unix.AF_INET, State: 1, SrcPort: 8080, DstPort: 50000, Src: lo4, Dst: lo4, UID: 1000, Inode: 4242}, nil},
		{"ipv6 with attributes after", append(diagBytes(unix.AF_INET6, 10, lo6, netip.IPv6Unspecified(), 443, 0, 0, 7), 1, 2, 3, 4),
			diagMsg{Family: unix.AF_INET6, State: 10, SrcPort: 443, Src: lo6, Dst: netip.IPv6Unspecified(), Inode: 7}, nil},
		{"empty", nil, diagMsg{}, ErrShortMessage},
		{"truncated", diagBytes(unix.AF_INET, 1, lo4, lo4, 1, 2, 3, 4)[:71], diagMsg{}, ErrShortMessage},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseDiagMsg(tt.in)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("error = %v, want %v", err, tt.wantErr)
			}
			if got != tt.want {
				t.Errorf("parseDiagMsg = %+v, want %+v", got, tt.want)
			}
		})
	}
	bad := diagBytes(unix.AF_INET, 1, lo4, lo4, 1, 2, 3, 4)
	bad[0] = 99
	if _, err := parseDiagMsg(bad); err == nil || !strings.Contains(err.Error(), "family 99") {
		t.Errorf("unknown family: error %v", err)
	}
}

func FuzzParseDiagMsg(f *testing.F) {
	f.Add(diagBytes(unix.AF_INET, 1, netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("10.0.0.2"), 1, 2, 3, 4))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := parseDiagMsg(b)
		if err == nil && !m.Src.IsValid() {
			t.Fatalf("no source address without error: %+v", m)
		}
	})
}

// socketInode is the inode of one of this process's sockets.
func socketInode(t *testing.T, f interface{ File() (*os.File, error) }) uint64 {
	t.Helper()
	file, err := f.File()
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()
	link, err := os.Readlink("/proc/self/fd/" + strconv.Itoa(int(file.Fd())))
	if err != nil {
		t.Fatal(err)
	}
	n, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimPrefix(link, "socket:["), "]"), 10, 64)
	if err != nil {
		t.Fatalf("parse %q: %v", link, err)
	}
	return n
}

// TestNamespaceListenersLive opens real sockets and finds them over netlink
// with the inodes the fd table shows, and in the /proc/net tables too.
func TestNamespaceListenersLive(t *testing.T) {
	l4, err := net.ListenTCP("tcp4", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer l4.Close()
	l6, err := net.ListenTCP("tcp6", &net.TCPAddr{IP: net.IPv6loopback})
	if err != nil {
		testenv.Missing(t, "no IPv6 loopback: %v", err)
	}
	defer l6.Close()
	u4, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 0})
	if err != nil {
		t.Fatal(err)
	}
	defer u4.Close()
	want := map[Listener]bool{
		{"tcp", uint16(l4.Addr().(*net.TCPAddr).Port), socketInode(t, l4)}:  true,
		{"tcp6", uint16(l6.Addr().(*net.TCPAddr).Port), socketInode(t, l6)}: true,
	}
	// Port 0 on UDP is given from the ephemeral range: it is a client's
	// socket by the rule, and must not be listed.
	udpPort := uint16(u4.LocalAddr().(*net.UDPAddr).Port)

	ns, err := OpenNamespace("")
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	viaNetlink, err := ns.Listeners(DefaultEphemeral)
	if err != nil {
		t.Fatal(err)
	}
	viaFiles, errs := Listeners("/proc/self", DefaultEphemeral)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	viaEntered, errs := ListenersOf("/proc/"+strconv.Itoa(os.Getpid()), DefaultEphemeral)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	for name, got := range map[string][]Listener{"netlink": viaNetlink, "files": viaFiles, "setns": viaEntered} {
		found := 0
		for _, l := range got {
			if want[l] {
				found++
			}
			if l.Protocol == "udp" && l.Port == udpPort && DefaultEphemeral.Contains(udpPort) {
				t.Errorf("%s: ephemeral UDP port %d listed", name, udpPort)
			}
		}
		if found != len(want) {
			t.Errorf("%s: found %d of %v in %v", name, found, want, got)
		}
	}
}

func TestOpenNamespaceErrors(t *testing.T) {
	_, err := OpenNamespace("/nonexistent/ns/net")
	if !errors.Is(err, syscall.ENOENT) {
		t.Errorf("OpenNamespace(missing) = %v, want ENOENT", err)
	}
}
