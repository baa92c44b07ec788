// Command cpuhog burns CPU until it is stopped: a noisy neighbour outside
// the demo shop, with a name of its own, for the fault scenarios
// (demo/scenarios). --threads busy threads compete for the CPUs with
// everything else on the machine.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"syscall"
)

func main() {
	threads := flag.Int("threads", 1, "busy threads, from 1 to 64")
	flag.Parse()
	if *threads < 1 || *threads > 64 {
		fmt.Fprintf(os.Stderr, "cpuhog: --threads=%d: want a number of threads from 1 to 64\n", *threads)
		os.Exit(2)
	}
	runtime.GOMAXPROCS(*threads)
	for range *threads {
		go burn()
	}
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, os.Interrupt)
	<-stop
}

// burn keeps one thread busy.
func burn() {
	runtime.LockOSThread()
	x := 1.0
	for {
		for range 1 << 20 {
			x = x*1.0000001 + 1e-9
		}
		if x < 0 {
			fmt.Println(x)
		}
	}
}
