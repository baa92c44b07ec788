// Command sysprobe says "started" and waits for a line on standard input
// (the test has the exporter see it as a service of its own meanwhile), then
// makes a known number of a distinctive syscall (getppid) and of a failing
// one (openat of a missing file, ENOENT), says "ready", and waits to be
// scraped: the stand-in for the syscalls collector's live test.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"os"
	"syscall"
	"time"
)

func main() {
	n := flag.Int("n", 5000, "calls of each kind")
	flag.Parse()
	fmt.Println("started")
	os.Stdout.Sync()
	if _, err := bufio.NewReader(os.Stdin).ReadString('\n'); err != nil {
		fmt.Fprintln(os.Stderr, "sysprobe: waiting for a line on stdin:", err)
		os.Exit(1)
	}
	for range *n {
		syscall.Getppid()
	}
	for range *n {
		if fd, err := syscall.Open("/nonexistent/telltale-sysprobe", syscall.O_RDONLY, 0); err == nil {
			syscall.Close(fd)
		}
	}
	fmt.Println("ready")
	os.Stdout.Sync()
	time.Sleep(time.Hour)
}
