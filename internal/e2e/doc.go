// Package e2e holds the fleet's process-level end-to-end tests: they build
// cmd/coordinator, cmd/worker and cmd/fsctl once, start an embedded
// JetStream nats-server in the test process, run the coordinator and
// workers as real processes over it (file result store in a temp dir), and
// drive everything through the fsctl binary with --json, as a user would.
// They prove every verb end to end and the fleet's invariants (see README.md) on the
// fleet: caching, single execution of concurrent runs, SIGKILLed workers
// and coordinators, dependency failures, cancel reaching a remote worker,
// structured errors on bad input, SIGTERM drains, and gates (an approval
// that survives its coordinator's SIGKILL, signals with forged and
// replayed tokens). They also build the
// example of a user's own worker (examples/ownpipeline/cmd/shop-worker)
// and run its pipeline on a fleet, as the README's "Deploy your own
// pipelines" does.
//
// Run them with go test ./internal/e2e/ (with or without -race; the race
// detector covers the test process only). There is nothing else here.
package e2e
