package remoteread

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
)

// castagnoli is the CRC-32 table Prometheus uses for streamed read frames.
var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// frameReader splits a streamed remote-read body into frames: a uvarint
// payload length, a big-endian CRC-32 (Castagnoli) of the payload, then the
// payload. It keeps one payload buffer and grows it to the largest frame
// seen, so memory follows the biggest frame, never the whole body.
//
// Prometheus's storage/remote package has a reader of the same framing, but
// its errors are plain strings; ours wrap ErrChecksum, ErrFrameTooLarge and
// ErrMalformed so callers can tell a corrupt stream from an oversized one.
type frameReader struct {
	r     *bufio.Reader
	limit uint64
	buf   []byte
	// offset counts body bytes consumed, for error messages that say where
	// the stream broke.
	offset int64
}

func newFrameReader(r io.Reader, limit uint64) *frameReader {
	return &frameReader{r: bufio.NewReaderSize(r, 32<<10), limit: limit}
}

// next returns the next frame's payload, valid until the following call, or
// io.EOF when the body ends cleanly between frames.
func (f *frameReader) next() ([]byte, error) {
	start := f.offset
	size, err := binary.ReadUvarint(countingByteReader{f})
	switch {
	case errors.Is(err, io.EOF) && f.offset == start:
		return nil, io.EOF
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return nil, fmt.Errorf("frame at byte %d: length cut short: %w: %w", start, ErrMalformed, io.ErrUnexpectedEOF)
	case err != nil:
		// binary.ReadUvarint reports overflow with an unexported error; any
		// other error comes from the connection.
		if f.offset-start >= binary.MaxVarintLen64 {
			return nil, fmt.Errorf("frame at byte %d: length is not a valid uvarint: %w", start, ErrMalformed)
		}
		return nil, fmt.Errorf("frame at byte %d: %w", start, err)
	}
	if size > f.limit {
		return nil, fmt.Errorf("frame at byte %d is %d bytes, over the limit of %d: %w", start, size, f.limit, ErrFrameTooLarge)
	}
	var sum [4]byte
	if err := f.readFull(sum[:]); err != nil {
		return nil, fmt.Errorf("frame at byte %d: checksum: %w", start, err)
	}
	if uint64(cap(f.buf)) < size {
		f.buf = make([]byte, size)
	}
	f.buf = f.buf[:size]
	if err := f.readFull(f.buf); err != nil {
		return nil, fmt.Errorf("frame at byte %d: %d-byte payload: %w", start, size, err)
	}
	want := binary.BigEndian.Uint32(sum[:])
	if got := crc32.Checksum(f.buf, castagnoli); got != want {
		return nil, fmt.Errorf("frame at byte %d: crc32 %08x, header says %08x: %w", start, got, want, ErrChecksum)
	}
	return f.buf, nil
}

func (f *frameReader) readFull(p []byte) error {
	n, err := io.ReadFull(f.r, p)
	f.offset += int64(n)
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("body ended inside the frame: %w: %w", ErrMalformed, io.ErrUnexpectedEOF)
	}
	return err
}

// countingByteReader feeds binary.ReadUvarint while counting bytes.
type countingByteReader struct{ f *frameReader }

func (c countingByteReader) ReadByte() (byte, error) {
	b, err := c.f.r.ReadByte()
	if err == nil {
		c.f.offset++
	}
	return b, err
}
