package smst

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"math"
	"slices"
)

// MaxBuilderLeaves is the most leaves one Builder accepts.
const MaxBuilderLeaves = math.MaxUint32

// record is one added leaf: its path and leaf digest (80 bytes) and the
// order it was added in, 84 bytes in all.
type record struct {
	path   path
	digest digest
	seq    uint32
}

// Builder computes the root of a set of leaves added in any order, and can
// turn them into a Trie, without the intermediate nodes of inserting them
// one by one. It sorts once and hashes in a single bottom-up pass: O(n log n)
// time for n leaves.
//
// Memory: each Add keeps a fixed 84-byte record (path, leaf digest, order),
// plus, unless the Builder was made WithoutValues, 8 bytes and the stored
// value (the value itself, or its 32-byte digest with the sha256 value
// hasher). Root needs nothing more; Trie adds about 210 bytes per distinct
// leaf and shares the stored values with the Builder. Grow avoids the
// transient copies of growing the record slice.
//
// When a key is added more than once, the last addition wins, as with
// Trie.Update. A Builder must be used by one goroutine at a time.
type Builder struct {
	cfg    config
	h      *hasher
	recs   []record
	vals   []byte   // stored values, back to back
	ends   []uint64 // ends[seq] is where value seq ends in vals
	added  uint64
	sorted bool
}

// NewBuilder returns an empty Builder. It accepts WithValueHasher, with the
// same meaning as for New, and WithoutValues.
func NewBuilder(opts ...Option) *Builder {
	return &Builder{cfg: newConfig(opts), h: newHasher(), sorted: true}
}

// Grow makes room for n more leaves.
func (b *Builder) Grow(n int) {
	if n <= 0 {
		return
	}
	b.recs = slices.Grow(b.recs, n)
	if !b.cfg.dropValues {
		b.ends = slices.Grow(b.ends, n)
	}
}

// Add adds key's leaf with value and weight. The value is hashed or copied;
// the caller may reuse it. It fails with ErrTooManyLeaves after
// MaxBuilderLeaves additions.
func (b *Builder) Add(key, value []byte, weight uint64) error {
	if b.added >= MaxBuilderLeaves {
		return fmt.Errorf("smst: builder add: %w", ErrTooManyLeaves)
	}
	stored := value
	if b.cfg.valueHasher != nil {
		stored = b.cfg.valueHasher(value)
	}
	p := path(sha256.Sum256(key))
	b.addPath(&p, stored, weight)
	return nil
}

// addPath adds the leaf at p; stored is copied if values are kept.
func (b *Builder) addPath(p *path, stored []byte, weight uint64) {
	r := record{path: *p, seq: uint32(b.added)}
	r.digest = b.h.leaf(p, stored, weight)
	// sorted stays true while paths arrive strictly ascending: no sort and
	// no duplicate to drop.
	if b.sorted && len(b.recs) > 0 && bytes.Compare(b.recs[len(b.recs)-1].path[:], p[:]) >= 0 {
		b.sorted = false
	}
	b.recs = append(b.recs, r)
	if !b.cfg.dropValues {
		b.vals = append(b.vals, stored...)
		b.ends = append(b.ends, uint64(len(b.vals)))
	}
	b.added++
}

// Len returns the number of distinct keys added so far.
func (b *Builder) Len() int {
	b.finish()
	return len(b.recs)
}

// finish sorts the records by path and keeps the last of each key's.
func (b *Builder) finish() {
	if b.sorted {
		return
	}
	slices.SortFunc(b.recs, func(x, y record) int {
		if c := bytes.Compare(x.path[:], y.path[:]); c != 0 {
			return c
		}
		if x.seq < y.seq {
			return -1
		}
		if x.seq > y.seq {
			return 1
		}
		return 0
	})
	out := b.recs[:0]
	for i := range b.recs {
		if i+1 < len(b.recs) && b.recs[i+1].path == b.recs[i].path {
			continue
		}
		out = append(out, b.recs[i])
	}
	b.recs = out
	b.sorted = true
}

// totals returns the sum and count of the distinct leaves.
func (b *Builder) totals() (sum, count uint64, err error) {
	for i := range b.recs {
		w := b.recs[i].digest.sum()
		if w > math.MaxUint64-sum {
			return 0, 0, ErrSumOverflow
		}
		sum += w
	}
	return sum, uint64(len(b.recs)), nil
}

// Root returns the 48-byte root of the leaves added so far. It fails with
// ErrSumOverflow if their weights overflow a uint64.
func (b *Builder) Root() ([]byte, error) {
	b.finish()
	if _, _, err := b.totals(); err != nil {
		return nil, fmt.Errorf("smst: builder root: %w", err)
	}
	if len(b.recs) == 0 {
		return make([]byte, RootSize), nil
	}
	d, _ := b.build(b.recs, 0, false)
	return d[:], nil
}

// Trie returns a new Trie holding the leaves added so far, configured like
// the Builder. It fails with ErrNoValues for a Builder made WithoutValues
// and with ErrSumOverflow if the weights overflow a uint64.
func (b *Builder) Trie() (*Trie, error) {
	if b.cfg.dropValues {
		return nil, fmt.Errorf("smst: builder trie: %w", ErrNoValues)
	}
	b.finish()
	sum, count, err := b.totals()
	if err != nil {
		return nil, fmt.Errorf("smst: builder trie: %w", err)
	}
	t := &Trie{cfg: b.cfg, h: newHasher(), sum: sum, count: count}
	if len(b.recs) > 0 {
		_, t.root = b.build(b.recs, 0, true)
	}
	return t, nil
}

func (b *Builder) value(seq uint32) []byte {
	var start uint64
	if seq > 0 {
		start = b.ends[seq-1]
	}
	end := b.ends[seq]
	return b.vals[start:end:end]
}

// build returns the digest, seen from depth, of the sorted, distinct,
// non-empty recs, which share their first depth bits, and, if mk, the
// subtree's nodes.
func (b *Builder) build(recs []record, depth int, mk bool) (digest, node) {
	if len(recs) == 1 {
		r := &recs[0]
		if !mk {
			return r.digest, nil
		}
		return r.digest, &leafNode{path: r.path, digest: r.digest, value: b.value(r.seq), weight: r.digest.sum()}
	}
	first := &recs[0].path
	crit := commonPrefix(first, &recs[len(recs)-1].path)
	// The first record with a 1 at crit starts the right subtree.
	lo, hi := 1, len(recs)-1
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		if bit(&recs[mid].path, crit) == 1 {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	ld, ln := b.build(recs[:lo], crit+1, mk)
	rd, rn := b.build(recs[lo:], crit+1, mk)
	d := b.h.node(&ld, &rd)
	var n node
	if mk {
		n = &innerNode{left: ln, right: rn, rep: repOf(ln), digest: d, bit: uint8(crit)}
	}
	return b.h.climb(d, first, depth, crit), n
}
