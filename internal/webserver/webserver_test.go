package webserver

import (
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestSlowClientsAreCut: a client that sends half a request header, and
// one that keeps an idle connection, are both disconnected once their time
// is up.
func TestSlowClientsAreCut(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tm := Timeouts{ReadHeader: 200 * time.Millisecond, Read: time.Second, Idle: 300 * time.Millisecond}
	srv := New(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok") }), tm)
	go func() { _ = srv.Serve(l) }()
	defer srv.Close()

	closedWithin := func(c net.Conn, limit time.Duration) bool {
		_ = c.SetReadDeadline(time.Now().Add(limit))
		buf := make([]byte, 4096)
		for {
			if _, err := c.Read(buf); err != nil {
				ne, ok := err.(net.Error)
				return !(ok && ne.Timeout())
			}
		}
	}
	for _, c := range []struct{ what, send string }{
		{"a client with a partial header", "GET / HTTP/1.1\r\nHost: x\r\n"},
		{"an idle keep-alive connection", "GET / HTTP/1.1\r\nHost: x\r\n\r\n"},
	} {
		conn, err := net.Dial("tcp", l.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		if _, err := io.WriteString(conn, c.send); err != nil {
			t.Fatal(err)
		}
		if !closedWithin(conn, 3*time.Second) {
			t.Errorf("%s was still connected after 3s", c.what)
		}
	}
}

// TestDefaultLimits: the programs' servers have every limit set.
func TestDefaultLimits(t *testing.T) {
	d := Default()
	srv := New(nil, d)
	for name, v := range map[string]time.Duration{"ReadHeaderTimeout": srv.ReadHeaderTimeout, "ReadTimeout": srv.ReadTimeout, "IdleTimeout": srv.IdleTimeout} {
		if v <= 0 || v > 5*time.Minute {
			t.Errorf("%s = %s, want a limit between 0 and 5 minutes", name, v)
		}
	}
}

// TestCheckListenAddresses: a listen address that can't be served names the
// flag and the form it wants; good ones pass.
func TestCheckListenAddresses(t *testing.T) {
	for _, good := range [][]string{{":10171"}, {"127.0.0.1:10171", "[::1]:10171"}, {"localhost:http"}, {}} {
		if err := CheckListenAddresses(good); err != nil {
			t.Errorf("%q: %v", good, err)
		}
	}
	for _, bad := range []string{":notaport", "10171", "127.0.0.1", "[::1", "host name:80", ":"} {
		err := CheckListenAddresses([]string{":10171", bad})
		if err == nil || !strings.Contains(err.Error(), "--web.listen-address=") || !strings.Contains(err.Error(), strconv.Quote(bad)) || !strings.Contains(err.Error(), "want [host]:port") {
			t.Errorf("%q: %v; want an error naming the flag, the value and the form", bad, err)
		}
	}
}
