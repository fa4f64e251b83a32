package smst_test

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"reflect"
	"testing"

	"github.com/relaymeter/relaymeter/ledger/smst"
)

// mutations returns copies of b with byte i changed in a few ways.
func mutations(b []byte, i int) [][]byte {
	var out [][]byte
	for _, x := range []byte{0x01, 0x80, 0xff} {
		m := bytes.Clone(b)
		m[i] ^= x
		out = append(out, m)
	}
	return out
}

func roundTrip(t *testing.T, p *smst.Proof) []byte {
	t.Helper()
	enc, err := p.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	var back smst.Proof
	if err := back.UnmarshalBinary(enc); err != nil {
		t.Fatalf("decode own encoding: %v", err)
	}
	if !reflect.DeepEqual(&back, p) {
		t.Fatalf("round trip changed the proof:\n%+v\n%+v", back, *p)
	}
	return enc
}

func TestInclusionProof(t *testing.T) {
	tr := numbered(t, 500)
	root := tr.Root()
	key, value, weight := []byte("key42"), []byte("value42"), uint64(43)
	p, err := tr.Prove(key)
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := smst.Verify(p, root, key, value, weight); !ok || err != nil {
		t.Fatalf("inclusion proof does not verify: %v", err)
	}
	if ok, _ := smst.VerifyExclusion(p, root, key); ok {
		t.Fatal("inclusion proof verifies as an exclusion proof")
	}
	if ok, _ := smst.Verify(p, root, key, value, weight, smst.WithValueHasher(smst.SHA256Value)); ok {
		t.Fatal("verifies under another value hasher")
	}
	for _, bad := range []struct {
		name  string
		key   []byte
		value []byte
		w     uint64
	}{
		{"key", []byte("key43"), value, weight},
		{"value", key, []byte("value43"), weight},
		{"empty value", key, nil, weight},
		{"weight", key, value, weight + 1},
	} {
		if ok, err := smst.Verify(p, root, bad.key, bad.value, bad.w); ok || err != nil {
			t.Errorf("changed %s: verify %v %v", bad.name, ok, err)
		}
	}
	for i := range root {
		for _, r := range mutations(root, i) {
			if ok, _ := smst.Verify(p, r, key, value, weight); ok {
				t.Fatalf("verifies against root changed at byte %d", i)
			}
		}
	}
	for i := range value {
		for _, v := range mutations(value, i) {
			if ok, _ := smst.Verify(p, root, key, v, weight); ok {
				t.Fatalf("verifies with value changed at byte %d", i)
			}
		}
	}
	for bit := 0; bit < 64; bit++ {
		if ok, _ := smst.Verify(p, root, key, value, weight^(1<<bit)); ok {
			t.Fatalf("verifies with weight bit %d flipped", bit)
		}
	}
	enc := roundTrip(t, p)
	checkEncodedMutations(t, enc, func(q *smst.Proof) bool {
		ok, _ := smst.Verify(q, root, key, value, weight)
		return ok
	})
	// Any change to any side node, in the struct itself, fails too.
	for s := range p.SideNodes {
		for i := 0; i < smst.DigestSize; i++ {
			q := &smst.Proof{SideNodes: clone2D(p.SideNodes)}
			q.SideNodes[s][i] ^= 0x01
			if ok, _ := smst.Verify(q, root, key, value, weight); ok {
				t.Fatalf("verifies with side node %d byte %d changed", s, i)
			}
		}
	}
}

func clone2D(s [][]byte) [][]byte {
	out := make([][]byte, len(s))
	for i := range s {
		out[i] = bytes.Clone(s[i])
	}
	return out
}

func checkEncodedMutations(t *testing.T, enc []byte, verifies func(*smst.Proof) bool) {
	t.Helper()
	for i := range enc {
		for _, m := range mutations(enc, i) {
			var q smst.Proof
			if err := q.UnmarshalBinary(m); err != nil {
				if !errors.Is(err, smst.ErrInvalidProof) {
					t.Fatalf("decode error does not wrap ErrInvalidProof: %v", err)
				}
				continue
			}
			if verifies(&q) {
				t.Fatalf("proof with byte %d changed (%x) still verifies", i, m[i])
			}
		}
	}
	for n := 0; n < len(enc); n++ {
		var q smst.Proof
		if err := q.UnmarshalBinary(enc[:n]); err == nil {
			t.Fatalf("truncated to %d of %d bytes decodes", n, len(enc))
		}
	}
	var q smst.Proof
	if err := q.UnmarshalBinary(append(bytes.Clone(enc), 0)); err == nil {
		t.Fatal("trailing byte decodes")
	}
}

