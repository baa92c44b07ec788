// Package buildid tells which build of a program an executable file is, so
// that a change of build behind a running service can be seen as a deploy.
//
// The identity is, in order of preference:
//   - the GNU build-id ELF note (.note.gnu.build-id), which toolchains derive
//     from the linked content;
//   - the Go toolchain's build ID note (.note.go.buildid), a content hash
//     that every `go build` writes;
//   - the Go build information (main module version, VCS revision and
//     modified flag), when a Go binary has no build ID note;
//   - otherwise the SHA-256 of the file.
package buildid

import (
	"bytes"
	"crypto/sha256"
	"debug/buildinfo"
	"debug/elf"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"syscall"
)

// Source names where an identity came from.
type Source string

// The identity sources, strongest first.
const (
	SourceGNU         Source = "gnu-build-id"
	SourceGo          Source = "go-build-id"
	SourceGoBuildInfo Source = "go-build-info"
	SourceSHA256      Source = "sha256"
)

// MaxHashBytes bounds how much of a file is hashed when it has no build ID;
// past it the hash covers the first MaxHashBytes and the size. It is read
// during a scrape, once per file: 64 MiB of SHA-256 takes a fraction of a
// second, well inside a scrape timeout (512 MiB took 2.1 s).
const MaxHashBytes = 64 << 20

// Identity is the build identity of one executable.
type Identity struct {
	// ID is the build's identifier: hex for build-id notes and hashes, the
	// Go build ID string, or module@version+revision.
	ID string
	// Source says which kind of identifier ID is.
	Source Source
	// Version is a human-readable version when the binary carries one (Go
	// main module version or VCS revision), else empty.
	Version string
}

// Note types in ELF note sections.
const (
	ntGNUBuildID = 3 // NT_GNU_BUILD_ID, name "GNU"
	ntGoBuildID  = 4 // Go's build ID note, name "Go"
)

// Read returns the identity of the executable at path. It reads only the
// note sections of an ELF file, and the whole file only when it has none.
// Only a regular file is read: a FIFO would block the reader until someone
// writes to it, and a device such as /dev/zero never ends (a copied or fake
// procfs can point an exe link anywhere). The file is opened without
// blocking and checked once open, so it cannot be swapped in between.
func Read(path string) (Identity, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return Identity{}, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return Identity{}, err
	}
	if !fi.Mode().IsRegular() {
		return Identity{}, notRegular(path, fi)
	}
	return FromReader(f)
}

// ErrNotRegular is returned for an executable that is not a regular file.
var ErrNotRegular = errors.New("not a regular file")

func notRegular(path string, fi os.FileInfo) error {
	return fmt.Errorf("%s is a %s: %w (an executable is one)", path, fi.Mode().Type(), ErrNotRegular)
}

// FromReader returns the identity of an executable's contents.
func FromReader(r io.ReaderAt) (Identity, error) {
	var version string
	if ef, err := elf.NewFile(r); err == nil {
		notes, err := elfNotes(ef)
		if err != nil {
			return Identity{}, err
		}
		version = goVersion(r)
		if id, ok := notes[ntGNUBuildID]; ok && len(id) > 0 {
			return Identity{ID: hex.EncodeToString(id), Source: SourceGNU, Version: version}, nil
		}
		if id, ok := notes[ntGoBuildID]; ok && len(id) > 0 {
			return Identity{ID: string(bytes.TrimRight(id, "\x00")), Source: SourceGo, Version: version}, nil
		}
		if bi, err := buildinfo.Read(r); err == nil {
			if id := goBuildInfoID(bi); id != "" {
				return Identity{ID: id, Source: SourceGoBuildInfo, Version: version}, nil
			}
		}
	}
	sum, err := hashReaderAt(r)
	if err != nil {
		return Identity{}, err
	}
	return Identity{ID: sum, Source: SourceSHA256, Version: version}, nil
}

// elfNotes returns the descriptors of the GNU build-id and Go build ID notes
// found in an ELF file's note sections (or, for stripped section tables, its
// PT_NOTE segments), keyed by note type.
func elfNotes(ef *elf.File) (map[uint32][]byte, error) {
	found := map[uint32][]byte{}
	var readers []io.Reader
	for _, s := range ef.Sections {
		if s.Type == elf.SHT_NOTE {
			readers = append(readers, s.Open())
		}
	}
	if len(readers) == 0 {
		for _, p := range ef.Progs {
			if p.Type == elf.PT_NOTE {
				readers = append(readers, p.Open())
			}
		}
	}
	for _, rd := range readers {
		data, err := io.ReadAll(io.LimitReader(rd, 1<<20))
		if err != nil {
			return nil, fmt.Errorf("read ELF notes: %w", err)
		}
		if err := parseNotes(data, ef.ByteOrder, func(name string, typ uint32, desc []byte) {
			switch {
			case name == "GNU" && typ == ntGNUBuildID:
				found[typ] = desc
			case name == "Go" && typ == ntGoBuildID:
				found[typ] = desc
			}
		}); err != nil {
			return nil, err
		}
	}
	return found, nil
}

