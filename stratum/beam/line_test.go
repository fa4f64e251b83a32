package beam

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

// readAll reads every line, copying each, until an error.
func readAll(r *Reader) ([]string, error) {
	var lines []string
	for {
		line, err := r.ReadLine()
		if err != nil {
			return lines, err
		}
		lines = append(lines, string(line))
	}
}

func TestReaderLines(t *testing.T) {
	tests := []struct {
		name  string
		in    string
		want  []string
		unter bool // last line unterminated
	}{
		{"empty", "", nil, false},
		{"one", "{}\n", []string{"{}"}, false},
		{"crlf kept", "a\r\nb\n", []string{"a\r", "b"}, false},
		{"empty lines", "\n\nx\n", []string{"", "", "x"}, false},
		{"final unterminated", "a\nb", []string{"a", "b"}, true},
		{"only unterminated", "abc", []string{"abc"}, true},
	}
	for _, tt := range tests {
		for _, oneByte := range []bool{false, true} {
			var src io.Reader = strings.NewReader(tt.in)
			if oneByte {
				src = iotest.OneByteReader(src)
			}
			r := NewReader(src)
			got, err := readAll(r)
			if err != io.EOF {
				t.Fatalf("%s: err = %v, want io.EOF", tt.name, err)
			}
			if strings.Join(got, "|") != strings.Join(tt.want, "|") || len(got) != len(tt.want) {
				t.Fatalf("%s (oneByte=%v): lines = %q, want %q", tt.name, oneByte, got, tt.want)
			}
			if len(got) > 0 && r.Unterminated() != tt.unter {
				t.Errorf("%s: Unterminated = %v, want %v", tt.name, r.Unterminated(), tt.unter)
			}
			if _, err := r.ReadLine(); err != io.EOF {
				t.Errorf("%s: after EOF, err = %v", tt.name, err)
			}
		}
	}
}

func TestReaderLineAndOffset(t *testing.T) {
	r := NewReader(strings.NewReader("ab\ncde\n\nf"))
	want := []struct {
		line, off int64
	}{{1, 0}, {2, 3}, {3, 7}, {4, 8}}
	for _, w := range want {
		if _, err := r.ReadLine(); err != nil {
			t.Fatal(err)
		}
		if r.Line() != w.line || r.Offset() != w.off {
			t.Errorf("Line, Offset = %d, %d; want %d, %d", r.Line(), r.Offset(), w.line, w.off)
		}
	}
}

func TestReaderLimit(t *testing.T) {
	maxJSON := MaxLineSize - 1 // the LF counts toward the limit
	okLine := strings.Repeat("x", maxJSON)
	for _, tail := range []string{"\n", ""} {
		r := NewReader(strings.NewReader("a\n" + okLine + tail + "b\n"))
		got, err := readAll(r)
		if tail == "" {
			// okLine and "b" merge into one line one byte over the limit.
			var tl *LineTooLongError
			if !errors.As(err, &tl) || tl.Line != 2 || tl.Offset != 2 || tl.Limit != MaxLineSize || tl.Length <= MaxLineSize {
				t.Fatalf("err = %#v, want LineTooLongError for line 2 at offset 2", err)
			}
			continue
		}
		if err != io.EOF || len(got) != 3 || got[1] != okLine {
			t.Fatalf("a %d-byte line: got %d lines, err %v", maxJSON, len(got), err)
		}
	}
}

func TestReaderTooLongIsStickyAndBounded(t *testing.T) {
	src := &countingReader{r: io.MultiReader(strings.NewReader("ok\n"), neverLF{})}
	r := NewReader(src)
	if line, err := r.ReadLine(); err != nil || string(line) != "ok" {
		t.Fatalf("first line = %q, %v", line, err)
	}
	_, err := r.ReadLine()
	var tl *LineTooLongError
	if !errors.As(err, &tl) {
		t.Fatalf("err = %v, want *LineTooLongError", err)
	}
	if !strings.Contains(err.Error(), "line 2") || !strings.Contains(err.Error(), "65536") {
		t.Errorf("error %q does not name the line and the limit", err)
	}
	if len(r.buf) > MaxLineSize {
		t.Errorf("buffer grew to %d bytes", len(r.buf))
	}
	if src.n > MaxLineSize+3 {
		t.Errorf("read %d bytes from an endless line, want at most %d", src.n, MaxLineSize+3)
	}
	if _, err2 := r.ReadLine(); err2 != err {
		t.Errorf("second call: %v, want the same sticky error", err2)
	}
}

