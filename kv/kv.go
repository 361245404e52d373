// Package kv is FlowStone's metadata store: a small key/value interface with
// compare-and-set semantics, implemented in memory (embedded engine) and on
// JetStream KV (the fleet). Every implementation must pass the conformance
// suite in kv/kvtest.
//
// Keys are dot-separated tokens of the characters [A-Za-z0-9_=-]: the same
// alphabet JetStream KV accepts, so a key that works on one backend works on
// every backend. Callers encode user text (partitions) before building keys;
// see ValidKey.
package kv

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

// Sentinel errors every backend returns (wrapped) so callers can branch with
// errors.Is.
var (
	// ErrNotFound means the key has no value (never written, deleted or purged).
	ErrNotFound = errors.New("kv: key not found")
	// ErrConflict means a compare-and-set failed: Create found the key
	// present, or Update/Delete saw a revision other than the expected one.
	ErrConflict = errors.New("kv: revision conflict")
	// ErrInvalidKey means the key is empty or has characters outside the
	// portable alphabet.
	ErrInvalidKey = errors.New("kv: invalid key")
)

// Entry is one stored value with the revision that wrote it.
type Entry struct {
	Key      string
	Value    []byte
	Revision uint64
}

// Store is a key/value store with per-key revisions.
//
// All methods are safe for concurrent use. Revisions are positive and grow
// with every write to the store; a write returns the revision it created.
// Values returned are owned by the caller (a backend never hands out memory
// it will change later).
type Store interface {
	// Get returns the current value of key, or ErrNotFound.
	Get(ctx context.Context, key string) (Entry, error)
	// Put writes value unconditionally and returns the new revision.
	Put(ctx context.Context, key string, value []byte) (uint64, error)
	// Create writes value only if key has no value; otherwise ErrConflict.
	Create(ctx context.Context, key string, value []byte) (uint64, error)
	// Update writes value only if the key's current revision is rev;
	// otherwise ErrConflict (ErrNotFound is not returned: a missing key is a
	// conflict too).
	Update(ctx context.Context, key string, value []byte, rev uint64) (uint64, error)
	// Delete removes key. With rev > 0 it deletes only if the current
	// revision is rev (else ErrConflict). Deleting a missing key is not an
	// error when rev is 0.
	Delete(ctx context.Context, key string, rev uint64) error
	// Keys lists the keys that start with prefix, in lexical order.
	// The prefix "" lists every key.
	Keys(ctx context.Context, prefix string) ([]string, error)
	// Watch streams changes to keys that start with prefix, beginning with the
	// current values. After the current values it sends one zero Entry (Key
	// == "") as a marker that the initial values are done. A deletion arrives
	// as an Entry with a nil Value. The channel is closed when ctx is done or
	// the store is closed; the caller must keep receiving until then.
	Watch(ctx context.Context, prefix string) (<-chan Entry, error)
}

// ValidKey reports whether key is portable across every backend: non-empty,
// tokens separated by single dots, each token of [A-Za-z0-9_=-].
func ValidKey(key string) error {
	if key == "" || strings.HasPrefix(key, ".") || strings.HasSuffix(key, ".") || strings.Contains(key, "..") {
		return fmt.Errorf("%w: %q", ErrInvalidKey, key)
	}
	for _, r := range key {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '_', r == '=', r == '-', r == '.':
		default:
			return fmt.Errorf("%w: %q has %q", ErrInvalidKey, key, r)
		}
	}
	return nil
}
