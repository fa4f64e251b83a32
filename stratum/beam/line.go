package beam

import (
	"bytes"
	"fmt"
	"io"
)

// MaxLineSize is the longest line the node accepts, its LF included
// (p2p/line_protocol.h): a line may hold at most MaxLineSize-1 bytes of JSON.
const MaxLineSize = 65536

// initialReadSize is the Reader's first buffer; it doubles up to MaxLineSize.
const initialReadSize = 4096

// maxEmptyReads bounds successive (0, nil) reads before giving up.
const maxEmptyReads = 100

// Reader splits a byte stream into lines as the node does. It never holds
// more than MaxLineSize bytes. A Reader is not safe for concurrent use.
type Reader struct {
	rd     io.Reader
	buf    []byte // buf[start:end] is unread data
	start  int
	end    int
	err    error // sticky; returned once buffered lines are consumed
	line   int64 // number of the last line returned
	offset int64 // stream offset of buf[start]
	lineAt int64 // stream offset of the last line returned
	unterm bool  // the last line returned had no LF
}

// NewReader returns a Reader reading from rd.
func NewReader(rd io.Reader) *Reader {
	return &Reader{rd: rd}
}

// ReadLine returns the next line without its LF (a CR before the LF is
// kept: the node treats it as JSON whitespace).
//
// The returned slice aliases the Reader's buffer: it is valid only until the
// next call to ReadLine; copy it to keep it.
//
// At the end of the stream ReadLine returns a final unterminated line, if
// any, with a nil error (see Unterminated), then (nil, io.EOF). A line over
// the limit yields a *LineTooLongError; that and any read error are sticky,
// as the node drops the peer.
func (r *Reader) ReadLine() ([]byte, error) {
	if r.buf == nil {
		r.buf = make([]byte, initialReadSize)
	}
	scanned := 0 // bytes of buf[start:end] known to hold no LF
	empty := 0
	for {
		if i := bytes.IndexByte(r.buf[r.start+scanned:r.end], '\n'); i >= 0 {
			n := scanned + i
			return r.emit(n, n+1, false), nil
		}
		scanned = r.end - r.start
		if _, done := r.err.(*LineTooLongError); scanned >= MaxLineSize && !done {
			r.err = &LineTooLongError{Line: r.line + 1, Offset: r.offset, Length: scanned + 1, Limit: MaxLineSize}
		}
		if r.err != nil {
			if scanned > 0 && r.err == io.EOF {
				return r.emit(scanned, scanned, true), nil
			}
			return nil, r.err
		}
		r.makeRoom()
		n, err := r.rd.Read(r.buf[r.end:])
		if n < 0 || n > len(r.buf)-r.end {
			r.err = fmt.Errorf("beam: read line: reader returned %d bytes for a %d-byte buffer", n, len(r.buf)-r.end)
			continue
		}
		r.end += n
		switch {
		case err == io.EOF:
			r.err = io.EOF
		case err != nil:
			r.err = fmt.Errorf("beam: read line %d: %w", r.line+1, err)
		case n == 0:
			if empty++; empty >= maxEmptyReads {
				r.err = fmt.Errorf("beam: read line %d: %w", r.line+1, io.ErrNoProgress)
			}
		}
	}
}

// emit consumes n line bytes plus the terminator (adv-n bytes).
func (r *Reader) emit(n, adv int, unterminated bool) []byte {
	line := r.buf[r.start : r.start+n : r.start+n]
	r.line++
	r.lineAt = r.offset
	r.unterm = unterminated
	r.start += adv
	r.offset += int64(adv)
	if r.start == r.end {
		r.start, r.end = 0, 0
	}
	return line
}

// makeRoom ensures free space after end: it moves unread data to the front
// of the buffer, or grows the buffer up to MaxLineSize.
func (r *Reader) makeRoom() {
	if r.end < len(r.buf) {
		return
	}
	if r.start > 0 {
		r.end = copy(r.buf, r.buf[r.start:r.end])
		r.start = 0
		return
	}
	size := min(2*len(r.buf), MaxLineSize)
	nb := make([]byte, size)
	copy(nb, r.buf[:r.end])
	r.buf = nb
}

// Line returns the 1-based number of the line last returned by ReadLine.
func (r *Reader) Line() int64 { return r.line }

// Offset returns the stream offset of the first byte of the line last
// returned by ReadLine.
func (r *Reader) Offset() int64 { return r.lineAt }

// Unterminated reports whether the line last returned by ReadLine ended at
// the end of the stream without an LF. The node never processes such a line.
func (r *Reader) Unterminated() bool { return r.unterm }

// Writer writes messages as lines. A Writer is not safe for concurrent use.
type Writer struct {
	w    io.Writer
	buf  []byte
	line int64
	off  int64
}

// NewWriter returns a Writer writing to w.
func NewWriter(w io.Writer) *Writer {
	return &Writer{w: w}
}

// WriteMessage encodes m as the node does and writes it, followed by LF, in
// a single Write call.
func (w *Writer) WriteMessage(m Message) error {
	b, err := m.Encode(w.buf[:0])
	if err != nil {
		return fmt.Errorf("beam: write %s: %w", m.Method(), err)
	}
	w.buf = b
	return w.writeLine()
}

// WriteLine writes line followed by LF in a single Write call. The line must
// not contain LF; it is not otherwise checked.
func (w *Writer) WriteLine(line []byte) error {
	if bytes.IndexByte(line, '\n') >= 0 {
		return fmt.Errorf("beam: write line %d: line contains LF", w.line+1)
	}
	w.buf = append(w.buf[:0], line...)
	return w.writeLine()
}

func (w *Writer) writeLine() error {
	w.buf = append(w.buf, '\n')
	if len(w.buf) > MaxLineSize {
		return &LineTooLongError{Line: w.line + 1, Offset: w.off, Length: len(w.buf), Limit: MaxLineSize}
	}
	n, err := w.w.Write(w.buf)
	w.off += int64(n)
	if err != nil {
		return fmt.Errorf("beam: write line %d: %w", w.line+1, err)
	}
	w.line++
	return nil
}
