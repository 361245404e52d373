// Package integrity guards the bytes that flow through an object store: a
// Source hashes and counts what Put reads, enforces the declared size and
// stops when the context ends; a Reader verifies the recorded SHA-256 when a
// Get reaches the end of the object.
//
// It holds the ErrChecksum sentinel so that package objectstore and every
// backend share one value without an import cycle.
package integrity

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
)

// ErrChecksum is objectstore.ErrChecksum.
var ErrChecksum = errors.New("objectstore: checksum mismatch")

// Source wraps the reader handed to Put. It is not safe for concurrent use.
type Source struct {
	ctx  context.Context
	r    io.Reader
	size int64
	n    int64
	h    hash.Hash
}

// NewSource reads r on behalf of ctx. size is the declared length or -1.
func NewSource(ctx context.Context, r io.Reader, size int64) *Source {
	return &Source{ctx: ctx, r: r, size: size, h: sha256.New()}
}

// Read returns the context's error once it is done, and an error when r
// yields more or fewer bytes than declared: a short or long source must not
// be stored as if it were complete.
func (s *Source) Read(p []byte) (int, error) {
	if err := ContextErr(s.ctx); err != nil {
		return 0, err
	}
	if s.size >= 0 && int64(len(p)) > s.size-s.n+1 {
		// Ask for one byte past the declared end, to notice extra data.
		p = p[:s.size-s.n+1]
	}
	n, err := s.r.Read(p)
	s.h.Write(p[:n])
	s.n += int64(n)
	if s.size >= 0 && s.n > s.size {
		return n, fmt.Errorf("objectstore: reader yielded more than the declared %d bytes", s.size)
	}
	if err == io.EOF && s.size >= 0 && s.n != s.size {
		// Not io.ErrUnexpectedEOF, which reads as a broken connection
		// worth retrying: the caller declared the wrong size.
		return n, fmt.Errorf("objectstore: reader yielded %d bytes, declared %d", s.n, s.size)
	}
	return n, err
}

// Len is the number of bytes read so far.
func (s *Source) Len() int64 { return s.n }

// Sum is the lowercase hex SHA-256 of the bytes read so far.
func (s *Source) Sum() string { return hex.EncodeToString(s.h.Sum(nil)) }

// Digest is the raw SHA-256 of the bytes read so far.
func (s *Source) Digest() [sha256.Size]byte {
	var d [sha256.Size]byte
	s.h.Sum(d[:0])
	return d
}

// Reader verifies an object's bytes against the size and SHA-256 recorded
// when it was written. It is not safe for concurrent use.
type Reader struct {
	rc   io.ReadCloser
	key  string
	size int64
	want string
	n    int64
	h    hash.Hash
	err  error
}

// NewReader verifies rc, the stored bytes of key, against size and want
// (lowercase hex SHA-256). Closing the Reader closes rc.
func NewReader(rc io.ReadCloser, key string, size int64, want string) *Reader {
	return &Reader{rc: rc, key: key, size: size, want: want, h: sha256.New()}
}

// Read returns io.EOF only after the bytes proved whole; otherwise the last
// Read returns an error wrapping ErrChecksum.
func (r *Reader) Read(p []byte) (int, error) {
	if r.err != nil {
		return 0, r.err
	}
	n, err := r.rc.Read(p)
	r.h.Write(p[:n])
	r.n += int64(n)
	switch {
	case r.n > r.size:
		err = fmt.Errorf("%w: %q has more than the recorded %d bytes", ErrChecksum, r.key, r.size)
	case err == io.EOF && r.n < r.size:
		err = fmt.Errorf("%w: %q ended after %d of %d bytes", ErrChecksum, r.key, r.n, r.size)
	case err == io.EOF:
		if got := hex.EncodeToString(r.h.Sum(nil)); got != r.want {
			err = fmt.Errorf("%w: %q has SHA-256 %s, recorded %s", ErrChecksum, r.key, got, r.want)
		}
	}
	if err != nil {
		r.err = err
	}
	return n, err
}

// Close closes the underlying reader.
func (r *Reader) Close() error { return r.rc.Close() }

// ValidSum reports whether s looks like a lowercase hex SHA-256.
func ValidSum(s string) bool {
	if len(s) != 2*sha256.Size {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// ContextErr is ctx.Err(), carrying the cancellation cause too when one was
// given, so callers can match both context.Canceled and their own cause.
func ContextErr(ctx context.Context) error {
	err := ctx.Err()
	if err == nil {
		return nil
	}
	if cause := context.Cause(ctx); cause != nil && cause != err {
		return fmt.Errorf("%w: %w", err, cause)
	}
	return err
}
