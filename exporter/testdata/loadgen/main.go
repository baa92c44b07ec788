// Command loadgen holds connections open to a server and sends a little on
// each every few milliseconds, reading the echo: the client side of the
// exporter's edge tests. It prints "ready" once every connection is up.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"time"
)

func main() {
	addr := flag.String("addr", "", "server address")
	conns := flag.Int("conns", 1, "connections to hold")
	interval := flag.Duration("interval", 10*time.Millisecond, "pause between rounds of traffic; 0 holds the connections idle")
	flag.Parse()
	var cs []net.Conn
	for range *conns {
		c, err := net.Dial("tcp", *addr)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		// The server greets with its build first.
		if _, err := bufio.NewReader(c).ReadString('\n'); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		cs = append(cs, c)
	}
	fmt.Println("ready")
	if *interval == 0 {
		select {}
	}
	msg := make([]byte, 512)
	buf := make([]byte, 512)
	for {
		for _, c := range cs {
			if _, err := c.Write(msg); err != nil {
				os.Exit(1)
			}
			if _, err := io.ReadFull(c, buf); err != nil {
				os.Exit(1)
			}
		}
		time.Sleep(*interval)
	}
}
