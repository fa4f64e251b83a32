package smst

import (
	"bytes"
	"crypto/sha256"
)

// Option configures a Trie, a Builder or a proof verification.
type Option func(*config)

type config struct {
	valueHasher func([]byte) []byte
	dropValues  bool
}

func newConfig(opts []Option) config {
	var c config
	for _, o := range opts {
		if o != nil {
			o(&c)
		}
	}
	return c
}

// storedValue returns what a leaf keeps for value: a private copy of it with
// the identity hasher, else the value hasher's output.
func (c *config) storedValue(value []byte) []byte {
	if c.valueHasher == nil {
		return bytes.Clone(value)
	}
	return c.valueHasher(value)
}

// WithValueHasher makes leaves store f(value) instead of the value itself.
// The default, as the relay miner configures it, is the identity; SHA256Value
// gives the pokt-network/smt library's default form. A nil f means identity.
// Verify must be given the same option as the trie that produced the proof.
func WithValueHasher(f func([]byte) []byte) Option {
	return func(c *config) { c.valueHasher = f }
}

// SHA256Value is the sha256 value hasher: it returns sha256(value).
func SHA256Value(value []byte) []byte {
	d := sha256.Sum256(value)
	return d[:]
}

// WithoutValues makes a Builder keep only the fixed 84 bytes per leaf needed
// for Root; its Trie method then fails with ErrNoValues. Other users ignore
// it.
func WithoutValues() Option {
	return func(c *config) { c.dropValues = true }
}
