package smst

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"
)

// The reference below is a deliberately simple, full-depth recursive
// definition of the trie: a set of leaves at depth d hashes to 48 zero bytes
// if empty, to its leaf's digest if it has one leaf, and otherwise to the
// inner node of its two halves split on bit d. It shares no code with the
// package except the path type.

type refLeaf struct {
	path   path
	value  []byte
	weight uint64
}

func refBE(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }

func refLeafDigest(l refLeaf) []byte {
	pre := append([]byte{0}, l.path[:]...)
	pre = append(pre, l.value...)
	pre = append(pre, refBE(l.weight)...)
	pre = append(pre, refBE(1)...)
	s := sha256.Sum256(pre)
	return append(append(s[:], refBE(l.weight)...), refBE(1)...)
}

func refInner(l, r []byte) []byte {
	sum := binary.BigEndian.Uint64(l[32:40]) + binary.BigEndian.Uint64(r[32:40])
	cnt := binary.BigEndian.Uint64(l[40:48]) + binary.BigEndian.Uint64(r[40:48])
	pre := append(append(append([]byte{1}, l...), r...), refBE(sum)...)
	pre = append(pre, refBE(cnt)...)
	s := sha256.Sum256(pre)
	return append(append(s[:], refBE(sum)...), refBE(cnt)...)
}

func refBit(p path, i int) int { return int(p[i/8]>>(7-i%8)) & 1 }

func refSplit(leaves []refLeaf, d int) (zero, one []refLeaf) {
	for _, l := range leaves {
		if refBit(l.path, d) == 0 {
			zero = append(zero, l)
		} else {
			one = append(one, l)
		}
	}
	return zero, one
}

func refDigest(leaves []refLeaf, d int) []byte {
	switch len(leaves) {
	case 0:
		return make([]byte, 48)
	case 1:
		return refLeafDigest(leaves[0])
	}
	zero, one := refSplit(leaves, d)
	return refInner(refDigest(zero, d+1), refDigest(one, d+1))
}

// refProve descends to p's leaf or empty slot and returns the side nodes
// (deepest first), the leaf found there (nil if empty) .
func refProve(leaves []refLeaf, p path) ([][]byte, *refLeaf) {
	var sides [][]byte
	for d := 0; ; d++ {
		if len(leaves) == 0 {
			break
		}
		if len(leaves) == 1 {
			l := leaves[0]
			return reverse(sides), &l
		}
		zero, one := refSplit(leaves, d)
		if refBit(p, d) == 0 {
			sides = append(sides, refDigest(one, d+1))
			leaves = zero
		} else {
			sides = append(sides, refDigest(zero, d+1))
			leaves = one
		}
	}
	return reverse(sides), nil
}

// refClosest descends along p, taking the other half whenever p's half is
// empty.
func refClosest(leaves []refLeaf, p path) (flips []int, sides [][]byte, leaf refLeaf) {
	for d := 0; len(leaves) > 1; d++ {
		zero, one := refSplit(leaves, d)
		take, other := zero, one
		if refBit(p, d) == 1 {
			take, other = one, zero
		}
		if len(take) == 0 {
			flips = append(flips, d)
			take, other = other, take
		}
		sides = append(sides, refDigest(other, d+1))
		leaves = take
	}
	return flips, reverse(sides), leaves[0]
}

func reverse(s [][]byte) [][]byte {
	slices.Reverse(s)
	if len(s) == 0 {
		return nil
	}
	return s
}

func refLeaves(m map[path]refLeaf) []refLeaf {
	out := make([]refLeaf, 0, len(m))
	for _, l := range m {
		out = append(out, l)
	}
	return out
}

// genPaths returns n paths; with deep set, they share long prefixes so
// that the trie has long chains of single-child levels and branches down to
// the last bit.
func genPaths(rng *rand.Rand, n int, deep bool) []path {
	out := make([]path, 0, n)
	for len(out) < n {
		var p path
		for i := range p {
			p[i] = byte(rng.UintN(256))
		}
		if deep && len(out) > 0 {
			base := out[rng.IntN(len(out))]
			cut := 255 - rng.IntN(40)
			if rng.IntN(3) == 0 {
				cut = rng.IntN(256)
			}
			// Keep base's first cut bits, flip bit cut, randomise the rest.
			for i := 0; i < cut; i++ {
				if refBit(base, i) != refBit(p, i) {
					flipBit(p[:], i)
				}
			}
			if refBit(base, cut) == refBit(p, cut) {
				flipBit(p[:], cut)
			}
		}
		out = append(out, p)
	}
	return out
}

