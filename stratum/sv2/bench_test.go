package sv2

import "testing"

// benchFrames reads frames of m through a Reader and decodes each into
// one reused message, reporting frames per second.
func benchFrames(b *testing.B, m Message) {
	frame, err := AppendMessage(nil, m)
	if err != nil {
		b.Fatal(err)
	}
	info, _ := Lookup(m.Kind())
	into := info.New()
	r := NewReader(&repeatReader{data: frame}, 0)
	b.SetBytes(int64(len(frame)))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		_, payload, err := r.Next()
		if err != nil {
			b.Fatal(err)
		}
		if err := into.Decode(payload); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "frames/s")
}

func BenchmarkReadDecodeSubmitSharesStandard(b *testing.B) {
	benchFrames(b, &SubmitSharesStandard{ChannelID: 1, SequenceNumber: 2, JobID: 3, Nonce: 4, Ntime: 5, Version: 6})
}

func BenchmarkReadDecodeNewMiningJob(b *testing.B) {
	benchFrames(b, &NewMiningJob{ChannelID: 1, JobID: 2, MinNtime: u32p(1700000000), Version: 3, MerkleRoot: pattern(1)})
}

func BenchmarkReadDecodeNewExtendedMiningJob(b *testing.B) {
	benchFrames(b, &NewExtendedMiningJob{ChannelID: 1, JobID: 2, Version: 3, MerklePath: make([]U256, 12),
		CoinbaseTxPrefix: make(Bytes, 60), CoinbaseTxSuffix: make(Bytes, 120)})
}

func BenchmarkReadClassifySubmitSharesStandard(b *testing.B) {
	frame, _ := AppendMessage(nil, &SubmitSharesStandard{ChannelID: 1, SequenceNumber: 2})
	r := NewReader(&repeatReader{data: frame}, 0)
	b.SetBytes(int64(len(frame)))
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		h, payload, err := r.Next()
		if err != nil {
			b.Fatal(err)
		}
		if c := Classify(h, payload); c.Has&KeySequenceNumber == 0 {
			b.Fatal("no sequence number")
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "frames/s")
}

func BenchmarkAppendSubmitSharesStandard(b *testing.B) {
	m := &SubmitSharesStandard{ChannelID: 1, SequenceNumber: 2, JobID: 3, Nonce: 4, Ntime: 5, Version: 6}
	buf := make([]byte, 0, 64)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		var err error
		if buf, err = AppendMessage(buf[:0], m); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "frames/s")
}
