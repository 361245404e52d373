package s3store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync/atomic"
	"time"

	"github.com/flowstone-go/flowstone/internal/transient"
)

// watchdog cancels a request's context once the request made no progress
// for a while: the time limit of a transfer whose length is not known in
// advance. Its timer runs while the transfer waits on the network and is
// paused while it waits on the caller.
type watchdog struct {
	limit   time.Duration
	timer   *time.Timer
	cancel  context.CancelCauseFunc
	stopped atomic.Bool
}

// watch returns ctx with a watchdog that cancels it, with a
// *transient.TimeoutError naming op as the cause, once limit passes without
// the watchdog being paused, restarted or stopped.
func watch(ctx context.Context, op string, limit time.Duration) (context.Context, *watchdog) {
	ctx, cancel := context.WithCancelCause(ctx)
	w := &watchdog{cancel: cancel}
	w.arm(op, limit)
	return ctx, w
}

// arm sets a new limit and starts the clock. Call it only while the clock
// is paused, from the goroutine that paused it.
func (w *watchdog) arm(op string, limit time.Duration) {
	cause := &transient.TimeoutError{Op: op, After: limit}
	w.limit = limit
	w.timer = time.AfterFunc(limit, func() { w.cancel(cause) })
}

// pause stops the clock, while the transfer waits on the caller.
func (w *watchdog) pause() { w.timer.Stop() }

// restart gives the transfer its limit again from now, after progress.
func (w *watchdog) restart() {
	if !w.stopped.Load() {
		w.timer.Reset(w.limit)
	}
}

// stop ends the watch and releases the context.
func (w *watchdog) stop() {
	w.stopped.Store(true)
	w.timer.Stop()
	w.cancel(context.Canceled)
}

// explain returns the watchdog's TimeoutError if it ended ctx, else err.
func explain(ctx context.Context, err error) error {
	var te *transient.TimeoutError
	if err != nil && errors.As(context.Cause(ctx), &te) {
		return te
	}
	return err
}

// uploadBody is the body of a Put as the S3 client reads it: every Read is
// progress, and the time inside a Read belongs to the caller's source.
type uploadBody struct {
	r io.Reader
	w *watchdog
}

func (b *uploadBody) Read(p []byte) (int, error) {
	b.w.pause()
	defer b.w.restart()
	return b.r.Read(p)
}

// seekableUploadBody is an uploadBody the S3 client can rewind for its own
// retries.
type seekableUploadBody struct {
	uploadBody
	s io.Seeker
}

func (b *seekableUploadBody) Seek(offset int64, whence int) (int64, error) {
	return b.s.Seek(offset, whence)
}

// downloadBody is the body of a Get as the caller reads it: the clock runs
// only while a Read waits for the server.
type downloadBody struct {
	rc  io.ReadCloser
	key string
	ctx context.Context
	w   *watchdog
}

func (b *downloadBody) Read(p []byte) (int, error) {
	b.w.restart()
	n, err := b.rc.Read(p)
	b.w.pause()
	if err != nil && err != io.EOF {
		err = fmt.Errorf("s3store: read %q: %w", b.key, explain(b.ctx, err))
	}
	return n, err
}

func (b *downloadBody) Close() error {
	err := b.rc.Close()
	b.w.stop()
	return err
}
