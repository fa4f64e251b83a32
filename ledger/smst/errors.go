package smst

import "errors"

var (
	// ErrKeyNotFound is returned by Get and Delete when the key holds no leaf.
	ErrKeyNotFound = errors.New("smst: key not found")
	// ErrEmptyTrie is returned by ProveClosest when the trie has no leaves.
	ErrEmptyTrie = errors.New("smst: trie is empty")
	// ErrInvalidPath is returned by ProveClosest when the path is not
	// PathSize bytes long.
	ErrInvalidPath = errors.New("smst: invalid path length")
	// ErrInvalidRoot is returned by the Verify functions when the root is
	// not RootSize bytes long.
	ErrInvalidRoot = errors.New("smst: invalid root length")
	// ErrInvalidProof is returned when a proof is malformed: it cannot be
	// decoded, or its parts are inconsistent before any hashing against a
	// root. A well-formed proof that does not match the root is reported as
	// false without an error.
	ErrInvalidProof = errors.New("smst: invalid proof")
	// ErrSumOverflow is returned when the weights of the trie would no longer
	// fit in a uint64.
	ErrSumOverflow = errors.New("smst: sum of weights overflows uint64")
	// ErrTooManyLeaves is returned by Builder.Add past MaxBuilderLeaves.
	ErrTooManyLeaves = errors.New("smst: too many leaves for a builder")
	// ErrNoValues is returned by Builder.Trie when the builder was created
	// with WithoutValues.
	ErrNoValues = errors.New("smst: builder keeps no values")
)