func TestExclusionProofOtherLeaf(t *testing.T) {
	tr := numbered(t, 500)
	root := tr.Root()
	key := []byte("absent0")
	p, _ := tr.Prove(key)
	if p.Leaf == nil {
		t.Fatal("expected the exclusion proof to show another leaf")
	}
	if ok, err := smst.VerifyExclusion(p, root, key); !ok || err != nil {
		t.Fatalf("exclusion proof: %v %v", ok, err)
	}
	if ok, _ := smst.Verify(p, root, key, nil, 0); ok {
		t.Fatal("exclusion proof verifies as inclusion")
	}
	// It does not prove the absence of the leaf it shows.
	shown := &smst.Proof{SideNodes: p.SideNodes, Leaf: p.Leaf}
	if ok, _ := smst.VerifyExclusion(shown, root, []byte("key1")); ok {
		t.Fatal("proves exclusion of an unrelated present key")
	}
	enc := roundTrip(t, p)
	checkEncodedMutations(t, enc, func(q *smst.Proof) bool {
		ok, _ := smst.VerifyExclusion(q, root, key)
		return ok
	})
	for i := range root {
		for _, r := range mutations(root, i) {
			if ok, _ := smst.VerifyExclusion(p, r, key); ok {
				t.Fatalf("verifies against root changed at byte %d", i)
			}
		}
	}
}

// keysWithPrefix finds n keys whose path starts with the given bits.
func keysWithPrefix(prefix string, n int) [][]byte {
	var out [][]byte
	for i := 0; len(out) < n; i++ {
		k := []byte(fmt.Sprintf("k%d", i))
		d := sha256.Sum256(k)
		ok := true
		for j, c := range prefix {
			if int(d[0]>>(7-j))&1 != int(c-'0') {
				ok = false
			}
		}
		if ok {
			out = append(out, k)
		}
	}
	return out
}

func TestExclusionProofEmptySlot(t *testing.T) {
	// Two leaves under 00… and 01…: a key under 1… has an empty slot at
	// depth 1 whose sibling is the inner node of both leaves.
	tr := smst.New()
	for _, k := range append(keysWithPrefix("00", 1), keysWithPrefix("01", 1)...) {
		_ = tr.Update(k, []byte("v"), 3)
	}
	root := tr.Root()
	absent := keysWithPrefix("1", 1)[0]
	p, _ := tr.Prove(absent)
	if p.Leaf != nil || len(p.SideNodes) != 1 {
		t.Fatalf("want an empty-slot proof at depth 1, got leaf %v, %d side nodes", p.Leaf, len(p.SideNodes))
	}
	if ok, err := smst.VerifyExclusion(p, root, absent); !ok || err != nil {
		t.Fatalf("empty-slot exclusion: %v %v", ok, err)
	}
	enc := roundTrip(t, p)
	checkEncodedMutations(t, enc, func(q *smst.Proof) bool {
		ok, _ := smst.VerifyExclusion(q, root, absent)
		return ok
	})
	// A chain: three leaves under 000…, 001… and a key under 01… whose slot
	// at depth 2 is empty, with an empty side node at depth 0.
	tr = smst.New()
	for _, k := range append(keysWithPrefix("000", 1), keysWithPrefix("001", 1)...) {
		_ = tr.Update(k, []byte("v"), 1)
	}
	absent = keysWithPrefix("01", 1)[0]
	p, _ = tr.Prove(absent)
	if p.Leaf != nil || len(p.SideNodes) != 2 || !bytes.Equal(p.SideNodes[1], make([]byte, 48)) {
		t.Fatalf("want an empty-slot proof at depth 2 with an empty top side node, got %+v", p)
	}
	if ok, err := smst.VerifyExclusion(p, tr.Root(), absent); !ok || err != nil {
		t.Fatalf("chain exclusion: %v %v", ok, err)
	}
	if enc := roundTrip(t, p); len(enc) != 1+1+1+48+1 {
		t.Fatalf("empty side node not compacted: %d bytes", len(enc))
	}
}

