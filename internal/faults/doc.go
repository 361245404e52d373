// Package faults is FlowStone's fault harness: it runs the fleet as real
// processes on loopback (nats-server with JetStream on a file store, two
// coordinators, three workers, a versitygw S3 server), drives a backfill of
// daily_sales revenue with the fsctl binary, injects one fault per scenario
// at seeded random instants, and then checks what a user would: every
// partition completed, nothing left pending or running, every stored object
// present with its checksum, no asset executed to completion twice in one
// run unless a kill preceded its first record, and values equal to an
// undisturbed run.
//
// # Running it
//
// The tests are behind the build tag "faults", so go test ./... skips them.
// The short variants (150 partitions, fewer fault repetitions) are for CI:
//
//	go test -tags faults -run Short -v ./internal/faults
//
// The long variants (1,000 partitions) take minutes per scenario:
//
//	go test -tags faults -run Long -v -timeout 90m ./internal/faults
//
// One scenario: -run 'Long/nats_restart' (the undisturbed baseline runs
// first, as every scenario compares with it). Test flags, given after the
// package:
//
//   - -faults.seed N: other random fault instants and targets (the seed is
//     printed; it fixes when and where faults strike, not how the fleet's
//     timing falls around them)
//   - -faults.partitions N: another backfill size
//   - -faults.stall D: how long the harness waits without any record
//     changing before it checks (default 1m; the fleet's run deadline is 5m)
//   - -faults.logs DIR: keep every process's log there
//   - -faults.source-latency D, -faults.ack-wait D: the workers' flags
//   - -faults.replicas N: --replicas of the cluster scenario's fleet; it is
//     skipped while the daemons lack the flag, and 0 runs it on the
//     replication the fleet creates by default
//
// RELIABILITY.md at the repository root lists the scenarios, what they
// check and what they measured.
//
// The tests build cmd/coordinator, cmd/worker, cmd/fsctl and nats-server
// from the module; the S3 server is versitygw (FLOWSTONE_VERSITYGW, see
// internal/s3test).
package faults
