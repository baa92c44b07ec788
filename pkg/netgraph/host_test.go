package netgraph

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

const fibTrie = `Main:
  +-- 0.0.0.0/0 3 0 5
     |-- 0.0.0.0
        /0 universe UNICAST
     +-- 127.0.0.0/8 2 0 2
        |-- 127.0.0.1
           /32 host LOCAL
     +-- 192.0.2.0/24 2 0 2
        |-- 192.0.2.2
           /32 host LOCAL
        |-- 192.0.2.255
           /32 link BROADCAST
Local:
  +-- 0.0.0.0/0 3 0 5
        |-- 192.0.2.2
           /32 host LOCAL
`

func TestParseFibTrie(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    []string
		wantErr bool
	}{
		{"host", fibTrie, []string{"127.0.0.1", "192.0.2.2", "192.0.2.2"}, false},
		{"empty", "", nil, false},
		{"truncated after a leaf", "Main:\n  |-- 10.0.0.1\n", nil, false},
		{"malformed leaf", "  |-- 10.0.0\n     /32 host LOCAL\n", nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseFibTrie(strings.NewReader(tt.in))
			if (err != nil) != tt.wantErr {
				t.Fatalf("error = %v, wantErr %v", err, tt.wantErr)
			}
			var s []string
			for _, a := range got {
				s = append(s, a.String())
			}
			if diff := cmp.Diff(tt.want, s); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseIfInet6(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    []string
		wantErr bool
	}{
		{"host", "00000000000000000000000000000001 01 80 10 80       lo\nfd000000000000000000000000000002 04 40 00 82     eth0\n", []string{"::1", "fd00::2"}, false},
		{"empty", "", nil, false},
		{"short address", "0001 01 80 10 80 lo\n", nil, true},
		{"not hex", "zz000000000000000000000000000002 04 40 00 82     eth0\n", nil, true},
		{"missing fields", "fd000000000000000000000000000002 04\n", nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseIfInet6(strings.NewReader(tt.in))
			if (err != nil) != tt.wantErr {
				t.Fatalf("error = %v, wantErr %v", err, tt.wantErr)
			}
			var s []string
			for _, a := range got {
				s = append(s, a.String())
			}
			if diff := cmp.Diff(tt.want, s); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func FuzzParseFibTrie(f *testing.F) {
	f.Add(fibTrie)
	f.Fuzz(func(t *testing.T, in string) {
		addrs, err := parseFibTrie(strings.NewReader(in))
		for _, a := range addrs {
			if err == nil && !a.Is4() {
				t.Fatalf("non-IPv4 address %v", a)
			}
		}
	})
}

func FuzzParseIfInet6(f *testing.F) {
	f.Add("fd000000000000000000000000000002 04 40 00 82     eth0\n")
	f.Fuzz(func(t *testing.T, in string) {
		_, _ = parseIfInet6(strings.NewReader(in))
	})
}

func TestHostAddresses(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "net"), 0o755); err != nil {
		t.Fatal(err)
	}
	_ = os.WriteFile(filepath.Join(dir, "net", "fib_trie"), []byte(fibTrie), 0o644)
	_ = os.WriteFile(filepath.Join(dir, "net", "if_inet6"), []byte(
		"00000000000000000000000000000001 01 80 10 80       lo\nfe8000000000000000fc00fffe000001 04 40 20 80     eth0\nfd000000000000000000000000000002 04 40 00 82     eth0\n"), 0o644)
	got, err := HostAddresses(dir)
	if err != nil {
		t.Fatal(err)
	}
	want := []netip.Addr{netip.MustParseAddr("192.0.2.2"), netip.MustParseAddr("fd00::2")}
	if diff := cmp.Diff(want, got, cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}