func TestTrieMatchesReference(t *testing.T) {
	for seed := uint64(1); seed <= 24; seed++ {
		deep := seed%2 == 0
		rng := rand.New(rand.NewPCG(seed, 99))
		paths := genPaths(rng, 2+rng.IntN(60), deep)
		tr := New()
		want := map[path]refLeaf{}
		for step := 0; step < 150; step++ {
			p := paths[rng.IntN(len(paths))]
			if rng.IntN(4) == 0 {
				_, had := want[p]
				err := tr.deletePath(&p)
				if had != (err == nil) {
					t.Fatalf("seed %d step %d: delete err %v, key present %v", seed, step, err, had)
				}
				delete(want, p)
			} else {
				v := make([]byte, rng.IntN(5))
				for i := range v {
					v[i] = byte(rng.UintN(256))
				}
				w := rng.Uint64N(1000)
				if err := tr.updatePath(&p, v, w); err != nil {
					t.Fatal(err)
				}
				want[p] = refLeaf{p, v, w}
			}
			if step%5 != 4 && rng.IntN(8) != 0 {
				continue // compare roots after a batch of changes, sometimes after one
			}
			leaves := refLeaves(want)
			if got, exp := tr.Root(), refDigest(leaves, 0); !bytes.Equal(got, exp) {
				t.Fatalf("seed %d step %d (%d leaves): root %x, reference %x", seed, step, len(leaves), got, exp)
			}
			if tr.Count() != uint64(len(leaves)) {
				t.Fatalf("count %d, want %d", tr.Count(), len(leaves))
			}
		}
		leaves := refLeaves(want)
		root := tr.Root()
		probes := append(slices.Clone(paths), genPaths(rng, 20, false)...)
		for _, p := range probes {
			checkProveAgainstRef(t, tr, leaves, root, p)
			checkClosestAgainstRef(t, tr, leaves, root, p)
		}
		checkBuilderAgainstRef(t, leaves, root)
	}
}

func checkProveAgainstRef(t *testing.T, tr *Trie, leaves []refLeaf, root []byte, p path) {
	t.Helper()
	proof := tr.provePath(&p)
	sides, leaf := refProve(leaves, p)
	if !reflect.DeepEqual(proof.SideNodes, sides) {
		t.Fatalf("prove %x: side nodes differ from reference:\n%x\n%x", p, proof.SideNodes, sides)
	}
	if leaf != nil && leaf.path == p {
		if proof.Leaf != nil {
			t.Fatalf("inclusion proof carries a leaf")
		}
		if !verifyInclusion(proof, root, &p, leaf.value, leaf.weight) {
			t.Fatalf("inclusion proof for %x does not verify", p)
		}
		if ok, _ := verifyExclusion(proof, root, &p); ok {
			t.Fatalf("inclusion proof verifies as exclusion")
		}
		return
	}
	if (leaf == nil) != (proof.Leaf == nil) {
		t.Fatalf("exclusion leaf %v, reference %v", proof.Leaf, leaf)
	}
	if leaf != nil && (!bytes.Equal(proof.Leaf.Path, leaf.path[:]) || !bytes.Equal(proof.Leaf.Value, leaf.value) || proof.Leaf.Weight != leaf.weight) {
		t.Fatalf("exclusion leaf %+v, reference %+v", proof.Leaf, leaf)
	}
	if ok, err := verifyExclusion(proof, root, &p); !ok || err != nil {
		t.Fatalf("exclusion proof for %x: %v %v", p, ok, err)
	}
}

func checkClosestAgainstRef(t *testing.T, tr *Trie, leaves []refLeaf, root []byte, p path) {
	t.Helper()
	cp, err := tr.ProveClosest(p[:])
	if len(leaves) == 0 {
		if err == nil {
			t.Fatal("closest proof of an empty trie")
		}
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	flips, sides, leaf := refClosest(leaves, p)
	if !slices.Equal(cp.FlippedBits, flips) || !reflect.DeepEqual(cp.SideNodes, sides) || cp.Depth != len(sides) {
		t.Fatalf("closest %x: flips %v depth %d, reference flips %v depth %d", p, cp.FlippedBits, cp.Depth, flips, len(sides))
	}
	if !bytes.Equal(cp.Leaf.Path, leaf.path[:]) || !bytes.Equal(cp.Leaf.Value, leaf.value) || cp.Leaf.Weight != leaf.weight {
		t.Fatalf("closest leaf %+v, reference %+v", cp.Leaf, leaf)
	}
	if ok, err := VerifyClosest(cp, root); !ok || err != nil {
		t.Fatalf("closest proof does not verify: %v %v", ok, err)
	}
}

func checkBuilderAgainstRef(t *testing.T, leaves []refLeaf, root []byte) {
	t.Helper()
	b := NewBuilder()
	rng := rand.New(rand.NewPCG(uint64(len(leaves)), 7))
	// Add every leaf in a random order, some twice with a stale value first.
	for _, i := range rng.Perm(len(leaves)) {
		l := leaves[i]
		if rng.IntN(4) == 0 {
			b.addPath(&l.path, []byte("stale"), 12345)
		}
		b.addPath(&l.path, l.value, l.weight)
	}
	got, err := b.Root()
	if err != nil || !bytes.Equal(got, root) {
		t.Fatalf("builder root %x (%v), want %x", got, err, root)
	}
	tr, err := b.Trie()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(tr.Root(), root) || tr.Count() != uint64(len(leaves)) {
		t.Fatalf("builder trie root %x count %d, want %x %d", tr.Root(), tr.Count(), root, len(leaves))
	}
	// The built trie stays updatable: every leaf's proof matches.
	for _, l := range leaves {
		checkProveAgainstRef(t, tr, leaves, root, l.path)
	}
}
