package anomaly

import (
	"bytes"
	"reflect"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// stateSeries is a series with what the state has to carry: a learnt
// level and noise, a daily profile (5 min steps over three days), an
// incident held, a gap, and a counter reset for the counter variant.
func stateSeries() []Point {
	pts := noisy(900, 5*minute, 21)
	for i := range pts {
		pts[i].V += 3 * float64(i%288) / 288
	}
	for i := 500; i < 520; i++ {
		pts[i].V += 9
	}
	// A gap of an hour.
	for i := 600; i < len(pts); i++ {
		pts[i].T += 60 * minute
	}
	return pts
}

// counterSeries is stateSeries summed into a counter, with a reset.
func counterSeries() []Point {
	pts := stateSeries()
	sum := 0.0
	for i := range pts {
		if i == 700 {
			sum = 0
		}
		sum += pts[i].V
		pts[i].V = sum
	}
	return pts
}

// TestStateRestores saves every detector's state at several points, into
// a fresh detector of the same name, and checks that the restored one
// goes on exactly as the saved one does: same results, bit for bit, and
// the same state again at the end.
func TestStateRestores(t *testing.T) {
	for _, counter := range []bool{false, true} {
		pts := stateSeries()
		if counter {
			pts = counterSeries()
		}
		cfg := Config{Counter: counter}
		for _, name := range Names() {
			full := Score(newDetector(t, name, cfg), pts)
			for _, at := range []int{0, 1, 2, 40, 510, 650, 899} {
				d := newDetector(t, name, cfg).(Stateful)
				Score(d, pts[:at])
				saved := d.AppendState(nil)
				r := newDetector(t, name, Config{}).(Stateful)
				if err := r.RestoreState(saved); err != nil {
					t.Fatalf("%s (counter %v) at %d: %v", name, counter, at, err)
				}
				if again := r.AppendState(nil); !bytes.Equal(again, saved) {
					t.Fatalf("%s (counter %v) at %d: the restored state saves differently (%d bytes, not %d)", name, counter, at, len(again), len(saved))
				}
				rest := Score(r, pts[at:])
				if diff := cmp.Diff(full[at:], rest, cmp.Comparer(sameFloat)); diff != "" {
					t.Fatalf("%s (counter %v): restored at %d, the results differ (-uninterrupted +restored):\n%s", name, counter, at, diff)
				}
				Score(d, pts[at:])
				if !bytes.Equal(r.AppendState(nil), d.AppendState(nil)) {
					t.Fatalf("%s (counter %v) at %d: the states differ after the same samples", name, counter, at)
				}
			}
		}
	}
}

// sameFloat compares floats bit for bit, NaN equal to NaN.
func sameFloat(a, b float64) bool { return a == b || a != a && b != b }

// TestStateRefusesOthers restores states that are not a state of the
// detector: each gives an error, none a panic.
func TestStateRefusesOthers(t *testing.T) {
	d := NewEnsemble(Config{})
	Score(d, stateSeries())
	good := d.AppendState(nil)
	mad := newDetector(t, NameMAD, Config{}).(Stateful)
	Score(mad, stateSeries())
	for _, c := range []struct {
		name, want string
		b          []byte
	}{
		{"empty", "ends too early", nil},
		{"truncated", "ends too early", good[:len(good)/2]},
		{"one byte short", "ends too early", good[:len(good)-1]},
		{"trailing bytes", "left over", append(append([]byte{}, good...), 0)},
		{"another detector's", "restored into", mad.AppendState(nil)},
	} {
		err := NewEnsemble(Config{}).RestoreState(c.b)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want an error saying %q", c.name, err, c.want)
		}
	}
}

// FuzzRestoreState restores arbitrary bytes: an error or a detector that
// works, never a panic or a huge allocation.
func FuzzRestoreState(f *testing.F) {
	d := NewEnsemble(Config{})
	Score(d, stateSeries()[:300])
	f.Add(d.AppendState(nil))
	m := newDetector(f, NameSkyline, Config{}).(Stateful)
	Score(m, stateSeries()[:300])
	f.Add(m.AppendState(nil))
	f.Fuzz(func(t *testing.T, b []byte) {
		e := NewEnsemble(Config{})
		if e.RestoreState(b) != nil {
			return
		}
		// A state that restores is one the detector can go on from.
		e.Update(1<<62, 1)
	})
}

// TestStateVersion checks that the version is a function of the types'
// layout: stable, and different for a different layout.
func TestStateVersion(t *testing.T) {
	if StateVersion() != StateVersion() || StateVersion() == 0 {
		t.Fatal("StateVersion is not stable")
	}
	describe := func(v any) string {
		var sb strings.Builder
		codecOf(reflect.TypeOf(v)).describe(&sb, map[*codec]bool{})
		return sb.String()
	}
	type a struct {
		x float64
		n int
	}
	type b struct {
		x float64
		n int16
	}
	type c struct {
		y float64
		n int
	}
	if describe(a{}) == describe(b{}) || describe(a{}) == describe(c{}) {
		t.Errorf("layouts that differ describe alike: %s, %s, %s", describe(a{}), describe(b{}), describe(c{}))
	}
	defer func() {
		if recover() == nil {
			t.Error("a map in a state was accepted")
		}
	}()
	describe(struct{ m map[int]int }{})
}
