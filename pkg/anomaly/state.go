package anomaly

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"math"
	"reflect"
	"strings"
	"sync"
	"unsafe"
)

// Saving and restoring a detector's state, so that a process that scores
// many series (the detector) can stop and start again without re-reading
// and re-scoring their history.
//
// The state is every field of the detector, written in declaration order by
// one walk over its Go types: bools as a byte, integers as varints, floats
// as their 8 IEEE-754 bytes, little-endian, slices as their length and
// capacity and then their elements, pointers and interfaces as a presence
// byte (an interface also as its concrete type's name) and then what they
// point to. A restored detector is therefore the same detector, bit for
// bit: its next scores are those the saved one would have given.
//
// Nothing in the encoding names the fields, so a state can be restored only
// by code whose detectors have the same layout; StateVersion tells layouts
// apart, and whoever stores states keeps it beside them.

// Stateful is a detector whose state can be saved and restored. Every
// detector New returns is one.
type Stateful interface {
	Detector
	// AppendState appends the detector's whole state to b and returns
	// the extended slice.
	AppendState(b []byte) []byte
	// RestoreState replaces the detector's state by one that AppendState
	// wrote, from a detector of the same name (its configuration comes
	// with the state). It returns an error, and leaves the detector unfit
	// for use, when b is not such a state.
	RestoreState(b []byte) error
}

// AppendState implements Stateful.
func (e *Ensemble) AppendState(b []byte) []byte { return e.f.AppendState(b) }

// RestoreState implements Stateful.
func (e *Ensemble) RestoreState(b []byte) error { return e.f.RestoreState(b) }

// AppendState implements Stateful.
func (f *front) AppendState(b []byte) []byte {
	return appendValue(b, reflect.ValueOf(f).Elem())
}

// RestoreState implements Stateful.
func (f *front) RestoreState(b []byte) error {
	r := stateReader{b: b}
	if err := r.value(reflect.ValueOf(f).Elem()); err != nil {
		return fmt.Errorf("detector state: %w", err)
	}
	if len(r.b) != 0 {
		return fmt.Errorf("detector state: %d bytes left over after the state", len(r.b))
	}
	return nil
}

// StateVersion identifies the layout of the detectors' states: a hash of
// the types of every field they hold. It changes whenever a release changes
// what a detector keeps, so a state saved by another version is recognised
// and not misread.
func StateVersion() uint64 { return stateVersion() }

var stateVersion = sync.OnceValue(func() uint64 {
	var sb strings.Builder
	// The front end and every model it can hold.
	for _, v := range []any{front{}, combined{}, mad{}, skyline{}, seasonal{}, ks{}, changepoint{}} {
		describeType(&sb, reflect.TypeOf(v), map[reflect.Type]bool{})
		sb.WriteByte('\n')
	}
	h := fnv.New64a()
	h.Write([]byte(sb.String()))
	return h.Sum64()
})

// describeType writes t's layout: its kind and, for composite types, what
// it is made of, field names included. It panics on a kind the encoding
// cannot hold (a map, a function, a channel, a string), which a test of
// StateVersion catches.
func describeType(sb *strings.Builder, t reflect.Type, seen map[reflect.Type]bool) {
	switch t.Kind() {
	case reflect.Bool, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Float64:
		sb.WriteString(t.Kind().String())
	case reflect.Array:
		fmt.Fprintf(sb, "[%d]", t.Len())
		describeType(sb, t.Elem(), seen)
	case reflect.Slice:
		sb.WriteString("[]")
		describeType(sb, t.Elem(), seen)
	case reflect.Pointer:
		sb.WriteString("*")
		describeType(sb, t.Elem(), seen)
	case reflect.Interface:
		sb.WriteString("interface")
	case reflect.Struct:
		if seen[t] {
			sb.WriteString(t.Name())
			return
		}
		seen[t] = true
		sb.WriteString(t.Name() + "{")
		for i := range t.NumField() {
			f := t.Field(i)
			sb.WriteString(f.Name + " ")
			describeType(sb, f.Type, seen)
			sb.WriteString(";")
		}
		sb.WriteString("}")
	default:
		panic(fmt.Sprintf("anomaly: a detector's state cannot hold a %s (%s)", t.Kind(), t))
	}
}

// maxStateLen bounds a slice's capacity in a state being restored, so a
// corrupt state cannot ask for gigabytes: no detector keeps a slice near
// this long (the longest, a Skyline window, holds 1440 values).
const maxStateLen = 1 << 16

// field returns a struct's field i, settable even when unexported: the
// state is the package's own, read and written only here.
func field(v reflect.Value, i int) reflect.Value {
	f := v.Field(i)
	return reflect.NewAt(f.Type(), unsafe.Pointer(f.UnsafeAddr())).Elem()
}

// floats returns the float64 elements of an addressable array or slice.
func floats(v reflect.Value) []float64 {
	if v.Len() == 0 {
		return nil
	}
	return unsafe.Slice((*float64)(unsafe.Pointer(v.Index(0).UnsafeAddr())), v.Len())
}