func TestReaderTooLongAtEOF(t *testing.T) {
	r := NewReader(strings.NewReader(strings.Repeat("y", MaxLineSize)))
	_, err := r.ReadLine()
	var tl *LineTooLongError
	if !errors.As(err, &tl) {
		t.Fatalf("unterminated %d-byte line: err = %v, want *LineTooLongError", MaxLineSize, err)
	}
}

func TestReaderErrors(t *testing.T) {
	boom := errors.New("boom")
	r := NewReader(io.MultiReader(strings.NewReader("a\nb"), iotest.ErrReader(boom)))
	if line, err := r.ReadLine(); err != nil || string(line) != "a" {
		t.Fatalf("line = %q, %v", line, err)
	}
	_, err := r.ReadLine()
	if !errors.Is(err, boom) || !strings.HasPrefix(err.Error(), "beam: read line 2") {
		t.Fatalf("err = %v, want wrapped boom naming line 2", err)
	}

	r = NewReader(zeroReader{})
	if _, err := r.ReadLine(); !errors.Is(err, io.ErrNoProgress) {
		t.Fatalf("endless empty reads: err = %v, want io.ErrNoProgress", err)
	}
}

func TestReaderReusesBuffer(t *testing.T) {
	in := strings.Repeat(`{"id":"1","jsonrpc":"2.0","method":"cancel"}`+"\n", 1000)
	lines := 0
	allocs := testing.AllocsPerRun(3, func() {
		r := NewReader(strings.NewReader(in)) // three allocations: source, Reader, buffer
		for lines = 0; ; lines++ {
			if _, err := r.ReadLine(); err != nil {
				return
			}
		}
	})
	if lines != 1000 || allocs > 3 {
		t.Errorf("reading %d lines allocated %.0f times, want 1000 lines and at most 3", lines, allocs)
	}
}

func TestWriter(t *testing.T) {
	var out writeRecorder
	w := NewWriter(&out)
	if err := w.WriteMessage(&Cancel{ID: "7"}); err != nil {
		t.Fatal(err)
	}
	if err := w.WriteLine([]byte(`{"x":1}`)); err != nil {
		t.Fatal(err)
	}
	want := []string{`{"id":"7","jsonrpc":"2.0","method":"cancel"}` + "\n", `{"x":1}` + "\n"}
	if len(out.writes) != 2 || out.writes[0] != want[0] || out.writes[1] != want[1] {
		t.Fatalf("writes = %q, want %q (one Write per line)", out.writes, want)
	}
	if err := w.WriteLine([]byte("a\nb")); err == nil {
		t.Error("WriteLine accepted an embedded LF")
	}
	var tl *LineTooLongError
	if err := w.WriteLine(bytes.Repeat([]byte("z"), MaxLineSize)); !errors.As(err, &tl) || tl.Line != 3 || tl.Offset != int64(len(want[0])+len(want[1])) {
		t.Errorf("oversize line: err = %v, want LineTooLongError line 3 after the first two", err)
	}
	if err := w.WriteMessage(&Cancel{}); !errors.Is(err, ErrEmptyID) {
		t.Errorf("empty id: err = %v, want ErrEmptyID", err)
	}
	if len(out.writes) != 2 {
		t.Errorf("failed writes reached the writer: %q", out.writes[2:])
	}
	boom := errors.New("boom")
	if err := NewWriter(failWriter{boom}).WriteMessage(&Cancel{ID: "1"}); !errors.Is(err, boom) {
		t.Errorf("err = %v, want wrapped boom", err)
	}
}

type writeRecorder struct{ writes []string }

func (w *writeRecorder) Write(p []byte) (int, error) {
	w.writes = append(w.writes, string(p))
	return len(p), nil
}

type failWriter struct{ err error }

func (f failWriter) Write([]byte) (int, error) { return 0, f.err }

type neverLF struct{}

func (neverLF) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = 'x'
	}
	return len(p), nil
}

type zeroReader struct{}

func (zeroReader) Read([]byte) (int, error) { return 0, nil }

type countingReader struct {
	r io.Reader
	n int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}
