// Command benchread is the plain remote-read client the detector's
// benchmark compares against: it reads what the detector would read, with
// the same client, and only counts it. Its time is what serving and
// receiving the read costs without any scoring.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/prometheus/prometheus/prompb"

	"github.com/telltale-dev/telltale/pkg/remoteread"
)

func main() {
	url := flag.String("remote-read.url", "http://localhost:9090/api/v1/read", "remote-read endpoint")
	selectors := flag.String("selectors", "", "PromQL series selectors, separated by newlines")
	window := flag.Duration("window", 6*time.Hour, "read this far back from now")
	flag.Parse()
	if err := run(*url, strings.Split(*selectors, "\n"), *window); err != nil {
		fmt.Fprintln(os.Stderr, "benchread:", err)
		os.Exit(1)
	}
}

func run(url string, selectors []string, window time.Duration) error {
	client, err := remoteread.NewClient(remoteread.Options{URL: url})
	if err != nil {
		return err
	}
	end := time.Now()
	var queries []*prompb.Query
	for _, s := range selectors {
		if s == "" {
			continue
		}
		ms, err := remoteread.ParseSelector(s)
		if err != nil {
			return err
		}
		queries = append(queries, remoteread.NewQuery(end.Add(-window), end, ms))
	}
	began := time.Now()
	series := map[string]struct{}{}
	st, err := client.Read(context.Background(), queries, func(s *remoteread.Series) error {
		series[s.Labels.String()] = struct{}{}
		return nil
	})
	if err != nil {
		return err
	}
	return json.NewEncoder(os.Stdout).Encode(map[string]any{
		"series":  len(series),
		"samples": st.Samples,
		"bytes":   st.Bytes,
		"frames":  st.Frames,
		"seconds": time.Since(began).Seconds(),
	})
}
