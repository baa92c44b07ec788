package netgraph

import (
	"bufio"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// HostAddresses returns the host's own unicast addresses, IPv4 from
// dir/net/fib_trie (the LOCAL routes) and IPv6 from dir/net/if_inet6, where
// dir is a procfs mount or /proc/<pid>. Loopback and link-local addresses
// are left out: they mean nothing to another host.
func HostAddresses(dir string) ([]netip.Addr, error) {
	var (
		out  []netip.Addr
		errs []error
	)
	for _, src := range []struct {
		file  string
		parse func(io.Reader) ([]netip.Addr, error)
	}{{"fib_trie", parseFibTrie}, {"if_inet6", parseIfInet6}} {
		path := filepath.Join(dir, "net", src.file)
		f, err := os.Open(path)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		addrs, err := src.parse(f)
		f.Close()
		if err != nil {
			errs = append(errs, fmt.Errorf("parse %s: %w", path, err))
			continue
		}
		for _, a := range addrs {
			if !a.IsLoopback() && !a.IsLinkLocalUnicast() && !a.IsUnspecified() {
				out = append(out, a)
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Less(out[j]) })
	out = dedupe(out)
	return out, errors.Join(errs...)
}

func dedupe(as []netip.Addr) []netip.Addr {
	var out []netip.Addr
	for i, a := range as {
		if i == 0 || a != as[i-1] {
			out = append(out, a)
		}
	}
	return out
}

// parseFibTrie finds the local IPv4 addresses in /proc/net/fib_trie: a leaf
// line "|-- <address>" followed by a "/32 host LOCAL" line.
func parseFibTrie(r io.Reader) ([]netip.Addr, error) {
	sc := bufio.NewScanner(r)
	var (
		out  []netip.Addr
		leaf netip.Addr
		ok   bool
	)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if rest, isLeaf := strings.CutPrefix(line, "|-- "); isLeaf {
			leaf, ok = netip.Addr{}, false
			a, err := netip.ParseAddr(strings.TrimSpace(rest))
			if err != nil {
				return nil, fmt.Errorf("leaf %q: %w", rest, err)
			}
			leaf, ok = a, a.Is4()
			continue
		}
		if ok && strings.HasPrefix(line, "/32 host LOCAL") {
			out = append(out, leaf)
			ok = false
		}
	}
	return out, sc.Err()
}

// parseIfInet6 reads /proc/net/if_inet6: per line, the address as 32 hex
// digits, then interface index, prefix length, scope, flags and name.
func parseIfInet6(r io.Reader) ([]netip.Addr, error) {
	sc := bufio.NewScanner(r)
	var out []netip.Addr
	for n := 1; sc.Scan(); n++ {
		f := strings.Fields(sc.Text())
		if len(f) == 0 {
			continue
		}
		if len(f) != 6 || len(f[0]) != 32 {
			return nil, fmt.Errorf("line %d: want 6 fields starting with 32 hex digits, got %q", n, sc.Text())
		}
		var b [16]byte
		if _, err := hex.Decode(b[:], []byte(f[0])); err != nil {
			return nil, fmt.Errorf("line %d: %w", n, err)
		}
		out = append(out, netip.AddrFrom16(b))
	}
	return out, sc.Err()
}
