// Package natserr classifies the errors of nats.go and its jetstream
// package for package transient: which ones a server restart, a reconnect
// or a leader election produce, and so are worth retrying. Backends on
// NATS mark them with Mark before returning them, so that transient.Is
// recognises them without linking NATS; code that calls NATS directly
// (heartbeats, acks) asks Transient.
package natserr

import (
	"context"
	"errors"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/flowstone-go/flowstone/internal/transient"
)

// transientErrs are what a client sees while its server restarts or its
// cluster elects a leader: the request got no reply or no responder, the
// connection is down or coming back, a pending publish was dropped with
// the connection, a pull stopped hearing from its consumer.
var transientErrs = []error{
	nats.ErrTimeout,
	nats.ErrNoResponders,
	nats.ErrConnectionReconnecting,
	nats.ErrDisconnected,
	nats.ErrStaleConnection,
	nats.ErrReconnectBufExceeded,
	jetstream.ErrNoStreamResponse,
	jetstream.ErrNoHeartbeat,
	jetstream.ErrConsumerLeadershipChanged,
	jetstream.ErrConsumerDeleted,
	jetstream.ErrServerShutdown,
	jetstream.ErrAsyncPublishTimeout,
	jetstream.ErrTooManyStalledMsgs,
}

// permanent503 are the JetStream API errors with status 503 that a retry
// cannot fix: JetStream is off, the account is missing, the feature needs
// a cluster, or the server is out of storage.
var permanent503 = map[jetstream.ErrorCode]bool{
	10076: true, // JetStream not enabled
	10039: true, // JetStream not enabled for account
	10035: true, // account not found
	10010: true, // JetStream clustering support required
	10036: true, // not currently supported in clustered mode
	10023: true, // insufficient resources
}

// clusterNotLeader is the API error "JetStream cluster can not handle
// request" (status 500) of a request that reached a server during a leader
// change.
const clusterNotLeader jetstream.ErrorCode = 10009

// Transient reports whether err is worth retrying: transient.Is says so,
// or err is a NATS or JetStream error of a restart, reconnect or election
// (nats.ErrTimeout, nats.ErrNoResponders, nats.ErrConnectionReconnecting,
// nats.ErrDisconnected, jetstream.ErrNoHeartbeat,
// jetstream.ErrNoStreamResponse, a JetStream API error with status 503 such
// as "JetStream system temporarily unavailable", a cluster not able to
// handle the request while it elects a leader, and the like). A closed
// connection is not transient: it does not come back.
func Transient(err error) bool {
	if err == nil || errors.Is(err, nats.ErrConnectionClosed) || errors.Is(err, jetstream.ErrConnectionClosed) {
		return false
	}
	if transient.Is(err) {
		return true
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	for _, e := range transientErrs {
		if errors.Is(err, e) {
			return true
		}
	}
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) {
		return apiErr.Code == 503 && !permanent503[apiErr.ErrorCode] || apiErr.ErrorCode == clusterNotLeader
	}
	return false
}

// Mark returns err marked for transient.Is if Transient says it is worth
// retrying, and err unchanged otherwise.
func Mark(err error) error {
	if Transient(err) {
		return transient.Mark(err)
	}
	return err
}

// Unanswered reports whether err says nobody answered a request: nobody
// listens on its subject (nats.ErrNoResponders), or no stream took a
// publish (jetstream.ErrNoStreamResponse). Besides an election, this is
// what a client bound to a way of asking the server no longer serves (a
// bucket's direct gets turned off) keeps getting.
func Unanswered(err error) bool {
	return errors.Is(err, nats.ErrNoResponders) || errors.Is(err, jetstream.ErrNoStreamResponse)
}
