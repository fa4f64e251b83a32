package smst_test

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/relaymeter/relaymeter/ledger/smst"
)

type kv struct {
	key, value []byte
	weight     uint64
}

func randomLeaves(rng *rand.Rand, n int) []kv {
	out := make([]kv, n)
	for i := range out {
		out[i] = kv{
			key:    []byte(fmt.Sprintf("relay-%d-%d", i, rng.Uint64())),
			value:  []byte(fmt.Sprintf("payload-%d", rng.Uint64())),
			weight: rng.Uint64N(100),
		}
	}
	return out
}

func TestOrderIndependence(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	leaves := randomLeaves(rng, 300)
	var first []byte
	for round := 0; round < 5; round++ {
		tr := smst.New()
		for _, i := range rng.Perm(len(leaves)) {
			l := leaves[i]
			if err := tr.Update(l.key, l.value, l.weight); err != nil {
				t.Fatal(err)
			}
		}
		root := tr.Root()
		if first == nil {
			first = root
		} else if !bytes.Equal(root, first) {
			t.Fatalf("round %d: root %x, first order gave %x", round, root, first)
		}
	}
	var sum uint64
	for _, l := range leaves {
		sum += l.weight
	}
	tr := smst.New()
	for _, l := range leaves {
		_ = tr.Update(l.key, l.value, l.weight)
	}
	if tr.Sum() != sum || tr.Count() != 300 {
		t.Fatalf("sum %d count %d, want %d 300", tr.Sum(), tr.Count(), sum)
	}
	r := tr.Root()
	if got := r[32:40]; !bytes.Equal(got, be(sum)) || !bytes.Equal(r[40:], be(300)) {
		t.Fatalf("root sum/count bytes %x %x", r[32:40], r[40:])
	}
}

func be(v uint64) []byte {
	return []byte{byte(v >> 56), byte(v >> 48), byte(v >> 40), byte(v >> 32), byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}
}

func TestReplaceAndDeleteRestoreRoots(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	leaves := randomLeaves(rng, 200)
	tr := smst.New()
	roots := [][]byte{tr.Root()}
	for _, l := range leaves {
		if err := tr.Update(l.key, l.value, l.weight); err != nil {
			t.Fatal(err)
		}
		roots = append(roots, tr.Root())
	}
	full := tr.Root()

	// Replacing a leaf changes the root; restoring it restores the root.
	for _, i := range []int{0, 57, 199} {
		l := leaves[i]
		if err := tr.Update(l.key, []byte("other"), l.weight+1); err != nil {
			t.Fatal(err)
		}
		if bytes.Equal(tr.Root(), full) {
			t.Fatalf("replacing leaf %d left the root unchanged", i)
		}
		v, w, err := tr.Get(l.key)
		if err != nil || string(v) != "other" || w != l.weight+1 {
			t.Fatalf("get after replace: %q %d %v", v, w, err)
		}
		if err := tr.Update(l.key, l.value, l.weight); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(tr.Root(), full) {
			t.Fatalf("restoring leaf %d: root %x, want %x", i, tr.Root(), full)
		}
	}
	if tr.Count() != 200 {
		t.Fatalf("count after replacements %d", tr.Count())
	}

	// Deleting in reverse order walks back through every earlier root.
	for i := len(leaves) - 1; i >= 0; i-- {
		if err := tr.Delete(leaves[i].key); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(tr.Root(), roots[i]) {
			t.Fatalf("after deleting leaf %d: root %x, want %x", i, tr.Root(), roots[i])
		}
	}
	if tr.Sum() != 0 || tr.Count() != 0 || !bytes.Equal(tr.Root(), make([]byte, 48)) {
		t.Fatalf("emptied trie: sum %d count %d root %x", tr.Sum(), tr.Count(), tr.Root())
	}
}

func TestGetDeleteErrors(t *testing.T) {
	tr := smst.New()
	if _, _, err := tr.Get([]byte("nope")); !errors.Is(err, smst.ErrKeyNotFound) {
		t.Fatalf("get on empty: %v", err)
	}
	if err := tr.Delete([]byte("nope")); !errors.Is(err, smst.ErrKeyNotFound) {
		t.Fatalf("delete on empty: %v", err)
	}
	_ = tr.Update([]byte("a"), []byte("1"), 1)
	_ = tr.Update([]byte("b"), []byte("2"), 2)
	root := tr.Root()
	if _, _, err := tr.Get([]byte("c")); !errors.Is(err, smst.ErrKeyNotFound) {
		t.Fatalf("get missing: %v", err)
	}
	if err := tr.Delete([]byte("c")); !errors.Is(err, smst.ErrKeyNotFound) {
		t.Fatalf("delete missing: %v", err)
	}
	if !bytes.Equal(tr.Root(), root) || tr.Count() != 2 {
		t.Fatal("a failed delete changed the trie")
	}
	v, w, err := tr.Get([]byte("b"))
	if err != nil || string(v) != "2" || w != 2 {
		t.Fatalf("get b: %q %d %v", v, w, err)
	}
	v[0] = 'x' // the caller's copy only
	if v2, _, _ := tr.Get([]byte("b")); string(v2) != "2" {
		t.Fatalf("Get exposed the stored value: %q", v2)
	}
	if _, err := tr.ProveClosest([]byte("short")); !errors.Is(err, smst.ErrInvalidPath) {
		t.Fatalf("short closest path: %v", err)
	}
	if _, err := smst.New().ProveClosest(make([]byte, 32)); !errors.Is(err, smst.ErrEmptyTrie) {
		t.Fatalf("closest on empty trie: %v", err)
	}
}

