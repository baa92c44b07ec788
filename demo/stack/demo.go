package stack

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/telltale-dev/telltale/demo/shop"
)

// DemoHelp lists the commands Demo reads from its input.
const DemoHelp = `commands (type them and press Enter):
  fault <service> latency ms=300        add 300 ms to every request of a service
  fault <service> errors rate=0.2       fail 20% of its requests
  fault <service> cpu cores=0.5         burn half a core in it
  fault <service> connstorm rate=200    open 200 connections/s to what it calls
  clear <service>                       clear its faults
  deploy <service> slow|good            redeploy it as the slow build or back
  load <purchases per second>           change the load
  neighbour <threads>|off               run a CPU hog outside the shop, or stop it
  summary                               print a summary now
services: storefront, checkout, payments, inventory (and loadgen for cpu)
`

// Demo starts the stack, prints its URLs, then every interval a summary
// from the datasource backend, and runs the commands read from in (see
// DemoHelp), until ctx is done; then it stops everything it started.
func Demo(ctx context.Context, opts Options, in io.Reader, out io.Writer, interval time.Duration) error {
	fmt.Fprintln(out, "building and starting Telltale's demo…")
	s, err := Start(ctx, opts)
	if err != nil {
		return err
	}
	defer func() {
		fmt.Fprintln(out, "stopping…")
		s.Close()
		fmt.Fprintln(out, "stopped everything the demo started")
	}()
	ds, err := s.Datasource(ctx)
	if err != nil {
		return err
	}
	defer ds.Close()

	fmt.Fprintf(out, "\nPrometheus  %s\nexporter    %s/metrics\n", s.PrometheusURL, s.ExporterURL)
	if s.DetectorURL != "" {
		fmt.Fprintf(out, "detector    %s/metrics\n", s.DetectorURL)
	}
	if s.GrafanaURL != "" {
		fmt.Fprintf(out, "Grafana     %s\n", s.GrafanaURL)
	} else {
		fmt.Fprintln(out, "Grafana     not started (no grafana-server or grafana on PATH)")
	}
	for _, r := range shop.Roles {
		fmt.Fprintf(out, "%-11s %s (admin: %s/admin/fault)\n", r, s.ShopURLs[r], s.ShopURLs[r])
	}
	fmt.Fprintf(out, "logs        %s/logs\n\n%s\n", s.Dir, DemoHelp)

	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(in)
		for sc.Scan() {
			select {
			case lines <- sc.Text():
			case <-ctx.Done():
				return
			}
		}
	}()
	window := max(15*time.Minute, 60*opts.ScrapeInterval)
	step := max(opts.ScrapeInterval, time.Second)
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
			fmt.Fprint(out, ds.Summary(ctx, ShopServices, window, step))
		case line := <-lines:
			msg, summary := s.command(ctx, line)
			if msg != "" {
				fmt.Fprintln(out, msg)
			}
			if summary {
				fmt.Fprint(out, ds.Summary(ctx, ShopServices, window, step))
			}
		}
	}
}

// command runs one line of the demo's input and says what happened, and
// whether to print a summary.
func (s *Stack) command(ctx context.Context, line string) (string, bool) {
	f := strings.Fields(line)
	if len(f) == 0 {
		return "", false
	}
	switch {
	case f[0] == "summary":
		return "", true
	case f[0] == "help":
		return DemoHelp, false
	case f[0] == "fault" && len(f) >= 3:
		params := url.Values{}
		for _, kv := range f[3:] {
			k, v, ok := strings.Cut(kv, "=")
			if !ok {
				return fmt.Sprintf("fault parameter %q: want name=value, e.g. ms=300", kv), false
			}
			params.Set(k, v)
		}
		if err := s.Fault(ctx, shop.Role(f[1]), f[2], params); err != nil {
			return err.Error(), false
		}
		return fmt.Sprintf("%s: %s fault set", f[1], f[2]), false
	case f[0] == "clear" && len(f) == 2:
		if err := s.ClearFaults(ctx, shop.Role(f[1])); err != nil {
			return err.Error(), false
		}
		return f[1] + ": faults cleared", false
	case f[0] == "deploy" && len(f) == 3:
		build := map[string]string{"slow": BuildSlow, "good": BuildGood}[f[2]]
		if build == "" {
			return fmt.Sprintf("deploy: build %q: want slow or good", f[2]), false
		}
		if err := s.Redeploy(ctx, shop.Role(f[1]), build); err != nil {
			return err.Error(), false
		}
		return fmt.Sprintf("%s: redeployed as build %s (%s)", f[1], build, f[2]), false
	case f[0] == "neighbour" && len(f) == 2:
		if f[1] == "off" {
			s.StopNeighbour()
			return Neighbour + ": stopped", false
		}
		n, err := strconv.Atoi(f[1])
		if err != nil || n < 1 {
			return fmt.Sprintf("neighbour %s: want a number of busy threads (1 or more) or off", f[1]), false
		}
		if err := s.StartNeighbour(ctx, n); err != nil {
			return err.Error(), false
		}
		return fmt.Sprintf("%s: %d busy threads", Neighbour, n), false
	case f[0] == "load" && len(f) == 2:
		r, err := strconv.ParseFloat(f[1], 64)
		if err == nil {
			err = s.SetLoad(ctx, r)
		}
		if err != nil {
			return fmt.Sprintf("load %s: %v", f[1], err), false
		}
		return fmt.Sprintf("load: %s purchases per second", f[1]), false
	}
	return fmt.Sprintf("unknown command %q\n%s", line, DemoHelp), false
}
