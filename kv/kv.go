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
	// ErrInvalidKey means the key (or a Keys/Watch prefix) is empty or has
	// characters outside the portable alphabet.
	ErrInvalidKey = errors.New("kv: invalid key")
	// ErrClosed means the store was closed; open a new one.
	ErrClosed = errors.New("kv: store closed")
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
// A deletion is a write too: it takes a revision (visible to watchers), and
// Update with that revision brings the key back. Values returned are owned
// by the caller (a backend never hands out memory it will change later), and
// a stored value is never nil: Put of a nil value reads back as an empty,
// non-nil slice, so a nil Value always means "deleted".
//
// Every method validates keys with ValidKey (prefixes with ValidPrefix)
// before touching the backend: an invalid key yields ErrInvalidKey and
// changes nothing.
type Store interface {
	// Get returns the current value of key, or ErrNotFound.
	Get(ctx context.Context, key string) (Entry, error)
	// Put writes value unconditionally and returns the new revision.
	Put(ctx context.Context, key string, value []byte) (uint64, error)
	// Create writes value only if key has no value (never written or
	// deleted); otherwise ErrConflict.
	Create(ctx context.Context, key string, value []byte) (uint64, error)
	// Update writes value only if the key's current revision is rev;
	// otherwise ErrConflict (ErrNotFound is not returned: a missing key is a
	// conflict too, and so is rev 0 — use Create for that).
	Update(ctx context.Context, key string, value []byte, rev uint64) (uint64, error)
	// Delete removes key. With rev > 0 it deletes only if the current
	// revision is rev (else ErrConflict). Deleting a missing key is not an
	// error when rev is 0.
	Delete(ctx context.Context, key string, rev uint64) error
	// Keys lists the keys that start with prefix, in lexical order, without
	// duplicates and without deleted keys; no match is an empty (possibly
	// nil) slice, not an error. The prefix "" lists every key. A prefix
	// ending in "." is cheapest on JetStream (it maps to a subject filter).
	Keys(ctx context.Context, prefix string) ([]string, error)
	// Watch streams changes to keys that start with prefix, beginning with the
	// current values (deleted keys are left out). After the current values
	// it sends one zero Entry (Key == "") as a marker that the initial
	// values are done. A deletion arrives as an Entry with a nil Value (a
	// backend may report one for a key that had no value). The channel is
	// closed when ctx is done or the store is closed; the caller must keep
	// receiving until then.
	//
	// Changes arrive in revision order, and the last change of every key
	// always arrives. A receiver that falls behind may miss intermediate
	// changes of a key that was written again before they were delivered
	// (JetStream keeps only a key's latest revision), so treat an Entry as
	// "the key's state as of Revision", not as a log. How a backend buffers
	// for a slow receiver is documented on the backend.
	Watch(ctx context.Context, prefix string) (<-chan Entry, error)
}

// PresenceChecker is implemented by a Store that can tell which of many
// keys have a value in one pass: cheaper than a Get per key, and than a
// Keys listing of their prefix when the prefix holds many more keys than
// asked about. The engine plans large backfills with it.
type PresenceChecker interface {
	// Present returns the keys among keys that have a value (not deleted,
	// not expired), each mapped to true. Every key is validated with
	// ValidKey first: an invalid one yields ErrInvalidKey and nothing is
	// read.
	Present(ctx context.Context, keys []string) (map[string]bool, error)
}

// MaxKeyLen is the longest key, in bytes, that ValidKey accepts. A key
// travels inside NATS subjects (twice with the bucket name on a direct get),
// and a protocol line over the server's limit (4 KiB by default) makes the
// server close the whole connection; 1 KiB leaves room for any bucket name.
const MaxKeyLen = 1024

// ValidKey reports whether key is portable across every backend: non-empty,
// at most MaxKeyLen bytes, tokens separated by single dots, each token of
// [A-Za-z0-9_=-].
func ValidKey(key string) error {
	if len(key) > MaxKeyLen {
		return fmt.Errorf("%w: %d bytes, over MaxKeyLen (%d): shorten or hash the long part", ErrInvalidKey, len(key), MaxKeyLen)
	}
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

// ValidPrefix reports whether prefix can begin a valid key, as Keys and
// Watch require: "" (every key), a valid key ("runs.r1" matches "runs.r1"
// and "runs.r12.x"), or a valid key followed by one dot ("runs." matches
// the keys below "runs"). Wildcards and other characters outside the key
// alphabet are rejected with ErrInvalidKey rather than matching nothing, so
// a hostile prefix can never widen a backend's subject filter.
func ValidPrefix(prefix string) error {
	if prefix == "" {
		return nil
	}
	if err := ValidKey(strings.TrimSuffix(prefix, ".")); err != nil {
		return fmt.Errorf("prefix: %w", err)
	}
	return nil
}
