package smst_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"testing"

	"github.com/relaymeter/relaymeter/ledger/smst"
)

func unhex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func hashConcat(parts [][]byte) string {
	h := sha256.New()
	for _, p := range parts {
		h.Write(p)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// numbered returns a trie with key<i> = value<i>, weight i+1, for i < n.
func numbered(t testing.TB, n int, opts ...smst.Option) *smst.Trie {
	t.Helper()
	tr := smst.New(opts...)
	for i := 0; i < n; i++ {
		if err := tr.Update([]byte(fmt.Sprintf("key%d", i)), []byte(fmt.Sprintf("value%d", i)), uint64(i+1)); err != nil {
			t.Fatal(err)
		}
	}
	return tr
}

func TestArchitectureVectors(t *testing.T) {
	empty := smst.New()
	if got := empty.Root(); !bytes.Equal(got, make([]byte, 48)) {
		t.Fatalf("empty root %x", got)
	}

	one := smst.New()
	if err := one.Update([]byte("key1"), []byte("value1"), 1); err != nil {
		t.Fatal(err)
	}
	want := unhex(t, "be6e7b1fc80d235b06ffd96b6329f19548ae3c9aed3f2f753d5d7b756b331932"+"0000000000000001"+"0000000000000001")
	if got := one.Root(); !bytes.Equal(got, want) {
		t.Fatalf("one-leaf root %x, want %x", got, want)
	}

	three := smst.New(smst.WithValueHasher(smst.SHA256Value))
	for i := 1; i <= 3; i++ {
		if err := three.Update([]byte(fmt.Sprintf("key%d", i)), []byte(fmt.Sprintf("value%d", i)), uint64(i)); err != nil {
			t.Fatal(err)
		}
	}
	want = unhex(t, "97c83352f040df4d0c8c3cf9d30541e2a2f92c9181e97786474aea547f23fd24"+"0000000000000006"+"0000000000000003")
	if got := three.Root(); !bytes.Equal(got, want) {
		t.Fatalf("three-leaf root %x, want %x", got, want)
	}
	if three.Sum() != 6 || three.Count() != 3 {
		t.Fatalf("sum %d count %d", three.Sum(), three.Count())
	}
}

// The expected values below were produced by pokt-network/smt v0.14.1
// (NewSparseMerkleSumTrie with sha256; WithValueHasher(nil) for "identity").
func TestReferenceRoots(t *testing.T) {
	cases := []struct {
		n              int
		identity, sha2 string
	}{
		{1, "a5192773aa79f093a106096705e8aa24fdf8e26d84c81081ba30c18e067dc99f00000000000000010000000000000001", "2a8d256ba79fcc2190ac4eeeb81e5d76c4f0a5d7daad6ec230d9f8f0efd63f3f00000000000000010000000000000001"},
		{2, "fad83a159d4054af2877f5120c2ce7e30a5e96bc2de4c23c0de93bd98cdf8a9f00000000000000030000000000000002", "fce8ea6922a4b63bf16a3f3c9820ef1ce82fc293cc96ffc5150ec1abca66337800000000000000030000000000000002"},
		{3, "7c91c6952de813a1b380070361628d2198c7d9a3647d0db0c49ad44d07fbf2fb00000000000000060000000000000003", "794e5fe3441f2e2e759746b94372d85fdb5581cd4546d62fe05ac83c3a45556600000000000000060000000000000003"},
		{10, "d3eca7aa2735c5f58184c0a544ebf18860a2fc5ed6a7a6c0ed2c6ac4fee984db0000000000000037000000000000000a", "442b5e23b27c818e6df224bff0d8e3db161c6699855badd46952e4289b86e8300000000000000037000000000000000a"},
		{100, "402406a56ed099a381c221e90d179c8b7caed0981cba91516cbea271147c4b1d00000000000013ba0000000000000064", "e920ff22767ba8e9c114aa519d619543771040222f61e4ea56ee43122016aada00000000000013ba0000000000000064"},
		{1000, "bebb19e1345c557d4424a5f423246f7ca6a2225747eb43575f68c05def881c84000000000007a31400000000000003e8", "7039bcf55d77a6bb343e8033f92c4778e7e70dd265756d0980c81569ca63cdcb000000000007a31400000000000003e8"},
	}
	for _, c := range cases {
		if got := numbered(t, c.n).Root(); hex.EncodeToString(got) != c.identity {
			t.Errorf("n=%d identity root %x, want %s", c.n, got, c.identity)
		}
		if got := numbered(t, c.n, smst.WithValueHasher(smst.SHA256Value)).Root(); hex.EncodeToString(got) != c.sha2 {
			t.Errorf("n=%d sha256 root %x, want %s", c.n, got, c.sha2)
		}
		b := smst.NewBuilder(smst.WithoutValues())
		for i := c.n - 1; i >= 0; i-- {
			if err := b.Add([]byte(fmt.Sprintf("key%d", i)), []byte(fmt.Sprintf("value%d", i)), uint64(i+1)); err != nil {
				t.Fatal(err)
			}
		}
		if got, err := b.Root(); err != nil || hex.EncodeToString(got) != c.identity {
			t.Errorf("n=%d builder root %x (%v), want %s", c.n, got, err, c.identity)
		}
	}

	tr := numbered(t, 1000)
	for i := 0; i < 1000; i += 3 {
		if err := tr.Delete([]byte(fmt.Sprintf("key%d", i))); err != nil {
			t.Fatal(err)
		}
	}
	if got, want := hex.EncodeToString(tr.Root()), "584518a11664d063930c6a9096af9fb9f3e76141b17c51dc3dc4e0aec985e2680000000000051615000000000000029a"; got != want {
		t.Errorf("root after deletes %s, want %s", got, want)
	}
}

func TestReferenceProofs(t *testing.T) {
	tr := numbered(t, 1000)
	root := tr.Root()
	proofs := []struct {
		key   string
		sides int
		hash  string
		leaf  string // reference NonMembershipLeafData: 0x00 ‖ path ‖ value ‖ weight ‖ count
	}{
		{"key5", 12, "840af1e889ea7b377e6950b0cc8cff3c4665a75311ed56ff8c1e6567aa9f7403", ""},
		{"key999", 11, "ff7230555ce4137777a2a26cde78d5917db37bad3d56176edd645b317db9eb9d", ""},
		{"absent0", 9, "d48cd794cd7315b4e2e136ba9a0f970b81d1255595bc740d82c8e5a79d494e89", "00580a7865c0b557a35f895c1d166b3a7c8efdd6a441a5a30490ac71a487fd31ae76616c7565333100000000000000200000000000000001"},
		{"absent1", 10, "9b09af45377ccaefcab1b76cab91e5fae1894026437620ec2365161e139e717c", "00592452d71e76f6b65783e7485d2bcc754338bc9dd2baa84a88a0551d5b5d84b876616c7565333832000000000000017f0000000000000001"},
		{"absent2", 10, "64e591810f410b77072c7bd3117150080f5049b8c08e5de44dbd6b78f8308cb8", "00c5ccdfd3c2b511c72a5df94f400dd3c3b130cddcd1a45a6b2d789d7306adbceb76616c756535303100000000000001f60000000000000001"},
		{"absent3", 9, "59bc03941572fd611411b3253bb6efaa300cb284e327bf517728598fad6c3ad9", "001c659475c9e1923e0a63326be4c9695b307f1805f393923bec898871c55a15f076616c7565333530000000000000015f0000000000000001"},
	}
	for _, c := range proofs {
		p, err := tr.Prove([]byte(c.key))
		if err != nil {
			t.Fatal(err)
		}
		if len(p.SideNodes) != c.sides || hashConcat(p.SideNodes) != c.hash {
			t.Errorf("%s: %d side nodes hashing to %s, want %d, %s", c.key, len(p.SideNodes), hashConcat(p.SideNodes), c.sides, c.hash)
		}
		if c.leaf == "" {
			if p.Leaf != nil {
				t.Errorf("%s: inclusion proof has a leaf", c.key)
			}
			continue
		}
		if p.Leaf == nil {
			t.Fatalf("%s: exclusion proof without its leaf", c.key)
		}
		enc := append([]byte{0}, p.Leaf.Path...)
		enc = append(enc, p.Leaf.Value...)
		enc = append(enc, unhex(t, fmt.Sprintf("%016x%016x", p.Leaf.Weight, 1))...)
		if hex.EncodeToString(enc) != c.leaf {
			t.Errorf("%s: leaf %x, want %s", c.key, enc, c.leaf)
		}
		if ok, err := smst.VerifyExclusion(p, root, []byte(c.key)); !ok || err != nil {
			t.Errorf("%s: exclusion proof does not verify: %v", c.key, err)
		}
	}

	closest := []closestCase{
		{sha("closest0"), []int{9}, 12, "f5682ec609f9b224a978f278fb41f0a013c9a42839af1da09daadd19960a6f01", "value425", "d61b0b0000e4f6c07313d1e6b0b954b7a46cc1d970219f2bfb5204010c96b504"},
		{sha("closest1"), nil, 10, "38ee1a620e33f52ac1c0dcceac551eec254812edb1e33737d4ca62092c0f87ca", "value343", "cbd1cce5c93cf9c18dfee4166063a3d6531667607c2364625c2caad4d8581e94"},
		{sha("closest3"), []int{9, 11, 15}, 18, "918201cb7392b459126f9d8467de86687cbb40079c83daf09d35f2abed4efeee", "value794", "12698c352c5b48c5478bbc0ce4b26ff65e4a771d90e22558a87037e4bf07cab6"},
	}
	checkClosest(t, tr, closest)

	// After deleting every third key.
	for i := 0; i < 1000; i += 3 {
		if err := tr.Delete([]byte(fmt.Sprintf("key%d", i))); err != nil {
			t.Fatal(err)
		}
	}
	checkClosest(t, tr, []closestCase{
		{bytes.Repeat([]byte{0}, 32), nil, 10, "001de53590ede2dea8cc0b492a0fbae728e3ead8b6c2cc5d21ea9f6b3ec57b33", "", "9b028d38e803b8e6449f8abdc0ef3af827a072657a5cfa1c9708a6ed66cb4cf0"},
		{bytes.Repeat([]byte{0xff}, 32), []int{8}, 10, "ff432bf1aa2142bba5acdb06482a5ea6ab4cae8d6b4445fddb1a9b83c9dad462", "", "cbe8697b9f181a2a9a3aafaaf776a743ffc7104b052e2f63b0d52fa6deed82de"},
	})
}

type closestCase struct {
	path  []byte
	flips []int
	depth int
	leaf  string
	value string
	hash  string
}

func checkClosest(t *testing.T, tr *smst.Trie, cases []closestCase) {
	t.Helper()
	root := tr.Root()
	for i, c := range cases {
		cp, err := tr.ProveClosest(c.path)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(cp.FlippedBits, c.flips) || cp.Depth != c.depth || hex.EncodeToString(cp.Leaf.Path) != c.leaf || hashConcat(cp.SideNodes) != c.hash {
			t.Errorf("closest %d: flips %v depth %d leaf %x sides %s", i, cp.FlippedBits, cp.Depth, cp.Leaf.Path, hashConcat(cp.SideNodes))
		}
		if c.value != "" && string(cp.Leaf.Value) != c.value {
			t.Errorf("closest %d: value %q, want %q", i, cp.Leaf.Value, c.value)
		}
		if ok, err := smst.VerifyClosest(cp, root); !ok || err != nil {
			t.Errorf("closest %d does not verify: %v", i, err)
		}
	}
}

func sha(s string) []byte {
	d := sha256.Sum256([]byte(s))
	return d[:]
}
