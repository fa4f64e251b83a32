package smst

import (
	"bytes"
	"crypto/sha256"
	"fmt"
)

// Leaf is a leaf as a proof shows it: its path, its stored value (the value
// itself with the identity value hasher, else its digest) and its weight.
type Leaf struct {
	Path   []byte
	Value  []byte
	Weight uint64
}

// Proof proves that a key has a given leaf (inclusion) or has none
// (exclusion) under a root.
type Proof struct {
	// SideNodes are the digests of the siblings along the key's path, from
	// the deepest level up to the root's children; their number is the
	// depth at which the key's leaf or empty slot sits.
	SideNodes [][]byte
	// Leaf is, for an exclusion proof, the other leaf found where the key
	// would be; nil for inclusion proofs and for an empty slot.
	Leaf *Leaf
}

// ClosestProof proves which leaf a descent along Path reaches when, at every
// level, it takes the branch given by the path's bit unless that branch is
// empty, in which case it takes the other one.
type ClosestProof struct {
	// Path is the path the descent followed (PathSize bytes).
	Path []byte
	// FlippedBits are the depths, ascending, at which the descent took the
	// other branch because the path's was empty.
	FlippedBits []int
	// Depth is the depth of the leaf reached; it equals len(SideNodes).
	Depth int
	// Leaf is the leaf reached.
	Leaf Leaf
	// SideNodes are the sibling digests along Leaf.Path, deepest first.
	SideNodes [][]byte
}

// Prove returns a proof that key has its current leaf, or, if it has none,
// an exclusion proof.
func (t *Trie) Prove(key []byte) (*Proof, error) {
	p := path(sha256.Sum256(key))
	return t.provePath(&p), nil
}

func (t *Trie) provePath(p *path) *Proof {
	var sides []digest // top-down
	proof := &Proof{}
	n, depth := t.root, 0
	for n != nil {
		if leaf, ok := n.(*leafNode); ok {
			if leaf.path != *p {
				proof.Leaf = &Leaf{Path: bytes.Clone(leaf.path[:]), Value: cloneBytes(leaf.value), Weight: leaf.weight}
			}
			break
		}
		in := n.(*innerNode)
		b := int(in.bit)
		if m := commonPrefix(p, &in.rep.path); m < b {
			// The path leaves the chain of single-child levels at m: the key's
			// slot at depth m+1 is empty and its sibling is the rest of the chain.
			for i := depth; i < m; i++ {
				sides = append(sides, digest{})
			}
			sides = append(sides, t.digestAt(in, m+1))
			break
		}
		for i := depth; i < b; i++ {
			sides = append(sides, digest{})
		}
		child := in.child(p)
		sib := in.left
		if child == &in.left {
			sib = in.right
		}
		sides = append(sides, t.digestAt(sib, b+1))
		n, depth = *child, b+1
	}
	proof.SideNodes = bottomUp(sides)
	return proof
}

// ProveClosest descends along path (PathSize bytes), taking at each level
// the branch given by the path's bit unless it is empty, and proves the leaf
// it reaches. It fails with ErrInvalidPath for a path of the wrong length and
// ErrEmptyTrie when there is no leaf.
func (t *Trie) ProveClosest(p []byte) (*ClosestProof, error) {
	if len(p) != PathSize {
		return nil, fmt.Errorf("smst: prove closest: path of %d bytes: %w", len(p), ErrInvalidPath)
	}
	if t.root == nil {
		return nil, fmt.Errorf("smst: prove closest: %w", ErrEmptyTrie)
	}
	var w path
	copy(w[:], p)
	proof := &ClosestProof{Path: bytes.Clone(p)}
	var sides []digest
	n, depth := t.root, 0
	for {
		if leaf, ok := n.(*leafNode); ok {
			proof.Leaf = Leaf{Path: bytes.Clone(leaf.path[:]), Value: cloneBytes(leaf.value), Weight: leaf.weight}
			break
		}
		in := n.(*innerNode)
		b := int(in.bit)
		for i := depth; i < b; i++ {
			if bit(&w, i) != bit(&in.rep.path, i) {
				flipBit(w[:], i)
				proof.FlippedBits = append(proof.FlippedBits, i)
			}
			sides = append(sides, digest{})
		}
		child := in.child(&w)
		sib := in.left
		if child == &in.left {
			sib = in.right
		}
		sides = append(sides, t.digestAt(sib, b+1))
		n, depth = *child, b+1
	}
	proof.Depth = len(sides)
	proof.SideNodes = bottomUp(sides)
	return proof, nil
}

