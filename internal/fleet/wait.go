package fleet

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/flowstone-go/flowstone/internal/retry"
	"github.com/flowstone-go/flowstone/internal/transient"
	"github.com/flowstone-go/flowstone/internal/transient/natserr"
)

// Start-up against a JetStream that is not ready yet: a cluster that has
// just formed, or is electing leaders, may take longer to create a
// replicated stream than one request's time, or answer nobody for a while.
const (
	// StartWait is how long Ensure, Buckets and ObjectStore keep retrying
	// a step that failed on such a fault before they give up (the caller's
	// context may end it sooner). A supervisor restarting a daemon that
	// exits at start-up would get there too, more slowly and noisily.
	StartWait = 2 * time.Minute
	// stepLimit bounds one attempt of a step (a stream created on three
	// servers under load takes seconds).
	stepLimit = 15 * time.Second
)

// step runs fn, one attempt at a time within stepLimit, until it succeeds,
// fails on an error no retry fixes, or StartWait has passed. Each retry is
// logged (what, the error, the wait) so that an operator sees why a start
// takes long. fn must be safe to repeat: every step creates what is
// missing and binds what exists.
// A server without JetStream answers nobody too: that is asked of the
// server, and ends the wait at once.
func step[T any](ctx context.Context, js jetstream.JetStream, s settings, what string, fn func(context.Context) (T, error)) (T, error) {
	ctx, cancel := context.WithTimeout(ctx, StartWait)
	defer cancel()
	var (
		v   T
		off bool
	)
	p := retry.Policy{
		Retryable: func(err error) bool {
			off = natserr.Unanswered(err) && jetStreamOff(ctx, js)
			return natserr.Transient(err) && !off
		},
		MaxDelay: 2 * time.Second,
		OnRetry: func(a retry.Attempt) {
			s.log.Warn().Err(a.Err).Str("step", what).Int("attempt", a.N).Dur("retry_in", a.Delay).Msg("jetstream_not_ready")
		},
	}
	err := p.Do(ctx, func(ctx context.Context) error {
		var err error
		v, err = transient.Call(ctx, what, stepLimit, fn)
		return err
	})
	if off {
		err = fmt.Errorf("JetStream is not enabled on the server (or for this account): start nats-server with -js: %w", err)
	}
	return v, err
}

// jetStreamOff reports whether the server says JetStream is not enabled
// (for the connection's account), within one request's time.
func jetStreamOff(ctx context.Context, js jetstream.JetStream) bool {
	_, err := transient.Call(ctx, "jetstream account info", stepLimit, js.AccountInfo)
	return errors.Is(err, jetstream.ErrJetStreamNotEnabled) || errors.Is(err, jetstream.ErrJetStreamNotEnabledForAccount)
}
