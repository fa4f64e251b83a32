// Package smst implements a sparse merkle sum trie whose roots are byte for
// byte those of the Pocket Network relay miner's claims (the SMST of
// github.com/pokt-network/smt configured with SHA-256 and, by default, the
// identity value hasher).
//
// # Layout
//
// Every key is placed at path = sha256(key), read most significant bit
// first, 0 meaning left. Integers are big-endian uint64. A leaf stores the
// value as given (or, with WithValueHasher, its digest) together with its
// weight, and its 48-byte digest is
//
//	sha256(0x00 ‖ path ‖ value ‖ weight ‖ 1) ‖ weight ‖ 1
//
// An inner node with children l and r (48 bytes each) has the digest
//
//	sha256(0x01 ‖ l ‖ r ‖ sum ‖ count) ‖ sum ‖ count
//
// where sum and count are the totals of both children. An empty subtree is
// 48 zero bytes, and a subtree that holds a single leaf is that leaf's digest
// at whatever height it sits. Every other level of the 256-level tree is an
// inner node, so a chain of levels with one empty side is hashed level by
// level. The root is therefore digest ‖ sum ‖ count, 48 bytes.
//
// # Use
//
// A Trie is an in-memory, path-compressed trie for incremental use: Update,
// Get, Delete, Root, Prove and ProveClosest. A Builder builds the same root
// (and, if asked, the same Trie) from leaves added in any order, for example
// streamed back from a database, keeping a fixed 84 bytes per leaf plus the
// values it is asked to keep, then sorting once and hashing in one bottom-up
// pass.
//
// Proof and ClosestProof have a compact binary encoding (MarshalBinary and
// UnmarshalBinary) and are checked with Verify, VerifyExclusion and
// VerifyClosest, which need nothing but the proof and the root.
//
// A Trie or a Builder must be used by one goroutine at a time; even Root
// updates cached digests. The Verify functions may be called concurrently.
package smst