// cloneBytes copies b, giving nil for an empty b so that proofs compare
// equal to their decoded form.
func cloneBytes(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return bytes.Clone(b)
}

func bottomUp(sides []digest) [][]byte {
	if len(sides) == 0 {
		return nil
	}
	out := make([][]byte, len(sides))
	for i := range sides {
		out[len(sides)-1-i] = bytes.Clone(sides[i][:])
	}
	return out
}

// checkSideNodes validates the side nodes' number and sizes.
func checkSideNodes(sides [][]byte) error {
	if len(sides) > MaxDepth {
		return fmt.Errorf("%d side nodes, at most %d: %w", len(sides), MaxDepth, ErrInvalidProof)
	}
	for i, s := range sides {
		if len(s) != DigestSize {
			return fmt.Errorf("side node %d is %d bytes, want %d: %w", i, len(s), DigestSize, ErrInvalidProof)
		}
	}
	return nil
}

// checkLeaf validates a leaf's path length.
func checkLeaf(l *Leaf) error {
	if len(l.Path) != PathSize {
		return fmt.Errorf("leaf path is %d bytes, want %d: %w", len(l.Path), PathSize, ErrInvalidProof)
	}
	return nil
}

// climbProof hashes d, the digest at depth len(sides) on p, up to the root.
func climbProof(h *hasher, d digest, p *path, sides [][]byte) digest {
	n := len(sides)
	for i, s := range sides {
		var sd digest
		copy(sd[:], s)
		if bit(p, n-1-i) == 0 {
			d = h.node(&d, &sd)
		} else {
			d = h.node(&sd, &d)
		}
	}
	return d
}

func checkRoot(root []byte) error {
	if len(root) != RootSize {
		return fmt.Errorf("smst: verify: root of %d bytes: %w", len(root), ErrInvalidRoot)
	}
	return nil
}

// Verify reports whether proof shows that key holds value with weight under
// root. Pass the same WithValueHasher option as the trie that made the proof.
// An exclusion proof yields false. Malformed proofs yield an error wrapping
// ErrInvalidProof.
func Verify(proof *Proof, root, key, value []byte, weight uint64, opts ...Option) (bool, error) {
	if err := checkRoot(root); err != nil {
		return false, err
	}
	if err := proof.check(); err != nil {
		return false, fmt.Errorf("smst: verify: %w", err)
	}
	if proof.Leaf != nil {
		return false, nil
	}
	cfg := newConfig(opts)
	p := path(sha256.Sum256(key))
	return verifyInclusion(proof, root, &p, cfg.storedValue(value), weight), nil
}

// verifyInclusion checks a well-formed inclusion proof for the leaf at p.
func verifyInclusion(proof *Proof, root []byte, p *path, stored []byte, weight uint64) bool {
	h := newHasher()
	d := climbProof(h, h.leaf(p, stored, weight), p, proof.SideNodes)
	return bytes.Equal(d[:], root)
}

