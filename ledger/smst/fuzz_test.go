package smst_test

import (
	"bytes"
	"errors"
	"testing"

	"github.com/relaymeter/relaymeter/ledger/smst"
)

// Seed corpora live in testdata/fuzz/<FuzzName>/.

func FuzzProofUnmarshal(f *testing.F) {
	tr := numbered(f, 64)
	root := tr.Root()
	for _, k := range []string{"key1", "absent"} {
		p, _ := tr.Prove([]byte(k))
		enc, _ := p.MarshalBinary()
		f.Add(enc)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var p smst.Proof
		if err := p.UnmarshalBinary(data); err != nil {
			if !errors.Is(err, smst.ErrInvalidProof) {
				t.Fatalf("error does not wrap ErrInvalidProof: %v", err)
			}
			return
		}
		enc, err := p.MarshalBinary()
		if err != nil {
			t.Fatalf("decoded proof does not encode: %v", err)
		}
		if !bytes.Equal(enc, data) {
			t.Fatalf("encoding is not canonical:\n%x\n%x", data, enc)
		}
		if _, err := smst.Verify(&p, root, []byte("key1"), []byte("value1"), 2); err != nil {
			t.Fatalf("verify of a decoded proof: %v", err)
		}
		if _, err := smst.VerifyExclusion(&p, root, []byte("absent")); err != nil && !errors.Is(err, smst.ErrInvalidProof) {
			t.Fatalf("verify exclusion: %v", err)
		}
	})
}

func FuzzClosestProofUnmarshal(f *testing.F) {
	tr := numbered(f, 64)
	root := tr.Root()
	for _, c := range []string{"c0", "c1", "c2"} {
		p, _ := tr.ProveClosest(sha(c))
		enc, _ := p.MarshalBinary()
		f.Add(enc)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var p smst.ClosestProof
		if err := p.UnmarshalBinary(data); err != nil {
			if !errors.Is(err, smst.ErrInvalidProof) {
				t.Fatalf("error does not wrap ErrInvalidProof: %v", err)
			}
			return
		}
		enc, err := p.MarshalBinary()
		if err != nil {
			t.Fatalf("decoded proof does not encode: %v", err)
		}
		if !bytes.Equal(enc, data) {
			t.Fatalf("encoding is not canonical:\n%x\n%x", data, enc)
		}
		if _, err := smst.VerifyClosest(&p, root); err != nil {
			t.Fatalf("verify of a decoded proof: %v", err)
		}
	})
}