func TestValueHasherStoresDigest(t *testing.T) {
	tr := smst.New(smst.WithValueHasher(smst.SHA256Value))
	_ = tr.Update([]byte("k"), []byte("v"), 5)
	v, w, err := tr.Get([]byte("k"))
	if err != nil || !bytes.Equal(v, sha("v")) || w != 5 {
		t.Fatalf("get: %x %d %v", v, w, err)
	}
}

func TestSumOverflow(t *testing.T) {
	tr := smst.New()
	if err := tr.Update([]byte("a"), nil, math.MaxUint64-1); err != nil {
		t.Fatal(err)
	}
	root := tr.Root()
	if err := tr.Update([]byte("b"), nil, 2); !errors.Is(err, smst.ErrSumOverflow) {
		t.Fatalf("overflowing insert: %v", err)
	}
	if !bytes.Equal(tr.Root(), root) || tr.Count() != 1 {
		t.Fatal("a refused update changed the trie")
	}
	// Replacing the big leaf is fine: its old weight leaves the sum.
	if err := tr.Update([]byte("a"), nil, math.MaxUint64); err != nil {
		t.Fatalf("replace: %v", err)
	}
	if err := tr.Update([]byte("b"), nil, 1); !errors.Is(err, smst.ErrSumOverflow) {
		t.Fatalf("overflowing insert after replace: %v", err)
	}

	b := smst.NewBuilder()
	_ = b.Add([]byte("a"), nil, math.MaxUint64)
	_ = b.Add([]byte("b"), nil, 1)
	if _, err := b.Root(); !errors.Is(err, smst.ErrSumOverflow) {
		t.Fatalf("builder root: %v", err)
	}
	if _, err := b.Trie(); !errors.Is(err, smst.ErrSumOverflow) {
		t.Fatalf("builder trie: %v", err)
	}
}

func TestBuilder(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	leaves := randomLeaves(rng, 500)
	tr := smst.New()
	b := smst.NewBuilder()
	lean := smst.NewBuilder(smst.WithoutValues())
	b.Grow(len(leaves) + 50)
	for _, i := range rng.Perm(len(leaves)) {
		l := leaves[i]
		_ = tr.Update(l.key, l.value, l.weight)
		// A stale version first: the last addition of a key wins.
		if i%10 == 0 {
			_ = b.Add(l.key, []byte("stale"), 999)
			_ = lean.Add(l.key, []byte("stale"), 999)
		}
		buf := bytes.Clone(l.value)
		_ = b.Add(l.key, buf, l.weight)
		buf[0] ^= 0xff // the builder must have copied it
		_ = lean.Add(l.key, l.value, l.weight)
	}
	want := tr.Root()
	if b.Len() != len(leaves) {
		t.Fatalf("builder len %d, want %d", b.Len(), len(leaves))
	}
	for name, bb := range map[string]*smst.Builder{"values": b, "lean": lean} {
		got, err := bb.Root()
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("%s builder root %x (%v), want %x", name, got, err, want)
		}
	}
	if _, err := lean.Trie(); !errors.Is(err, smst.ErrNoValues) {
		t.Fatalf("lean builder trie: %v", err)
	}
	built, err := b.Trie()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(built.Root(), want) || built.Sum() != tr.Sum() || built.Count() != tr.Count() {
		t.Fatalf("built trie root %x sum %d count %d", built.Root(), built.Sum(), built.Count())
	}
	for _, l := range leaves[:50] {
		v, w, err := built.Get(l.key)
		if err != nil || !bytes.Equal(v, l.value) || w != l.weight {
			t.Fatalf("built get %q: %q %d %v", l.key, v, w, err)
		}
	}
	// The built trie keeps working incrementally, and the builder too.
	extra := kv{[]byte("extra"), []byte("x"), 7}
	_ = built.Update(extra.key, extra.value, extra.weight)
	_ = tr.Update(extra.key, extra.value, extra.weight)
	_ = b.Add(extra.key, extra.value, extra.weight)
	if err := built.Delete(leaves[3].key); err != nil {
		t.Fatal(err)
	}
	_ = tr.Delete(leaves[3].key)
	if !bytes.Equal(built.Root(), tr.Root()) {
		t.Fatal("built trie diverged after updates")
	}
	withExtra, _ := b.Root()
	_ = tr.Update(leaves[3].key, leaves[3].value, leaves[3].weight)
	if !bytes.Equal(withExtra, tr.Root()) {
		t.Fatal("builder root after a late Add is wrong")
	}

	// An empty builder gives the empty root and an empty trie.
	empty := smst.NewBuilder()
	if r, err := empty.Root(); err != nil || !bytes.Equal(r, make([]byte, 48)) {
		t.Fatalf("empty builder root %x %v", r, err)
	}
	if et, err := empty.Trie(); err != nil || et.Count() != 0 {
		t.Fatalf("empty builder trie: %v", err)
	}
}

func TestBuilderDuplicateInOrder(t *testing.T) {
	b := smst.NewBuilder()
	_ = b.Add([]byte("k"), []byte("old"), 1)
	_ = b.Add([]byte("k"), []byte("new"), 2)
	tr := smst.New()
	_ = tr.Update([]byte("k"), []byte("new"), 2)
	got, _ := b.Root()
	if !bytes.Equal(got, tr.Root()) || b.Len() != 1 {
		t.Fatalf("duplicate key: root %x len %d, want %x 1", got, b.Len(), tr.Root())
	}
}
