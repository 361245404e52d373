package client

import (
	"context"
	"errors"
	"regexp"
	"sync"

	"github.com/flowstone-go/flowstone"
	"github.com/nats-io/nats.go"
)

// refusals hears of the publishes and subscriptions the NATS server
// refused this client (permissions violations, which NATS reports apart
// from the call that caused them), and ends the calls waiting on those
// subjects at once with an error that says so, where they would otherwise
// wait for a reply that cannot come. Connect installs it; a client made
// with New on the caller's connection has none, and a refused request
// times out.
type refusals struct {
	mu      sync.Mutex
	waiting map[string]map[*refusalWait]struct{} // by subject
}

type refusalWait struct{ cancel context.CancelCauseFunc }

func newRefusals() *refusals { return &refusals{waiting: map[string]map[*refusalWait]struct{}{}} }

// violationRe finds the subject in the server's permissions violation:
// `Permissions Violation for Publish to "subject"`, or for Subscription to.
var violationRe = regexp.MustCompile(`(Publish|Subscription) to "([^"]+)"`)

// heard takes an asynchronous error of the connection.
func (r *refusals) heard(err error) {
	if r == nil || !errors.Is(err, nats.ErrPermissionViolation) {
		return
	}
	m := violationRe.FindStringSubmatch(err.Error())
	if m == nil {
		return
	}
	refused := &refusedError{op: m[1], subject: m[2]}
	r.mu.Lock()
	defer r.mu.Unlock()
	for w := range r.waiting[refused.subject] {
		w.cancel(refused)
	}
}

// watch returns ctx, ended with a *refusedError cause should the server
// refuse a publish to subject meanwhile, and the function that stops
// watching (call it when the call is over).
func (r *refusals) watch(ctx context.Context, subject string) (context.Context, func()) {
	ctx, cancel := context.WithCancelCause(ctx)
	if r == nil {
		return ctx, func() { cancel(nil) }
	}
	w := &refusalWait{cancel: cancel}
	r.mu.Lock()
	if r.waiting[subject] == nil {
		r.waiting[subject] = map[*refusalWait]struct{}{}
	}
	r.waiting[subject][w] = struct{}{}
	r.mu.Unlock()
	return ctx, func() {
		r.mu.Lock()
		delete(r.waiting[subject], w)
		if len(r.waiting[subject]) == 0 {
			delete(r.waiting, subject)
		}
		r.mu.Unlock()
		cancel(nil)
	}
}

// refusedError is a publish or subscription the server refused.
type refusedError struct{ op, subject string }

func (e *refusedError) Error() string {
	return "the NATS server refused " + e.op + " to " + e.subject + " (permissions violation)"
}

// refused returns the client's error for a call that failed on ctx (from
// watch), if the server refused its subject; nil otherwise.
func refused(ctx context.Context, what string) error {
	var re *refusedError
	if !errors.As(context.Cause(ctx), &re) {
		return nil
	}
	return refusal(what, re.op, re.subject)
}

// refusal is the error of a call whose publish or subscription to subject
// the server refused: the client's NATS user lacks the permission.
func refusal(what, op, subject string) error {
	return &flowstone.Error{Type: flowstone.TypeConfigError,
		Message: "the NATS server refused " + what + ": this client's NATS user may not " + verbOf(op) + " " + subject +
			" (permissions violation); connect as a user with the client role (deploy/nats.conf, OPERATIONS.md \"Roles and permissions\"), which allows every fsctl verb",
		Details: map[string]any{"subject": subject, "operation": verbOf(op), "cause": "permissions violation"}}
}

func verbOf(op string) string {
	if op == "Subscription" {
		return "subscribe to"
	}
	return "publish to"
}

// subscribeRefused is the error of a subscription the server refused
// (err is nats.ErrPermissionViolation from the subscription), else nil.
func subscribeRefused(what, subject string, err error) error {
	if !errors.Is(err, nats.ErrPermissionViolation) {
		return nil
	}
	return refusal(what, "Subscription", subject)
}

// isRefusal reports whether err is the error of a refused publish or
// subscription (refusal).
func isRefusal(err error) bool {
	var fe *flowstone.Error
	return errors.As(err, &fe) && fe.Details["cause"] == "permissions violation"
}
