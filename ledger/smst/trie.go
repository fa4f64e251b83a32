package smst

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"math"
)

// node is a *leafNode or an *innerNode; a nil node is an empty subtree.
type node interface{ isNode() }

// leafNode is one key's leaf.
type leafNode struct {
	path   path
	digest digest
	value  []byte // stored value: the value itself or its digest
	weight uint64
}

// innerNode branches at bit: its subtrees differ at that bit and share
// every bit before it with rep.path. The levels between its parent's bit
// and its own have one empty side and are hashed on demand.
type innerNode struct {
	left, right node
	rep         *leafNode // some leaf below, for the shared prefix
	digest      digest    // digest at depth bit, valid unless dirty
	bit         uint8
	dirty       bool
}

func (*leafNode) isNode()  {}
func (*innerNode) isNode() {}

func (n *innerNode) child(p *path) *node {
	if bit(p, int(n.bit)) == 0 {
		return &n.left
	}
	return &n.right
}

func repOf(n node) *leafNode {
	switch x := n.(type) {
	case *leafNode:
		return x
	case *innerNode:
		return x.rep
	}
	return nil
}

// Trie is an in-memory sparse merkle sum trie. Its zero value is not usable;
// create one with New. A Trie must not be used by more than one goroutine at
// a time: even Root and the Prove methods update cached digests.
//
// It costs about 210 bytes per leaf (one leaf and one inner node) plus the
// stored values, and each Update, Get or Delete walks one path.
type Trie struct {
	cfg   config
	h     *hasher
	root  node
	sum   uint64
	count uint64
}

// New returns an empty Trie. By default leaves store their values as given
// (the identity value hasher, as the relay miner configures it); see
// WithValueHasher.
func New(opts ...Option) *Trie {
	return &Trie{cfg: newConfig(opts), h: newHasher()}
}

// Update sets key's leaf to value with weight, replacing any leaf the key
// had. It fails with ErrSumOverflow if the total weight would overflow.
func (t *Trie) Update(key, value []byte, weight uint64) error {
	p := path(sha256.Sum256(key))
	if err := t.updatePath(&p, t.cfg.storedValue(value), weight); err != nil {
		return fmt.Errorf("smst: update: %w", err)
	}
	return nil
}

// updatePath inserts or replaces the leaf at p; stored is kept, not copied.
func (t *Trie) updatePath(p *path, stored []byte, weight uint64) error {
	if t.root == nil {
		t.root = &leafNode{path: *p, digest: t.h.leaf(p, stored, weight), value: stored, weight: weight}
		t.sum, t.count = weight, 1
		return nil
	}
	// Find the leaf that best matches p, then the first bit they differ at.
	n := t.root
	for {
		in, ok := n.(*innerNode)
		if !ok {
			break
		}
		n = *in.child(p)
	}
	best := n.(*leafNode)
	crit := commonPrefix(p, &best.path)

	if crit == MaxDepth { // replace the key's leaf in place
		rest := t.sum - best.weight
		if weight > math.MaxUint64-rest {
			return ErrSumOverflow
		}
		t.markDirty(p, MaxDepth)
		best.value, best.weight = stored, weight
		best.digest = t.h.leaf(p, stored, weight)
		t.sum = rest + weight
		return nil
	}
	if weight > math.MaxUint64-t.sum {
		return ErrSumOverflow
	}
	leaf := &leafNode{path: *p, digest: t.h.leaf(p, stored, weight), value: stored, weight: weight}
	slot := &t.root
	for {
		in, ok := (*slot).(*innerNode)
		if !ok || int(in.bit) > crit {
			break
		}
		in.dirty = true
		slot = in.child(p)
	}
	branch := &innerNode{rep: leaf, bit: uint8(crit), dirty: true}
	if bit(p, crit) == 0 {
		branch.left, branch.right = leaf, *slot
	} else {
		branch.left, branch.right = *slot, leaf
	}
	*slot = branch
	t.sum += weight
	t.count++
	return nil
}

// markDirty marks the inner nodes on p that branch before bit below as
// needing a new digest.
func (t *Trie) markDirty(p *path, below int) {
	n := t.root
	for {
		in, ok := n.(*innerNode)
		if !ok || int(in.bit) >= below {
			return
		}
		in.dirty = true
		n = *in.child(p)
	}
}

// find returns the leaf at p, or nil.
func (t *Trie) find(p *path) *leafNode {
	n := t.root
	for {
		switch x := n.(type) {
		case *innerNode:
			n = *x.child(p)
		case *leafNode:
			if x.path == *p {
				return x
			}
			return nil
		default:
			return nil
		}
	}
}

// Get returns the value and weight stored for key: the value itself with the
// identity value hasher, else its digest. It fails with ErrKeyNotFound if
// the key has no leaf.
func (t *Trie) Get(key []byte) (value []byte, weight uint64, err error) {
	p := path(sha256.Sum256(key))
	leaf := t.find(&p)
	if leaf == nil {
		return nil, 0, fmt.Errorf("smst: get: %w", ErrKeyNotFound)
	}
	return bytes.Clone(leaf.value), leaf.weight, nil
}

// Delete removes key's leaf. It fails with ErrKeyNotFound if the key has no
// leaf.
func (t *Trie) Delete(key []byte) error {
	p := path(sha256.Sum256(key))
	if err := t.deletePath(&p); err != nil {
		return fmt.Errorf("smst: delete: %w", err)
	}
	return nil
}

func (t *Trie) deletePath(p *path) error {
	var parentSlot *node
	slot := &t.root
	for {
		in, ok := (*slot).(*innerNode)
		if !ok {
			break
		}
		parentSlot, slot = slot, in.child(p)
	}
	leaf, ok := (*slot).(*leafNode)
	if !ok || leaf.path != *p {
		return ErrKeyNotFound
	}
	t.sum -= leaf.weight
	t.count--
	if parentSlot == nil {
		t.root = nil
		return nil
	}
	parent := (*parentSlot).(*innerNode)
	sibling := parent.left
	if sibling == node(leaf) {
		sibling = parent.right
	}
	*parentSlot = sibling
	// Ancestors above the removed branch get new digests, and any that
	// named the removed leaf as their representative name another.
	rep := repOf(sibling)
	n := t.root
	for {
		in, ok := n.(*innerNode)
		if !ok || in.bit >= parent.bit {
			return nil
		}
		in.dirty = true
		if in.rep == leaf {
			in.rep = rep
		}
		n = *in.child(p)
	}
}

// digestAt returns the digest of subtree n as seen from depth, that is
// including the levels between depth and n's branching bit.
func (t *Trie) digestAt(n node, depth int) digest {
	switch x := n.(type) {
	case *leafNode:
		return x.digest
	case *innerNode:
		t.rehash(x)
		return t.h.climb(x.digest, &x.rep.path, depth, int(x.bit))
	}
	return digest{}
}

// rehash recomputes the digests of dirty nodes in n's subtree.
func (t *Trie) rehash(n *innerNode) {
	if !n.dirty {
		return
	}
	l := t.digestAt(n.left, int(n.bit)+1)
	r := t.digestAt(n.right, int(n.bit)+1)
	n.digest = t.h.node(&l, &r)
	n.dirty = false
}

// Root returns the 48-byte root: digest ‖ sum ‖ count, all zero when empty.
func (t *Trie) Root() []byte {
	d := t.digestAt(t.root, 0)
	return d[:]
}

// Sum returns the total weight of the leaves.
func (t *Trie) Sum() uint64 { return t.sum }

// Count returns the number of leaves.
func (t *Trie) Count() uint64 { return t.count }
