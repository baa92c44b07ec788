// Package netgraph reads a host's sockets: which processes listen on which
// ports, and which established TCP connections join them to each other and
// to the outside.
package netgraph

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/prometheus/procfs"
)

// TCP states as numbered in /proc/net/tcp (include/net/tcp_states.h).
const (
	tcpEstablished = 0x01
	tcpClose       = 0x07
	tcpListen      = 0x0A
)

// Listener is a socket that accepts connections or datagrams.
type Listener struct {
	// Protocol is tcp, tcp6, udp or udp6.
	Protocol string
	Port     uint16
	// Inode identifies the socket, to find the process that holds it.
	Inode uint64
}

// PortRange is a range of ports, inclusive.
type PortRange struct{ Low, High uint16 }

// Contains reports whether p is in the range.
func (r PortRange) Contains(p uint16) bool { return p >= r.Low && p <= r.High }

// DefaultEphemeral is Linux's default ip_local_port_range.
var DefaultEphemeral = PortRange{32768, 60999}

// EphemeralRange reads net.ipv4.ip_local_port_range under a procfs mount,
// falling back to Linux's default when the file is missing.
func EphemeralRange(procRoot string) (PortRange, error) {
	path := filepath.Join(procRoot, "sys", "net", "ipv4", "ip_local_port_range")
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return DefaultEphemeral, nil
	}
	if err != nil {
		return DefaultEphemeral, fmt.Errorf("read %s: %w", path, err)
	}
	r, err := parsePortRange(string(data))
	if err != nil {
		return DefaultEphemeral, fmt.Errorf("parse %s: %w", path, err)
	}
	return r, nil
}

func parsePortRange(s string) (PortRange, error) {
	f := strings.Fields(s)
	if len(f) != 2 {
		return PortRange{}, fmt.Errorf("want two ports, got %q", strings.TrimSpace(s))
	}
	lo, err1 := strconv.ParseUint(f[0], 10, 16)
	hi, err2 := strconv.ParseUint(f[1], 10, 16)
	if err := errors.Join(err1, err2); err != nil {
		return PortRange{}, err
	}
	if lo > hi {
		return PortRange{}, fmt.Errorf("low port %d above high port %d", lo, hi)
	}
	return PortRange{uint16(lo), uint16(hi)}, nil
}

// FileError is a socket table that could not be read.
type FileError struct {
	// File is the table, e.g. net/tcp6.
	File string
	Err  error
}

func (e *FileError) Error() string { return fmt.Sprintf("read %s: %v", e.File, e.Err) }
func (e *FileError) Unwrap() error { return e.Err }

// Listeners reads the listening TCP sockets and the bound, unconnected UDP
// sockets of one network namespace from the tables under dir (a procfs
// mount, or /proc/<pid> for the namespace of that process). UDP sockets
// bound to a port in the ephemeral range are clients waiting for replies,
// not services, and are left out. A missing table (no IPv6) is not an
// error; a table that cannot be parsed is reported and the others are read.
func Listeners(dir string, ephemeral PortRange) ([]Listener, []error) {
	pfs, err := procfs.NewFS(dir)
	if err != nil {
		return nil, []error{fmt.Errorf("open %s: %w", dir, err)}
	}
	var (
		out  []Listener
		errs []error
	)
	tables := []struct {
		proto string
		read  func() (procfs.NetTCP, error)
	}{
		{"tcp", pfs.NetTCP},
		{"tcp6", pfs.NetTCP6},
		{"udp", func() (procfs.NetTCP, error) { u, err := pfs.NetUDP(); return procfs.NetTCP(u), err }},
		{"udp6", func() (procfs.NetTCP, error) { u, err := pfs.NetUDP6(); return procfs.NetTCP(u), err }},
	}
	for _, tb := range tables {
		lines, err := tb.read()
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			errs = append(errs, &FileError{File: "net/" + tb.proto, Err: err})
			continue
		}
		udp := strings.HasPrefix(tb.proto, "udp")
		for _, l := range lines {
			if l.Inode == 0 || l.LocalPort == 0 || l.LocalPort > 65535 {
				continue
			}
			port := uint16(l.LocalPort)
			switch {
			case !udp && l.St == tcpListen:
			case udp && l.St == tcpClose && l.RemPort == 0 && !ephemeral.Contains(port):
			default:
				continue
			}
			out = append(out, Listener{Protocol: tb.proto, Port: port, Inode: l.Inode})
		}
	}
	if len(out) == 0 && len(errs) == 0 {
		// Every table missing may mean the process went away mid-read.
		if _, err := os.Stat(dir); err != nil {
			errs = append(errs, err)
		}
	}
	sortListeners(out)
	return out, errs
}

func sortListeners(ls []Listener) {
	sort.Slice(ls, func(i, j int) bool {
		if ls[i].Protocol != ls[j].Protocol {
			return ls[i].Protocol < ls[j].Protocol
		}
		if ls[i].Port != ls[j].Port {
			return ls[i].Port < ls[j].Port
		}
		return ls[i].Inode < ls[j].Inode
	})
}
