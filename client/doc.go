// Package client is the Go client of a FlowStone fleet: the library's verbs
// (Run, Get, Exists, Status, Cancel, Invalidate, Backfill, Graph, Assets,
// AssetInfo, and the gates' Approve, Reject, Approvals and Signal) with the
// same options and the same *flowstone.Error values,
// spoken over NATS request/reply to the fleet's coordinators, with
// pipelines named instead of passed.
//
//	c, err := client.Connect("nats://127.0.0.1:4222")
//	if err != nil {
//		return err // an *flowstone.Error of TypeUnavailable, saying what to do
//	}
//	defer c.Close()
//	res, err := c.Run(ctx, "example", "sum")
//	...
//	var sum int
//	err = res.Decode(&sum)
//
// # Requests and waiting
//
// Every call is one request to flowstone.api.<verb>; a coordinator answers
// at once. A synchronous Run is accepted at once too: the client then
// follows the run's record in the fleet's runs bucket until the run ends
// (it subscribes to the record's updates and reads it with message gets),
// and reads the result with Get. Calls use the deadline of their context;
// when it has none, requests give up after the client's timeout
// (WithTimeout) and a synchronous Run waits for its own run timeout plus
// that (its timeout and its gates' waits, for a run that may pass gates:
// the coordinator says how long in its reply).
//
// Cancelling the context of a synchronous Run stops the waiting, not the
// run: it goes on on the fleet (cancel it with Cancel).
//
// A Backfill is accepted at once too, with an id: the fleet keeps it as a
// record, which whichever coordinator drives it (the one that accepted it,
// or the one that adopted it when that one died) keeps up to date. The
// client follows the record through the backfill_status verb, which any
// coordinator answers, asking again while coordinators restart; without a
// deadline it waits as long as the backfill makes progress. FollowBackfill
// re-attaches to a backfill by its id.
//
// # Errors
//
// Errors are *flowstone.Error. A coordinator's error arrives with its type
// and details, so errors.Is(err, flowstone.ErrAssetNotFound) works as it
// does embedded. A fleet nobody answers for is TypeUnavailable; a reply
// that does not come in time is TypeTimeout (and also matches
// context.DeadlineExceeded when the context's deadline passed).
//
// # Results
//
// Get's reply carries results up to protocol.InlineValueLimit bytes inline.
// A larger result is read, in this order, from the store given with
// WithStore under the fleet's name for it; from the fleet's JetStream
// object store (protocol.ResultsBucket), which the client reaches over its
// NATS connection; or from a copy the fleet stages for the client: a
// coordinator copies the result from its store (S3, files on its disk)
// into protocol.StagingBucket, where the client reads it over NATS. So no
// store needs configuring to read any result; WithStore saves the copy
// (and the fleet's disk and bandwidth) when the client can reach the
// store itself. Staged copies expire after protocol.StagingTTL and are
// shared by clients reading the same bytes.
//
// # Permissions
//
// The client needs no JetStream consumer and no JetStream API but
// read-only message gets: what the client role of deploy/nats.conf allows
// (OPERATIONS.md, "Roles and permissions"). It publishes requests to
// flowstone.api.<verb> and message gets to $JS.API.STREAM.MSG.GET.<stream>
// of the runs bucket (a synchronous Run's record, a backfill's partitions)
// and of the result buckets (large results); it subscribes to its inbox,
// to flowstone.event.> (Watch) and to the updates of run and
// materialization records ($KV.flowstone_runs.run.*, a Run waiting;
// $KV.flowstone_materializations.mat.>, Backfill's OnProgress). A client
// made with Connect learns of a publish or subscription the server refuses
// and fails that call at once with a TypeConfigError naming the subject;
// one made with New waits for its timeout.
//
// # Async runs
//
// Run with flowstone.Async returns a Result whose Job is set; the value is
// read later with Get. A Client is a flowstone.AsyncRunner, so an embedded
// engine can send its Async runs to the fleet:
//
//	engine, err := flowstone.NewEngine(flowstone.EngineConfig{Async: c})
package client
