package smst_test

import (
	"encoding/binary"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/relaymeter/relaymeter/ledger/smst"
)

// benchLeaf fills key and value for leaf i, as a stream of relays would.
func benchLeaf(key, value []byte, i int) {
	binary.BigEndian.PutUint64(key, uint64(i))
	binary.BigEndian.PutUint64(value, uint64(i)*2654435761)
}

const benchValueSize = 64

// peakHeap samples the live heap until stop is called and returns the
// highest HeapAlloc seen above the level at start.
func peakHeap() (stop func() uint64) {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	base := ms.HeapAlloc
	var peak atomic.Uint64
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(2 * time.Millisecond)
		defer t.Stop()
		var m runtime.MemStats
		for {
			select {
			case <-done:
				return
			case <-t.C:
				runtime.ReadMemStats(&m)
				if m.HeapAlloc > peak.Load() {
					peak.Store(m.HeapAlloc)
				}
			}
		}
	}()
	return func() uint64 {
		close(done)
		<-finished
		runtime.ReadMemStats(&ms)
		p := max(peak.Load(), ms.HeapAlloc)
		if p < base {
			return 0
		}
		return p - base
	}
}

// BenchmarkUpdate inserts b.N leaves one by one and hashes once at the end.
func BenchmarkUpdate(b *testing.B) {
	key, value := make([]byte, 8), make([]byte, benchValueSize)
	tr := smst.New()
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		benchLeaf(key, value, i)
		if err := tr.Update(key, value, 1); err != nil {
			b.Fatal(err)
		}
	}
	_ = tr.Root()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "leaves/s")
}

// BenchmarkUpdateRoot inserts into a 100k-leaf trie and recomputes the root
// after every insert.
func BenchmarkUpdateRoot(b *testing.B) {
	key, value := make([]byte, 8), make([]byte, benchValueSize)
	tr := smst.New()
	for i := 0; i < 100_000; i++ {
		benchLeaf(key, value, i)
		_ = tr.Update(key, value, 1)
	}
	_ = tr.Root()
	b.ReportAllocs()
	for i := 100_000; b.Loop(); i++ {
		benchLeaf(key, value, i)
		_ = tr.Update(key, value, 1)
		_ = tr.Root()
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "leaves/s")
}

// BenchmarkBuilderRoot adds 100k leaves in arbitrary order and computes the
// root.
func BenchmarkBuilderRoot(b *testing.B) {
	const n = 100_000
	key, value := make([]byte, 8), make([]byte, benchValueSize)
	for b.Loop() {
		bl := smst.NewBuilder(smst.WithoutValues())
		bl.Grow(n)
		for i := 0; i < n; i++ {
			benchLeaf(key, value, i)
			_ = bl.Add(key, value, 1)
		}
		if _, err := bl.Root(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "leaves/s")
}

// Benchmark1M builds a 1,000,000-leaf trie (64-byte values, keys streamed)
// three ways and reports the peak heap growth.
func Benchmark1M(b *testing.B) {
	const n = 1_000_000
	key, value := make([]byte, 8), make([]byte, benchValueSize)
	run := func(b *testing.B, build func() []byte) {
		for b.Loop() {
			stop := peakHeap()
			start := time.Now()
			root := build()
			elapsed := time.Since(start)
			peak := stop()
			if len(root) != smst.RootSize {
				b.Fatal("bad root")
			}
			b.ReportMetric(float64(peak)/(1<<20), "peak-MiB")
			b.ReportMetric(float64(peak)/n, "peak-B/leaf")
			b.ReportMetric(n/elapsed.Seconds(), "leaves/s")
		}
	}
	b.Run("builder-root", func(b *testing.B) {
		run(b, func() []byte {
			bl := smst.NewBuilder(smst.WithoutValues())
			bl.Grow(n)
			for i := 0; i < n; i++ {
				benchLeaf(key, value, i)
				_ = bl.Add(key, value, 1)
			}
			r, _ := bl.Root()
			return r
		})
	})
	b.Run("builder-root-nogrow", func(b *testing.B) {
		run(b, func() []byte {
			bl := smst.NewBuilder(smst.WithoutValues())
			for i := 0; i < n; i++ {
				benchLeaf(key, value, i)
				_ = bl.Add(key, value, 1)
			}
			r, _ := bl.Root()
			return r
		})
	})
	b.Run("builder-trie", func(b *testing.B) {
		var keep *smst.Trie
		run(b, func() []byte {
			bl := smst.NewBuilder()
			bl.Grow(n)
			for i := 0; i < n; i++ {
				benchLeaf(key, value, i)
				_ = bl.Add(key, value, 1)
			}
			keep, _ = bl.Trie()
			return keep.Root()
		})
		runtime.KeepAlive(keep)
	})
	b.Run("incremental", func(b *testing.B) {
		var keep *smst.Trie
		run(b, func() []byte {
			keep = smst.New()
			for i := 0; i < n; i++ {
				benchLeaf(key, value, i)
				_ = keep.Update(key, value, 1)
			}
			return keep.Root()
		})
		runtime.KeepAlive(keep)
	})
}

// BenchmarkProof proves and verifies in a 1M-leaf trie and reports the
// encoded proof sizes.
func BenchmarkProof(b *testing.B) {
	const n = 1_000_000
	key, value := make([]byte, 8), make([]byte, benchValueSize)
	bl := smst.NewBuilder()
	bl.Grow(n)
	for i := 0; i < n; i++ {
		benchLeaf(key, value, i)
		_ = bl.Add(key, value, 1)
	}
	tr, _ := bl.Trie()
	root := tr.Root()
	const m = 1024
	keys, values := make([][]byte, m), make([][]byte, m)
	proofs, closest := make([]*smst.Proof, m), make([]*smst.ClosestProof, m)
	var size, closestSize, flips int
	for i := range m {
		keys[i], values[i] = make([]byte, 8), make([]byte, benchValueSize)
		benchLeaf(keys[i], values[i], i*977)
		proofs[i], _ = tr.Prove(keys[i])
		enc, _ := proofs[i].MarshalBinary()
		size += len(enc)
		path := make([]byte, smst.PathSize)
		binary.BigEndian.PutUint64(path, uint64(i)*0x9E3779B97F4A7C15)
		closest[i], _ = tr.ProveClosest(path)
		enc, _ = closest[i].MarshalBinary()
		closestSize += len(enc)
		flips += len(closest[i].FlippedBits)
	}
	b.Run("verify-inclusion", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			j := i % m
			if ok, err := smst.Verify(proofs[j], root, keys[j], values[j], 1); !ok || err != nil {
				b.Fatal("proof does not verify")
			}
		}
		b.ReportMetric(float64(size)/m, "proof-bytes")
	})
	b.Run("verify-closest", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			if ok, err := smst.VerifyClosest(closest[i%m], root); !ok || err != nil {
				b.Fatal("proof does not verify")
			}
		}
		b.ReportMetric(float64(closestSize)/m, "proof-bytes")
		b.ReportMetric(float64(flips)/m, "flips/proof")
	})
	b.Run("prove-closest", func(b *testing.B) {
		path := make([]byte, smst.PathSize)
		for i := 0; b.Loop(); i++ {
			binary.BigEndian.PutUint64(path, uint64(i)*0x9E3779B97F4A7C15)
			if _, err := tr.ProveClosest(path); err != nil {
				b.Fatal(err)
			}
		}
	})
}
