// Command shopd is a stand-in service for the exporter's live tests: it
// listens on loopback TCP over IPv4 and IPv6, answers each connection with
// its build and then echoes what it reads, and burns a little CPU so that
// its resources move.
package main

import (
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"time"
)

var build = "v1" // set with -ldflags=-X main.build=…

func main() {
	addr4 := flag.String("listen4", "127.0.0.1:0", "IPv4 address")
	addr6 := flag.String("listen6", "[::1]:0", "IPv6 address")
	flag.Parse()
	for _, a := range []struct{ network, addr string }{{"tcp4", *addr4}, {"tcp6", *addr6}} {
		l, err := net.Listen(a.network, a.addr)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		fmt.Println(l.Addr().(*net.TCPAddr).Port)
		go serve(l)
	}
	x := 0
	for {
		for i := 0; i < 2_000_000; i++ {
			x += i
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func serve(l net.Listener) {
	for {
		c, err := l.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			fmt.Fprintln(c, build)
			_, _ = io.Copy(c, c)
		}()
	}
}
