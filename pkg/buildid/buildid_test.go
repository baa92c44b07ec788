package buildid

import (
	"bytes"
	"crypto/sha256"
	"debug/elf"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/telltale-dev/telltale/internal/testenv"
)

const fixtureELF = "../../exporter/testdata/bin/nginx" // gcc -Wl,--build-id=sha1

func TestGNUBuildID(t *testing.T) {
	id, err := Read(fixtureELF)
	if err != nil {
		t.Fatal(err)
	}
	// readelf -n exporter/testdata/bin/nginx prints this Build ID.
	want := Identity{ID: "e3ffbb5a4ab58c5001020666b67e5b2ba20736d0", Source: SourceGNU}
	if id != want {
		t.Errorf("Read = %+v, want %+v", id, want)
	}
}

func TestGoBinary(t *testing.T) {
	// The running test binary was built by the Go toolchain, which writes its
	// own build ID note and a GNU build-id derived from it.
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	f, err := elf.Open(exe)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	notes, err := elfNotes(f)
	if err != nil {
		t.Fatal(err)
	}
	goID := string(notes[ntGoBuildID])
	if strings.Count(goID, "/") != 3 {
		t.Errorf("Go build ID note = %q, want four slash-separated parts", goID)
	}
	if len(notes[ntGNUBuildID]) == 0 {
		t.Errorf("no GNU build-id note in a Go binary")
	}
	id, err := Read(exe)
	if err != nil {
		t.Fatal(err)
	}
	if id.Source != SourceGNU || id.ID != hex.EncodeToString(notes[ntGNUBuildID]) {
		t.Errorf("Read(test binary) = %+v, want the GNU build-id", id)
	}
}

func TestSHA256Fallback(t *testing.T) {
	data := []byte("#!/bin/sh\necho hello\n")
	path := filepath.Join(t.TempDir(), "script")
	if err := os.WriteFile(path, data, 0o755); err != nil {
		t.Fatal(err)
	}
	id, err := Read(path)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	if want := (Identity{ID: hex.EncodeToString(sum[:]), Source: SourceSHA256}); id != want {
		t.Errorf("Read = %+v, want %+v", id, want)
	}
}

func TestCacheRereadsChangedFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "app")
	write := func(s string, mtime time.Time) {
		t.Helper()
		if err := os.WriteFile(path, []byte(s), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(path, mtime, mtime); err != nil {
			t.Fatal(err)
		}
	}
	var c Cache
	write("build one", time.Unix(1000, 0))
	a, err := c.Read(path)
	if err != nil {
		t.Fatal(err)
	}
	// Overwrite with the same size and a new mtime: a new build.
	write("build two", time.Unix(2000, 0))
	b, err := c.Read(path)
	if err != nil {
		t.Fatal(err)
	}
	if a.ID == b.ID {
		t.Errorf("same identity %q after the file changed", a.ID)
	}
	if _, err := c.Read(filepath.Join(t.TempDir(), "missing")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Read(missing) error = %v, want ErrNotExist", err)
	}
}

// note builds one ELF note in little-endian layout.
func note(name string, typ uint32, desc []byte) []byte {
	var b bytes.Buffer
	n := append([]byte(name), 0)
	_ = binary.Write(&b, binary.LittleEndian, uint32(len(n)))
	_ = binary.Write(&b, binary.LittleEndian, uint32(len(desc)))
	_ = binary.Write(&b, binary.LittleEndian, typ)
	b.Write(n)
	b.Write(make([]byte, int(align4(uint64(len(n))))-len(n)))
	b.Write(desc)
	b.Write(make([]byte, int(align4(uint64(len(desc))))-len(desc)))
	return b.Bytes()
}