func appendValue(b []byte, v reflect.Value) []byte {
	switch v.Kind() {
	case reflect.Bool:
		if v.Bool() {
			return append(b, 1)
		}
		return append(b, 0)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return binary.AppendVarint(b, v.Int())
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return binary.AppendUvarint(b, v.Uint())
	case reflect.Float64:
		return binary.LittleEndian.AppendUint64(b, math.Float64bits(v.Float()))
	case reflect.Slice:
		b = binary.AppendUvarint(b, uint64(v.Len()))
		b = binary.AppendUvarint(b, uint64(v.Cap()))
		return appendElems(b, v)
	case reflect.Array:
		return appendElems(b, v)
	case reflect.Struct:
		for i := range v.NumField() {
			b = appendValue(b, field(v, i))
		}
		return b
	case reflect.Pointer:
		if v.IsNil() {
			return append(b, 0)
		}
		return appendValue(append(b, 1), v.Elem())
	case reflect.Interface:
		if v.IsNil() {
			return append(b, 0)
		}
		name := v.Elem().Type().String()
		b = binary.AppendUvarint(append(b, 1), uint64(len(name)))
		b = append(b, name...)
		return appendValue(b, v.Elem().Elem())
	}
	panic(fmt.Sprintf("anomaly: a detector's state cannot hold a %s", v.Type()))
}

func appendElems(b []byte, v reflect.Value) []byte {
	// Every value the walk reaches is addressable: it starts from a
	// pointer and follows fields, elements and pointers.
	if v.Type().Elem().Kind() == reflect.Float64 {
		for _, x := range floats(v) {
			b = binary.LittleEndian.AppendUint64(b, math.Float64bits(x))
		}
		return b
	}
	for i := range v.Len() {
		b = appendValue(b, v.Index(i))
	}
	return b
}

// stateReader reads a state that appendValue wrote into values of the
// same types.
type stateReader struct{ b []byte }

var errShortState = errors.New("state ends too early")

func (r *stateReader) byte() (byte, error) {
	if len(r.b) == 0 {
		return 0, errShortState
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c, nil
}

func (r *stateReader) uvarint() (uint64, error) {
	x, n := binary.Uvarint(r.b)
	if n <= 0 {
		return 0, errShortState
	}
	r.b = r.b[n:]
	return x, nil
}

func (r *stateReader) value(v reflect.Value) error {
	switch v.Kind() {
	case reflect.Bool:
		c, err := r.byte()
		if err != nil {
			return err
		}
		if c > 1 {
			return fmt.Errorf("a bool of %d", c)
		}
		v.SetBool(c == 1)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		x, n := binary.Varint(r.b)
		if n <= 0 {
			return errShortState
		}
		r.b = r.b[n:]
		if v.OverflowInt(x) {
			return fmt.Errorf("%d does not fit a %s", x, v.Type())
		}
		v.SetInt(x)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		x, err := r.uvarint()
		if err != nil {
			return err
		}
		if v.OverflowUint(x) {
			return fmt.Errorf("%d does not fit a %s", x, v.Type())
		}
		v.SetUint(x)
	case reflect.Float64:
		if len(r.b) < 8 {
			return errShortState
		}
		v.SetFloat(math.Float64frombits(binary.LittleEndian.Uint64(r.b)))
		r.b = r.b[8:]
	case reflect.Slice:
		n, err := r.uvarint()
		if err != nil {
			return err
		}
		c, err := r.uvarint()
		if err != nil {
			return err
		}
		if n > c || c > maxStateLen {
			return fmt.Errorf("a slice of length %d and capacity %d", n, c)
		}
		if n > uint64(len(r.b)) {
			// Every element takes at least a byte.
			return errShortState
		}
		if v.IsNil() && c == 0 {
			// Nil stays nil; an empty slice keeps its array.
			return nil
		}
		if uint64(v.Cap()) != c {
			v.Set(reflect.MakeSlice(v.Type(), int(n), int(c)))
		} else {
			v.SetLen(int(n))
		}
		return r.elems(v)
	case reflect.Array:
		return r.elems(v)
	case reflect.Struct:
		for i := range v.NumField() {
			if err := r.value(field(v, i)); err != nil {
				return err
			}
		}
	case reflect.Pointer:
		c, err := r.byte()
		if err != nil {
			return err
		}
		switch c {
		case 0:
			v.SetZero()
			return nil
		case 1:
		default:
			return fmt.Errorf("a presence byte of %d", c)
		}
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		}
		return r.value(v.Elem())
	case reflect.Interface:
		c, err := r.byte()
		if err != nil {
			return err
		}
		if c == 0 || v.IsNil() {
			if c == 0 && v.IsNil() {
				return nil
			}
			return fmt.Errorf("a state for another detector (a model is missing)")
		}
		n, err := r.uvarint()
		if err != nil {
			return err
		}
		if n > uint64(len(r.b)) {
			return errShortState
		}
		name := string(r.b[:n])
		r.b = r.b[n:]
		if have := v.Elem().Type().String(); name != have || v.Elem().Kind() != reflect.Pointer {
			return fmt.Errorf("the state of a %s, restored into a %s", name, have)
		}
		return r.value(v.Elem().Elem())
	default:
		return fmt.Errorf("cannot restore a %s", v.Type())
	}
	return nil
}

func (r *stateReader) elems(v reflect.Value) error {
	if v.Type().Elem().Kind() == reflect.Float64 {
		fs := floats(v)
		if len(r.b) < 8*len(fs) {
			return errShortState
		}
		for i := range fs {
			fs[i] = math.Float64frombits(binary.LittleEndian.Uint64(r.b[8*i:]))
		}
		r.b = r.b[8*len(fs):]
		return nil
	}
	for i := range v.Len() {
		if err := r.value(v.Index(i)); err != nil {
			return err
		}
	}
	return nil
}
