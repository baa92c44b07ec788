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
	return frontCodec().append(b, unsafe.Pointer(f))
}

// RestoreState implements Stateful.
func (f *front) RestoreState(b []byte) error {
	r := stateReader{b: b}
	if err := frontCodec().read(&r, unsafe.Pointer(f)); err != nil {
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
	seen := map[*codec]bool{}
	// The front end and every model it can hold.
	for _, v := range []any{front{}, combined{}, mad{}, skyline{}, seasonal{}, ks{}, changepoint{}} {
		codecOf(reflect.TypeOf(v)).describe(&sb, seen)
		sb.WriteByte('\n')
	}
	h := fnv.New64a()
	h.Write([]byte(sb.String()))
	return h.Sum64()
})

// describe writes the layout the codec reads and writes: its kind and,
// for composite types, what they are made of, field names included.
func (c *codec) describe(sb *strings.Builder, seen map[*codec]bool) {
	switch c.kind {
	case reflect.Array:
		fmt.Fprintf(sb, "[%d]", c.n)
		c.elem.describe(sb, seen)
	case reflect.Slice:
		sb.WriteString("[]")
		c.elem.describe(sb, seen)
	case reflect.Pointer:
		sb.WriteString("*")
		c.elem.describe(sb, seen)
	case reflect.Struct:
		if seen[c] {
			sb.WriteString(c.typ.Name())
			return
		}
		seen[c] = true
		sb.WriteString(c.typ.Name() + "{")
		for _, f := range c.fields {
			sb.WriteString(f.name + " ")
			f.c.describe(sb, seen)
			sb.WriteString(";")
		}
		sb.WriteString("}")
	default:
		sb.WriteString(c.kind.String())
	}
}

// maxStateLen bounds a slice's capacity in a state being restored, so a
// corrupt state cannot ask for gigabytes: no detector keeps a slice near
// this long (the longest, a Skyline window, holds 1440 values).
const maxStateLen = 1 << 16

// A codec writes and reads values of one type at a pointer, without
// reflection per value: it is compiled once per type from its layout (the
// fields' offsets and kinds), and then only follows pointers. Reflection
// stays for what is rare in a state: allocating what a nil pointer or a
// slice of another capacity needs, and naming an interface's type.
type codec struct {
	typ  reflect.Type
	kind reflect.Kind
	// fields of a struct, with their offsets.
	fields []fieldCodec
	// elem of an array, slice or pointer; n the array's length.
	elem *codec
	n    int
}

type fieldCodec struct {
	name string
	off  uintptr
	c    *codec
}

var (
	codecsMu sync.Mutex
	codecs   = map[reflect.Type]*codec{}
)

// codecOf returns the codec of t, compiling it on first use.
func codecOf(t reflect.Type) *codec {
	codecsMu.Lock()
	defer codecsMu.Unlock()
	return compile(t)
}

var frontCodec = sync.OnceValue(func() *codec { return codecOf(reflect.TypeFor[front]()) })

// compile builds t's codec; codecsMu is held.
func compile(t reflect.Type) *codec {
	if c, ok := codecs[t]; ok {
		return c
	}
	c := &codec{typ: t, kind: t.Kind()}
	codecs[t] = c // before the parts, should a type hold itself
	switch t.Kind() {
	case reflect.Bool, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Float64,
		reflect.Interface:
	case reflect.Array:
		c.elem, c.n = compile(t.Elem()), t.Len()
	case reflect.Slice, reflect.Pointer:
		c.elem = compile(t.Elem())
	case reflect.Struct:
		for i := range t.NumField() {
			f := t.Field(i)
			c.fields = append(c.fields, fieldCodec{name: f.Name, off: f.Offset, c: compile(f.Type)})
		}
	default:
		delete(codecs, t)
		panic(fmt.Sprintf("anomaly: a detector's state cannot hold a %s (%s)", t.Kind(), t))
	}
	return c
}

