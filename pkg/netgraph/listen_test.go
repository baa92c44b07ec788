package netgraph

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParsePortRange(t *testing.T) {
	tests := []struct {
		in      string
		want    PortRange
		wantErr bool
	}{
		{"32768\t60999\n", PortRange{32768, 60999}, false},
		{"1024 65535", PortRange{1024, 65535}, false},
		{"", PortRange{}, true},
		{"32768", PortRange{}, true},
		{"60999 32768", PortRange{}, true},
		{"a b", PortRange{}, true},
		{"1 70000", PortRange{}, true},
	}
	for _, tt := range tests {
		got, err := parsePortRange(tt.in)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("parsePortRange(%q) = %v, %v; want %v, error %v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}

func FuzzParsePortRange(f *testing.F) {
	f.Add("32768 60999")
	f.Fuzz(func(t *testing.T, in string) {
		r, err := parsePortRange(in)
		if err == nil && r.Low > r.High {
			t.Fatalf("parsePortRange(%q) = %v", in, r)
		}
	})
}

// writeTables makes a procfs-like directory holding the given net/ tables.
func writeTables(t *testing.T, tables map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "net"), 0o755); err != nil {
		t.Fatal(err)
	}
	for name, data := range tables {
		if err := os.WriteFile(filepath.Join(dir, "net", name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

const (
	tcpHeader = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"
	udpHeader = "   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops\n"
)

func TestListeners(t *testing.T) {
	dir := writeTables(t, map[string]string{
		"tcp": tcpHeader +
			"   0: 00000000:0050 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 101 1 0 100 0 0 10 0\n" +
			"   1: 0100007F:0050 0100007F:C350 01 00000000:00000000 00:00000000 00000000     0        0 102 1 0 20 4 30 10 -1\n" +
			"   2: 00000000:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 0 1 0 100 0 0 10 0\n",
		"udp": udpHeader +
			"  10: 00000000:0035 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 201 2 0 0\n" +
			"  11: 00000000:AFC8 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 202 2 0 0\n" +
			"  12: 0100007F:0BB8 0100007F:0035 01 00000000:00000000 00:00000000 00000000     0        0 203 2 0 0\n",
		"udp6": "garbage\n1: zz\n",
	})
	got, errs := Listeners(dir, DefaultEphemeral)
	want := []Listener{{"tcp", 80, 101}, {"udp", 53, 201}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Listeners (-want +got):\n%s", diff)
	}
	// tcp6 is missing (no IPv6): fine. udp6 is garbage: reported, not fatal.
	if len(errs) != 1 {
		t.Fatalf("errors = %v, want one for net/udp6", errs)
	}
	var fe *FileError
	if !errors.As(errs[0], &fe) || fe.File != "net/udp6" {
		t.Errorf("error = %v, want a FileError for net/udp6", errs[0])
	}
}

func TestEphemeralRange(t *testing.T) {
	dir := t.TempDir()
	r, err := EphemeralRange(dir)
	if err != nil || r != DefaultEphemeral {
		t.Errorf("missing file: %v, %v; want the default", r, err)
	}
	p := filepath.Join(dir, "sys", "net", "ipv4")
	if err := os.MkdirAll(p, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(p, "ip_local_port_range"), []byte("40000 50000\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if r, err := EphemeralRange(dir); err != nil || r != (PortRange{40000, 50000}) {
		t.Errorf("EphemeralRange = %v, %v", r, err)
	}
}