// VerifyExclusion reports whether proof shows that key has no leaf under
// root. Malformed proofs yield an error wrapping ErrInvalidProof.
func VerifyExclusion(proof *Proof, root, key []byte) (bool, error) {
	if err := checkRoot(root); err != nil {
		return false, err
	}
	if err := proof.check(); err != nil {
		return false, fmt.Errorf("smst: verify exclusion: %w", err)
	}
	p := path(sha256.Sum256(key))
	ok, err := verifyExclusion(proof, root, &p)
	if err != nil {
		return false, fmt.Errorf("smst: verify exclusion: %w", err)
	}
	return ok, nil
}

// verifyExclusion checks a well-formed exclusion proof for path p.
func verifyExclusion(proof *Proof, root []byte, p *path) (bool, error) {
	h := newHasher()
	var d digest
	if l := proof.Leaf; l != nil {
		lp := path(l.Path)
		if lp == *p {
			return false, nil // the key has this leaf
		}
		if commonPrefix(&lp, p) < len(proof.SideNodes) {
			return false, fmt.Errorf("leaf is not on the key's path: %w", ErrInvalidProof)
		}
		d = h.leaf(&lp, l.Value, l.Weight)
	}
	d = climbProof(h, d, p, proof.SideNodes)
	return bytes.Equal(d[:], root), nil
}

func (proof *Proof) check() error {
	if proof == nil {
		return fmt.Errorf("nil proof: %w", ErrInvalidProof)
	}
	if err := checkSideNodes(proof.SideNodes); err != nil {
		return err
	}
	if proof.Leaf != nil {
		return checkLeaf(proof.Leaf)
	}
	return nil
}

// check validates everything that does not need the root: sizes, that the
// flipped bits are ascending depths above the leaf, that the leaf lies on
// the path once those bits are flipped, and that the side node at every
// flipped depth is empty, which is what made the descent flip it.
func (proof *ClosestProof) check() error {
	if proof == nil {
		return fmt.Errorf("nil proof: %w", ErrInvalidProof)
	}
	if len(proof.Path) != PathSize {
		return fmt.Errorf("path is %d bytes, want %d: %w", len(proof.Path), PathSize, ErrInvalidProof)
	}
	if err := checkSideNodes(proof.SideNodes); err != nil {
		return err
	}
	if err := checkLeaf(&proof.Leaf); err != nil {
		return err
	}
	if proof.Depth != len(proof.SideNodes) {
		return fmt.Errorf("depth %d with %d side nodes: %w", proof.Depth, len(proof.SideNodes), ErrInvalidProof)
	}
	w := path(proof.Path)
	prev := -1
	for _, b := range proof.FlippedBits {
		if b <= prev || b >= proof.Depth {
			return fmt.Errorf("flipped bit %d out of order or below depth %d: %w", b, proof.Depth, ErrInvalidProof)
		}
		if !bytes.Equal(proof.SideNodes[proof.Depth-1-b], make([]byte, DigestSize)) {
			return fmt.Errorf("flipped bit %d where the path's branch is not empty: %w", b, ErrInvalidProof)
		}
		flipBit(w[:], b)
		prev = b
	}
	lp := path(proof.Leaf.Path)
	if commonPrefix(&w, &lp) < proof.Depth {
		return fmt.Errorf("leaf is not on the descent's path: %w", ErrInvalidProof)
	}
	return nil
}

// VerifyClosest reports whether proof holds under root: that its leaf is in
// the trie at the place the descent along proof.Path reaches. It cannot know
// which path the caller asked for: the caller must check that proof.Path is
// its own challenge. Malformed or inconsistent proofs yield an error wrapping
// ErrInvalidProof.
func VerifyClosest(proof *ClosestProof, root []byte) (bool, error) {
	if err := checkRoot(root); err != nil {
		return false, err
	}
	if err := proof.check(); err != nil {
		return false, fmt.Errorf("smst: verify closest: %w", err)
	}
	h := newHasher()
	lp := path(proof.Leaf.Path)
	d := climbProof(h, h.leaf(&lp, proof.Leaf.Value, proof.Leaf.Weight), &lp, proof.SideNodes)
	return bytes.Equal(d[:], root), nil
}