// ErrMalformedNote is returned for a note section that ends mid-note.
var ErrMalformedNote = errors.New("malformed ELF note")

// parseNotes walks the notes in an ELF note section or segment. Each note is
// namesz, descsz, type (4 bytes each), then the name and the descriptor,
// each padded to 4 bytes (System V ABI, "Note Section").
func parseNotes(data []byte, order binary.ByteOrder, fn func(name string, typ uint32, desc []byte)) error {
	for len(data) > 0 {
		if len(data) < 12 {
			return fmt.Errorf("%w: %d bytes left, want a 12-byte header", ErrMalformedNote, len(data))
		}
		namesz := uint64(order.Uint32(data[0:4]))
		descsz := uint64(order.Uint32(data[4:8]))
		typ := order.Uint32(data[8:12])
		data = data[12:]
		nameEnd := align4(namesz)
		if nameEnd > uint64(len(data)) {
			return fmt.Errorf("%w: name of %d bytes past the end", ErrMalformedNote, namesz)
		}
		name := string(bytes.TrimRight(data[:namesz], "\x00"))
		data = data[nameEnd:]
		descEnd := align4(descsz)
		if descEnd > uint64(len(data)) {
			if descsz > uint64(len(data)) {
				return fmt.Errorf("%w: descriptor of %d bytes past the end", ErrMalformedNote, descsz)
			}
			descEnd = uint64(len(data))
		}
		fn(name, typ, data[:descsz])
		data = data[descEnd:]
	}
	return nil
}

func align4(n uint64) uint64 { return (n + 3) &^ 3 }

// goVersion returns a Go binary's main module version, or its VCS revision
// when the version is the local "(devel)"; empty when there is neither.
func goVersion(r io.ReaderAt) string {
	bi, err := buildinfo.Read(r)
	if err != nil {
		return ""
	}
	if v := bi.Main.Version; v != "" && v != "(devel)" {
		return v
	}
	for _, s := range bi.Settings {
		if s.Key == "vcs.revision" {
			return s.Value
		}
	}
	return ""
}

// goBuildInfoID identifies a build by module version, revision and modified
// flag; empty when none of them says anything.
func goBuildInfoID(bi *buildinfo.BuildInfo) string {
	var parts []string
	if v := bi.Main.Version; v != "" && v != "(devel)" {
		parts = append(parts, bi.Main.Path+"@"+v)
	}
	for _, s := range bi.Settings {
		switch {
		case s.Key == "vcs.revision":
			parts = append(parts, s.Value)
		case s.Key == "vcs.modified" && s.Value == "true":
			parts = append(parts, "modified")
		}
	}
	return strings.Join(parts, "+")
}

// hashReaderAt hashes up to MaxHashBytes of r.
func hashReaderAt(r io.ReaderAt) (string, error) {
	h := sha256.New()
	n, err := io.Copy(h, io.NewSectionReader(r, 0, MaxHashBytes))
	if err != nil {
		return "", fmt.Errorf("hash executable: %w", err)
	}
	if n == MaxHashBytes {
		fmt.Fprintf(h, "size>%d", n)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// Cache remembers identities by file (device, inode, size, modification
// time), so a running program's executable is read once, not every scrape.
// The zero Cache is ready to use; it is not safe for concurrent use.
type Cache struct {
	m map[fileKey]Identity
}

type fileKey struct {
	dev, ino uint64
	size     int64
	mtime    int64
}

// maxCached bounds the cache; past it the cache starts over.
const maxCached = 4096

// Read returns the identity of the file at path (following symlinks, so
// /proc/<pid>/exe works even when the file was replaced or deleted).
func (c *Cache) Read(path string) (Identity, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return Identity{}, err
	}
	if !fi.Mode().IsRegular() {
		return Identity{}, notRegular(path, fi)
	}
	k := fileKey{size: fi.Size(), mtime: fi.ModTime().UnixNano()}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		k.dev, k.ino = uint64(st.Dev), st.Ino
	}
	if id, ok := c.m[k]; ok {
		return id, nil
	}
	id, err := Read(path)
	if err != nil {
		return Identity{}, err
	}
	if c.m == nil || len(c.m) >= maxCached {
		c.m = map[fileKey]Identity{}
	}
	c.m[k] = id
	return id, nil
}