func TestParseNotes(t *testing.T) {
	type seen struct {
		name string
		typ  uint32
		desc string
	}
	two := append(note("GNU", 3, []byte{1, 2, 3, 4, 5}), note("Go", 4, []byte("abc/def"))...)
	tests := []struct {
		name    string
		data    []byte
		want    []seen
		wantErr bool
	}{
		{"two notes, padded", two, []seen{{"GNU", 3, "\x01\x02\x03\x04\x05"}, {"Go", 4, "abc/def"}}, false},
		{"empty", nil, nil, false},
		{"short header", []byte{4, 0, 0, 0, 1}, nil, true},
		{"name past end", note("GNU", 3, nil)[:13], nil, true},
		{"descriptor past end", note("GNU", 3, []byte("0123456789"))[:20], nil, true},
		{"last descriptor unpadded", note("Go", 4, []byte("abc"))[:19], []seen{{"Go", 4, "abc"}}, false},
		{"huge sizes", []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 3, 0, 0, 0}, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []seen
			err := parseNotes(tt.data, binary.LittleEndian, func(name string, typ uint32, desc []byte) {
				got = append(got, seen{name, typ, string(desc)})
			})
			if (err != nil) != tt.wantErr {
				t.Fatalf("parseNotes error = %v, wantErr %v", err, tt.wantErr)
			}
			if err != nil && !errors.Is(err, ErrMalformedNote) {
				t.Errorf("error %v is not ErrMalformedNote", err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("notes = %+v, want %+v", got, tt.want)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Errorf("note %d = %+v, want %+v", i, got[i], tt.want[i])
				}
			}
		})
	}
}

func FuzzParseNotes(f *testing.F) {
	f.Add(note("GNU", 3, []byte{1, 2, 3}))
	f.Add(note("Go", 4, []byte("x/y/z/w")))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		_ = parseNotes(data, binary.LittleEndian, func(string, uint32, []byte) {})
	})
}

func FuzzFromReader(f *testing.F) {
	elfData, err := os.ReadFile(fixtureELF)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(elfData)
	f.Add([]byte("\x7fELF"))
	f.Add([]byte("#!/bin/sh\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		id, err := FromReader(bytes.NewReader(data))
		if err == nil && id.ID == "" {
			t.Fatalf("empty identity without error")
		}
	})
}

// Make sure the fixture really is an ELF file with a GNU note, so that the
// golden test's build IDs mean what they say.
func TestFixtureIsELF(t *testing.T) {
	f, err := elf.Open(fixtureELF)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if f.Section(".note.gnu.build-id") == nil {
		t.Error("fixture has no .note.gnu.build-id section")
	}
}

func TestGoBuildIDWithoutGNUNote(t *testing.T) {
	testenv.Live(t) // go build
	dir := t.TempDir()
	src := filepath.Join(dir, "main.go")
	if err := os.WriteFile(src, []byte("package main\nfunc main() {}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "hello")
	// -B none drops the GNU build-id note, leaving Go's own.
	cmd := exec.Command("go", "build", "-ldflags=-B none", "-o", bin, src)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GO111MODULE=off")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	out, err := exec.Command("go", "tool", "buildid", bin).Output()
	if err != nil {
		t.Fatalf("go tool buildid: %v", err)
	}
	id, err := Read(bin)
	if err != nil {
		t.Fatal(err)
	}
	if want := (Identity{ID: strings.TrimSpace(string(out)), Source: SourceGo}); id != want {
		t.Errorf("Read = %+v, want %+v (from go tool buildid)", id, want)
	}
}

// TestOnlyRegularFiles: an exe link of a copied or fake procfs can point at
// a FIFO (opening it blocks until someone writes: a scrape that hangs for
// good) or a device such as /dev/zero (endless: hashed up to the cap).
// Neither is read; each is an error that says what the file is.
func TestOnlyRegularFiles(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "fifo")
	if err := syscall.Mkfifo(fifo, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{fifo, "/dev/zero"} {
		for name, read := range map[string]func(string) (Identity, error){"Read": Read, "Cache.Read": new(Cache).Read} {
			done := make(chan error, 1)
			go func() {
				_, err := read(path)
				done <- err
			}()
			select {
			case err := <-done:
				if !errors.Is(err, ErrNotRegular) {
					t.Errorf("%s(%s) = %v, want ErrNotRegular", name, path, err)
				}
			case <-time.After(5 * time.Second):
				t.Fatalf("%s(%s) still blocked after 5 s", name, path)
			}
		}
	}
}
