// Package transient tells the errors worth retrying (a server restarting, a
// connection refused or reset, a reply lost in a reconnect, an S3 503) from
// those that will recur however often the call is made (not found, a
// checksum mismatch, an invalid key, a compare-and-set conflict, a 4xx) and
// from the caller's own context ending.
//
// # Who classifies
//
// Is knows the standard library's network errors. Errors of a client
// library (NATS, minio-go) are classified by the backend that calls it,
// which marks the transient ones with Mark before returning them, so a
// caller of kv.Store or objectstore.Store needs only Is and never the
// backend's library. The package imports nothing of the project and no
// client library: the embedded engine can use it without linking NATS or
// S3 code.
//
// # Time limits
//
// A backend gives each call a time limit of its own (a request timeout, a
// stall timeout on a stream) so that a reply lost in a reconnect cannot
// hold the caller until its own deadline. Running out of that limit is a
// TimeoutError, which is transient. The caller's context ending is not:
// any context.Canceled or context.DeadlineExceeded in an error's chain makes
// Is false, which is why TimeoutError does not match
// context.DeadlineExceeded.
package transient

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
	"time"
)

// Classified is implemented by errors that know whether they are worth
// retrying. The outermost one in an error's chain decides for Is, unless
// the chain holds a context error.
type Classified interface {
	error
	Transient() bool
}

// Is reports whether err is worth retrying: the same call, made again a
// little later, may succeed. It is false for nil, for any chain holding
// context.Canceled or context.DeadlineExceeded (the caller gave up, or a
// deadline nobody marked as a per-call limit ran out), and for errors
// nobody recognises. It is true for a Classified error saying so (see Mark
// and TimeoutError), network timeouts, refused, reset and aborted
// connections, broken pipes, unreachable hosts, temporary DNS failures and
// io.ErrUnexpectedEOF (a stream that broke off).
func Is(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	var c Classified
	if errors.As(err, &c) {
		return c.Transient()
	}
	var dns *net.DNSError
	if errors.As(err, &dns) {
		return dns.IsTimeout || dns.IsTemporary
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return true
	}
	for _, errno := range transientErrnos {
		if errors.Is(err, errno) {
			return true
		}
	}
	return errors.Is(err, io.ErrUnexpectedEOF)
}

// transientErrnos are the socket errors of a peer that is restarting or
// briefly unreachable.
var transientErrnos = []error{
	syscall.ECONNREFUSED,
	syscall.ECONNRESET,
	syscall.ECONNABORTED,
	syscall.EPIPE,
	syscall.ETIMEDOUT,
	syscall.EHOSTUNREACH,
	syscall.ENETUNREACH,
}

// Mark wraps err so that Is reports it transient; errors.Is and errors.As
// still see err. Backends mark the errors of their client library that are
// worth retrying. Mark(nil) is nil. A context error in err's chain still
// makes Is false.
func Mark(err error) error {
	if err == nil {
		return nil
	}
	return &marked{err: err}
}

type marked struct{ err error }

func (m *marked) Error() string   { return m.err.Error() }
func (m *marked) Unwrap() error   { return m.err }
func (m *marked) Transient() bool { return true }

// TimeoutError is the error of a call that ran out of the time its backend
// allows one call (a reply lost in a reconnect, a stream that stopped
// sending) while the caller's context still had time. It is transient. It
// does not match context.DeadlineExceeded, which stands for the caller's
// own deadline; it does satisfy net.Error-style Timeout checks.
type TimeoutError struct {
	// Op says what timed out, such as "jetstream request" or "s3 read".
	Op string
	// After is the limit that ran out; zero if a client library's own
	// limit ran out and its length is not known.
	After time.Duration
}

// Error says what timed out and after how long.
func (e *TimeoutError) Error() string {
	if e.After <= 0 {
		return e.Op + ": timed out"
	}
	return fmt.Sprintf("%s: no progress within %v", e.Op, e.After)
}

// Timeout reports true, as net.Error timeouts do.
func (e *TimeoutError) Timeout() bool { return true }

// Transient reports true: another attempt may get its answer in time.
func (e *TimeoutError) Transient() bool { return true }
