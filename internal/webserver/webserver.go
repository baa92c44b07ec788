// Package webserver makes the HTTP servers of Telltale's programs, all
// with the same limits on slow and idle clients, so that no client can
// hold a connection open for good.
package webserver

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/exporter-toolkit/web"
)

// Timeouts are a server's limits on its clients.
type Timeouts struct {
	// ReadHeader is how long a client has to send a request's headers.
	ReadHeader time.Duration
	// Read is how long it has to send the whole request.
	Read time.Duration
	// Idle is how long a keep-alive connection may wait for the next
	// request.
	Idle time.Duration
}

// Default returns the limits of every server the project runs. A scrape
// or a query sends a small request at once; what takes time is the
// answer, which no limit here cuts short (a scrape's own timeout does).
func Default() Timeouts {
	return Timeouts{ReadHeader: 10 * time.Second, Read: 30 * time.Second, Idle: 2 * time.Minute}
}

// New returns a server for h with the given limits.
func New(h http.Handler, t Timeouts) *http.Server {
	return &http.Server{Handler: h, ReadHeaderTimeout: t.ReadHeader, ReadTimeout: t.Read, IdleTimeout: t.Idle}
}

// CheckFlags checks exporter-toolkit's web flags before any listener
// opens, so that a mistake names its flag: the listen addresses (unless
// systemd passes the socket) and the web configuration file.
func CheckFlags(f *web.FlagConfig) error {
	if f.WebSystemdSocket == nil || !*f.WebSystemdSocket {
		if err := CheckListenAddresses(*f.WebListenAddresses); err != nil {
			return err
		}
	}
	if f.WebConfigFile != nil && *f.WebConfigFile != "" {
		if err := web.Validate(*f.WebConfigFile); err != nil {
			return fmt.Errorf("--web.config.file=%q: %w", *f.WebConfigFile, err)
		}
	}
	return nil
}

// CheckListenAddresses checks the --web.listen-address values, so that a
// mistake names the flag and the form it wants (the listener's own error,
// "lookup tcp/notaport: unknown port", names neither).
func CheckListenAddresses(addrs []string) error {
	for _, a := range addrs {
		host, port, err := net.SplitHostPort(a)
		if err == nil && port == "" {
			err = errors.New("no port")
		}
		if err == nil {
			_, err = net.LookupPort("tcp", port)
		}
		if err == nil && host != "" && strings.ContainsAny(host, " /") {
			err = errors.New("not a host name or address")
		}
		if err != nil {
			return fmt.Errorf("--web.listen-address=%q: %v; want [host]:port, such as :10171 or 127.0.0.1:10171", a, err)
		}
	}
	return nil
}
