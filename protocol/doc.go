// Package protocol is the wire of the FlowStone fleet: the NATS subjects,
// stream and bucket names, and every message that crosses them — API
// requests and replies, tasks, completions, manifests and event batches —
// with the rules that decide whether a message is acceptable.
//
// The package holds no behaviour beyond encoding and validation, and imports
// nothing but the standard library and internal/jsonw (JSON writing
// helpers, themselves standard library only), so the coordinator, workers
// and clients meet here without importing each other.
//
// # Versions
//
// Every message carries "v": [Version]. A message of any other version is
// rejected with [CodeUnsupportedVersion] before its fields are looked at, so
// a newer peer's extra fields read as a version problem, not a malformed
// message.
//
// # Untrusted input
//
// Everything decoded here comes from the network. The Decode functions reject
// an empty or oversized body, invalid UTF-8, malformed JSON, unknown fields,
// trailing data, a wrong version, and any value its Validate method refuses,
// always with an [*Error] whose Code says which (and whose Details["field"]
// names the field when one is at fault). The Encode functions apply the same
// rules, so a message one side builds wrongly fails where it is built.
//
// # Names and subjects
//
// Pipeline, asset and storage names are identifiers ([ValidName]); run and
// worker ids are tokens ([ValidID]). Only these ever become part of a subject
// or a key: a partition is arbitrary text and travels in message bodies only.
// The subject builders panic on an invalid name, the way a Must function
// does: decode or validate untrusted input before building subjects from it.
//
// # Events
//
// Telemetry events travel in batches: the message on
// EventSubject(pipeline, kind) is always an [EventBatch] of 1 to
// [MaxEventBatch] events of that pipeline and kind, oldest first. Build it
// with [EncodeEventBatch], or event by event with an [EventBatchBuilder];
// decode it with [DecodeEventBatch]. A lone [Event] is never published.
// Batches of different kinds arrive out of the order their events
// happened; the stamps a worker puts on each event and message
// ([EventSeqKey], [EventEpochHeader], [EventFloorHeader]) let a subscriber
// restore it.
//
// # Task and completion batches
//
// A message on TaskSubject or DoneSubject is a single [Task] or
// [Completion], or, when it carries the header [BatchHeader], a
// [TaskBatch] or [CompletionBatch] of 1 to [MaxBatchItems] of them (one
// pipeline, and one priority for tasks). Decode either shape with
// [DecodeTasks] / [DecodeCompletions]. Items keep their own IDs; a batch of
// tasks is acknowledged as one message, once every task in it has ended.
//
// # Branches and routes
//
// A worker's [Manifest] declares, per asset, the parallel branches it joins
// ([AssetSpec].Branches, JoinMode, JoinTimeoutMS) and, for a router, its
// branches in order ([AssetSpec].Route, the default last); the conditions
// are code and stay with the workers. The coordinator plans from these: it
// reads a router's decision from the router's materialization record, and
// skips the branches not chosen ([StateSkipped], [StatusReply].Skip, and a
// [EventRunSkipped] event it publishes). A join's task carries its optional
// branches' outcomes in [Task].Absent, and a branch's task the end of its
// join's timeout as its Deadline.
//
// # Backfills
//
// A backfill outlives the coordinator that accepted it: it is a
// [BackfillRecord] in RunsBucket under [BackfillKey], its partition list
// in [BackfillPartitions] chunks beside it and its id in the live-backfill
// index ([LiveBackfillKey]), written by compare-and-set only. The
// coordinator named in the record drives it; another adopts it when that
// one's heartbeat goes stale, running each partition under the same
// [BackfillRunID]. Clients follow it by id with [VerbBackfillStatus], which
// any coordinator answers (a long poll on the record's revision).
//
// # Partitions
//
// A partition is any valid UTF-8 text of at most [MaxPartitionBytes] bytes.
// In requests the empty partition means [DefaultPartition]; tasks,
// completions, events and replies always carry the resolved partition, so
// one partition never has two spellings past the API.
//
// # Errors
//
// Errors travel as [*Error]: a Code from the constants in this package (the
// library's error types plus wire-only ones), a message that says what to do,
// and Details for programs. Decode and Validate functions return *Error;
// compare it with nil before storing it in an error variable, since a nil
// *Error in an error interface is not a nil error.
package protocol
