package service

import "testing"

// BenchmarkScanLive scans this host's /proc with a Tracker, as a scrape
// does; run it with -cpuprofile to see where a scan goes.
func BenchmarkScanLive(b *testing.B) {
	s, err := NewScanner("/proc")
	if err != nil {
		b.Fatal(err)
	}
	tr := NewTracker(Config{})
	for b.Loop() {
		res, err := s.Scan()
		if err != nil {
			b.Fatal(err)
		}
		tr.Update(res.Processes)
	}
}