func TestClosestProof(t *testing.T) {
	tr := numbered(t, 500)
	root := tr.Root()
	flipped := 0
	for i := 0; i < 30; i++ {
		challenge := sha(fmt.Sprintf("challenge%d", i))
		p, err := tr.ProveClosest(challenge)
		if err != nil {
			t.Fatal(err)
		}
		if ok, err := smst.VerifyClosest(p, root); !ok || err != nil {
			t.Fatalf("closest proof %d: %v %v", i, ok, err)
		}
		if v, w, err := tr.Get([]byte(fmt.Sprintf("key%s", p.Leaf.Value[5:]))); err != nil || !bytes.Equal(v, p.Leaf.Value) || w != p.Leaf.Weight {
			t.Fatalf("closest leaf %q weight %d is not in the trie (%v)", p.Leaf.Value, p.Leaf.Weight, err)
		}
		flipped += len(p.FlippedBits)
		enc, err := p.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		var back smst.ClosestProof
		if err := back.UnmarshalBinary(enc); err != nil || !reflect.DeepEqual(&back, p) {
			t.Fatalf("round trip: %v\n%+v\n%+v", err, back, *p)
		}
		for j := range enc {
			for _, m := range mutations(enc, j) {
				var q smst.ClosestProof
				if err := q.UnmarshalBinary(m); err != nil {
					if !errors.Is(err, smst.ErrInvalidProof) {
						t.Fatalf("decode error does not wrap ErrInvalidProof: %v", err)
					}
					continue
				}
				// A verifier checks the proof answers its own challenge.
				if ok, _ := smst.VerifyClosest(&q, root); ok && bytes.Equal(q.Path, challenge) {
					t.Fatalf("closest proof with byte %d changed still verifies", j)
				}
			}
		}
		for j := range root {
			for _, r := range mutations(root, j) {
				if ok, _ := smst.VerifyClosest(p, r); ok {
					t.Fatalf("verifies against root changed at byte %d", j)
				}
			}
		}
	}
	if flipped == 0 {
		t.Fatal("no challenge needed a flipped bit; the test covers too little")
	}
}

func TestClosestProofForgeries(t *testing.T) {
	tr := numbered(t, 100)
	root := tr.Root()
	challenge := sha("challenge")
	p, _ := tr.ProveClosest(challenge)
	// Claim a different leaf by flipping the bits where it differs: the
	// flipped levels' side nodes are not empty, so the proof is refused.
	other, _ := tr.Prove([]byte("key7"))
	otherPath := sha("key7")
	forged := &smst.ClosestProof{Path: challenge, Depth: len(other.SideNodes), SideNodes: other.SideNodes,
		Leaf: smst.Leaf{Path: otherPath, Value: []byte("value7"), Weight: 8}}
	for i := 0; i < forged.Depth; i++ {
		if (challenge[i/8]^otherPath[i/8])>>(7-i%8)&1 == 1 {
			forged.FlippedBits = append(forged.FlippedBits, i)
		}
	}
	if !bytes.Equal(p.Leaf.Path, otherPath) {
		if ok, err := smst.VerifyClosest(forged, root); ok || !errors.Is(err, smst.ErrInvalidProof) {
			t.Fatalf("forged closest proof: %v %v", ok, err)
		}
	}
	bad := *p
	bad.Depth++
	if _, err := smst.VerifyClosest(&bad, root); !errors.Is(err, smst.ErrInvalidProof) {
		t.Fatalf("depth mismatch: %v", err)
	}
	if _, err := smst.VerifyClosest(p, root[:47]); !errors.Is(err, smst.ErrInvalidRoot) {
		t.Fatalf("short root: %v", err)
	}
	if _, err := smst.VerifyClosest(nil, root); !errors.Is(err, smst.ErrInvalidProof) {
		t.Fatalf("nil proof: %v", err)
	}
	if _, err := smst.Verify(nil, root, nil, nil, 0); !errors.Is(err, smst.ErrInvalidProof) {
		t.Fatalf("nil proof: %v", err)
	}
	if _, err := smst.Verify(&smst.Proof{SideNodes: [][]byte{{1, 2}}}, root, nil, nil, 0); !errors.Is(err, smst.ErrInvalidProof) {
		t.Fatalf("short side node: %v", err)
	}
	if _, err := (&smst.Proof{SideNodes: make([][]byte, 257)}).MarshalBinary(); !errors.Is(err, smst.ErrInvalidProof) {
		t.Fatalf("marshal of too many side nodes: %v", err)
	}
}