// append appends the value at p.
func (c *codec) append(b []byte, p unsafe.Pointer) []byte {
	switch c.kind {
	case reflect.Bool:
		if *(*bool)(p) {
			return append(b, 1)
		}
		return append(b, 0)
	case reflect.Int:
		return binary.AppendVarint(b, int64(*(*int)(p)))
	case reflect.Int64:
		return binary.AppendVarint(b, *(*int64)(p))
	case reflect.Int8:
		return binary.AppendVarint(b, int64(*(*int8)(p)))
	case reflect.Int16:
		return binary.AppendVarint(b, int64(*(*int16)(p)))
	case reflect.Int32:
		return binary.AppendVarint(b, int64(*(*int32)(p)))
	case reflect.Uint:
		return binary.AppendUvarint(b, uint64(*(*uint)(p)))
	case reflect.Uint8:
		return binary.AppendUvarint(b, uint64(*(*uint8)(p)))
	case reflect.Uint16:
		return binary.AppendUvarint(b, uint64(*(*uint16)(p)))
	case reflect.Uint32:
		return binary.AppendUvarint(b, uint64(*(*uint32)(p)))
	case reflect.Uint64:
		return binary.AppendUvarint(b, *(*uint64)(p))
	case reflect.Float64:
		return binary.LittleEndian.AppendUint64(b, math.Float64bits(*(*float64)(p)))
	case reflect.Array:
		return c.elem.appendElems(b, p, c.n)
	case reflect.Slice:
		v := reflect.NewAt(c.typ, p).Elem()
		b = binary.AppendUvarint(b, uint64(v.Len()))
		b = binary.AppendUvarint(b, uint64(v.Cap()))
		if v.Len() == 0 {
			return b
		}
		return c.elem.appendElems(b, v.UnsafePointer(), v.Len())
	case reflect.Struct:
		for _, f := range c.fields {
			b = f.c.append(b, unsafe.Add(p, f.off))
		}
		return b
	case reflect.Pointer:
		q := *(*unsafe.Pointer)(p)
		if q == nil {
			return append(b, 0)
		}
		return c.elem.append(append(b, 1), q)
	case reflect.Interface:
		v := reflect.NewAt(c.typ, p).Elem()
		if v.IsNil() {
			return append(b, 0)
		}
		dyn := v.Elem()
		if dyn.Kind() != reflect.Pointer {
			panic(fmt.Sprintf("anomaly: a detector's state holds a %s in an interface, not a pointer", dyn.Type()))
		}
		name := dyn.Type().String()
		b = binary.AppendUvarint(append(b, 1), uint64(len(name)))
		b = append(b, name...)
		return codecOf(dyn.Type().Elem()).append(b, dyn.UnsafePointer())
	}
	panic("unreachable")
}

// appendElems appends n consecutive values from p.
func (c *codec) appendElems(b []byte, p unsafe.Pointer, n int) []byte {
	if c.kind == reflect.Float64 {
		for _, x := range unsafe.Slice((*float64)(p), n) {
			b = binary.LittleEndian.AppendUint64(b, math.Float64bits(x))
		}
		return b
	}
	size := c.typ.Size()
	for i := range n {
		b = c.append(b, unsafe.Add(p, uintptr(i)*size))
	}
	return b
}

// stateReader reads a state that a codec wrote.
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

func (r *stateReader) varint() (int64, error) {
	x, n := binary.Varint(r.b)
	if n <= 0 {
		return 0, errShortState
	}
	r.b = r.b[n:]
	return x, nil
}

