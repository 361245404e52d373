// Package objectstore holds materialized results as bytes: an interface with
// memory, file, S3 (minio-go) and JetStream object store implementations.
// Every implementation passes the conformance suite in objectstore/storetest.
//
// Objects are streamed: Put reads from an io.Reader and Get returns an
// io.ReadCloser, so a large result never has to sit in memory. Every object
// carries a SHA-256 checksum computed on write and verified on read: a reader
// whose bytes do not match returns ErrChecksum instead of io.EOF.
//
// Keys are slash-separated segments of [A-Za-z0-9._=-], no segment "." or
// "..", at most 1024 bytes in all; see ValidKey. Callers encode user text
// before building keys.
package objectstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/flowstone-go/flowstone/objectstore/internal/integrity"
)

// Sentinel errors every backend returns (wrapped).
var (
	// ErrNotFound means no object is stored under the key.
	ErrNotFound = errors.New("objectstore: object not found")
	// ErrChecksum means the bytes read back do not match the checksum
	// recorded when they were written: the stored object is damaged (or
	// was written without a checksum) and must be recomputed.
	ErrChecksum = integrity.ErrChecksum
	// ErrInvalidKey means the key is not portable (see ValidKey).
	ErrInvalidKey = errors.New("objectstore: invalid key")
)

// MaxKeyLen is the longest key accepted, in bytes.
const MaxKeyLen = 1024

// Info describes a stored object.
type Info struct {
	// Key is the key the object is stored under.
	Key string
	// Size is the object's length in bytes.
	Size int64
	// SHA256 is the lowercase hex SHA-256 of the object's bytes, recorded
	// when it was written.
	SHA256 string
}

// Store keeps objects by key.
//
// All methods are safe for concurrent use. Put is atomic: a reader sees the
// old object or the whole new one, never a part. Writing the same key again
// replaces the object.
//
// # Faults
//
// Backends that talk to a server bound every request they make with a
// time limit of their own, also when ctx has a later deadline, so no call
// waits forever on a server that went away; a reader that receives nothing
// for a while fails from Read. Errors worth retrying (a timeout of the
// backend's own, a refused or reset connection, a server restarting, an
// S3 5xx) are recognised by transient.Is (package internal/transient); not
// found, checksum and invalid-key errors, and ctx ending, are not.
//
// A failed Put, for whatever reason, leaves key as it was: the previous
// object or none, never a part of the new one. Putting the same bytes
// again is therefore safe, which is how a caller retries a Put: with a new
// reader over the same bytes (a bytes.Reader over an in-memory result), as
// a reader partly consumed by the failed attempt cannot start over.
type Store interface {
	// Put stores everything r yields under key. size is the number of bytes
	// if known, or -1 (backends that need it buffer or stream in parts).
	// A known size is a promise: if r yields more or fewer bytes, Put fails
	// and stores nothing. When ctx ends before the object is complete, Put
	// returns an error wrapping ctx's error and stores nothing. Any failed
	// Put leaves key as it was.
	Put(ctx context.Context, key string, r io.Reader, size int64) (Info, error)
	// Get opens the object. The reader verifies the checksum as it reaches
	// the end: the final Read returns ErrChecksum (wrapped) on a mismatch.
	// The reader may stop with ctx, so keep ctx alive until it is read, and
	// Close it when done; it must not be shared between goroutines.
	Get(ctx context.Context, key string) (io.ReadCloser, Info, error)
	// Stat describes the object without reading it.
	Stat(ctx context.Context, key string) (Info, error)
	// Delete removes the object. Deleting a missing key is not an error.
	Delete(ctx context.Context, key string) error
	// Name is the backend's short name ("memory", "file", "s3", "jetstream").
	Name() string
}

// ValidKey reports whether key is portable across every backend.
func ValidKey(key string) error {
	if key == "" || len(key) > MaxKeyLen {
		return fmt.Errorf("%w: length %d", ErrInvalidKey, len(key))
	}
	for _, seg := range strings.Split(key, "/") {
		if seg == "" || seg == "." || seg == ".." {
			return fmt.Errorf("%w: %q has an empty, \".\" or \"..\" segment", ErrInvalidKey, key)
		}
		for _, r := range seg {
			switch {
			case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '_', r == '=', r == '-', r == '.':
			default:
				return fmt.Errorf("%w: %q has %q", ErrInvalidKey, key, r)
			}
		}
	}
	return nil
}

// ReadAll is a convenience for small objects: it reads the whole object and
// checks its checksum.
func ReadAll(ctx context.Context, s Store, key string) ([]byte, Info, error) {
	rc, info, err := s.Get(ctx, key)
	if err != nil {
		return nil, Info{}, err
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		return nil, Info{}, err
	}
	return b, info, nil
}
