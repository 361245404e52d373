package transient

import (
	"context"
	"errors"
	"time"
)

// Call makes one call under a time limit of its own: fn gets ctx limited
// to limit, and its error goes through CallErr. A shorter deadline on ctx
// still wins, and is then the caller's.
func Call[T any](ctx context.Context, op string, limit time.Duration, fn func(context.Context) (T, error)) (T, error) {
	cctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	v, err := fn(cctx)
	return v, CallErr(ctx, op, limit, err)
}

// CallErr explains err, returned by a call made under a limit of its own
// derived from ctx: while ctx still has time, a context.DeadlineExceeded
// in err's chain is the call's limit (or a client library's) running out,
// and becomes a TimeoutError. Otherwise err is returned as it is: nil,
// the caller's context ending, or the call's own failure.
func CallErr(ctx context.Context, op string, limit time.Duration, err error) error {
	if err == nil || ctx.Err() != nil || !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return &TimeoutError{Op: op, After: limit}
}