// read reads a value into p.
func (c *codec) read(r *stateReader, p unsafe.Pointer) error {
	switch c.kind {
	case reflect.Bool:
		x, err := r.byte()
		if err != nil {
			return err
		}
		if x > 1 {
			return fmt.Errorf("a bool of %d", x)
		}
		*(*bool)(p) = x == 1
	case reflect.Int, reflect.Int64, reflect.Int8, reflect.Int16, reflect.Int32:
		x, err := r.varint()
		if err != nil {
			return err
		}
		if bits := 8 * c.typ.Size(); bits < 64 && (x < -1<<(bits-1) || x >= 1<<(bits-1)) {
			return fmt.Errorf("%d does not fit a %s", x, c.typ)
		}
		switch c.kind {
		case reflect.Int:
			*(*int)(p) = int(x)
		case reflect.Int8:
			*(*int8)(p) = int8(x)
		case reflect.Int16:
			*(*int16)(p) = int16(x)
		case reflect.Int32:
			*(*int32)(p) = int32(x)
		default:
			*(*int64)(p) = x
		}
	case reflect.Uint, reflect.Uint64, reflect.Uint8, reflect.Uint16, reflect.Uint32:
		x, err := r.uvarint()
		if err != nil {
			return err
		}
		if bits := 8 * c.typ.Size(); bits < 64 && x >= 1<<bits {
			return fmt.Errorf("%d does not fit a %s", x, c.typ)
		}
		switch c.kind {
		case reflect.Uint:
			*(*uint)(p) = uint(x)
		case reflect.Uint8:
			*(*uint8)(p) = uint8(x)
		case reflect.Uint16:
			*(*uint16)(p) = uint16(x)
		case reflect.Uint32:
			*(*uint32)(p) = uint32(x)
		default:
			*(*uint64)(p) = x
		}
	case reflect.Float64:
		if len(r.b) < 8 {
			return errShortState
		}
		*(*float64)(p) = math.Float64frombits(binary.LittleEndian.Uint64(r.b))
		r.b = r.b[8:]
	case reflect.Array:
		return c.elem.readElems(r, p, c.n)
	case reflect.Slice:
		n, err := r.uvarint()
		if err != nil {
			return err
		}
		k, err := r.uvarint()
		if err != nil {
			return err
		}
		if n > k || k > maxStateLen {
			return fmt.Errorf("a slice of length %d and capacity %d", n, k)
		}
		if n > uint64(len(r.b)) {
			// Every element takes at least a byte.
			return errShortState
		}
		v := reflect.NewAt(c.typ, p).Elem()
		switch {
		case k == 0:
			// No array: nil, as it was saved or as good.
			v.SetZero()
			return nil
		case uint64(v.Cap()) != k:
			v.Set(reflect.MakeSlice(c.typ, int(n), int(k)))
		default:
			v.SetLen(int(n))
		}
		if n == 0 {
			return nil
		}
		return c.elem.readElems(r, v.UnsafePointer(), int(n))
	case reflect.Struct:
		for _, f := range c.fields {
			if err := f.c.read(r, unsafe.Add(p, f.off)); err != nil {
				return err
			}
		}
	case reflect.Pointer:
		x, err := r.byte()
		if err != nil {
			return err
		}
		q := (*unsafe.Pointer)(p)
		switch x {
		case 0:
			*q = nil
			return nil
		case 1:
		default:
			return fmt.Errorf("a presence byte of %d", x)
		}
		if *q == nil {
			*q = reflect.New(c.typ.Elem()).UnsafePointer()
		}
		return c.elem.read(r, *q)
	case reflect.Interface:
		x, err := r.byte()
		if err != nil {
			return err
		}
		v := reflect.NewAt(c.typ, p).Elem()
		if x == 0 || v.IsNil() {
			if x == 0 && v.IsNil() {
				return nil
			}
			return errors.New("a state for another detector (a model is missing)")
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
		dyn := v.Elem()
		if have := dyn.Type().String(); name != have || dyn.Kind() != reflect.Pointer {
			return fmt.Errorf("the state of a %s, restored into a %s", name, have)
		}
		return codecOf(dyn.Type().Elem()).read(r, dyn.UnsafePointer())
	}
	return nil
}

// readElems reads n consecutive values into p.
func (c *codec) readElems(r *stateReader, p unsafe.Pointer, n int) error {
	if c.kind == reflect.Float64 {
		if len(r.b) < 8*n {
			return errShortState
		}
		fs := unsafe.Slice((*float64)(p), n)
		for i := range fs {
			fs[i] = math.Float64frombits(binary.LittleEndian.Uint64(r.b[8*i:]))
		}
		r.b = r.b[8*n:]
		return nil
	}
	size := c.typ.Size()
	for i := range n {
		if err := c.read(r, unsafe.Add(p, uintptr(i)*size)); err != nil {
			return err
		}
	}
	return nil
}
