// Command cpuhog burns CPU until it is stopped: a noisy neighbour outside
// the demo shop, with a name of its own, for the fault scenarios
// (demo/scenarios). --cores sets how many cores' worth it burns.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"syscall"
	"time"
)

func main() {
	cores := flag.Float64("cores", 1, "cores' worth of CPU to burn, at most the machine's")
	flag.Parse()
	if !(*cores > 0) || *cores > float64(runtime.NumCPU()) {
		fmt.Fprintf(os.Stderr, "cpuhog: --cores=%v: want a number of cores above 0 and at most %d\n", *cores, runtime.NumCPU())
		os.Exit(2)
	}
	for i := 0; float64(i) < *cores; i++ {
		share := min(*cores-float64(i), 1)
		go burn(share)
	}
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, os.Interrupt)
	<-stop
}

// burn keeps one thread busy for share of every 10 ms.
func burn(share float64) {
	runtime.LockOSThread()
	const period = 10 * time.Millisecond
	busy := time.Duration(share * float64(period))
	x := 1.0
	for {
		start := time.Now()
		for time.Since(start) < busy {
			x = x*1.0000001 + 1e-9
		}
		if rest := period - busy; rest > 0 {
			time.Sleep(rest)
		}
		if x < 0 {
			fmt.Println(x)
		}
	}
}
