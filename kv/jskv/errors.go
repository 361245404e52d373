package jskv

import (
	"context"
	"errors"
	"fmt"

	"github.com/flowstone-go/flowstone/internal/transient"
	"github.com/flowstone-go/flowstone/internal/transient/natserr"
	"github.com/flowstone-go/flowstone/kv"
	"github.com/nats-io/nats.go/jetstream"
)

// mapError adds the kv sentinel a caller branches on to a JetStream error,
// keeping the original (and its API error code) in the chain. An error of
// the caller's context ending says so; a deadline that ran out while ctx
// still had time was the store's own request timeout (or nats.go's) and
// becomes a *transient.TimeoutError; NATS errors worth retrying are marked
// for transient.Is.
func (s *Store) mapError(ctx context.Context, op, key string, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, jetstream.ErrKeyNotFound), errors.Is(err, jetstream.ErrKeyDeleted):
		return fmt.Errorf("jskv: %s %q: %w (%w)", op, key, kv.ErrNotFound, err)
	case isConflict(err):
		return fmt.Errorf("jskv: %s %q: %w (%w)", op, key, kv.ErrConflict, err)
	case errors.Is(err, jetstream.ErrInvalidKey):
		// Unreachable while kv.ValidKey is stricter than JetStream's check;
		// mapped anyway so the contract holds if either changes.
		return fmt.Errorf("jskv: %s %q: %w (%w)", op, key, kv.ErrInvalidKey, err)
	case ctx.Err() != nil:
		if errors.Is(err, ctx.Err()) {
			return fmt.Errorf("jskv: %s %q: %w", op, key, err)
		}
		return fmt.Errorf("jskv: %s %q: %w: %w", op, key, context.Cause(ctx), err)
	case errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("jskv: %s %q: %w", op, key, &transient.TimeoutError{Op: "jetstream request", After: s.timeout})
	default:
		return fmt.Errorf("jskv: %s %q: %w", op, key, natserr.Mark(err))
	}
}

// isConflict reports a failed compare-and-set: the server's "wrong last
// sequence" (10071, or 10164 on replicated streams), which nats.go also
// reports as ErrKeyExists (Create) or ErrKeyRevisionMismatch (Update,
// Delete).
func isConflict(err error) bool {
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) {
		switch apiErr.ErrorCode {
		case jetstream.JSErrCodeStreamWrongLastSequence, jetstream.JSErrCodeStreamWrongLastSequenceConstant:
			return true
		}
	}
	return errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyRevisionMismatch)
}
