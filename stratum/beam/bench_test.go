package beam

import (
	"bytes"
	"io"
	"testing"
)

// benchStream repeats line n times, LF-terminated.
func benchStream(line string, n int) []byte {
	return bytes.Repeat([]byte(line+"\n"), n)
}

// benchReadDecode measures lines per second through Reader and Decode.
func benchReadDecode(b *testing.B, line string) {
	const perStream = 1000
	data := benchStream(line, perStream)
	src := bytes.NewReader(data)
	b.ReportAllocs()
	b.SetBytes(int64(len(line) + 1))
	b.ResetTimer()
	var r *Reader
	for i := 0; i < b.N; i++ {
		if i%perStream == 0 {
			src.Reset(data)
			r = NewReader(src)
		}
		l, err := r.ReadLine()
		if err != nil {
			b.Fatal(err)
		}
		if _, err := Decode(l); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "lines/s")
}

const (
	benchJob      = `{"difficulty":66240928,"height":1376020,"id":"1376020","input":"a4c123b1612dd272d1371c17149d439536b3216fdaeeb975729fae923d5a4fd1","jsonrpc":"2.0","method":"job"}`
	benchSolution = `{"method" : "solution", "id": "1376020", "nonce": "3fa91c08f86bebb2", "output": "` +
		"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef" +
		`", "jsonrpc":"2.0" } `
)

func BenchmarkReadDecodeJob(b *testing.B)      { benchReadDecode(b, benchJob) }
func BenchmarkReadDecodeSolution(b *testing.B) { benchReadDecode(b, benchSolution) }

func BenchmarkClassifySolution(b *testing.B) {
	line := []byte(benchSolution)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, err := Classify(line, MinerToNode); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRedactLogin(b *testing.B) {
	line := []byte(`{"method":"login", "api_key":"skjdb7343636gucgjdjgd", "id":"login","jsonrpc":"2.0"} `)
	buf := make([]byte, 0, 256)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		buf, _ = AppendRedacted(buf[:0], line)
	}
}

func BenchmarkWriteJob(b *testing.B) {
	m := &Job{ID: "1376020", Input: "a4c123b1612dd272d1371c17149d439536b3216fdaeeb975729fae923d5a4fd1", Difficulty: 66240928, Height: 1376020}
	w := NewWriter(io.Discard)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if err := w.WriteMessage(m); err != nil {
			b.Fatal(err)
		}
	}
}
